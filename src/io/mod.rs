//! Reading and writing: pictures, plots, progress bars, checkpoints.

pub mod plot;
pub mod progress;

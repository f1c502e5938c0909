//! Reading and writing: pictures, plots, progress bars, checkpoints.

pub mod checkpoint;
pub mod image;
pub mod metadata;
pub mod plot;
pub mod progress;

//! Reading and writing: pictures, plots, progress bars, checkpoints, JSON lines.

pub mod checkpoint;
pub mod image;
pub mod json;
pub mod metadata;
pub mod plot;
pub mod progress;

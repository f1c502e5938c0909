//! Reading and writing: pictures, plots, progress bars, checkpoints.

pub mod image;

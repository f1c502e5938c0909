//! Reading and writing: pictures, plots, progress bars, checkpoints.

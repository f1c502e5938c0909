//! Datasets, built in or read from disk.

pub mod toy2d;

//! Datasets: 2-D toys and image data, all made or read on this machine: nothing is downloaded.
//!
//! - [`digits`]: procedurally drawn handwritten-looking digits 0–9 (32×32 grey), the main demo's data.
//! - [`shapes`]: coloured geometric shapes (32×32 RGB), labelled by shape.
//! - [`uci_digits`]: the UCI optical handwritten digits (1,797 real 8×8 scans, built in), upscaled.
//! - [`folder`]: a torchvision-`ImageFolder`-style loader for the reader's own pictures.
//! - [`mnist`]: a reader for MNIST's IDX files, for readers who have them on disk.
//! - [`toy2d`]: 2-D point clouds (swiss roll, two moons, …) for the first diffusion chapter.
//! - [`source`]: a dataset named on the command line (`digits`, `shapes`, `uci-digits`,
//!   `mnist:DIR`, a folder), and its training and held-out images.
//! - [`split`]: seeded held-out splits stratified by class, used by every split.
//! - [`batch`]: seeded shuffling into mini-batches, with an optional horizontal flip.
//!
//! Every loader returns an [`ImageDataset`]: images `(N, C, H, W)` in `[−1, 1]` with labels.

pub mod batch;
pub mod dataset;
pub mod digits;
pub mod folder;
pub mod mnist;
pub mod shapes;
pub mod source;
pub mod split;
pub mod toy2d;
pub mod uci_digits;

pub use batch::{Batch, Batcher};
pub use dataset::ImageDataset;
pub use source::DataSource;
pub use split::{split_dataset, stratified_split, stratified_subset, Split};

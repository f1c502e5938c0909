//! Video: clips `(B, C, F, H, W)` of moving digits, and the numbers that judge generated ones.
//!
//! - [`moving_digits`]: Moving-MNIST-style clips drawn from a seed, labelled by (digit, motion).
//! - [`clip_set`]: a labelled set of clips in memory, and its frames as an image dataset.
//! - [`track`]: a digit's position in each frame, and the motion read off it.
//! - [`scorer`]: the frame and clip classifiers, trained on real clips, saved and loaded.
//! - [`encode`]: clips encoded frame by frame with the image VAE, into a latent file.
//! - [`metrics`]: the report of a set of generated clips: digit, motion, speed, consistency, FVD.

pub mod clip_set;
pub mod encode;
pub mod metrics;
pub mod moving_digits;
pub mod scorer;
pub mod track;

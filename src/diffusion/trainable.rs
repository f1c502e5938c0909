//! The training side of a denoiser: what a trainer needs beyond [`Denoiser::predict`] — a
//! forward pass that keeps its cache, and the backward pass that adds every parameter's
//! gradient. The U-Net, DiT and the video DiT implement it, so one image trainer (AdamW, EMA,
//! label dropout, the loss of [`training_losses`](super::training_losses)) serves them all.

use super::model::Denoiser;
use crate::param::Parameters;
use ndarray::ArrayD;

// ANCHOR: trainable
/// A [`Denoiser`] that can be trained by hand-written backprop.
pub trait TrainableDenoiser: Denoiser + Parameters + Clone + Send + Sync {
    /// What the backward pass needs from the forward pass.
    type Cache: Send + Sync;

    /// The same output as [`Denoiser::predict`], and the cache. `y` uses the same labels,
    /// including the null label of classifier-free guidance.
    fn forward_train(
        &self,
        x_t: &ArrayD<f32>,
        t: &[usize],
        y: Option<&[usize]>,
    ) -> (ArrayD<f32>, Self::Cache);

    /// Given `d_out = ∂L/∂output`, adds `∂L/∂θ` into every parameter's gradient.
    fn backward_train(&mut self, cache: &Self::Cache, d_out: &ArrayD<f32>);
}
// ANCHOR_END: trainable

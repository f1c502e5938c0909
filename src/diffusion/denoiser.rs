//! The interface between the diffusion math and a network: [`Denoiser`] for sampling, and
//! [`TrainableDenoiser`] for training — a forward pass that keeps its cache and the backward
//! pass that adds every parameter's gradient. The toy MLP, the U-Net and DiT implement them,
//! so one trainer and one sampler serve every model and every rank of data.

use super::condition::Condition;
use super::frames::FrameMask;
use crate::param::Parameters;
use ndarray::ArrayD;

// ANCHOR: denoiser
/// A network that denoises: `(x_t, t, y) → output`, batch first.
///
/// * `x_t`: `(B, C, …)` noisy samples (2-D points `(B, 2)`, images `(B, C, H, W)`, clips
///   `(B, C, F, H, W)`).
/// * `t`: one timestep per batch element, in the model's own numbering (the original
///   `0..T` even when sampling with a respaced schedule).
/// * `y`: the [`Condition`]: class labels (including the model's null label, which
///   classifier-free guidance uses for the unconditional prediction), blends of two classes
///   (sampling only), or none.
/// * output: `(B, C, …)`, or `(B, 2C, …)` when the model also predicts its variance
///   ([`VarianceType::LearnedRange`](super::VarianceType)); channels are axis 1.
pub trait Denoiser: Sync {
    fn predict(&self, x_t: &ArrayD<f32>, t: &[usize], y: &Condition) -> ArrayD<f32>;
}
// ANCHOR_END: denoiser

impl<F> Denoiser for F
where
    F: Fn(&ArrayD<f32>, &[usize], &Condition) -> ArrayD<f32> + Sync,
{
    fn predict(&self, x_t: &ArrayD<f32>, t: &[usize], y: &Condition) -> ArrayD<f32> {
        self(x_t, t, y)
    }
}

// ANCHOR: trainable
/// A [`Denoiser`] that can be trained by hand-written backprop.
pub trait TrainableDenoiser: Denoiser + Parameters + Clone + Send + Sync {
    /// What the backward pass needs from the forward pass.
    type Cache: Send + Sync;

    /// The same output as [`Denoiser::predict`], and the cache.
    fn forward_train(
        &self,
        x_t: &ArrayD<f32>,
        t: &[usize],
        y: &Condition,
    ) -> (ArrayD<f32>, Self::Cache);

    /// Given `d_out = ∂L/∂output`, adds `∂L/∂θ` into every parameter's gradient.
    fn backward_train(&mut self, cache: &Self::Cache, d_out: &ArrayD<f32>);

    /// Whether [`forward_train_given`](Self::forward_train_given) is implemented (models
    /// of clips).
    fn reads_frame_masks(&self) -> bool {
        false
    }

    /// [`forward_train`](Self::forward_train) with some frames given
    /// ([`FrameMask`]); only models whose [`reads_frame_masks`](Self::reads_frame_masks)
    /// is true implement it (the trainer checks first).
    fn forward_train_given(
        &self,
        _x_t: &ArrayD<f32>,
        _t: &[usize],
        _y: &Condition,
        _given: &FrameMask,
    ) -> (ArrayD<f32>, Self::Cache) {
        panic!("this model does not read frame masks")
    }
}
// ANCHOR_END: trainable

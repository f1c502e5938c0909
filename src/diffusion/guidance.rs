//! Classifier-free guidance (Ho & Salimans 2022, <https://arxiv.org/abs/2207.12598>): run the
//! model with the condition and with the null condition, and extrapolate,
//! $\hat\varepsilon = \varepsilon_\text{uncond} + s\,(\varepsilon_\text{cond} - \varepsilon_\text{uncond})$.
//!
//! DiT's `forward_with_cfg` guides only the first three channels (kept for reproducing its
//! numbers); here guidance applies to all `C` prediction channels. The learned-variance
//! channels, if any, are taken from the conditional prediction.

use super::condition::Condition;
use super::denoiser::Denoiser;
use super::gaussian_diffusion::Diffusion;
use ndarray::ArrayD;

/// A [`Denoiser`] that applies classifier-free guidance to another.
pub struct Guided<'a> {
    pub model: &'a dyn Denoiser,
    /// Guidance scale `s` (1 = plain conditional model).
    pub scale: f32,
    /// Prediction channels `C` (the first `C` output channels are guided).
    pub channels: usize,
}

impl Denoiser for Guided<'_> {
    // ANCHOR: guidance
    fn predict(&self, x_t: &ArrayD<f32>, t: &[usize], y: &Condition) -> ArrayD<f32> {
        assert!(!y.is_none(), "classifier-free guidance needs a condition");
        // The same batch with the null label (or, for captions, the learned null caption).
        let null = y.null();
        // The conditional and the unconditional prediction, side by side on two threads.
        let (cond, uncond) = rayon::join(
            || self.model.predict(x_t, t, y),
            || self.model.predict(x_t, t, &null),
        );
        let (ec, rest) = Diffusion::split(&cond, self.channels);
        let (eu, _) = Diffusion::split(&uncond, self.channels);
        // $\hat\varepsilon = \varepsilon_u + s(\varepsilon_c - \varepsilon_u)$
        let guided = &eu + &((&ec - &eu) * self.scale);
        if rest.shape()[1] == 0 {
            guided
        } else {
            Diffusion::join(&guided, &rest)
        }
    }
    // ANCHOR_END: guidance
}

//! The encoder's output read as a diagonal Gaussian over latents, $q(z \mid x) =
//! \mathcal N(\mu, \operatorname{diag}\sigma^2)$: its reparameterised sample, its KL divergence
//! from $\mathcal N(0, I)$, and the gradients of both (Kingma & Welling 2013,
//! <https://arxiv.org/abs/1312.6114>; latent-diffusion's `DiagonalGaussianDistribution` in
//! `ldm/modules/distributions/distributions.py`).
//!
//! The moments `(B, 2z, h, w)` split along channels into the mean (first `z`) and the
//! log-variance (last `z`), which is clamped to `[−30, 20]` as in LDM so `exp` can neither
//! underflow to a zero σ nor overflow. The clamp passes zero gradient outside its range (and,
//! since only the clamped value is kept, also exactly at its ends — a measure-zero difference
//! from PyTorch, whose clamp passes the gradient at the ends).

use ndarray::{s, Array4, Axis, Zip};

/// LDM's clamp on the log-variance.
pub const LOGVAR_MIN: f32 = -30.0;
/// LDM's clamp on the log-variance.
pub const LOGVAR_MAX: f32 = 20.0;

/// $\mathcal N(\mu, \operatorname{diag} e^{\text{logvar}})$ per latent element.
#[derive(Clone, Debug)]
pub struct DiagonalGaussian {
    pub mean: Array4<f32>,   // μ (B, z, h, w)
    pub logvar: Array4<f32>, // log σ² (B, z, h, w), clamped to [−30, 20]
}

impl DiagonalGaussian {
    /// Splits the moments `(B, 2z, h, w)` into mean and (clamped) log-variance.
    pub fn from_moments(moments: &Array4<f32>) -> Self {
        let c2 = moments.shape()[1];
        assert!(
            c2 % 2 == 0,
            "DiagonalGaussian: moments need an even channel count, got {:?}",
            moments.shape()
        );
        let z = c2 / 2;
        let mean = moments.slice(s![.., ..z, .., ..]).to_owned(); // (B, z, h, w)
        let logvar = moments
            .slice(s![.., z.., .., ..])
            .mapv(|v| v.clamp(LOGVAR_MIN, LOGVAR_MAX)); // (B, z, h, w)
        DiagonalGaussian { mean, logvar }
    }

    /// The standard deviation $\sigma = e^{\text{logvar}/2}$.
    pub fn std(&self) -> Array4<f32> {
        self.logvar.mapv(|lv| (0.5 * lv).exp())
    }

    /// The most likely latent, the mean (what sampling from a trained VAE encodes with).
    pub fn mode(&self) -> &Array4<f32> {
        &self.mean
    }

    // ANCHOR: reparameterize
    /// The reparameterised sample for the standard-normal noise `eps` (same shape as the mean).
    pub fn sample(&self, eps: &Array4<f32>) -> Array4<f32> {
        assert_eq!(eps.shape(), self.mean.shape(), "eps must match the mean");
        // $z = \mu + \sigma \varepsilon$,  $\sigma = e^{\text{logvar}/2}$
        let mut z = self.mean.clone();
        Zip::from(&mut z)
            .and(&self.logvar)
            .and(eps)
            .for_each(|z, &lv, &e| *z += (0.5 * lv).exp() * e);
        z
    }

    /// Given `dz`, returns `(dmean, dlogvar)`:
    /// $\partial z/\partial\mu = 1$, $\partial z/\partial\,\text{logvar} = \tfrac12 \sigma \varepsilon$.
    pub fn sample_backward(
        &self,
        eps: &Array4<f32>,
        dz: &Array4<f32>,
    ) -> (Array4<f32>, Array4<f32>) {
        assert_eq!(dz.shape(), self.mean.shape(), "dz must match the mean");
        let dmean = dz.to_owned();
        // $d\,\text{logvar} = dz \cdot \tfrac12 \sigma \varepsilon$
        let mut dlogvar = Array4::zeros(self.logvar.raw_dim());
        Zip::from(&mut dlogvar)
            .and(&self.logvar)
            .and(eps)
            .and(dz)
            .for_each(|d, &lv, &e, &g| *d = g * 0.5 * (0.5 * lv).exp() * e);
        (dmean, dlogvar)
    }
    // ANCHOR_END: reparameterize

    // ANCHOR: kl
    /// $\mathrm{KL}(q \,\|\, \mathcal N(0, I))$ per image, summed over `(C, H, W)` in f64.
    pub fn kl(&self) -> Vec<f64> {
        // $\mathrm{KL} = \tfrac12 \sum (\mu^2 + \sigma^2 - 1 - \log\sigma^2)$
        self.mean
            .outer_iter()
            .zip(self.logvar.outer_iter())
            .map(|(m, lv)| {
                0.5 * m
                    .iter()
                    .zip(lv.iter())
                    .map(|(&m, &lv)| {
                        let (m, lv) = (m as f64, lv as f64);
                        m * m + lv.exp() - 1.0 - lv
                    })
                    .sum::<f64>()
            })
            .collect()
    }

    /// Adds the gradient of $\sum_b w_b\,\mathrm{KL}_b$ (`weights` one per image) into `dmean`
    /// and `dlogvar`: $\partial/\partial\mu = \mu$, $\partial/\partial\,\text{logvar} =
    /// \tfrac12(\sigma^2 - 1)$.
    pub fn kl_backward_into(
        &self,
        weights: &[f32],
        dmean: &mut Array4<f32>,
        dlogvar: &mut Array4<f32>,
    ) {
        assert_eq!(weights.len(), self.mean.shape()[0], "one weight per image");
        for (b, &w) in weights.iter().enumerate() {
            // $d\mu \mathrel{+}= w\,\mu$
            Zip::from(dmean.index_axis_mut(Axis(0), b))
                .and(self.mean.index_axis(Axis(0), b))
                .for_each(|d, &m| *d += w * m);
            // $d\,\text{logvar} \mathrel{+}= w \cdot \tfrac12 (e^{\text{logvar}} - 1)$
            Zip::from(dlogvar.index_axis_mut(Axis(0), b))
                .and(self.logvar.index_axis(Axis(0), b))
                .for_each(|d, &lv| *d += w * 0.5 * (lv.exp() - 1.0));
        }
    }
    // ANCHOR_END: kl

    /// Gradients with respect to the moments `(B, 2z, h, w)`: `dmean` in the first `z`
    /// channels, `dlogvar` in the last `z`, zeroed where the clamp was active.
    pub fn moments_backward(&self, dmean: &Array4<f32>, dlogvar: &Array4<f32>) -> Array4<f32> {
        let (b, z, h, w) = self.mean.dim();
        let mut dm = Array4::zeros((b, 2 * z, h, w));
        dm.slice_mut(s![.., ..z, .., ..]).assign(dmean);
        Zip::from(dm.slice_mut(s![.., z.., .., ..]))
            .and(dlogvar)
            .and(&self.logvar)
            .for_each(|d, &g, &lv| {
                let inside = lv > LOGVAR_MIN && lv < LOGVAR_MAX;
                *d = if inside { g } else { 0.0 };
            });
        dm
    }
}

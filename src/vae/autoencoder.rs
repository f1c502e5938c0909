//! The KL-regularised autoencoder of latent diffusion (`AutoencoderKL` in
//! `ldm/models/autoencoder.py`, Rombach et al. 2022, <https://arxiv.org/abs/2112.10752>):
//! encoder → 1×1 `quant_conv` → Gaussian moments → sample → 1×1 `post_quant_conv` → decoder,
//! and its training loss, LDM's `LPIPSWithDiscriminator` without LPIPS and the GAN:
//!
//! $$\mathcal L = \frac1B \sum_b \Big[\sum_{\text{pixels}} \ell(\hat x_b - x_b)
//!   + \beta\,\mathrm{KL}\big(q(z \mid x_b) \,\|\, \mathcal N(0, I)\big)\Big],$$
//!
//! with $\ell$ the absolute value (L1, LDM's choice) or the square (MSE), and β the
//! `kl_weight` (LDM uses 1e-6 with its perceptual loss; a small VAE trained on pixels alone
//! wants more). LDM's learned output log-variance (`logvar`, initialised to 0 and barely
//! moving) is left out: at 0 it is the plain sum above.

use super::config::VaeConfig;
use super::decoder::Decoder;
use super::distribution::DiagonalGaussian;
use super::encoder::Encoder;
use crate::error::Result;
use crate::nn::Conv2d;
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use ndarray::{Array, Array4, Dimension, Ix4, Zip};

/// The per-pixel reconstruction penalty.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Recon {
    /// $|\hat x - x|$ (LDM's), gradient $\operatorname{sign}(\hat x - x)$ (0 at 0).
    L1,
    /// $(\hat x - x)^2$, gradient $2(\hat x - x)$.
    Mse,
}

/// The loss: which reconstruction penalty, and the weight β of the KL term.
#[derive(Clone, Copy, Debug)]
pub struct VaeLoss {
    pub recon: Recon,
    pub kl_weight: f32,
}

/// One evaluation of the loss: the total and its two parts (each averaged over the batch),
/// and the reconstruction $\hat x$ `(B, C, H, W)`.
#[derive(Clone, Debug)]
pub struct LossParts<D: Dimension = Ix4> {
    pub total: f64,
    pub recon: f64,
    pub kl: f64,
    pub x_rec: Array<f32, D>,
}

/// LDM's `AutoencoderKL`.
#[derive(Clone, Debug)]
pub struct AutoencoderKL {
    pub config: VaeConfig,
    pub encoder: Encoder,
    pub quant_conv: Conv2d,      // 1×1, 2z → 2z
    pub post_quant_conv: Conv2d, // 1×1, z → z
    pub decoder: Decoder,
}

impl AutoencoderKL {
    /// A freshly initialised model; fails (naming the field) if `config` is invalid.
    pub fn new(config: VaeConfig, rng: &mut Rng) -> Result<Self> {
        config.validate()?;
        let z = config.z_channels;
        // LDM's construction order: encoder, decoder, quant_conv, post_quant_conv.
        let encoder = Encoder::new(&config, rng);
        let decoder = Decoder::new(&config, rng);
        let quant_conv = Conv2d::new(2 * z, 2 * z, 1, 1, 0, true, rng);
        let post_quant_conv = Conv2d::new(z, z, 1, 1, 0, true, rng);
        Ok(AutoencoderKL {
            config,
            encoder,
            quant_conv,
            post_quant_conv,
            decoder,
        })
    }

    /// Checks that `x` is `(B, in_channels, H, W)` with `H`, `W` multiples of the factor.
    fn check_image(&self, x: &Array4<f32>) {
        let f = self.config.downsample_factor();
        let (_, c, h, w) = x.dim();
        assert!(
            c == self.config.in_channels && h % f == 0 && w % f == 0 && h > 0 && w > 0,
            "AutoencoderKL: expected (B, {}, H, W) with H and W multiples of {f}, got {:?}",
            self.config.in_channels,
            x.shape()
        );
    }

    /// The posterior $q(z \mid x)$ of images `x` (B, C, H, W) (inference, no caches).
    pub fn encode(&self, x: &Array4<f32>) -> DiagonalGaussian {
        self.check_image(x);
        let moments = self
            .quant_conv
            .forward_infer(&self.encoder.forward_infer(x));
        DiagonalGaussian::from_moments(&moments) // (B, z, H/f, W/f)
    }

    /// Images `(B, C, h·f, w·f)` from latents `z` `(B, z, h, w)` (inference).
    pub fn decode(&self, z: &Array4<f32>) -> Array4<f32> {
        assert_eq!(
            z.shape()[1],
            self.config.z_channels,
            "AutoencoderKL::decode: expected {} latent channels, got {:?}",
            self.config.z_channels,
            z.shape()
        );
        self.decoder
            .forward_infer(&self.post_quant_conv.forward_infer(z))
    }

    /// `decode(encode(x).mean)`: the deterministic reconstruction.
    pub fn reconstruct(&self, x: &Array4<f32>) -> Array4<f32> {
        self.decode(self.encode(x).mode())
    }

    /// LDM's loss without LPIPS and GAN: per image, recon summed over pixels (|x − x̂| or
    /// (x − x̂)²), KL summed over latent elements; both averaged over the batch;
    /// total = recon + kl_weight · kl. `eps` is the N(0, I) noise of the reparameterisation.
    pub fn loss(&self, x: &Array4<f32>, eps: &Array4<f32>, loss: &VaeLoss) -> LossParts {
        let post = self.encode(x);
        let z = post.sample(eps);
        let x_rec = self.decode(&z);
        let recon = recon_loss(&x_rec, x, loss.recon);
        parts(recon, &post, loss, x_rec)
    }

    /// The same, adding ∂total/∂θ into every parameter's grad.
    pub fn loss_and_backward(
        &mut self,
        x: &Array4<f32>,
        eps: &Array4<f32>,
        loss: &VaeLoss,
    ) -> LossParts {
        self.loss_and_input_grad(x, eps, loss).0
    }

    // ANCHOR: vae_loss
    /// [`loss_and_backward`](Self::loss_and_backward), also returning ∂total/∂x (through the
    /// encoder, and directly as the reconstruction's target).
    pub fn loss_and_input_grad(
        &mut self,
        x: &Array4<f32>,
        eps: &Array4<f32>,
        loss: &VaeLoss,
    ) -> (LossParts, Array4<f32>) {
        self.check_image(x);
        // Forward, keeping every cache.
        let (h, enc) = self.encoder.forward(x); // (B, 2z, h, w)
        let (moments, quant) = self.quant_conv.forward(&h);
        let post = DiagonalGaussian::from_moments(&moments);
        let z = post.sample(eps); // $z = \mu + \sigma\varepsilon$   (B, z, h, w)
        let (zq, post_quant) = self.post_quant_conv.forward(&z);
        let (x_rec, dec) = self.decoder.forward(&zq); // (B, C, H, W)
        let recon = recon_loss(&x_rec, x, loss.recon);

        // Backward: the reconstruction's gradient enters at x̂ and flows to z ...
        let dx_rec = recon_grad(&x_rec, x, loss.recon); // (B, C, H, W)
        let dzq = self.decoder.backward(&dec, &dx_rec);
        let dz = self.post_quant_conv.backward(&post_quant, &dzq);
        let (mut dmean, mut dlogvar) = post.sample_backward(eps, &dz);
        // ... the KL's enters at μ and logvar, weighted β/B for every image ...
        let b = x.shape()[0];
        let w = vec![loss.kl_weight / b as f32; b];
        post.kl_backward_into(&w, &mut dmean, &mut dlogvar);
        // ... and both flow on through the moments into the encoder.
        let dmoments = post.moments_backward(&dmean, &dlogvar);
        let dh = self.quant_conv.backward(&quant, &dmoments);
        let mut dx = self.encoder.backward(&enc, &dh);
        // x is also the reconstruction's target: $\partial \ell(\hat x - x)/\partial x = -d\hat x$.
        dx -= &dx_rec;
        (parts(recon, &post, loss, x_rec), dx)
    }
    // ANCHOR_END: vae_loss
}

/// The recon and KL terms averaged over the batch, and the total.
pub(crate) fn parts<D: Dimension>(
    recon: f64,
    post: &DiagonalGaussian,
    loss: &VaeLoss,
    x_rec: Array<f32, D>,
) -> LossParts<D> {
    let kls = post.kl();
    let kl = kls.iter().sum::<f64>() / kls.len().max(1) as f64;
    LossParts {
        total: recon + loss.kl_weight as f64 * kl,
        recon,
        kl,
        x_rec,
    }
}

// ANCHOR: vae_recon
/// $\frac1B \sum \ell(\hat x - x)$, summed in f64: the reconstruction term per image,
/// averaged over the batch.
pub(crate) fn recon_loss<D: Dimension>(
    x_rec: &Array<f32, D>,
    x: &Array<f32, D>,
    kind: Recon,
) -> f64 {
    assert_eq!(x_rec.shape(), x.shape(), "reconstruction and image differ");
    let mut sum = 0.0f64;
    Zip::from(x_rec).and(x).for_each(|&p, &t| {
        let d = p as f64 - t as f64;
        sum += match kind {
            Recon::L1 => d.abs(),
            Recon::Mse => d * d,
        };
    });
    sum / x.shape()[0].max(1) as f64
}

/// Its gradient with respect to $\hat x$: $\frac1B \operatorname{sign}(\hat x - x)$ (0 at 0,
/// as PyTorch) or $\frac2B (\hat x - x)$.
pub(crate) fn recon_grad<D: Dimension>(
    x_rec: &Array<f32, D>,
    x: &Array<f32, D>,
    kind: Recon,
) -> Array<f32, D> {
    let inv_b = 1.0 / x.shape()[0].max(1) as f32;
    let mut g = Array::zeros(x.raw_dim());
    Zip::from(&mut g).and(x_rec).and(x).for_each(|g, &p, &t| {
        let d = p - t;
        *g = match kind {
            Recon::L1 if d > 0.0 => inv_b,
            Recon::L1 if d < 0.0 => -inv_b,
            Recon::L1 => 0.0,
            Recon::Mse => 2.0 * inv_b * d,
        };
    });
    g
}
// ANCHOR_END: vae_recon

impl Parameters for AutoencoderKL {
    /// `encoder.…`, `decoder.…`, `quant_conv.…`, `post_quant_conv.…` (LDM's state_dict order).
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.encoder.visit(&join(prefix, "encoder"), f);
        self.decoder.visit(&join(prefix, "decoder"), f);
        self.quant_conv.visit(&join(prefix, "quant_conv"), f);
        self.post_quant_conv
            .visit(&join(prefix, "post_quant_conv"), f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recon_terms_and_gradients() {
        // Two images of two pixels: differences (0.5, −2) and (0, 1).
        let x = Array4::from_shape_vec((2, 1, 1, 2), vec![0.0, 2.0, 1.0, -1.0]).unwrap();
        let x_rec = Array4::from_shape_vec((2, 1, 1, 2), vec![0.5, 0.0, 1.0, 0.0]).unwrap();
        assert_eq!(
            recon_loss(&x_rec, &x, Recon::L1),
            (0.5 + 2.0 + 0.0 + 1.0) / 2.0
        );
        assert_eq!(
            recon_loss(&x_rec, &x, Recon::Mse),
            (0.25 + 4.0 + 0.0 + 1.0) / 2.0
        );
        let l1: Vec<f32> = recon_grad(&x_rec, &x, Recon::L1).into_iter().collect();
        assert_eq!(l1, vec![0.5, -0.5, 0.0, 0.5]);
        let mse: Vec<f32> = recon_grad(&x_rec, &x, Recon::Mse).into_iter().collect();
        assert_eq!(mse, vec![0.5, -2.0, 0.0, 1.0]);
    }
}

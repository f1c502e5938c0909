//! The temporal VAE: a KL autoencoder over the **time** axis of image-VAE latent clips
//! (Open-Sora 1.2's `VAE_Temporal` on top of its 2-D VAE; Open-Sora-Plan's and CogVideoX's
//! causal 3-D VAEs compress time the same way, 4×). A clip of `1 + 4k` latent frames
//! `(B, C, 1 + 4k, h, w)` becomes a posterior over `(B, z, 1 + k, h, w)` and back:
//!
//! $$\mathcal L = \tfrac1B \sum (\hat x - x)^2 + \beta\,\mathrm{KL}(q(z \mid x)\,\|\,\mathcal N(0, I)).$$
//!
//! The first frame is encoded alone (every layer is causal), so a one-frame clip — an image —
//! is a valid input with a one-frame latent.

use super::coder::{CausalCoder, Direction};
use crate::error::{Error, Result};
use crate::io::metadata::{key_values, MetaReader};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use crate::vae::autoencoder::{parts, recon_grad, recon_loss};
use crate::vae::{DiagonalGaussian, LossParts, VaeLoss};
use ndarray::{Array4, Array5, Ix5};
use std::collections::BTreeMap;

// ANCHOR: temporal_config
/// The temporal VAE's shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemporalVaeConfig {
    /// Channels of the clips it compresses: the image VAE's latent channels.
    pub in_channels: usize,
    /// Width of every layer inside.
    pub width: usize,
    /// Latent channels (the encoder outputs twice as many: mean and log-variance).
    pub z_channels: usize,
    /// Time halvings: 2 gives `1 + 4k → 1 + k`.
    pub downs: usize,
    /// GroupNorm groups; must divide `width`.
    pub groups: usize,
}

impl Default for TemporalVaeConfig {
    /// 4 channels in and out, width 64, 4× in time, 8 groups.
    fn default() -> Self {
        TemporalVaeConfig {
            in_channels: 4,
            width: 64,
            z_channels: 4,
            downs: 2,
            groups: 8,
        }
    }
}
// ANCHOR_END: temporal_config

const KEYS: [&str; 5] = [
    "temporal_vae.in_channels",
    "temporal_vae.width",
    "temporal_vae.z_channels",
    "temporal_vae.downs",
    "temporal_vae.groups",
];

impl TemporalVaeConfig {
    /// How many frames become one latent frame (after the first): `2^downs`.
    pub fn time_factor(&self) -> usize {
        1 << self.downs
    }

    /// Latent frames for `frames` frames: `(frames − 1) / 2^downs + 1`.
    pub fn latent_frames(&self, frames: usize) -> usize {
        (frames - 1) / self.time_factor() + 1
    }

    /// `frames` must be `1 + 2^downs · k`; the error names the nearest lengths that are.
    pub fn check_frames(&self, frames: usize) -> Result<()> {
        let t = self.time_factor();
        if frames >= 1 && (frames - 1) % t == 0 {
            return Ok(());
        }
        let below = frames.saturating_sub(1) / t * t + 1;
        Err(Error::new(
            format!(
                "a clip of {frames} frames: the causal video VAE takes 1 + {t}k frames \
                 (1, {}, {}, {}, …) — the first frame alone, then groups of {t}",
                1 + t,
                1 + 2 * t,
                1 + 3 * t
            ),
            format!(
                "crop the clip to {below} frames or pad it to {} (repeat its last frame), \
                 or ask for --frames {below}",
                below + t
            ),
        ))
    }

    /// Checks the config; the error names the bad field.
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("in_channels", self.in_channels),
            ("width", self.width),
            ("z_channels", self.z_channels),
            ("groups", self.groups),
        ] {
            if v == 0 {
                return Err(Error::new(
                    format!("temporal VAE config: {field} is 0"),
                    format!("set {field} to a positive number"),
                ));
            }
        }
        if self.width % self.groups != 0 {
            return Err(Error::new(
                format!(
                    "temporal VAE config: groups = {} does not divide width = {}",
                    self.groups, self.width
                ),
                "choose a width that is a multiple of groups (e.g. 64 with 8 groups)",
            ));
        }
        Ok(())
    }

    /// `temporal_vae.<field>` → value.
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let c = self;
        let values =
            [c.in_channels, c.width, c.z_channels, c.downs, c.groups].map(|v| v.to_string());
        key_values(&KEYS, values)
    }

    /// The config back from [`to_metadata`](Self::to_metadata)'s map, validated.
    pub fn from_metadata(m: &BTreeMap<String, String>) -> Result<Self> {
        let m = MetaReader::new(
            m,
            "temporal VAE",
            "load a checkpoint written by `minisora train-video-vae`",
        );
        let config = TemporalVaeConfig {
            in_channels: m.usize(KEYS[0])?,
            width: m.usize(KEYS[1])?,
            z_channels: m.usize(KEYS[2])?,
            downs: m.usize(KEYS[3])?,
            groups: m.usize(KEYS[4])?,
        };
        config.validate()?;
        Ok(config)
    }
}

/// The encoder (time ÷ 2^downs) and the decoder (time × 2^downs).
#[derive(Clone, Debug)]
pub struct TemporalVae {
    pub config: TemporalVaeConfig,
    pub encoder: CausalCoder, // C → 2z
    pub decoder: CausalCoder, // z → C
}

/// One evaluation of the loss on clips: the image VAE's parts, the reconstruction
/// `(B, C, F, h, w)`.
pub type TemporalLoss = LossParts<Ix5>;

/// `(B, 2z, F, h, w)` moments as the image VAE's `(B, 2z, F·h, w)` Gaussian: the channel
/// split, the sampling and the KL are elementwise, so folding frames into rows changes nothing.
fn posterior(moments: Array5<f32>) -> DiagonalGaussian {
    let (b, c, f, h, w) = moments.dim();
    let m4 = moments
        .into_shape_with_order((b, c, f * h, w))
        .expect("a fresh standard-layout array");
    DiagonalGaussian::from_moments(&m4)
}

/// `(B, C, F·h, w)` back to `(B, C, F, h, w)`.
fn unfold(x: Array4<f32>, frames: usize) -> Array5<f32> {
    let (b, c, fh, w) = x.dim();
    let x = x.as_standard_layout().into_owned();
    x.into_shape_with_order((b, c, frames, fh / frames, w))
        .expect("whole frames")
}

/// `(B, C, F, h, w)` as `(B, C, F·h, w)`.
fn fold(x: &Array5<f32>) -> Array4<f32> {
    let (b, c, f, h, w) = x.dim();
    x.as_standard_layout()
        .into_owned()
        .into_shape_with_order((b, c, f * h, w))
        .expect("standard layout")
}

impl TemporalVae {
    pub fn new(config: TemporalVaeConfig, rng: &mut Rng) -> Result<Self> {
        config.validate()?;
        let c = &config;
        let encoder = CausalCoder::new(
            Direction::Down,
            c.in_channels,
            c.width,
            2 * c.z_channels,
            c.downs,
            c.groups,
            rng,
        );
        let decoder = CausalCoder::new(
            Direction::Up,
            c.z_channels,
            c.width,
            c.in_channels,
            c.downs,
            c.groups,
            rng,
        );
        Ok(TemporalVae {
            config,
            encoder,
            decoder,
        })
    }

    /// The posterior's `(mean, logvar)`, each `(B, z, 1 + k, h, w)`, of clips `(B, C, 1 + 4k, h, w)`.
    pub fn encode(&self, x: &Array5<f32>) -> (Array5<f32>, Array5<f32>) {
        let moments = self.encoder.forward_infer(x); // (B, 2z, 1 + k, h, w)
        let f = moments.dim().2;
        let post = posterior(moments);
        (unfold(post.mean, f), unfold(post.logvar, f))
    }

    /// Clips `(B, C, 1 + 4k, h, w)` from latents `(B, z, 1 + k, h, w)`.
    pub fn decode(&self, z: &Array5<f32>) -> Array5<f32> {
        self.decoder.forward_infer(z)
    }

    /// The loss without gradients (the reparameterisation's noise `eps` has the latent's shape).
    pub fn loss(&self, x: &Array5<f32>, eps: &Array5<f32>, loss: &VaeLoss) -> TemporalLoss {
        let moments = self.encoder.forward_infer(x);
        let f = moments.dim().2;
        let post = posterior(moments);
        let x_rec = self.decode(&unfold(post.sample(&fold(eps)), f));
        parts(recon_loss(&x_rec, x, loss.recon), &post, loss, x_rec)
    }

    // ANCHOR: temporal_loss
    /// The loss for clips `x` and the reparameterisation's noise `eps`, adding ∂total/∂θ into
    /// every parameter's grad and returning ∂total/∂x.
    pub fn loss_and_input_grad(
        &mut self,
        x: &Array5<f32>,
        eps: &Array5<f32>,
        loss: &VaeLoss,
    ) -> (TemporalLoss, Array5<f32>) {
        let (moments, enc) = self.encoder.forward(x); // (B, 2z, 1 + k, h, w)
        let f = moments.dim().2;
        let post = posterior(moments);
        let z = unfold(post.sample(&fold(eps)), f); // $z = \mu + \sigma\varepsilon$
        let (x_rec, dec) = self.decoder.forward(&z); // (B, C, 1 + 4k, h, w)
        let recon = recon_loss(&x_rec, x, loss.recon);

        // the reconstruction's gradient back through the decoder to z, then μ and log σ² ...
        let dx_rec = recon_grad(&x_rec, x, loss.recon);
        let dz = fold(&self.decoder.backward(&dec, &dx_rec));
        let (mut dmean, mut dlogvar) = post.sample_backward(&fold(eps), &dz);
        // ... where the KL's gradient joins, β/B per clip ...
        let b = x.dim().0;
        post.kl_backward_into(
            &vec![loss.kl_weight / b as f32; b],
            &mut dmean,
            &mut dlogvar,
        );
        // ... and on through the encoder; x is also the target: $-d\hat x$.
        let dmoments = unfold(post.moments_backward(&dmean, &dlogvar), f);
        let mut dx = self.encoder.backward(&enc, &dmoments);
        dx -= &dx_rec;
        (parts(recon, &post, loss, x_rec), dx)
    }
    // ANCHOR_END: temporal_loss
}

impl Parameters for TemporalVae {
    /// `encoder.…`, `decoder.…`.
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.encoder.visit(&join(prefix, "encoder"), f);
        self.decoder.visit(&join(prefix, "decoder"), f);
    }
}

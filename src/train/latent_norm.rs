//! How VAE latents are brought to unit scale before diffusion, and back before decoding.
//!
//! The diffusion's noise schedule assumes data of about unit variance: at step $t$ the signal
//! kept is $\sqrt{\bar\alpha_t}\,x_0$ against noise of variance $1 - \bar\alpha_t$. Latent
//! diffusion multiplies the VAE's latents by one **scale factor** $s = 1/\operatorname{std}(z)$
//! for all channels (LDM). When the channels differ — one with a mean far from 0, one with
//! twice the spread of another — a single factor leaves some channels louder than the noise
//! expects and some quieter, so their signal is drowned at different steps. Open-Sora 1.2
//! normalises **per channel** instead, with a shift and a scale measured on the data:
//!
//! $$z'_c = (z_c - m_c)\,s_c, \qquad z_c = z'_c / s_c + m_c.$$
//!
//! The global factor is the case $m_c = 0$, $s_c = s$.

use crate::error::{Error, Result};
use crate::io::metadata::MetaReader;
use ndarray::{ArrayD, ArrayViewD, Axis, Zip};
use std::collections::BTreeMap;

/// Which normalisation a run uses (`minisora train --latent-norm`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NormKind {
    /// One scale factor for every channel, the VAE's (LDM).
    #[default]
    Global,
    /// A shift and a scale per channel, measured on the training latents (Open-Sora 1.2).
    PerChannel,
}

impl NormKind {
    /// `global` or `channel`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "global" => Ok(NormKind::Global),
            "channel" => Ok(NormKind::PerChannel),
            _ => Err(Error::new(
                format!("unknown latent normalisation {s:?}"),
                "use --latent-norm global (the VAE's scale factor) or channel (per channel)",
            )),
        }
    }
}

// ANCHOR: latent_norm
/// A shift $m_c$ and a scale $s_c$ per channel: $z' = (z - m_c)\,s_c$.
#[derive(Clone, Debug, PartialEq)]
pub struct LatentNorm {
    pub shift: Vec<f32>,
    pub scale: Vec<f32>,
}

impl LatentNorm {
    /// The same factor `scale` for all `channels`, no shift (pixel space: 1).
    pub fn global(scale: f32, channels: usize) -> Self {
        LatentNorm {
            shift: vec![0.0; channels],
            scale: vec![scale; channels],
        }
    }

    /// Measured on posteriors `(N, C, …)`: $m_c$ the mean of the means, $s_c = 1/\sigma_c$ with
    /// $\sigma_c^2 = \operatorname{Var}(\mu_c) + \mathbb{E}[e^{\log\sigma^2_c}]$, the variance of
    /// the latents a batch draws from them.
    pub fn per_channel(mean: &ArrayD<f32>, logvar: &ArrayD<f32>) -> Self {
        let c = mean.shape()[1];
        let (mut shift, mut scale) = (Vec::with_capacity(c), Vec::with_capacity(c));
        for ch in 0..c {
            let mu = mean.index_axis(Axis(1), ch);
            let lv = logvar.index_axis(Axis(1), ch);
            let n = mu.len() as f64;
            let m = mu.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var_mu = mu.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n;
            let var_post = lv.iter().map(|&v| (v as f64).exp()).sum::<f64>() / n;
            shift.push(m as f32);
            scale.push((1.0 / (var_mu + var_post).sqrt().max(1e-6)) as f32);
        }
        LatentNorm { shift, scale }
    }

    /// $z' = (z - m_c)\,s_c$ in place, `z` of shape `(N, C, …)`.
    pub fn normalise(&self, z: &mut ArrayD<f32>) {
        for (ch, mut zc) in z.axis_iter_mut(Axis(1)).enumerate() {
            let (m, s) = (self.shift[ch], self.scale[ch]);
            zc.mapv_inplace(|v| (v - m) * s);
        }
    }

    /// $z = z'/s_c + m_c$, `z'` of shape `(N, C, …)`.
    pub fn denormalise(&self, x: ArrayViewD<f32>) -> ArrayD<f32> {
        let mut z = x.to_owned();
        for (ch, mut zc) in z.axis_iter_mut(Axis(1)).enumerate() {
            let (m, s) = (self.shift[ch], self.scale[ch]);
            Zip::from(&mut zc).for_each(|v| *v = *v / s + m);
        }
        z
    }
}
// ANCHOR_END: latent_norm

impl LatentNorm {
    /// Channels it normalises.
    pub fn channels(&self) -> usize {
        self.scale.len()
    }

    /// True when it is one factor without a shift (and `scale_factor` alone describes it).
    pub fn is_global(&self) -> bool {
        self.shift.iter().all(|&m| m == 0.0) && self.scale.windows(2).all(|w| w[0] == w[1])
    }

    /// `train.latent_shift` and `train.latent_scale` (per channel), for the checkpoint.
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let text = |v: &[f32]| {
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        [
            ("train.latent_shift", text(&self.shift)),
            ("train.latent_scale", text(&self.scale)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Read back from a checkpoint of `channels` channels: the per-channel keys, or (from a
    /// checkpoint written before them) `train.scale_factor` for every channel.
    pub fn from_metadata(meta: &BTreeMap<String, String>, channels: usize) -> Result<Self> {
        let m = MetaReader::new(meta, "training", "train the model again");
        let floats = |key: &str| -> Result<Option<Vec<f32>>> {
            meta.get(key)
                .map(|text| {
                    text.split(',')
                        .map(|p| p.trim().parse::<f32>())
                        .collect::<std::result::Result<Vec<_>, _>>()
                        .map_err(|_| damaged(key, text))
                })
                .transpose()
        };
        let norm = match (floats("train.latent_shift")?, floats("train.latent_scale")?) {
            (Some(shift), Some(scale)) => LatentNorm { shift, scale },
            _ => {
                let s = m.text("train.scale_factor")?;
                let s = s.parse().map_err(|_| damaged("train.scale_factor", s))?;
                LatentNorm::global(s, channels)
            }
        };
        if norm.shift.len() != channels || norm.scale.len() != channels {
            return Err(Error::new(
                format!(
                    "the latent normalisation has {} shifts and {} scales for {channels} channels",
                    norm.shift.len(),
                    norm.scale.len()
                ),
                "the checkpoint's metadata is damaged; train the model again",
            ));
        }
        Ok(norm)
    }
}

/// The error for a metadata value that does not parse.
fn damaged(key: &str, text: &str) -> Error {
    Error::new(
        format!("{key} = {text:?} is not a list of numbers"),
        "the checkpoint's metadata is damaged; train the model again",
    )
}

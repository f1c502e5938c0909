//! The training set of a diffusion model, in memory, for data of any rank: images
//! `(N, C, H, W)` or clips `(N, C, F, H, W)`, in pixel space or as the posteriors of a VAE's
//! latents (from `minisora encode`), from which every visit draws a fresh latent,
//! $z = s\,(\mu + \sigma\varepsilon)$, with the VAE's scale factor $s$ — so the model never
//! sees the same latent twice, as with DiT's on-the-fly encoding.

use super::latent_norm::{LatentNorm, NormKind};
use super::options::TrainOptions;
use crate::data::DataSource;
use crate::diffusion::Condition;
use crate::error::{Error, Result};
use crate::tensor::{init, Rng};
use crate::text::tokenizer::tokenize;
use crate::vae::encode::load_latents;
use ndarray::{ArrayD, Axis, Zip};
use std::path::PathBuf;

/// Where the training samples come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// A latent file written by `minisora encode` (posterior mean and log-variance per image).
    Latents(PathBuf),
    /// Images in pixel space, `[−1, 1]`.
    Pixels(DataSource),
}

impl Source {
    /// `latents:PATH`, or any dataset name [`DataSource::parse`] accepts (pixel space).
    pub fn parse(s: &str) -> Result<Self> {
        match s.strip_prefix("latents:") {
            Some("") => Err(Error::new(
                "`latents:` without a path",
                "give the latent file, e.g. latents:out/latents/digits.safetensors",
            )),
            Some(p) => Ok(Source::Latents(PathBuf::from(p))),
            None => Ok(Source::Pixels(DataSource::parse(s)?)),
        }
    }

    /// A short name for logs and checkpoint metadata.
    pub fn name(&self) -> String {
        match self {
            Source::Latents(p) => format!("latents:{}", p.display()),
            Source::Pixels(d) => d.name(),
        }
    }
}

/// The training set in memory: latents (as posteriors) or pixels, with labels.
#[derive(Clone, Debug)]
pub struct TrainData {
    /// `(N, C, …)`: posterior means (latents) or samples (pixels).
    pub mean: ArrayD<f32>,
    /// `(N, C, …)` posterior log-variances; `None` in pixel space.
    pub logvar: Option<ArrayD<f32>>,
    /// Brings latents to unit scale before diffusion (the identity in pixel space).
    pub norm: LatentNorm,
    pub labels: Vec<usize>,
    pub class_names: Vec<String>,
    /// The dataset the samples come from (for latents: the one the VAE encoded), so the
    /// checkpoint can name it and `minisora evaluate` can score against it.
    pub dataset: Option<String>,
    /// One caption per sample (latent clips record them; empty otherwise): what a
    /// text-conditioned model trains on.
    pub captions: Vec<String>,
}

impl TrainData {
    /// Samples already in memory (pixel space, or any tensor a test makes): `(N, C, …)`.
    pub fn new(samples: ArrayD<f32>, labels: Vec<usize>, class_names: Vec<String>) -> Self {
        TrainData {
            norm: LatentNorm::global(1.0, samples.shape().get(1).copied().unwrap_or(0)),
            mean: samples,
            logvar: None,
            labels,
            class_names,
            dataset: None,
            captions: Vec::new(),
        }
    }

    /// Loads `opts.data`; a missing latent file is an error that says how to make one.
    pub fn load(opts: &TrainOptions) -> Result<Self> {
        match &opts.data {
            Source::Latents(path) => {
                if !path.exists() {
                    return Err(Error::new(
                        format!("no latent file at {}", path.display()),
                        "train a VAE with `minisora train-vae`, then encode the data with \
                         `minisora encode` (it writes out/latents/digits.safetensors)",
                    ));
                }
                let set = load_latents(path)?;
                let (mean, logvar) = (set.mean, set.logvar);
                let norm = match opts.latent_norm {
                    NormKind::Global => {
                        LatentNorm::global(set.scale_factor as f32, mean.shape()[1])
                    }
                    NormKind::PerChannel => LatentNorm::per_channel(&mean, &logvar),
                };
                Ok(TrainData {
                    mean,
                    logvar: Some(logvar),
                    norm,
                    labels: set.labels,
                    class_names: set.class_names,
                    dataset: set.dataset,
                    captions: set.captions,
                })
            }
            Source::Pixels(d) if opts.latent_norm == NormKind::PerChannel => Err(Error::new(
                format!("--latent-norm channel with {} in pixel space", d.name()),
                "normalise per channel only latents (drop --pixels, or --latent-norm)",
            )),
            Source::Pixels(d) => {
                let ds = d.load(opts.n_images, opts.pixel_size, opts.seed)?;
                Ok(TrainData {
                    dataset: Some(d.name()),
                    ..TrainData::new(ds.images.into_dyn(), ds.labels, ds.class_names)
                })
            }
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The shape of one sample, `(C, …)`: `(C, H, W)` for images, `(C, F, H, W)` for clips.
    pub fn sample_shape(&self) -> &[usize] {
        &self.mean.shape()[1..]
    }

    /// Channels of a sample.
    pub fn channels(&self) -> usize {
        self.mean.shape()[1]
    }

    /// Every sample's caption, tokenized: the condition a text-conditioned model trains on.
    /// Data without captions, or a caption outside the vocabulary, is an error that says so.
    pub fn caption_condition(&self) -> Result<Condition> {
        if self.captions.len() != self.len() {
            return Err(Error::new(
                format!(
                    "a text-conditioned model needs one caption per sample; the data has {} \
                     captions for {} samples",
                    self.captions.len(),
                    self.len()
                ),
                "encode captioned clips (`minisora encode-video --data colour-digits`)",
            ));
        }
        let tokens = self
            .captions
            .iter()
            .map(|c| tokenize(c).map(Some))
            .collect::<Result<Vec<_>>>()?;
        Ok(Condition::Captions(tokens))
    }

    /// Classes: the named ones, or one more than the largest label.
    pub fn num_classes(&self) -> usize {
        let from_labels = self.labels.iter().max().map_or(0, |&m| m + 1);
        self.class_names.len().max(from_labels)
    }

    /// True for VAE latents.
    pub fn is_latent(&self) -> bool {
        self.logvar.is_some()
    }

    // ANCHOR: latent_batch
    /// The samples `idx` `(B, C, …)`: pixels as they are, latents drawn afresh as
    /// $z = \mu + e^{\frac12 \log\sigma^2}\,\varepsilon$, then normalised per channel,
    /// $(z_c - m_c)\,s_c$ (the global scale factor: $m_c = 0$, $s_c = s$).
    pub fn batch(&self, idx: &[usize], r: &mut Rng) -> ArrayD<f32> {
        let mean = self.mean.select(Axis(0), idx);
        let Some(logvar) = &self.logvar else {
            return mean;
        };
        let logvar = logvar.select(Axis(0), idx);
        let mut z = init::normal(mean.shape(), 1.0, r); // ε
        Zip::from(&mut z)
            .and(&mean)
            .and(&logvar)
            .for_each(|z, &m, &lv| *z = m + (0.5 * lv).exp() * *z);
        self.norm.normalise(&mut z);
        z
    }
    // ANCHOR_END: latent_batch
}

//! The training set of an image diffusion model, in memory: images in pixel space, or the
//! posteriors of a VAE's latents (from `minisora encode`) from which every visit draws a fresh
//! latent, $z = s\,(\mu + \sigma\varepsilon)$, with the VAE's scale factor $s$ — so the
//! model never sees the same latent twice, as with DiT's on-the-fly encoding.

use super::model::Diffusion;
use super::train_images::{ModelInfo, TrainImagesOptions};
use crate::data::DataSource;
use crate::error::{Error, Result};
use crate::tensor::{init, Rng};
use crate::vae::encode::load_latents;
use crate::vae::train::load_vae;
use crate::vae::AutoencoderKL;
use ndarray::{Array4, ArrayD, Axis, Zip};
use std::path::{Path, PathBuf};

/// Where the training samples come from.
#[derive(Clone, Debug, PartialEq)]
pub enum ImageSource {
    /// A latent file written by `minisora encode` (posterior mean and log-variance per image).
    Latents(PathBuf),
    /// Images in pixel space, `[−1, 1]`.
    Pixels(DataSource),
}

impl ImageSource {
    /// `latents:PATH`, or any dataset name [`DataSource::parse`] accepts (pixel space).
    pub fn parse(s: &str) -> Result<Self> {
        match s.strip_prefix("latents:") {
            Some("") => Err(Error::new(
                "`latents:` without a path",
                "give the latent file, e.g. latents:out/latents/digits.safetensors",
            )),
            Some(p) => Ok(ImageSource::Latents(PathBuf::from(p))),
            None => Ok(ImageSource::Pixels(DataSource::parse(s)?)),
        }
    }

    /// A short name for logs and checkpoint metadata.
    pub fn name(&self) -> String {
        match self {
            ImageSource::Latents(p) => format!("latents:{}", p.display()),
            ImageSource::Pixels(d) => d.name(),
        }
    }
}

/// The training set in memory: latents (as posteriors) or pixels, with labels.
#[derive(Clone, Debug)]
pub struct TrainData {
    /// `(N, C, H, W)`: posterior means (latents) or images (pixels).
    pub mean: Array4<f32>,
    /// `(N, C, H, W)` posterior log-variances; `None` in pixel space.
    pub logvar: Option<Array4<f32>>,
    /// Multiplies latents (1 / their std); 1 in pixel space.
    pub scale: f32,
    pub labels: Vec<usize>,
    pub class_names: Vec<String>,
}

impl TrainData {
    /// Loads `opts.data`; a missing latent file is an error that says how to make one.
    pub fn load(opts: &TrainImagesOptions) -> Result<Self> {
        match &opts.data {
            ImageSource::Latents(path) => {
                if !path.exists() {
                    return Err(Error::new(
                        format!("no latent file at {}", path.display()),
                        "train a VAE with `minisora train-vae`, then encode the data with \
                         `minisora encode` (it writes out/latents/digits.safetensors)",
                    ));
                }
                let set = load_latents(path)?;
                Ok(TrainData {
                    mean: set.mean,
                    logvar: Some(set.logvar),
                    scale: set.scale_factor as f32,
                    labels: set.labels,
                    class_names: set.class_names,
                })
            }
            ImageSource::Pixels(d) => {
                let ds = d.load(opts.n_images, opts.pixel_size, opts.seed)?;
                Ok(TrainData {
                    mean: ds.images,
                    logvar: None,
                    scale: 1.0,
                    labels: ds.labels,
                    class_names: ds.class_names,
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

    /// `(C, H, W)` of one sample.
    pub fn sample_shape(&self) -> (usize, usize, usize) {
        let (_, c, h, w) = self.mean.dim();
        (c, h, w)
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
    /// The samples `idx` `(B, C, H, W)`: pixels as they are, latents drawn afresh as
    /// $z = s\,(\mu + e^{\frac12 \log\sigma^2}\,\varepsilon)$.
    pub fn batch(&self, idx: &[usize], r: &mut Rng) -> ArrayD<f32> {
        let mean = self.mean.select(Axis(0), idx);
        let Some(logvar) = &self.logvar else {
            return mean.into_dyn();
        };
        let logvar = logvar.select(Axis(0), idx);
        let mut z = init::normal(mean.shape(), 1.0, r); // ε
        let s = self.scale;
        Zip::from(&mut z)
            .and(&mean.into_dyn())
            .and(&logvar.into_dyn())
            .for_each(|z, &m, &lv| *z = s * (m + (0.5 * lv).exp() * *z));
        z
    }
    // ANCHOR_END: latent_batch
}

/// The VAE in `vae` that decodes the latents; its latent channels must be the data's.
pub fn load_decoder(vae: &Path, data: &TrainData) -> Result<AutoencoderKL> {
    if !vae.exists() {
        return Err(Error::new(
            format!(
                "no VAE checkpoint at {} to decode the latents",
                vae.display()
            ),
            "train one with `minisora train-vae` (it writes out/vae/vae.safetensors), or pass \
             the checkpoint the latents were encoded with",
        ));
    }
    let (model, _) = load_vae(vae)?;
    let (c, _, _) = data.sample_shape();
    if model.config.z_channels != c {
        return Err(Error::new(
            format!(
                "the VAE in {} has {} latent channels but the latents have {c}",
                vae.display(),
                model.config.z_channels
            ),
            "pass the VAE checkpoint the latents were encoded with",
        ));
    }
    Ok(model)
}

/// Checks the options, and that the data and the model agree, before any work.
pub fn validate(opts: &TrainImagesOptions, info: &ModelInfo, data: &TrainData) -> Result<()> {
    if opts.steps == 0 || opts.batch == 0 || opts.sample_steps == 0 {
        return Err(Error::new(
            "steps, batch and sample steps must be positive",
            "pass e.g. --steps 1000 --batch 64",
        ));
    }
    let lr_ok = opts.lr > 0.0 && opts.lr.is_finite();
    let unit = |v: f32| (0.0..1.0).contains(&v);
    if !lr_ok || !unit(opts.ema_decay) || !unit(opts.label_dropout) {
        return Err(Error::new(
            format!(
                "lr {}, EMA decay {}, label dropout {}",
                opts.lr, opts.ema_decay, opts.label_dropout
            ),
            "use a positive learning rate, and an EMA decay and a label dropout in [0, 1)",
        ));
    }
    let (c, _, _) = data.sample_shape();
    if c != info.in_channels {
        return Err(Error::new(
            format!(
                "{} has {c} channels but the model `{}` takes {}",
                opts.data.name(),
                info.name,
                info.in_channels
            ),
            format!("build the model with in_channels = {c} (latents: the VAE's z_channels)"),
        ));
    }
    if let Some(null) = info.null_label {
        if data.num_classes() > null {
            return Err(Error::new(
                format!(
                    "{} has {} classes but the model has {null} (its null label)",
                    opts.data.name(),
                    data.num_classes()
                ),
                format!("build the model with num_classes = {}", data.num_classes()),
            ));
        }
    }
    Ok(())
}

/// The model must output `C` channels, or `2C` when the diffusion learns the variance.
pub fn check_output(shape: &[usize], c: usize, diffusion: &Diffusion, name: &str) -> Result<()> {
    let want = if diffusion.learns_variance() {
        2 * c
    } else {
        c
    };
    if shape.len() < 2 || shape[1] != want {
        return Err(Error::new(
            format!("the model `{name}` outputs shape {shape:?}, but the diffusion needs {want} channels"),
            format!(
                "build the model with out_channels = {want} ({} the variance)",
                if diffusion.learns_variance() { "learning" } else { "not learning" }
            ),
        ));
    }
    Ok(())
}

//! What a training run is told: the options (data, length, optimiser, EMA, label dropout,
//! figures, checkpoints) and what the trainer must know of the model, checked against each
//! other and the data before any work.

use super::data::{Source, TrainData};
use super::latent_norm::NormKind;
use crate::diffusion::FrameMaskOptions;
use crate::error::{Error, Result};
use crate::optim::{AdamW, AdamWConfig, CosineSchedule};
use ndarray::ArrayD;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Everything a run needs besides the model and the diffusion.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub data: Source,
    /// The VAE checkpoint that decodes latents for the figures (unused in pixel space).
    pub vae: PathBuf,
    /// Images to load in pixel space (generated sets make this many).
    pub n_images: usize,
    /// Side of the images in pixel space.
    pub pixel_size: usize,
    pub steps: u64,
    pub batch: usize,
    /// Peak learning rate of AdamW (DiT: 1e-4, constant).
    pub lr: f32,
    pub weight_decay: f32,
    /// Linear warm-up steps of the learning rate.
    pub warmup_steps: u64,
    /// Cosine decay of the learning rate to lr/10 at the last step (DiT: off).
    pub lr_decay: bool,
    /// Clip the global gradient norm to this (`None`: no clipping).
    pub grad_clip: Option<f32>,
    /// Target EMA decay (DiT 0.9999), with the warm-up `min(decay, (1+n)/(10+n))`.
    pub ema_decay: f32,
    /// How latents are normalised: the VAE's scale factor, or per channel.
    pub latent_norm: NormKind,
    /// Probability of replacing a label by the null label (DiT: 0.1).
    pub label_dropout: f32,
    /// Classifier-free guidance scale of the samples (1 = no guidance).
    pub guidance: f32,
    /// DDIM steps of the samples.
    pub sample_steps: usize,
    /// Samples per class in `samples.png` (one row per class).
    pub samples_per_class: usize,
    pub seed: u64,
    /// Figures and the checkpoint go here.
    pub out: PathBuf,
    /// Every this many steps, a small grid of EMA samples (`samples_<step>.png`; 0: never).
    pub sample_every: u64,
    /// Every this many steps and at the end, a training checkpoint
    /// (`train_<step>.safetensors`, see [`super::state`]; 0: never).
    pub save_every: u64,
    /// Continue from this training checkpoint (same model, data and options).
    pub resume: Option<PathBuf>,
    /// Conditioning on frames: a fraction of the clips is given some frames (video models).
    pub frame_mask: Option<FrameMaskOptions>,
}

impl TrainOptions {
    /// The run's optimizer: AdamW at `lr` with `weight_decay`.
    pub fn optimizer(&self) -> AdamW {
        AdamW::new(AdamWConfig {
            lr: self.lr,
            weight_decay: self.weight_decay,
            ..AdamWConfig::default()
        })
    }

    /// The run's learning rate: warm-up, then a cosine decay to a tenth of `lr` (or constant
    /// without `lr_decay`).
    pub fn lr_schedule(&self) -> CosineSchedule {
        CosineSchedule {
            base_lr: self.lr,
            min_lr: if self.lr_decay {
                self.lr * 0.1
            } else {
                self.lr
            },
            warmup_steps: self.warmup_steps,
            total_steps: self.steps,
        }
    }
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            data: Source::Latents(PathBuf::from("out/latents/digits.safetensors")),
            vae: PathBuf::from("out/vae/vae.safetensors"),
            n_images: 10_000,
            pixel_size: 32,
            steps: 1000,
            batch: 64,
            lr: 1e-4,
            weight_decay: 0.0,
            warmup_steps: 0,
            lr_decay: false,
            grad_clip: None,
            ema_decay: 0.9999,
            label_dropout: 0.1,
            latent_norm: NormKind::Global,
            guidance: 4.0,
            sample_steps: 50,
            samples_per_class: 8,
            seed: 0,
            out: PathBuf::from("out/model"),
            sample_every: 0,
            save_every: 0,
            resume: None,
            frame_mask: None,
        }
    }
}

/// What the trainer needs to know about the model beyond [`TrainableDenoiser`].
#[derive(Clone, Debug)]
pub struct ModelInfo {
    /// Names the checkpoint (`<name>.safetensors`) and the logs.
    pub name: String,
    /// Channels the model takes.
    pub in_channels: usize,
    /// The label meaning "no class" (`None`: an unconditional model, trained without labels).
    pub null_label: Option<usize>,
    /// Multiply-accumulates of one forward pass of one sample at the data's size.
    pub flops_per_sample: u64,
    /// The model's config, stored in the checkpoint.
    pub metadata: BTreeMap<String, String>,
    /// Tensors the checkpoints hold beside the parameters (DiT's fixed `pos_embed`).
    pub buffers: Vec<(String, ArrayD<f32>)>,
    /// A text-conditioned model: it trains on the data's captions, not its labels.
    pub captions: bool,
}

/// Checks the options, and that the data and the model agree, before any work.
pub fn validate(opts: &TrainOptions, info: &ModelInfo, data: &TrainData) -> Result<()> {
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
    let c = data.channels();
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
    // a text-conditioned model reads captions, not the data's class labels
    if let Some(null) = info.null_label.filter(|_| !info.captions) {
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

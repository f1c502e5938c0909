//! `minisora train`: its flags, in groups — the data, the recipe (every flag overrides the
//! model family's default recipe), the run's outputs, and one group per model family.
//! Parsing only reads flags; [`TrainArgs::run`] does the work (encoding a dataset first when
//! latent diffusion is asked for on images).

use crate::data::DataSource;
use crate::diffusion::FrameMaskOptions;
use crate::dit::Conditioning;
use crate::error::{Error, Result};
use crate::models::unet::default_config;
use crate::models::video::VideoFlags;
use crate::models::{family, train_model, ModelFlags, Recipe};
use crate::train::{NormKind, Source, TrainOptions, TrainReport};
use crate::unet::UNetConfig;
use crate::vae::encode::encode_dataset;
use crate::video::Layout;
use clap::Args;
use std::path::PathBuf;

pub const TRAIN_HELP: &str =
    "Train a class-conditional diffusion model (the U-Net, a DiT or a video DiT), then sample it.

--model: `unet` (ADM's U-Net) or a DiT config `DiT-<size>/<patch>` (case-insensitive): sizes
S, B, L, XL of the paper and the CPU sizes tiny, mini, small; patch 2, 4 or 8 — e.g. DiT-S/2,
dit-tiny/2. The model is sized to the data (channels, side, classes). A video DiT,
`video-<size>/<patch>`, trains on latent clips from `minisora encode-video` (--data
latents:out/video/latents.safetensors) with --layout full|alternating|factorized, and can
start from an inflated image DiT (--init, from `minisora inflate`); its cpu recipe is DiT's at
batch 16 × 1000 steps.

--data: in latent space (the default) either `latents:FILE` (a file from `minisora encode`;
the default is out/latents/digits.safetensors) or a dataset (digits, shapes, mnist:DIR or an
image folder), which is first encoded with the VAE given by --vae. With --pixels, a dataset
in pixel space. Make the VAE and the latents first:
    minisora train-vae     # out/vae/vae.safetensors
    minisora encode        # out/latents/digits.safetensors
    minisora train --model dit-tiny/2
In pixel space: minisora train --model unet --pixels --data digits --pixel-size 16

Each step draws a batch (latents afresh from their posteriors), a uniform timestep and noise,
replaces 10 % of the labels by the null label (for classifier-free guidance), and takes an
AdamW step; an EMA of the weights (with a warm-up) is sampled and saved. The recipes
(--recipe cpu, the default, is tuned for minutes on two cores):
  unet: lr 1e-3, 100 warm-up steps, cosine decay to lr/10, clip 1, ε-MSE, fixed variance;
        1800 steps of batch 32.
  dit:  lr 6e-3, 100 warm-up steps, cosine decay to lr/10, clip 1, learned variance (2C
        outputs) with the hybrid loss (MSE + variational bound); 2000 steps of batch 64;
        samples at guidance 1.5.
--recipe paper: the papers' AdamW at a constant lr 1e-4, no warm-up, no clipping (DiT: 1800
steps of batch 32). They are tuned for batch 256 × 400k steps on GPUs; in a laptop's budget
neither model learns the real digits with it (the DiT chapter measures why).
Every flag below overrides them.

Writes to --out (out/unet or out/dit): samples.png (one row per class), denoise.png, loss.png,
<model>.safetensors (EMA weights, config in the metadata; `minisora sample --ckpt` reads it),
samples_<step>.png every --sample-every steps and train_<step>.safetensors (weights, EMA,
AdamW state, step) every --save-every steps; --resume FILE continues such a run bit-identically.
The last stdout line is JSON: params, gflops (per forward of one sample), final_loss, img/s.";

/// The flags of `minisora train`.
#[derive(Args, Clone, Debug)]
pub struct TrainArgs {
    /// `unet`, or a DiT config such as DiT-S/2 or dit-tiny/2 (see the long help).
    #[arg(long, default_value = "unet")]
    pub model: String,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub recipe: RecipeArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub unet: UNetArgs,
    #[command(flatten)]
    pub dit: DiTArgs,
    #[command(flatten)]
    pub video: VideoArgs,
}

/// What the model learns from.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Data")]
pub struct DataArgs {
    /// `latents:FILE` (from `minisora encode`), or a dataset (digits, shapes, mnist:DIR or an
    /// image folder): encoded with --vae first, or used as pixels with --pixels.
    #[arg(long, default_value = "latents:out/latents/digits.safetensors")]
    pub data: String,
    /// Train in pixel space on the dataset named by --data.
    #[arg(long)]
    pub pixels: bool,
    /// Image side in pixel space.
    #[arg(long, default_value_t = 32)]
    pub pixel_size: usize,
    /// Images to load (pixel space) or encode (a dataset in latent space).
    #[arg(long, default_value_t = 10_000)]
    pub n: usize,
    /// The VAE checkpoint that encodes a dataset and decodes the samples.
    #[arg(long, default_value = "out/vae/vae.safetensors")]
    pub vae: PathBuf,
}

/// How it learns: each flag overrides the model family's recipe (shown in brackets).
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Recipe (defaults per model family)")]
pub struct RecipeArgs {
    /// The recipe the flags below override: `cpu` (tuned for minutes on two cores) or
    /// `paper` (the model's paper, tuned for days on GPUs).
    #[arg(long = "recipe", default_value = "cpu")]
    pub base: String,
    /// Training steps [unet: 1800, dit: 2000].
    #[arg(long)]
    pub steps: Option<u64>,
    /// Samples per step [unet: 32, dit: 64].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Peak learning rate of AdamW [unet: 1e-3, dit: 6e-3; paper: 1e-4].
    #[arg(long)]
    pub lr: Option<f32>,
    /// AdamW weight decay [0].
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// Linear warm-up steps of the learning rate [100; paper: 0].
    #[arg(long)]
    pub warmup: Option<u64>,
    /// Keep the learning rate constant [cosine decay to lr/10; paper: constant].
    #[arg(long)]
    pub constant_lr: bool,
    /// Clip the gradient norm to this; 0 turns clipping off [1; paper: off].
    #[arg(long, visible_alias = "clip")]
    pub grad_clip: Option<f32>,
    /// Target decay of the EMA weights, with a warm-up so short runs are usable [0.9999].
    #[arg(long, visible_alias = "ema-decay")]
    pub ema: Option<f32>,
    /// Probability of training a sample with the null label [0.1].
    #[arg(long)]
    pub label_dropout: Option<f32>,
    /// Latent normalisation: `global` (the VAE's scale factor) or `channel` (a shift and a
    /// scale per channel, measured on the latents) [global].
    #[arg(long)]
    pub latent_norm: Option<String>,
}

/// What the run writes, and its seed.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Outputs")]
pub struct RunArgs {
    /// Classifier-free guidance scale of the samples (1 = none) [unet: 4, dit: 1.5; paper: 4].
    #[arg(long)]
    pub guidance: Option<f32>,
    /// DDIM steps of the samples [50].
    #[arg(long)]
    pub sample_steps: Option<usize>,
    /// Write a small grid of EMA samples every this many steps (0: never).
    #[arg(long, default_value_t = 0)]
    pub sample_every: u64,
    /// Write a training checkpoint every this many steps and at the end (0: never).
    #[arg(long, default_value_t = 0)]
    pub save_every: u64,
    /// Continue from a training checkpoint (train_<step>.safetensors) with the same options.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Seed of the initialisation, the batches and the samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Folder for the figures and the checkpoints [out/unet or out/dit].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The U-Net's shape.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "U-Net")]
pub struct UNetArgs {
    /// Width of the first level (ADM model_channels).
    #[arg(long, default_value_t = default_config().model_channels)]
    pub model_channels: usize,
    /// One width multiplier per level, comma-separated.
    #[arg(long, default_value = "1,2")]
    pub channel_mult: String,
    /// ResBlocks per level.
    #[arg(long, default_value_t = default_config().num_res_blocks)]
    pub num_res_blocks: usize,
    /// Downsampling rates with self-attention, comma-separated ("" for none).
    #[arg(long, default_value = "2")]
    pub attention_ds: String,
}

/// DiT's output and conditioning.
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "DiT")]
pub struct DiTArgs {
    /// Predict ε only (C outputs, fixed variance) instead of ε and the variance.
    #[arg(long)]
    pub no_learn_sigma: bool,
    /// How the blocks read timestep and class: adaln-zero, adaln, cross-attention, in-context.
    #[arg(long, default_value = "adaln-zero")]
    pub conditioning: String,
}

/// The video DiT's shape (`--model video-<size>/<patch>`).
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Video DiT")]
pub struct VideoArgs {
    /// How the blocks attend across space and time: full, alternating (Latte) or factorized
    /// (STDiT).
    #[arg(long, default_value = "alternating")]
    pub layout: String,
    /// Frames per spacetime patch: 1 (per-frame patches) or more (tubelets).
    #[arg(long, default_value_t = 1)]
    pub temporal_patch: usize,
    /// Start from this video checkpoint's weights (e.g. one `minisora inflate` wrote).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// More latent clip files, comma-separated, each a bucket of clips of its own shape
    /// (frames, size): every batch is drawn from one bucket, --data being the first.
    #[arg(long, value_delimiter = ',')]
    pub buckets: Vec<PathBuf>,
    /// Conditioning on frames: PROB:KIND,KIND… — that fraction of the clips is given the
    /// frames of a kind drawn among image_head, image_tail, quarter_head, quarter_tail,
    /// half_head, interpolate (clean, at t = 0, out of the loss).
    #[arg(long)]
    pub frame_mask: Option<String>,
}

/// `"1,2"` → `[1, 2]`; `""` → `[]`.
fn usize_list(flag: &str, s: &str) -> Result<Vec<usize>> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse().map_err(|_| {
                Error::new(
                    format!("--{flag} {s:?}: {p:?} is not a whole number"),
                    format!("give comma-separated numbers, e.g. --{flag} 1,2"),
                )
            })
        })
        .collect()
}

/// Where the samples come from, as the flags say: a latent file, pixels, or a dataset that
/// must be encoded first (returned apart, so resolving the flags does no work).
fn source(data: &DataArgs) -> Result<(Source, Option<DataSource>)> {
    match (Source::parse(&data.data)?, data.pixels) {
        (Source::Latents(p), true) => Err(Error::new(
            format!("--pixels with the latent file {}", p.display()),
            "name a dataset with --data (e.g. --data digits), or drop --pixels",
        )),
        (Source::Pixels(d), false) => Ok((Source::Pixels(d.clone()), Some(d))),
        (source, _) => Ok((source, None)),
    }
}

impl TrainArgs {
    /// The run's options: the family's recipe with every given flag over it; and the
    /// dataset to encode into `<out>/latents.safetensors` first, if any.
    pub fn options(&self) -> Result<(TrainOptions, Option<DataSource>)> {
        let family = family(&self.model)?;
        let base = (family.recipe)(Recipe::parse(&self.recipe.base)?);
        let (r, run) = (&self.recipe, &self.run);
        let out = run
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from("out").join(family.key));
        let (mut data, encode) = source(&self.data)?;
        if encode.is_some() {
            data = Source::Latents(out.join("latents.safetensors"));
        }
        let opts = TrainOptions {
            data,
            vae: self.data.vae.clone(),
            n_images: self.data.n,
            pixel_size: self.data.pixel_size,
            steps: r.steps.unwrap_or(base.steps),
            batch: r.batch.unwrap_or(base.batch),
            lr: r.lr.unwrap_or(base.lr),
            weight_decay: r.weight_decay.unwrap_or(base.weight_decay),
            warmup_steps: r.warmup.unwrap_or(base.warmup_steps),
            lr_decay: base.lr_decay && !r.constant_lr,
            grad_clip: r.grad_clip.or(base.grad_clip).filter(|&c| c > 0.0),
            ema_decay: r.ema.unwrap_or(base.ema_decay),
            label_dropout: r.label_dropout.unwrap_or(base.label_dropout),
            latent_norm: match &r.latent_norm {
                Some(k) => NormKind::parse(k)?,
                None => base.latent_norm,
            },
            guidance: run.guidance.unwrap_or(base.guidance),
            sample_steps: run.sample_steps.unwrap_or(base.sample_steps),
            sample_every: run.sample_every,
            save_every: run.save_every,
            resume: run.resume.clone(),
            seed: run.seed,
            out,
            frame_mask: match &self.video.frame_mask {
                Some(m) => Some(FrameMaskOptions::parse(m)?),
                None => None,
            },
            ..base
        };
        Ok((opts, encode))
    }

    /// The model flags of every family.
    pub fn model_flags(&self) -> Result<ModelFlags> {
        Ok(ModelFlags {
            unet: UNetConfig {
                model_channels: self.unet.model_channels,
                channel_mult: usize_list("channel-mult", &self.unet.channel_mult)?,
                num_res_blocks: self.unet.num_res_blocks,
                attention_ds: usize_list("attention-ds", &self.unet.attention_ds)?,
                ..default_config()
            },
            learn_sigma: !self.dit.no_learn_sigma,
            conditioning: Conditioning::parse(&self.dit.conditioning)?,
            video: VideoFlags {
                layout: Layout::parse(&self.video.layout)?,
                temporal_patch: self.video.temporal_patch,
                init: self.video.init.clone(),
                buckets: self.video.buckets.clone(),
            },
        })
    }

    /// Resolves the flags, encodes the dataset if asked, and trains.
    pub fn run(&self) -> Result<TrainReport> {
        let (opts, encode) = self.options()?;
        let flags = self.model_flags()?;
        if let (Some(d), Source::Latents(file)) = (encode, &opts.data) {
            let vae = self.data.vae.display();
            println!(
                "encoding up to {} images of {} with {vae}",
                self.data.n,
                d.name()
            );
            if !self.data.vae.is_file() {
                return Err(Error::new(
                    format!("no VAE checkpoint at {vae} to encode {}", d.name()),
                    "train one with `minisora train-vae` (out/vae/vae.safetensors) and pass \
                     it with --vae, or train in pixel space with --pixels",
                ));
            }
            let (count, secs) =
                encode_dataset(&self.data.vae, &d, self.data.n, self.run.seed, file)?;
            println!("encoded {count} images in {secs:.1} s");
        }
        train_model(&self.model, &flags, &opts)
    }
}

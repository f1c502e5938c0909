//! The `minisora` command line: one subcommand per thing a reader runs.

use clap::{Args, Parser, Subcommand};
use minisora::data::DataSource;
use minisora::demo::{run_demo, DemoOptions};
use minisora::diffusion::{ImageSource, TrainImagesOptions};
use minisora::dit::Conditioning;
use minisora::error::{Error, Result};
use minisora::metrics::score::{score_checkpoint, EvaluateRequest, EVALUATE_HELP};
use minisora::models::{dit_options, train_model, ModelName};
use minisora::sample::{sample, SampleRequest, SAMPLE_HELP};
use minisora::unet::train::{default_config, default_options};
use minisora::unet::UNetConfig;
use minisora::vae::encode::encode_dataset;
use minisora::vae::train::{train_vae, TrainVaeOptions};
use minisora::vae::{Recon, VaeConfig, VaeLoss};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(name = "minisora", version, about = "Sora-style diffusion from scratch on the CPU", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the main demo: train the VAE on digits, encode them, train a DiT on the latents,
    /// sample every class with DDIM + guidance and measure class accuracy and the Fréchet
    /// distance (about 5 minutes on 2 cores; writes out/demo/).
    Demo(DemoOptions),
    /// Train the 2-D toy diffusion model and sample it (the DDPM chapter's experiment).
    #[command(name = "train-2d")]
    Train2d {
        /// swiss_roll, two_moons, 8gaussians or checkerboard.
        #[arg(long, default_value = "swiss_roll")]
        dataset: String,
        /// Training steps.
        #[arg(long, default_value_t = 10_000)]
        steps: u64,
        /// Folder for the figures.
        #[arg(long, default_value = "out/ddpm_2d")]
        out: PathBuf,
    },
    /// Train the KL-VAE (the VAE chapter): writes reconstructions, an interpolation, prior
    /// samples, the loss curves and a checkpoint (with the latent scale factor) to --out.
    #[command(name = "train-vae")]
    TrainVae(TrainVaeArgs),
    /// Train a class-conditional diffusion model (the U-Net or a DiT) on VAE latents or
    /// pixels, then sample every class with DDIM + classifier-free guidance.
    #[command(long_about = TRAIN_HELP)]
    Train(Box<TrainArgs>),
    /// Sample a trained model: one row per class, DDIM or DDPM with classifier-free
    /// guidance, decoded by the VAE; a PNG grid and optionally a GIF of the denoising.
    #[command(long_about = SAMPLE_HELP)]
    Sample(Box<SampleRequest>),
    /// Score a class-conditional checkpoint: class accuracy and Fréchet distance of its samples.
    #[command(long_about = EVALUATE_HELP)]
    Evaluate(Box<EvaluateRequest>),
    /// Encode a dataset with a trained VAE into a latent file that latent diffusion trains on.
    Encode {
        /// A checkpoint written by train-vae.
        #[arg(long, default_value = "out/vae/vae.safetensors")]
        checkpoint: PathBuf,
        /// digits, shapes, mnist:DIR (the folder with MNIST's IDX files) or an image folder.
        #[arg(long, default_value = "digits")]
        data: String,
        /// How many images (generated sets make this many; folders are cut to it).
        #[arg(long, default_value_t = 10_000)]
        n: usize,
        /// Seed of the generated datasets.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// The latent file to write.
        #[arg(long, default_value = "out/latents/digits.safetensors")]
        out: PathBuf,
    },
}

#[derive(Args)]
struct TrainVaeArgs {
    /// digits, shapes, uci-digits, mnist:DIR (the folder with MNIST's IDX files) or an image folder
    /// (one sub-folder per class, any format the image crate reads; resized to 32×32 RGB).
    #[arg(long, default_value = "digits")]
    data: String,
    /// Training steps.
    #[arg(long, default_value_t = TrainVaeOptions::default().steps)]
    steps: u64,
    /// Images per step.
    #[arg(long, default_value_t = TrainVaeOptions::default().batch)]
    batch: usize,
    /// Peak learning rate (AdamW, warmup then cosine decay).
    #[arg(long, default_value_t = TrainVaeOptions::default().lr)]
    lr: f32,
    /// β, the weight of the KL term (LDM uses 1e-6 with its perceptual loss).
    #[arg(long, default_value_t = TrainVaeOptions::default().loss.kl_weight)]
    kl_weight: f32,
    /// Reconstruction loss: l1 or mse.
    #[arg(long, default_value = "l1")]
    recon: String,
    /// Channels of the first level (LDM's `ch`).
    #[arg(long, default_value_t = TrainVaeOptions::default().config.base_channels)]
    base_channels: usize,
    /// Latent channels.
    #[arg(long, default_value_t = TrainVaeOptions::default().config.z_channels)]
    z_channels: usize,
    /// Leave out the self-attention in the middle block.
    #[arg(long)]
    no_attention: bool,
    /// Images held out for the PSNR (stratified by class; uci-digits holds out at most its 360).
    #[arg(long, default_value_t = TrainVaeOptions::default().n_held_out)]
    held_out: usize,
    /// Seed of the data, the initialisation and the batches.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the figures and the checkpoint.
    #[arg(long, default_value = "out/vae")]
    out: PathBuf,
}

impl TrainVaeArgs {
    fn options(self) -> Result<TrainVaeOptions> {
        let recon = match self.recon.as_str() {
            "l1" => Recon::L1,
            "mse" => Recon::Mse,
            other => {
                return Err(Error::new(
                    format!("unknown reconstruction loss {other:?}"),
                    "use --recon l1 or --recon mse",
                ))
            }
        };
        let config = VaeConfig {
            base_channels: self.base_channels,
            z_channels: self.z_channels,
            mid_attention: !self.no_attention,
            ..TrainVaeOptions::default().config
        };
        Ok(TrainVaeOptions {
            data: DataSource::parse(&self.data)?,
            config,
            loss: VaeLoss {
                recon,
                kl_weight: self.kl_weight,
            },
            steps: self.steps,
            batch: self.batch,
            lr: self.lr,
            n_held_out: self.held_out,
            seed: self.seed,
            out: self.out,
            ..TrainVaeOptions::default()
        })
    }
}

const TRAIN_HELP: &str =
    "Train a class-conditional diffusion model (the U-Net or a DiT), then sample it.

--model: `unet` (ADM's U-Net) or a DiT config `DiT-<size>/<patch>` (case-insensitive): sizes
S, B, L, XL of the paper and the CPU sizes tiny, mini, small; patch 2, 4 or 8 — e.g. DiT-S/2,
dit-tiny/2. The model is sized to the data (channels, side, classes).

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
AdamW step; an EMA of the weights (with a warm-up) is sampled and saved. Defaults per model:
  unet: lr 1e-3, 100 warm-up steps, cosine decay to lr/10, clip 1, ε-MSE, fixed variance.
  dit:  DiT's recipe — lr 1e-4 constant, no warm-up, no clipping, no weight decay, learned
        variance (2C outputs) with the hybrid loss (MSE + variational bound).
Every flag below overrides them.

Writes to --out (out/unet or out/dit): samples.png (one row per class), denoise.png, loss.png,
<model>.safetensors (EMA weights, config in the metadata; `minisora sample --ckpt` reads it),
samples_<step>.png every --sample-every steps and train_<step>.safetensors (weights, EMA,
AdamW state, step) every --save-every steps; --resume FILE continues such a run bit-identically.
The last stdout line is JSON: params, gflops (per forward of one sample), final_loss, img/s.";

#[derive(Args)]
struct TrainArgs {
    /// `unet`, or a DiT config such as DiT-S/2 or dit-tiny/2 (see the long help).
    #[arg(long, default_value = "unet")]
    model: String,
    /// `latents:FILE` (from `minisora encode`), or a dataset (digits, shapes, mnist:DIR or an
    /// image folder): encoded with --vae first, or used as pixels with --pixels.
    #[arg(long, default_value = "latents:out/latents/digits.safetensors")]
    data: String,
    /// Train in pixel space on the dataset named by --data.
    #[arg(long)]
    pixels: bool,
    /// Image side in pixel space.
    #[arg(long, default_value_t = 32)]
    pixel_size: usize,
    /// Images to load (pixel space) or encode (a dataset in latent space).
    #[arg(long, default_value_t = 10_000)]
    n: usize,
    /// The VAE checkpoint that encodes a dataset and decodes the samples.
    #[arg(long, default_value = "out/vae/vae.safetensors")]
    vae: PathBuf,
    /// Training steps.
    #[arg(long, default_value_t = default_options().steps)]
    steps: u64,
    /// Samples per step.
    #[arg(long, default_value_t = default_options().batch)]
    batch: usize,
    /// Peak learning rate of AdamW [unet: 1e-3, dit: 1e-4].
    #[arg(long)]
    lr: Option<f32>,
    /// AdamW weight decay [0].
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f32,
    /// Linear warm-up steps of the learning rate [unet: 100, dit: 0].
    #[arg(long)]
    warmup: Option<u64>,
    /// Keep the learning rate constant [unet: cosine decay to lr/10, dit: constant].
    #[arg(long)]
    constant_lr: bool,
    /// Clip the gradient norm to this; 0 turns clipping off [unet: 1, dit: off].
    #[arg(long, visible_alias = "clip")]
    grad_clip: Option<f32>,
    /// Target decay of the EMA weights, with a warm-up so short runs are usable [0.9999].
    #[arg(long, visible_alias = "ema-decay", default_value_t = 0.9999)]
    ema: f32,
    /// Probability of training a sample with the null label.
    #[arg(long, default_value_t = default_options().label_dropout)]
    label_dropout: f32,
    /// DiT: predict ε only (C outputs, fixed variance) instead of ε and the variance.
    #[arg(long)]
    no_learn_sigma: bool,
    /// DiT: how the blocks read timestep and class: adaln-zero, adaln, cross-attention, in-context.
    #[arg(long, default_value = "adaln-zero")]
    conditioning: String,
    /// Classifier-free guidance scale of the samples (1 = none).
    #[arg(long, default_value_t = default_options().guidance)]
    guidance: f32,
    /// DDIM steps of the samples.
    #[arg(long, default_value_t = default_options().sample_steps)]
    sample_steps: usize,
    /// Write a small grid of EMA samples every this many steps (0: never).
    #[arg(long, default_value_t = 0)]
    sample_every: u64,
    /// Write a training checkpoint every this many steps and at the end (0: never).
    #[arg(long, default_value_t = 0)]
    save_every: u64,
    /// Continue from a training checkpoint (train_<step>.safetensors) with the same options.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// U-Net: width of the first level (ADM model_channels).
    #[arg(long, default_value_t = default_config().model_channels)]
    model_channels: usize,
    /// U-Net: one width multiplier per level, comma-separated.
    #[arg(long, default_value = "1,2")]
    channel_mult: String,
    /// U-Net: ResBlocks per level.
    #[arg(long, default_value_t = default_config().num_res_blocks)]
    num_res_blocks: usize,
    /// U-Net: downsampling rates with self-attention, comma-separated ("" for none).
    #[arg(long, default_value = "2")]
    attention_ds: String,
    /// Seed of the initialisation, the batches and the samples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the figures and the checkpoints [out/unet or out/dit].
    #[arg(long)]
    out: Option<PathBuf>,
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

impl TrainArgs {
    /// Where the samples come from: a latent file, a dataset to encode first, or pixels.
    fn source(&self, out: &Path) -> Result<ImageSource> {
        match (ImageSource::parse(&self.data)?, self.pixels) {
            (ImageSource::Latents(p), true) => Err(Error::new(
                format!("--pixels with the latent file {}", p.display()),
                "name a dataset with --data (e.g. --data digits), or drop --pixels",
            )),
            (ImageSource::Pixels(d), false) => {
                let (file, vae) = (out.join("latents.safetensors"), self.vae.display());
                println!("encoding {} images of {} with {vae}", self.n, d.name());
                if !self.vae.is_file() {
                    return Err(Error::new(
                        format!("no VAE checkpoint at {vae} to encode {}", d.name()),
                        "train one with `minisora train-vae` (out/vae/vae.safetensors) and pass \
                         it with --vae, or train in pixel space with --pixels",
                    ));
                }
                encode_dataset(&self.vae, &d, self.n, self.seed, &file)?;
                Ok(ImageSource::Latents(file))
            }
            (source, _) => Ok(source),
        }
    }

    fn run(self) -> Result<()> {
        let name = ModelName::parse(&self.model)?;
        let dit = matches!(name, ModelName::DiT(_));
        let out = self
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(if dit { "out/dit" } else { "out/unet" }));
        let base = if dit {
            dit_options()
        } else {
            default_options()
        };
        let clip = self.grad_clip.or(base.grad_clip).filter(|&c| c > 0.0);
        let opts = TrainImagesOptions {
            data: self.source(&out)?,
            vae: self.vae.clone(),
            n_images: self.n,
            pixel_size: self.pixel_size,
            steps: self.steps,
            batch: self.batch,
            lr: self.lr.unwrap_or(base.lr),
            weight_decay: self.weight_decay,
            warmup_steps: self.warmup.unwrap_or(base.warmup_steps),
            lr_decay: base.lr_decay && !self.constant_lr,
            grad_clip: clip,
            ema_decay: self.ema,
            label_dropout: self.label_dropout,
            guidance: self.guidance,
            sample_steps: self.sample_steps,
            sample_every: self.sample_every,
            save_every: self.save_every,
            resume: self.resume.clone(),
            seed: self.seed,
            out,
            ..base
        };
        let unet = UNetConfig {
            model_channels: self.model_channels,
            channel_mult: usize_list("channel-mult", &self.channel_mult)?,
            num_res_blocks: self.num_res_blocks,
            attention_ds: usize_list("attention-ds", &self.attention_ds)?,
            ..default_config()
        };
        let conditioning = Conditioning::parse(&self.conditioning)?;
        train_model(&name, &unet, !self.no_learn_sigma, conditioning, &opts).map(|_| ())
    }
}

fn main() {
    let cli = Cli::parse();
    let result: Result<()> = match cli.command {
        Command::Demo(opts) => run_demo(&opts).map(|_| ()),
        Command::Train2d {
            dataset,
            steps,
            out,
        } => minisora::data::toy2d::Toy2d::parse(&dataset)
            .and_then(|d| minisora::diffusion::train2d::train_2d(d, steps, &out)),
        Command::Train(args) => args.run(),
        Command::Sample(req) => sample(&req).map(|_| ()),
        Command::Evaluate(req) => score_checkpoint(&req).map(|_| ()),
        Command::TrainVae(args) => args.options().and_then(|o| train_vae(&o).map(|_| ())),
        Command::Encode {
            checkpoint,
            data,
            n,
            seed,
            out,
        } => DataSource::parse(&data).and_then(|d| {
            let (count, secs) =
                minisora::vae::encode::encode_dataset(&checkpoint, &d, n, seed, &out)?;
            println!(
                "encoded {count} images of {} into {} in {secs:.1} s",
                d.name(),
                out.display()
            );
            println!("{{\"images\":{count},\"seconds\":{secs:.2}}}");
            Ok(())
        }),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

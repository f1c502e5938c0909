//! The `minisora` command line: one subcommand per thing a reader runs.

use clap::{Args, Parser, Subcommand};
use minisora::data::DataSource;
use minisora::diffusion::{ImageSource, TrainImagesOptions};
use minisora::error::{Error, Result};
use minisora::unet::train::{default_config, default_options, train_unet};
use minisora::unet::UNetConfig;
use minisora::vae::train::{train_vae, TrainVaeOptions};
use minisora::vae::{Recon, VaeConfig, VaeLoss};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "minisora", version, about = "Sora-style diffusion from scratch on the CPU", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the main demo. Until the latent DiT lands (issue 6) it trains and samples the 2-D
    /// diffusion model of the DDPM chapter and writes its figures to out/demo/.
    Demo,
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
    /// Train a class-conditional diffusion model (the U-Net; DiT later) on VAE latents or
    /// pixels, then sample every class with DDIM + classifier-free guidance.
    #[command(long_about = TRAIN_HELP)]
    Train(Box<TrainArgs>),
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
    /// digits, shapes, mnist:DIR (the folder with MNIST's IDX files) or an image folder
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
            seed: self.seed,
            out: self.out,
            ..TrainVaeOptions::default()
        })
    }
}

const TRAIN_HELP: &str = "Train a class-conditional diffusion model, then sample it.

In latent space (the default) it trains on a latent file written by `minisora encode` and
decodes its samples with the VAE that wrote it; make both first:
    minisora train-vae     # out/vae/vae.safetensors   (~2.5 min on 2 cores)
    minisora encode        # out/latents/digits.safetensors
    minisora train --model unet
In pixel space: minisora train --model unet --pixels --data digits --pixel-size 16

Each step draws a batch (latents afresh from their stored posteriors), a uniform timestep and
noise, replaces 10 % of the labels by the null label (for classifier-free guidance), and takes
an AdamW step on the ε-MSE loss; an EMA of the weights is sampled and saved. Writes to --out:
samples.png (one row per class), denoise.png (one sample's x_t and predicted x0 along the DDIM
trajectory), loss.png and <model>.safetensors (EMA weights, config in the metadata). The last
stdout line is JSON: params, gflops (per forward of one sample), final_loss, seconds_per_step.";

#[derive(Args)]
struct TrainArgs {
    /// The model: `unet` (the ADM U-Net). DiT configs (`dit-…`) come with the DiT chapter.
    #[arg(long, default_value = "unet")]
    model: String,
    /// `latents:PATH` (a file from `minisora encode`), or with --pixels a dataset: digits,
    /// shapes, mnist:DIR or an image folder.
    #[arg(long, default_value = "latents:out/latents/digits.safetensors")]
    data: String,
    /// Train in pixel space on the dataset named by --data.
    #[arg(long)]
    pixels: bool,
    /// Image side in pixel space.
    #[arg(long, default_value_t = 32)]
    pixel_size: usize,
    /// Images to load in pixel space.
    #[arg(long, default_value_t = 10_000)]
    n: usize,
    /// The VAE checkpoint that decodes the latents (the one that encoded them).
    #[arg(long, default_value = "out/vae/vae.safetensors")]
    vae: PathBuf,
    /// Training steps.
    #[arg(long, default_value_t = default_options().steps)]
    steps: u64,
    /// Samples per step.
    #[arg(long, default_value_t = default_options().batch)]
    batch: usize,
    /// Peak learning rate of AdamW (DiT uses 1e-4 for far longer runs).
    #[arg(long, default_value_t = default_options().lr)]
    lr: f32,
    /// Linear warm-up steps of the learning rate.
    #[arg(long, default_value_t = default_options().warmup_steps)]
    warmup: u64,
    /// Keep the learning rate constant (default: cosine decay to lr/10).
    #[arg(long)]
    constant_lr: bool,
    /// Clip the gradient norm to this; 0 turns clipping off.
    #[arg(long, default_value_t = default_options().grad_clip.unwrap_or(0.0))]
    clip: f32,
    /// Target decay of the EMA weights (with a warm-up, so short runs are usable).
    #[arg(long, default_value_t = default_options().ema_decay)]
    ema_decay: f32,
    /// Probability of training a sample with the null label.
    #[arg(long, default_value_t = default_options().label_dropout)]
    label_dropout: f32,
    /// Classifier-free guidance scale of the samples (1 = none).
    #[arg(long, default_value_t = default_options().guidance)]
    guidance: f32,
    /// DDIM steps of the samples.
    #[arg(long, default_value_t = default_options().sample_steps)]
    sample_steps: usize,
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
    /// Folder for the figures and the checkpoint.
    #[arg(long, default_value = "out/unet")]
    out: PathBuf,
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
    fn run(self) -> Result<()> {
        let data = match (ImageSource::parse(&self.data)?, self.pixels) {
            (ImageSource::Latents(p), true) => {
                return Err(Error::new(
                    format!("--pixels with the latent file {}", p.display()),
                    "name a dataset with --data (e.g. --data digits), or drop --pixels",
                ))
            }
            (ImageSource::Pixels(d), false) => {
                return Err(Error::new(
                    format!("--data {} names a dataset, but no --pixels", d.name()),
                    "add --pixels to train in pixel space, or encode it (minisora encode \
                     --data NAME --out FILE) and pass --data latents:FILE",
                ))
            }
            (source, _) => source,
        };
        let opts = TrainImagesOptions {
            data,
            vae: self.vae,
            n_images: self.n,
            pixel_size: self.pixel_size,
            steps: self.steps,
            batch: self.batch,
            lr: self.lr,
            warmup_steps: self.warmup,
            lr_decay: !self.constant_lr,
            grad_clip: (self.clip > 0.0).then_some(self.clip),
            ema_decay: self.ema_decay,
            label_dropout: self.label_dropout,
            guidance: self.guidance,
            sample_steps: self.sample_steps,
            seed: self.seed,
            out: self.out,
            ..default_options()
        };
        match self.model.as_str() {
            "unet" => {
                let config = UNetConfig {
                    model_channels: self.model_channels,
                    channel_mult: usize_list("channel-mult", &self.channel_mult)?,
                    num_res_blocks: self.num_res_blocks,
                    attention_ds: usize_list("attention-ds", &self.attention_ds)?,
                    ..default_config()
                };
                train_unet(&config, &opts).map(|_| ())
            }
            m if m.starts_with("dit") => Err(Error::new(
                format!("--model {m}: DiT is not built yet (issue 6)"),
                "use --model unet",
            )),
            m => Err(Error::new(
                format!("unknown model {m:?}"),
                "use --model unet",
            )),
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let result: Result<()> = match cli.command {
        Command::Demo => {
            println!("minisora demo: the latent DiT pipeline is not built yet (issue 6);");
            println!("meanwhile: DDPM on a 2-D swiss roll, the book's first experiment (< 1 min).");
            minisora::diffusion::train2d::train_2d(
                minisora::data::toy2d::Toy2d::SwissRoll,
                10_000,
                std::path::Path::new("out/demo"),
            )
        }
        Command::Train2d {
            dataset,
            steps,
            out,
        } => minisora::data::toy2d::Toy2d::parse(&dataset)
            .and_then(|d| minisora::diffusion::train2d::train_2d(d, steps, &out)),
        Command::Train(args) => args.run(),
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

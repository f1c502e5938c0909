//! The `minisora` command line: one subcommand per thing a reader runs.

use clap::{Args, Parser, Subcommand};
use minisora::data::DataSource;
use minisora::error::{Error, Result};
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

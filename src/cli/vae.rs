//! `minisora train-vae`, `minisora encode` and `minisora train-video-vae`: their flags.

use crate::data::DataSource;
use crate::error::{Error, Result};
use crate::vae::temporal::train::TrainTemporalOptions;
use crate::vae::temporal::TemporalVaeConfig;
use crate::vae::train::TrainVaeOptions;
use crate::vae::{Recon, VaeConfig, VaeLoss};
use crate::video::compression::VideoVaeRun;
use clap::Args;
use std::path::PathBuf;

/// The flags of `minisora train-vae`.
#[derive(Args, Clone, Debug)]
pub struct TrainVaeArgs {
    /// digits, shapes, uci-digits, mnist:DIR (the folder with MNIST's IDX files) or an image
    /// folder (one sub-folder per class, any format the image crate reads; resized to 32×32 RGB).
    #[arg(long, default_value = "digits")]
    pub data: String,
    /// Training steps.
    #[arg(long, default_value_t = TrainVaeOptions::default().steps)]
    pub steps: u64,
    /// Images per step.
    #[arg(long, default_value_t = TrainVaeOptions::default().batch)]
    pub batch: usize,
    /// Peak learning rate (AdamW, warmup then cosine decay).
    #[arg(long, default_value_t = TrainVaeOptions::default().lr)]
    pub lr: f32,
    /// β, the weight of the KL term (LDM uses 1e-6 with its perceptual loss).
    #[arg(long, default_value_t = TrainVaeOptions::default().loss.kl_weight)]
    pub kl_weight: f32,
    /// Reconstruction loss: l1 or mse.
    #[arg(long, default_value = "l1")]
    pub recon: String,
    /// Channels of the first level (LDM's `ch`).
    #[arg(long, default_value_t = TrainVaeOptions::default().config.base_channels)]
    pub base_channels: usize,
    /// Latent channels.
    #[arg(long, default_value_t = TrainVaeOptions::default().config.z_channels)]
    pub z_channels: usize,
    /// Leave out the self-attention in the middle block.
    #[arg(long)]
    pub no_attention: bool,
    /// Images held out for the PSNR (stratified by class; uci-digits holds out at most its 360).
    #[arg(long, default_value_t = TrainVaeOptions::default().n_held_out)]
    pub held_out: usize,
    /// Seed of the data, the initialisation and the batches.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Folder for the figures and the checkpoint.
    #[arg(long, default_value = "out/vae")]
    pub out: PathBuf,
}

impl TrainVaeArgs {
    /// The trainer's options; an unknown --recon or dataset is an error.
    pub fn options(self) -> Result<TrainVaeOptions> {
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

/// The flags of `minisora encode`.
#[derive(Args, Clone, Debug)]
pub struct EncodeArgs {
    /// A checkpoint written by train-vae.
    #[arg(long, default_value = "out/vae/vae.safetensors")]
    pub checkpoint: PathBuf,
    /// digits, shapes, mnist:DIR (the folder with MNIST's IDX files) or an image folder.
    #[arg(long, default_value = "digits")]
    pub data: String,
    /// How many images (generated sets make this many; folders are cut to it).
    #[arg(long, default_value_t = 10_000)]
    pub n: usize,
    /// Seed of the generated datasets.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The latent file to write.
    #[arg(long, default_value = "out/latents/digits.safetensors")]
    pub out: PathBuf,
}

/// The flags of `minisora train-video-vae`.
#[derive(Clone, Debug, Args)]
pub struct TrainVideoVaeArgs {
    /// Frames per clip: 1 + 4k (the first frame is encoded alone, then groups of 4).
    #[arg(long, default_value_t = VideoVaeRun::default().frames)]
    pub frames: usize,
    /// Training clips (moving digits).
    #[arg(long, default_value_t = VideoVaeRun::default().clips)]
    pub clips: usize,
    /// Held-out clips for the PSNR and flicker.
    #[arg(long, default_value_t = VideoVaeRun::default().held_out)]
    pub held_out: usize,
    /// An image VAE trained on grey frames to build on (e.g. demo-video's); without it one
    /// is trained first for --vae-steps.
    #[arg(long)]
    pub vae: Option<PathBuf>,
    #[arg(long, default_value_t = VideoVaeRun::default().vae_steps)]
    pub vae_steps: u64,
    /// Temporal VAE training steps.
    #[arg(long, default_value_t = TrainTemporalOptions::default().steps)]
    pub steps: u64,
    /// Windows of clips per step.
    #[arg(long, default_value_t = TrainTemporalOptions::default().batch)]
    pub batch: usize,
    /// Frames of each training window (1 + 4k).
    #[arg(long, default_value_t = TrainTemporalOptions::default().window)]
    pub window: usize,
    /// Width of the temporal VAE's layers.
    #[arg(long, default_value_t = TrainTemporalOptions::default().config.width)]
    pub width: usize,
    /// Latent channels of the temporal VAE.
    #[arg(long, default_value_t = TrainTemporalOptions::default().config.z_channels)]
    pub z_channels: usize,
    /// Peak learning rate (AdamW, warm-up then cosine decay).
    #[arg(long, default_value_t = TrainTemporalOptions::default().lr)]
    pub lr: f32,
    /// β, the weight of the KL term.
    #[arg(long, default_value_t = TrainTemporalOptions::default().kl_weight)]
    pub kl_weight: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Folder for the figures and video_vae.safetensors.
    #[arg(long, default_value = "out/video-vae")]
    pub out: PathBuf,
}

impl TrainVideoVaeArgs {
    pub fn options(self) -> VideoVaeRun {
        let d = TrainTemporalOptions::default();
        VideoVaeRun {
            frames: self.frames,
            clips: self.clips,
            held_out: self.held_out,
            vae: self.vae,
            vae_steps: self.vae_steps,
            temporal: TrainTemporalOptions {
                config: TemporalVaeConfig {
                    width: self.width,
                    z_channels: self.z_channels,
                    ..d.config
                },
                steps: self.steps,
                batch: self.batch,
                window: self.window,
                lr: self.lr,
                kl_weight: self.kl_weight,
                ..d
            },
            seed: self.seed,
            out: self.out,
        }
    }
}

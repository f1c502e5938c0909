//! The `minisora` command line: one subcommand per thing a reader runs, each with one clap
//! `Args` struct in this folder that only reads flags; the work is done by the library
//! function it names.

pub mod demo;
pub mod interpolate;
pub mod sample;
pub mod text;
pub mod train;
pub mod vae;
pub mod video;

use crate::data::toy2d::Toy2d;
use crate::data::DataSource;
use crate::demo::run_demo;
use crate::demo_text::run_text_demo;
use crate::demo_video::run_video_demo;
use crate::error::Result;
use crate::evaluate_frames::evaluate_frames;
use crate::generate::generate;
use crate::interpolate::interpolate;
use crate::metrics::score_checkpoint;
use crate::sample::sample;
use crate::toy2d::train_2d;
use crate::vae::encode::encode_dataset;
use crate::vae::train::train_vae;
use crate::video::compression::run_train_video_vae;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// `minisora`'s command line.
#[derive(Parser)]
#[command(name = "minisora", version, about = "Sora-style diffusion from scratch on the CPU", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Run the main demo: train the VAE on digits, encode them, train a DiT on the latents,
    /// sample every class with DDIM + guidance and measure class accuracy and the Fréchet
    /// distance (about 5 minutes on 2 cores; writes out/demo/).
    Demo(demo::DemoArgs),
    /// Train the 2-D toy diffusion model and sample it (the DDPM chapter's experiment).
    #[command(name = "train-2d")]
    Train2d(Train2dArgs),
    /// Train the KL-VAE (the VAE chapter): writes reconstructions, an interpolation, prior
    /// samples, the loss curves and a checkpoint (with the latent scale factor) to --out.
    #[command(name = "train-vae")]
    TrainVae(vae::TrainVaeArgs),
    /// Train a class-conditional diffusion model (the U-Net or a DiT) on VAE latents or
    /// pixels, then sample every class with DDIM + classifier-free guidance.
    #[command(long_about = train::TRAIN_HELP)]
    Train(Box<train::TrainArgs>),
    /// Sample a trained model: one row per class, DDIM or DDPM with classifier-free
    /// guidance, decoded by the VAE; a PNG grid and optionally a GIF of the denoising.
    #[command(long_about = sample::SAMPLE_HELP)]
    Sample(Box<sample::SampleArgs>),
    /// Draw what a class-conditional model makes between two classes: the label embedding
    /// interpolated linearly and spherically from one shared noise, a PNG grid and a GIF.
    #[command(long_about = interpolate::INTERPOLATE_HELP)]
    Interpolate(Box<interpolate::InterpolateArgs>),
    /// Score a class-conditional checkpoint: class accuracy and Fréchet distance of its samples.
    #[command(long_about = sample::EVALUATE_HELP)]
    Evaluate(Box<sample::EvaluateArgs>),
    /// Encode a dataset with a trained VAE into a latent file that latent diffusion trains on.
    Encode(vae::EncodeArgs),
    /// The video demo: moving digits → VAE on frames → latent clips → image DiT → inflated
    /// video DiT (alternating) → clips of every (digit, motion) → digit, motion, consistency
    /// and FVD (about 10 minutes on 2 cores; writes out/demo-video/).
    #[command(name = "demo-video")]
    DemoVideo(video::DemoVideoArgs),
    /// Draw moving-digit clips and encode them frame by frame with an image VAE into a latent
    /// clip file that a video DiT trains on.
    #[command(name = "encode-video")]
    EncodeVideo(video::EncodeVideoArgs),
    /// The video compression network: train a causal temporal VAE (1 + 4k frames → 1 + k
    /// latent frames) on an image VAE's latent clips, and compare it with the image VAE frame
    /// by frame — per-frame PSNR, flicker, latent tokens, time (writes out/video-vae/).
    #[command(name = "train-video-vae")]
    TrainVideoVae(Box<vae::TrainVideoVaeArgs>),
    /// Build a video DiT from a trained image DiT: its blocks become the spatial ones, the
    /// temporal layers start silent, so it is the image model frame by frame at step 0.
    Inflate(video::InflateArgs),
    /// Sample a video checkpoint: clips of one (digit, motion) or of every class, as a GIF and
    /// a PNG strip (one clip per row), optionally the denoising as a GIF.
    #[command(name = "sample-video")]
    SampleVideo(Box<video::SampleVideoArgs>),
    /// Score a video checkpoint: digit and motion accuracy, speed error, identity consistency
    /// and Fréchet video distance of its clips.
    #[command(name = "evaluate-video")]
    EvaluateVideo(Box<video::EvaluateVideoArgs>),
    /// Score a video checkpoint on given frames: identity and motion of what it generates
    /// from a real clip's first frame, first quarter, first and last frames, against no frame.
    #[command(name = "evaluate-frames")]
    EvaluateFrames(Box<video::EvaluateFramesArgs>),
    /// The text-to-video demo: captioned colour digits → VAE → text encoder pre-trained with
    /// CLIP → text-conditioned video DiT → clips from captions, scored on seen and held-out
    /// compositions (writes out/demo-text/).
    #[command(name = "demo-text")]
    DemoText(Box<text::DemoTextArgs>),
    /// Pre-train the text encoder with a tiny CLIP on caption–clip pairs and report caption→clip
    /// retrieval on held-out pairs.
    #[command(name = "train-text")]
    TrainText(text::TrainTextArgs),
    /// Clips from a sentence: `minisora generate "a red 3 moving left"` (or --prompts FILE),
    /// a GIF and a captioned PNG strip per prompt.
    Generate(Box<text::GenerateArgs>),
}

/// The flags of `minisora train-2d`.
#[derive(clap::Args, Clone, Debug)]
pub struct Train2dArgs {
    /// swiss_roll, two_moons, 8gaussians or checkerboard.
    #[arg(long, default_value = "swiss_roll")]
    pub dataset: String,
    /// Training steps.
    #[arg(long, default_value_t = 10_000)]
    pub steps: u64,
    /// Folder for the figures.
    #[arg(long, default_value = "out/ddpm_2d")]
    pub out: PathBuf,
}

/// Runs one parsed command.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Demo(args) => run_demo(&args.into()).map(|_| ()),
        Command::Train2d(a) => Toy2d::parse(&a.dataset).and_then(|d| train_2d(d, a.steps, &a.out)),
        Command::Train(args) => args.run().map(|_| ()),
        Command::Sample(args) => sample(&(*args).into()).map(|_| ()),
        Command::Interpolate(args) => interpolate(&(*args).into()).map(|_| ()),
        Command::Evaluate(args) => score_checkpoint(&(*args).into()).map(|_| ()),
        Command::TrainVae(args) => args.options().and_then(|o| train_vae(&o).map(|_| ())),
        Command::DemoVideo(a) => a.options().and_then(|o| run_video_demo(&o).map(|_| ())),
        Command::EncodeVideo(a) => a.run(),
        Command::TrainVideoVae(a) => run_train_video_vae(&a.options()).map(|_| ()),
        Command::Inflate(a) => a.run(),
        Command::SampleVideo(a) => a.run(),
        Command::EvaluateVideo(a) => a.run(),
        Command::EvaluateFrames(a) => evaluate_frames(&a.request()).map(|_| ()),
        Command::DemoText(a) => a.options().and_then(|o| run_text_demo(&o).map(|_| ())),
        Command::TrainText(a) => a.run(),
        Command::Generate(a) => a.request().and_then(|r| generate(&r).map(|_| ())),
        Command::Encode(a) => DataSource::parse(&a.data).and_then(|d| {
            let (count, secs) = encode_dataset(&a.checkpoint, &d, a.n, a.seed, &a.out)?;
            println!(
                "encoded {count} images of {} into {} in {secs:.1} s",
                d.name(),
                a.out.display()
            );
            println!("{{\"images\":{count},\"seconds\":{secs:.2}}}");
            Ok(())
        }),
    }
}

/// Parses the process's arguments and runs the command; on error prints it and exits with 1.
pub fn main() {
    if let Err(e) = run(Cli::parse().command) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

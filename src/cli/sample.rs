//! `minisora sample` and `minisora evaluate`: their flags.

use crate::metrics::EvaluateRequest;
use crate::sample::SampleRequest;
use clap::Args;
use std::path::PathBuf;

/// The long help of `minisora sample`.
pub const SAMPLE_HELP: &str = "Sample a checkpoint written by `minisora train` (the final
<model>.safetensors, or a train_<step>.safetensors, whose EMA weights are used).

One row per class (or only --class), --n samples each, drawn with DDIM (deterministic) or DDPM
over --steps steps respaced from the training schedule, with classifier-free guidance of scale
--cfg-scale on all prediction channels (1 = none). Latent models are decoded by --vae, with the
latent scale factor stored in the checkpoint. Writes --out (a PNG grid; for a clip model a GIF
beside it) and, with
--trajectory, an animated GIF of the whole grid being denoised. Example:
    minisora sample --ckpt out/dit/dit.safetensors --class 3 --cfg-scale 4 --steps 50 \\
        --out grid.png --trajectory denoise.gif";

/// The flags of `minisora sample`.
#[derive(Args, Clone, Debug)]
pub struct SampleArgs {
    /// The checkpoint to sample.
    #[arg(long)]
    pub ckpt: PathBuf,
    /// Only this class (default: every class, one row each).
    #[arg(long)]
    pub class: Option<usize>,
    /// Classifier-free guidance scale (1 = none; DiT samples with 4).
    #[arg(long, default_value_t = 4.0)]
    pub cfg_scale: f32,
    /// Sampling steps (respaced from the 1000 training steps).
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// ddim or ddpm.
    #[arg(long, default_value = "ddim")]
    pub sampler: String,
    /// DDIM's η (0: deterministic; 1: as noisy as DDPM).
    #[arg(long, default_value_t = 0.0)]
    pub eta: f32,
    /// Seed of the starting noise (and DDPM's noise).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Samples per class.
    #[arg(long, default_value_t = 8)]
    pub n: usize,
    /// The PNG grid to write (a GIF beside it for clip models).
    #[arg(long, default_value = "samples.png")]
    pub out: PathBuf,
    /// Also write the denoising as an animated GIF here.
    #[arg(long)]
    pub trajectory: Option<PathBuf>,
    /// The VAE that decodes a latent model's samples.
    #[arg(long, default_value = "out/vae/vae.safetensors")]
    pub vae: PathBuf,
    /// Video models: clips of this many frames (1 to 32) instead of the trained length.
    #[arg(long)]
    pub frames: Option<usize>,
}

impl From<SampleArgs> for SampleRequest {
    fn from(a: SampleArgs) -> Self {
        SampleRequest {
            ckpt: a.ckpt,
            class: a.class,
            cfg_scale: a.cfg_scale,
            steps: a.steps,
            sampler: a.sampler,
            eta: a.eta,
            seed: a.seed,
            n: a.n,
            out: a.out,
            trajectory: a.trajectory,
            vae: a.vae,
            frames: a.frames,
            size: None,
        }
    }
}

/// The long help of `minisora evaluate`.
pub const EVALUATE_HELP: &str = "Score a class-conditional checkpoint written by `minisora train`
(or the demo): sample --per-class images of every class with DDIM over --steps steps and
classifier-free guidance --cfg-scale (one or more, comma-separated), decode latents with --vae,
and measure them with the evaluation classifier of the dataset the checkpoint was trained on
(read from its metadata; --data overrides it), trained on that dataset's training split once,
then cached per dataset in --classifier-cache: class accuracy, and the Fréchet distance between the classifier's features
of the samples and of fresh real images, beside the distance between two real sets of the same
size (the floor). One JSON line per guidance scale. Example:
    minisora evaluate --ckpt out/demo/dit/dit.safetensors --vae out/demo/vae/vae.safetensors \\
        --cfg-scale 1,2,4";

/// The flags of `minisora evaluate`.
#[derive(Args, Clone, Debug)]
pub struct EvaluateArgs {
    /// The checkpoint to score.
    #[arg(long)]
    pub ckpt: PathBuf,
    /// The VAE that decodes a latent model's samples.
    #[arg(long, default_value = "out/vae/vae.safetensors")]
    pub vae: PathBuf,
    /// The dataset whose classifier and real images judge the samples [the one the checkpoint
    /// was trained on, from its metadata].
    #[arg(long)]
    pub data: Option<String>,
    /// Guidance scales, comma-separated (1 = none) [the scale the checkpoint's training run
    /// sampled with, else 4].
    #[arg(long, value_delimiter = ',')]
    pub cfg_scale: Vec<f32>,
    /// DDIM steps.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// Samples per class.
    #[arg(long, default_value_t = 50)]
    pub per_class: usize,
    /// Seed of the starting noise (the real images and the classifier use their own).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where the evaluation classifier is cached.
    #[arg(long, default_value = "out/classifier")]
    pub classifier_cache: PathBuf,
}

impl From<EvaluateArgs> for EvaluateRequest {
    fn from(a: EvaluateArgs) -> Self {
        EvaluateRequest {
            ckpt: a.ckpt,
            vae: a.vae,
            data: a.data,
            cfg_scale: a.cfg_scale,
            steps: a.steps,
            per_class: a.per_class,
            seed: a.seed,
            classifier_cache: a.classifier_cache,
        }
    }
}

//! `minisora demo` and the `dit_experiments` example: their flags.

use crate::demo::DemoOptions;
use crate::experiments::ExperimentOptions;
use clap::Args;
use std::path::PathBuf;

/// The flags of `minisora demo`; every default is [`DemoOptions::default`]'s.
#[derive(Clone, Debug, Args)]
pub struct DemoArgs {
    /// Folder for everything the demo writes.
    #[arg(long, default_value_os_t = DemoOptions::default().out)]
    pub out: PathBuf,
    /// Seed of the data, the initialisations, the batches and the samples.
    #[arg(long, default_value_t = DemoOptions::default().seed)]
    pub seed: u64,
    /// VAE training steps.
    #[arg(long, default_value_t = DemoOptions::default().vae_steps)]
    pub vae_steps: u64,
    /// The DiT config (DiT-mini/2, DiT-tiny/2, DiT-small/4, DiT-S/2, …).
    #[arg(long, default_value_t = DemoOptions::default().dit)]
    pub dit: String,
    /// DiT training steps.
    #[arg(long, default_value_t = DemoOptions::default().dit_steps)]
    pub dit_steps: u64,
    /// Latents per DiT step.
    #[arg(long, default_value_t = DemoOptions::default().batch)]
    pub batch: usize,
    /// Peak learning rate of the DiT (linear warm-up, then cosine decay to a tenth).
    #[arg(long, default_value_t = DemoOptions::default().lr)]
    pub lr: f32,
    /// Warm-up steps of the DiT's learning rate.
    #[arg(long, default_value_t = DemoOptions::default().warmup_steps)]
    pub warmup_steps: u64,
    /// Samples per class for the accuracy and the Fréchet distance.
    #[arg(long, default_value_t = DemoOptions::default().eval_per_class)]
    pub eval_per_class: usize,
    /// Classifier-free guidance scale of the samples (1 = none).
    #[arg(long, default_value_t = DemoOptions::default().guidance)]
    pub guidance: f32,
    /// DDIM steps of the samples.
    #[arg(long, default_value_t = DemoOptions::default().sample_steps)]
    pub sample_steps: usize,
    /// Where the evaluation classifier is cached (shared with other runs).
    #[arg(long, default_value_os_t = DemoOptions::default().classifier_cache)]
    pub classifier_cache: PathBuf,
}

impl From<DemoArgs> for DemoOptions {
    fn from(a: DemoArgs) -> Self {
        DemoOptions {
            out: a.out,
            seed: a.seed,
            vae_steps: a.vae_steps,
            dit: a.dit,
            dit_steps: a.dit_steps,
            batch: a.batch,
            lr: a.lr,
            warmup_steps: a.warmup_steps,
            eval_per_class: a.eval_per_class,
            guidance: a.guidance,
            sample_steps: a.sample_steps,
            classifier_cache: a.classifier_cache,
        }
    }
}

/// The command line of `dit_experiments`.
#[derive(Args, Clone, Debug)]
pub struct ExperimentArgs {
    /// scaling, conditioning, unet-vs-dit, guidance, samplers or all.
    pub experiment: String,
    /// The short setting: ≤ 10 minutes per experiment on two cores.
    #[arg(long)]
    pub quick: bool,
    /// Folder of the results (one subfolder per experiment).
    #[arg(long, default_value = "out/experiments")]
    pub out: PathBuf,
    /// The dataset every experiment trains and scores on: digits (the demo's), shapes,
    /// uci-digits, mnist:DIR or an image folder; other than digits, its VAE, latents and
    /// results go under <out>/<data>/ (e.g. out/experiments/uci-digits/scaling/).
    #[arg(long, default_value = "digits")]
    pub data: String,
    /// Seed of the data order, the initialisations and the samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The demo's folder, whose VAE, latents and DiT are reused when present.
    #[arg(long, default_value = "out/demo")]
    pub demo_dir: PathBuf,
    /// The evaluation classifier's cache.
    #[arg(long, default_value = "out/classifier")]
    pub classifier_cache: PathBuf,
    /// Override the training steps (tests).
    #[arg(long, hide = true)]
    pub steps: Option<u64>,
    /// Override the batch (tests).
    #[arg(long, hide = true)]
    pub batch: Option<usize>,
    /// Override the samples per class (tests).
    #[arg(long, hide = true)]
    pub per_class: Option<usize>,
    /// Override the DDIM steps of the scores (tests).
    #[arg(long, hide = true)]
    pub sample_steps: Option<usize>,
    /// Override the VAE's steps (tests).
    #[arg(long, hide = true)]
    pub vae_steps: Option<u64>,
    /// Digits for the VAE, the latents and the classifier, and the classifier's steps
    /// (tests: a tiny setup).
    #[arg(long, hide = true)]
    pub tiny_setup: Option<usize>,
}

impl From<ExperimentArgs> for ExperimentOptions {
    fn from(a: ExperimentArgs) -> Self {
        ExperimentOptions {
            experiment: a.experiment,
            quick: a.quick,
            out: a.out,
            data: a.data,
            seed: a.seed,
            demo_dir: a.demo_dir,
            classifier_cache: a.classifier_cache,
            steps: a.steps,
            batch: a.batch,
            per_class: a.per_class,
            sample_steps: a.sample_steps,
            vae_steps: a.vae_steps,
            tiny_setup: a.tiny_setup,
        }
    }
}

//! `minisora evaluate`: scores a trained class-conditional checkpoint — samples `per_class` of
//! every class with DDIM and classifier-free guidance, decodes them with the VAE, and reports
//! [`evaluate`]'s class accuracy and Fréchet distance (with its floor) against fresh real images.
//! The main demo scores its DiT with it, and one command compares any two checkpoints (the U-Net
//! and DiT of the book) or guidance scales on equal terms.

use super::{evaluate, load_or_train_classifier, EvalReport};
use crate::data::DataSource;
use crate::diffusion::sample_images::{sample_grid, to_pixels, FigureOptions};
use crate::error::{Error, Result};
use crate::models::load_model;
use crate::vae::train::load_vae;
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;

/// The long help of `minisora evaluate`.
pub const EVALUATE_HELP: &str = "Score a class-conditional checkpoint written by `minisora train`
(or the demo): sample --per-class images of every class with DDIM over --steps steps and
classifier-free guidance --cfg-scale (one or more, comma-separated), decode latents with --vae,
and measure them with the evaluation classifier of --data (trained once, then cached in
--classifier-cache): class accuracy, and the Fréchet distance between the classifier's features
of the samples and of fresh real images, beside the distance between two real sets of the same
size (the floor). One JSON line per guidance scale. Example:
    minisora evaluate --ckpt out/demo/dit/dit.safetensors --vae out/demo/vae/vae.safetensors \\
        --cfg-scale 1,2,4";

/// What to score (the arguments of `minisora evaluate`).
#[derive(Args, Clone, Debug)]
pub struct EvaluateRequest {
    /// The checkpoint to score.
    #[arg(long)]
    pub ckpt: PathBuf,
    /// The VAE that decodes a latent model's samples.
    #[arg(long, default_value = "out/vae/vae.safetensors")]
    pub vae: PathBuf,
    /// The dataset the model was trained on (its classifier and its real images).
    #[arg(long, default_value = "digits")]
    pub data: String,
    /// Guidance scales, comma-separated (1 = none).
    #[arg(long, default_value = "4", value_delimiter = ',')]
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

/// Seed of the real digits the samples are compared with: not the training set's (seed 0).
const REAL_SEED: u64 = 0x4e1d;

// ANCHOR: score
/// Scores `req.ckpt` at every guidance scale of `req.cfg_scale`, printing one line and one
/// JSON object for each.
pub fn score_checkpoint(req: &EvaluateRequest) -> Result<Vec<EvalReport>> {
    if req.steps == 0 || req.per_class == 0 {
        return Err(Error::new(
            "--steps and --per-class must be at least 1",
            "e.g. --steps 50 --per-class 50",
        ));
    }
    let loaded = load_model(&req.ckpt)?;
    let null_label = loaded.null_label.ok_or_else(|| {
        Error::new(
            format!("{} is an unconditional model", req.ckpt.display()),
            "class accuracy needs a class-conditional checkpoint",
        )
    })?;
    let vae = if loaded.latent {
        Some(load_vae(&req.vae)?.0)
    } else {
        None
    };
    let source = DataSource::parse(&req.data)?;
    // The side of the images the classifier sees: decoded latents are larger by the VAE's factor.
    let (_, h, _) = loaded.shape;
    let size = vae.as_ref().map_or(h, |v| h * v.config.downsample_factor());
    let classifier = load_or_train_classifier(&source, size, 0, &req.classifier_cache)?;
    let n = loaded.num_classes.min(10) * req.per_class;
    let real = source.load(2 * n, size, REAL_SEED)?;
    let mut reports = Vec::new();
    for &guidance in &req.cfg_scale {
        let start = Instant::now();
        let fig = FigureOptions {
            shape: loaded.shape,
            classes: loaded.num_classes,
            null_label: Some(null_label),
            guidance,
            sample_steps: req.steps,
            per_class: req.per_class,
            scale: loaded.scale,
            seed: req.seed,
            out: PathBuf::new(),
        };
        let samples = sample_grid(&loaded.model, &loaded.diffusion, &fig, vae.is_none(), 0)?;
        let pixels = to_pixels(&samples.x, vae.as_ref(), loaded.scale);
        let report = evaluate(
            &classifier,
            pixels.view(),
            &samples.labels,
            real.images.view(),
        )?;
        println!(
            "guidance {guidance}: {report} ({:.1} s)",
            start.elapsed().as_secs_f64()
        );
        println!(
            "{{\"guidance\":{guidance},\"steps\":{},\"report\":{}}}",
            req.steps,
            report.to_json()
        );
        reports.push(report);
    }
    Ok(reports)
}
// ANCHOR_END: score

//! `minisora evaluate`: scores a trained class-conditional checkpoint — samples `per_class` of
//! every class with DDIM and classifier-free guidance, decodes them with the VAE, and reports
//! [`evaluate`]'s class accuracy and Fréchet distance (with its floor) against fresh real images.
//! The main demo scores its DiT with it, and one command compares any two checkpoints (the U-Net
//! and DiT of the book) or guidance scales on equal terms.

use super::{evaluate, load_or_train_classifier, EvalReport};
use crate::data::DataSource;
use crate::diffusion::{sample_grid, Draw, Grid};
use crate::error::{Error, Result};
use crate::models::load_model;
use crate::train::preview::to_images;
use crate::vae::train::load_vae;
use crate::vae::Codec;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// What to score (the arguments of `minisora evaluate`).
#[derive(Clone, Debug)]
pub struct EvaluateRequest {
    /// The checkpoint to score.
    pub ckpt: PathBuf,
    /// The VAE that decodes a latent model's samples.
    pub vae: PathBuf,
    /// The dataset whose classifier and real images judge the samples; `None`: the one the
    /// checkpoint was trained on (`train.dataset` in its metadata).
    pub data: Option<String>,
    /// Guidance scales (1 = none); empty: the one the checkpoint's run sampled with
    /// (`train.guidance`), else 4.
    pub cfg_scale: Vec<f32>,
    /// DDIM steps.
    pub steps: usize,
    /// Samples per class.
    pub per_class: usize,
    /// Seed of the starting noise (the real images and the classifier use their own).
    pub seed: u64,
    /// Where the evaluation classifier is cached.
    pub classifier_cache: PathBuf,
}

/// The guidance scale of a checkpoint that does not record its own (DiT's choice).
const DEFAULT_GUIDANCE: f32 = 4.0;

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
    loaded.null_label.ok_or_else(|| {
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
    let source = DataSource::parse(&dataset_of(req, &loaded.metadata)?)?;
    let &[_, h, _] = &loaded.shape[..] else {
        return Err(Error::new(
            format!("{} does not make images (C, H, W)", req.ckpt.display()),
            "evaluate scores image models",
        ));
    };
    // The side of the images the classifier sees: decoded latents are larger by the VAE's factor.
    let size = vae.as_ref().map_or(h, |v| h * v.config.downsample_factor());
    let vae = vae.map(|v| Codec::Image(Box::new(v)));
    let classifier = load_or_train_classifier(&source, size, 0, &req.classifier_cache)?;
    let n = loaded.num_classes.min(10) * req.per_class;
    let real = source.load(2 * n, size, REAL_SEED)?;
    let mut reports = Vec::new();
    let recorded = loaded
        .metadata
        .get("train.guidance")
        .and_then(|g| g.parse().ok());
    let scales = match &req.cfg_scale[..] {
        [] => vec![recorded.unwrap_or(DEFAULT_GUIDANCE)],
        given => given.to_vec(),
    };
    for guidance in scales {
        let start = Instant::now();
        let grid = Grid {
            shape: loaded.shape.clone(),
            rows: loaded.class_rows(),
            per_row: req.per_class,
            draw: Draw {
                clip_x0: vae.is_none(),
                ..Draw::ddim(req.steps, guidance, req.seed)
            },
        };
        let samples = sample_grid(&*loaded.model, &loaded.diffusion, &grid, 0, &mut |_| {})?;
        let pixels = to_images(&samples.x, vae.as_ref(), &loaded.norm);
        let report = evaluate(
            &classifier,
            pixels.view(),
            &samples.labels(),
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

/// The dataset to score against: the one asked for, else the checkpoint's own.
fn dataset_of(req: &EvaluateRequest, meta: &BTreeMap<String, String>) -> Result<String> {
    match (&req.data, meta.get("train.dataset")) {
        (Some(d), _) => Ok(d.clone()),
        (None, Some(d)) => Ok(d.clone()),
        (None, None) => Err(Error::new(
            format!(
                "{} does not record the dataset it was trained on",
                req.ckpt.display()
            ),
            "name it with --data (e.g. --data digits or --data uci-digits), or retrain the \
             model: checkpoints record it since the real-data release",
        )),
    }
}

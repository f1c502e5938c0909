//! `minisora evaluate-video`: numbers for a video checkpoint. It samples `per_class` clips of
//! every (digit, motion) class with DDIM and classifier-free guidance, decodes them frame by
//! frame with the image VAE, and scores them ([`score_clips`]): digit accuracy (majority of
//! the frames), motion accuracy (the tracked centre's main direction), speed error, identity
//! consistency, and the Fréchet video distance with its real-vs-real floor.
//!
//! The real clips and the clip scorer come from the dataset the checkpoint was trained on
//! (`train.dataset`: `moving-digits`, `moving-uci-digits`, …). The scorer is trained on
//! [`SCORER_CLIPS`] real clips on first use and cached per dataset and clip length.

use crate::diffusion::{draw, Condition, Draw, SamplerKind};
use crate::error::{Error, Result};
use crate::io::progress::Progress;
use crate::metrics::video::clips::{score_clips, VideoReport};
use crate::metrics::video::scorer::{scorer_path, ClipScorer};
use crate::metrics::ClassifierTrainOptions;
use crate::models::{load_model, Loaded};
use crate::sample::decoder;
use crate::train::preview::to_pixels;
use crate::vae::Codec;
use crate::video::moving_digits::{MovingDigits, NUM_CLASSES};
use ndarray::{concatenate, ArrayD, Axis};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Real clips the scorer trains on.
pub const SCORER_CLIPS: usize = 4000;
/// Seed of the scorer's clips, and of the real reference clips: neither is a training seed.
const SCORER_SEED: u64 = 0x5c0e;
const REAL_SEED: u64 = 0x4ea1;
/// Clips sampled at once (memory stays small; the result does not depend on it).
const CHUNK: usize = 40;

/// What `minisora evaluate-video` was asked for.
#[derive(Clone, Debug)]
pub struct VideoEvalRequest {
    pub ckpt: PathBuf,
    /// The VAE that decodes the latent frames.
    pub vae: PathBuf,
    /// Clips per class.
    pub per_class: usize,
    /// Guidance scale; `None`: the checkpoint's (`train.guidance`).
    pub guidance: Option<f32>,
    /// DDIM steps.
    pub steps: usize,
    /// Seed of the starting noise.
    pub seed: u64,
    /// The dataset that judges the clips; `None`: the checkpoint's.
    pub data: Option<String>,
    /// Where the clip scorer is cached.
    pub scorer_cache: PathBuf,
}

/// The scores, and the clips they were measured on (pixels `(N, 1, F, H, W)`, class-major).
pub struct VideoEval {
    pub report: VideoReport,
    pub pixels: ArrayD<f32>,
    pub labels: Vec<usize>,
    pub guidance: f32,
    pub seconds: f64,
}

/// The cached scorer for `gen`'s clips, or one trained now on [`SCORER_CLIPS`] real clips.
pub fn load_or_train_scorer(gen: &MovingDigits, cache: &Path) -> Result<ClipScorer> {
    let dir = cache.join(gen.dataset_name());
    let path = scorer_path(&dir, gen.frames);
    if path.is_file() {
        if let Ok(scorer) = ClipScorer::load(&path) {
            return Ok(scorer);
        }
    }
    println!(
        "training the clip scorer on {SCORER_CLIPS} real clips of {} (cached in {})",
        gen.dataset_name(),
        path.display()
    );
    let real = gen.generate(SCORER_CLIPS, SCORER_SEED)?;
    let opts = ClassifierTrainOptions {
        steps: 1000,
        ..ClassifierTrainOptions::default()
    };
    let mut scorer = ClipScorer::train(&real, SCORER_SEED, &opts)?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(&dir, e, "check the --scorer-cache folder"))?;
    scorer.save(&path)?;
    Ok(scorer)
}

/// The clip generator a checkpoint was trained on, at its clip length.
fn generator(
    loaded: &Loaded,
    ckpt: &Path,
    data: Option<&str>,
    frames: usize,
) -> Result<MovingDigits> {
    if loaded.shape.len() != 4 {
        return Err(Error::new(
            format!("{} holds an image model, not a video model", ckpt.display()),
            "pass a video checkpoint (`minisora train --model video-…`), or score an image \
             model with `minisora evaluate`",
        ));
    }
    if loaded.num_classes != NUM_CLASSES {
        return Err(Error::new(
            format!(
                "{} knows {} classes; the moving digits have {NUM_CLASSES} (digit, motion) classes",
                ckpt.display(),
                loaded.num_classes
            ),
            "score a video DiT trained on moving digits (`minisora encode-video`)",
        ));
    }
    let name = data
        .map(String::from)
        .or_else(|| loaded.metadata.get("train.dataset").cloned())
        .ok_or_else(|| {
            Error::new(
                format!("{} does not record its dataset", ckpt.display()),
                "pass --data moving-digits (or moving-uci-digits)",
            )
        })?;
    MovingDigits::from_name(&name, frames)
}

// ANCHOR: evaluate_video
/// Samples `req.per_class` clips of every class and scores them; prints the report and, last,
/// its JSON line.
pub fn evaluate_video(req: &VideoEvalRequest) -> Result<VideoEval> {
    let start = Instant::now();
    if req.steps == 0 || req.per_class == 0 {
        return Err(Error::new(
            "--steps and --per-class must be at least 1",
            "e.g. --steps 50 --per-class 4",
        ));
    }
    let loaded = load_model(&req.ckpt)?;
    let vae = decoder(&req.vae, &req.ckpt, &loaded)?;
    // the clips' own length: the latent frames, or 1 + 4(F − 1) through the video VAE
    let frames = match &vae {
        Some(Codec::Video(v)) => v.pixel_frames(loaded.shape[1]),
        _ => loaded.shape[1],
    };
    let gen = generator(&loaded, &req.ckpt, req.data.as_deref(), frames)?;
    let scorer = load_or_train_scorer(&gen, &req.scorer_cache)?;
    let guidance = req.guidance.unwrap_or_else(|| {
        let stored = loaded.metadata.get("train.guidance");
        stored.and_then(|g| g.parse().ok()).unwrap_or(1.5)
    });
    let how = Draw {
        kind: SamplerKind::Ddim { eta: 0.0 },
        steps: req.steps,
        guidance,
        clip_x0: false,
        seed: req.seed,
    };
    // class-major: every class's clips together; chunks keep the memory small
    let labels: Vec<usize> = (0..NUM_CLASSES)
        .flat_map(|c| std::iter::repeat_n(c, req.per_class))
        .collect();
    let bar = Progress::new(labels.len().div_ceil(CHUNK) as u64, "sample clips");
    let mut parts = Vec::new();
    for (i, ids) in labels.chunks(CHUNK).enumerate() {
        let chunk_how = Draw {
            seed: req.seed.wrapping_add(i as u64),
            ..how
        };
        let y = Condition::labels(ids);
        let x = draw(
            &*loaded.model,
            &loaded.diffusion,
            &loaded.shape,
            ids.len(),
            &y,
            &chunk_how,
            &mut |_| {},
        )?;
        parts.push(to_pixels(&x, vae.as_ref(), &loaded.norm));
        bar.step(0.0);
    }
    bar.finish();
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    let pixels = concatenate(Axis(0), &views).expect("chunks share their shape");
    let real = gen.generate(2 * req.per_class * NUM_CLASSES, REAL_SEED)?;
    let clips = pixels
        .view()
        .into_dimensionality()
        .expect("(N, 1, F, H, W)");
    let report = score_clips(&scorer, clips, &labels, &real, req.seed)?;
    println!("{report} (guidance {guidance}, DDIM {} steps)", req.steps);
    println!("{}", report.to_json());
    Ok(VideoEval {
        report,
        pixels,
        labels,
        guidance,
        seconds: start.elapsed().as_secs_f64(),
    })
}
// ANCHOR_END: evaluate_video

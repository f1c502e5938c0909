//! `minisora evaluate-frames`: how well a video checkpoint continues given frames. Real
//! clips of the checkpoint's dataset are encoded with the VAE; the model samples clips of the
//! same classes with no frame given (the baseline), with the first frame given (image →
//! video), the first quarter (continuing a clip) and the first and last (interpolation), and
//! once more with the first frame given and the *null* label (only the frame names the digit).
//!
//! Measured on the frames the model generated (the given ones excluded):
//! - **identity**: the share of generated frames whose digit (the clip scorer's frame
//!   classifier) is the real clip's digit — the given frame's digit;
//! - **motion accuracy**: the share of clips whose tracked main direction is the real clip's
//!   (tracked over the whole clip, given frames included; not scored with the null label).
//!
//! Every setting starts from the same noise. The last stdout line is one JSON object.

use crate::diffusion::{draw_from, Condition, Draw, FrameMask, MaskKind, SamplerKind};
use crate::error::{Error, Result};
use crate::evaluate_video::load_or_train_scorer;
use crate::io::image::{save_grid, GridLayout};
use crate::io::json::Json;
use crate::io::progress::{progress, say};
use crate::metrics::video::scorer::frame_input;
use crate::metrics::video::track::{main_motion, track};
use crate::models::load_model;
use crate::sample::{decoder, strips};
use crate::sample_frames::{draw_given, encode_frames};
use crate::train::preview::to_pixels;
use crate::video::checkpoint::load_video_dit;
use crate::video::moving_digits::{unlabel, MovingDigits};
use ndarray::{concatenate, ArrayD, Axis, Ix5};
use std::path::PathBuf;
use std::time::Instant;

/// Seed of the real clips whose frames are given (not a training seed).
const GIVEN_SEED: u64 = 0x6f72_6967;
/// Clips sampled at once.
const CHUNK: usize = 40;

/// What `minisora evaluate-frames` was asked for.
#[derive(Clone, Debug)]
pub struct FramesEvalRequest {
    pub ckpt: PathBuf,
    pub vae: PathBuf,
    /// Real clips whose frames are given (their classes are asked for).
    pub clips: usize,
    pub steps: usize,
    /// Guidance; `None`: the checkpoint's.
    pub guidance: Option<f32>,
    pub seed: u64,
    pub scorer_cache: PathBuf,
    /// Where the figure goes (`<out>/image_to_video.png`).
    pub out: PathBuf,
}

/// One setting's scores.
struct Scores {
    identity: f64,
    motion: Option<f64>,
}

/// The settings: a name, the frames given, and whether the label is kept.
fn settings(frames: usize) -> Vec<(&'static str, Vec<bool>, bool)> {
    vec![
        ("unconditioned", vec![false; frames], true),
        ("image_to_video", MaskKind::ImageHead.frames(frames), true),
        ("extend", MaskKind::QuarterHead.frames(frames), true),
        ("interpolate", MaskKind::Interpolate.frames(frames), true),
        (
            "image_to_video_null_label",
            MaskKind::ImageHead.frames(frames),
            false,
        ),
    ]
}

// ANCHOR: evaluate_frames
/// Samples every setting and scores it; prints a line per setting and, last, the JSON.
pub fn evaluate_frames(req: &FramesEvalRequest) -> Result<Json> {
    let start = Instant::now();
    if req.steps == 0 || req.clips == 0 {
        return Err(Error::new(
            "--steps and --clips must be at least 1",
            "e.g. --steps 25 --clips 80",
        ));
    }
    let loaded = load_model(&req.ckpt)?;
    let video = load_video_dit(&req.ckpt)?;
    let vae = decoder(&req.vae, &req.ckpt, &loaded)?.ok_or_else(|| {
        Error::new(
            format!("{} is not a latent model", req.ckpt.display()),
            "evaluate a latent video checkpoint",
        )
    })?;
    let frames = loaded.shape[1];
    let name = loaded
        .metadata
        .get("train.dataset")
        .cloned()
        .ok_or_else(|| {
            Error::new(
                format!("{} does not record its dataset", req.ckpt.display()),
                "evaluate a checkpoint trained on moving digits",
            )
        })?;
    let gen = MovingDigits::from_name(&name, frames)?;
    let scorer = load_or_train_scorer(&gen, &req.scorer_cache)?;
    let real = gen.generate(req.clips, GIVEN_SEED)?;
    let x0 = encode_frames(&req.vae, real.clips.view(), &loaded.norm)?; // (N, C, F, h, w)
    let guidance = req.guidance.unwrap_or_else(|| {
        let stored = loaded.metadata.get("train.guidance");
        stored.and_then(|g| g.parse().ok()).unwrap_or(1.5)
    });
    let null = loaded.null_label.unwrap_or(0);
    let all = settings(frames);
    let bar = progress(
        (all.len() * req.clips.div_ceil(CHUNK)) as u64,
        "evaluate-frames",
    );
    let mut fields = Vec::new();
    let mut figure = Vec::new();
    for (name, given, labelled) in &all {
        let mut parts = Vec::new();
        for (i, idx) in (0..req.clips).collect::<Vec<_>>().chunks(CHUNK).enumerate() {
            let how = Draw {
                kind: SamplerKind::Ddim { eta: 0.0 },
                steps: req.steps,
                guidance,
                clip_x0: false,
                seed: req.seed.wrapping_add(i as u64),
            };
            let ids: Vec<usize> = idx
                .iter()
                .map(|&j| if *labelled { real.labels[j] } else { null })
                .collect();
            let y = Condition::labels(&ids);
            let noise = how.noise(idx.len(), &loaded.shape);
            let x = if given.iter().any(|&g| g) {
                let held = x0.select(Axis(0), idx);
                let mask = FrameMask::repeat(given, idx.len());
                draw_given(&video, &loaded.diffusion, noise, &y, &how, held, mask)?
            } else {
                draw_from(&video, &loaded.diffusion, noise, &y, &how, &mut |_| {})?
            };
            parts.push(to_pixels(&x, Some(&vae), &loaded.norm));
            bar.inc(1);
        }
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        let pixels = concatenate(Axis(0), &views).expect("chunks share their shape");
        let s = score(&scorer.digit, &pixels, &real.labels, given, *labelled);
        if matches!(*name, "unconditioned" | "image_to_video") {
            let k = 4.min(req.clips);
            figure.push(pixels.slice_axis(Axis(0), (0..k).into()).to_owned());
        }
        let motion = s
            .motion
            .map_or("–".into(), |m| format!("{:.1} %", 100.0 * m));
        say(
            &bar,
            format!(
                "{name}: identity {:.1} % of the generated frames, motion {motion}",
                100.0 * s.identity
            ),
        );
        let mut pairs = vec![("identity", Json::num(s.identity, 4))];
        if let Some(m) = s.motion {
            pairs.push(("motion_accuracy", Json::num(m, 4)));
        }
        fields.push((name.to_string(), Json::obj(pairs)));
    }
    bar.finish_and_clear();
    // the figure: real clips, then the same classes unconditioned, then from their first frame
    let k = 4.min(req.clips);
    let real_px = real.clips.slice_axis(Axis(0), (0..k).into()).to_owned();
    let rows = [real_px.into_dyn(), figure[0].clone(), figure[1].clone()];
    let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
    let grid = concatenate(Axis(0), &views).expect("same clips");
    std::fs::create_dir_all(&req.out).map_err(|e| Error::io(&req.out, e, "check --out"))?;
    let path = req.out.join("image_to_video.png");
    save_grid(
        &path,
        strips(&grid).view(),
        GridLayout::new(frames).pad(2).upscale(2),
    )?;
    println!(
        "wrote {} (rows: real clips; the same classes unconditioned; from the real first frame)",
        path.display()
    );
    fields.extend([
        ("clips".to_string(), Json::num(req.clips as f64, 0)),
        ("steps".to_string(), Json::num(req.steps as f64, 0)),
        ("guidance".to_string(), Json::num(guidance as f64, 2)),
        (
            "seconds".to_string(),
            Json::num(start.elapsed().as_secs_f64(), 1),
        ),
    ]);
    let json = Json::obj(fields);
    println!("{}", json.to_line());
    Ok(json)
}
// ANCHOR_END: evaluate_frames

/// Identity on the generated frames, and (with labels) motion accuracy.
fn score(
    digit: &crate::metrics::Classifier,
    pixels: &ArrayD<f32>,
    labels: &[usize],
    given: &[bool],
    labelled: bool,
) -> Scores {
    let clips = pixels.view().into_dimensionality::<Ix5>().expect("clips");
    let f = given.len();
    let per_frame = digit.predict(frame_input(clips).view()); // (N·F)
    let (mut same, mut generated) = (0usize, 0usize);
    for (clip, &l) in per_frame.chunks(f).zip(labels) {
        for (d, _) in clip.iter().zip(given).filter(|(_, &g)| !g) {
            same += usize::from(*d == unlabel(l).0);
            generated += 1;
        }
    }
    let motion = labelled.then(|| {
        let right = clips
            .outer_iter()
            .zip(labels)
            .filter(|(clip, &l)| main_motion(&track(*clip)).is_some_and(|(m, _)| m == unlabel(l).1))
            .count();
        right as f64 / labels.len() as f64
    });
    Scores {
        identity: same as f64 / generated.max(1) as f64,
        motion,
    }
}

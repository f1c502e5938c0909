//! `minisora evaluate-video --captions`: how well a text-conditioned video DiT does what its
//! captions say, on captions of compositions it saw in training and on the held-out ones it
//! never saw ([`crate::video::held_out`]).
//!
//! For each split, captions are drawn from the colour-digit grammar; one clip is generated
//! per caption (DDIM, classifier-free guidance on the text), decoded by the VAE and scored by
//! [`caption_accuracy`]: every digit the caption mentions must be in its colour's channel,
//! be the asked digit, move the asked way at the asked speed. FVD compares the generated
//! clips of both splits with as many real ones.

use crate::diffusion::{draw, Condition, Draw, SamplerKind};
use crate::error::{Error, Result};
use crate::evaluate_video::load_or_train_scorer;
use crate::io::json::Json;
use crate::io::progress::Progress;
use crate::metrics::video::captions::{caption_accuracy, rgb_fvd, CaptionReport};
use crate::models::{load_model, Loaded};
use crate::sample::decoder;
use crate::text::tokenizer::{tokenize, Tokens};
use crate::train::preview::to_pixels;
use crate::vae::Codec;
use crate::video::colour_digits::{CaptionedClips, ColourDigits};
use crate::video::held_out::Split;
use crate::video::moving_digits::MovingDigits;
use crate::video::patch::{clips_to_frames, frames_to_clips};
use ndarray::{concatenate, Array5, ArrayD, Axis, Ix5};
use std::path::PathBuf;
use std::time::Instant;

/// Seeds of the evaluation captions and of the real clips FVD compares with: not training
/// seeds.
const SEEN_SEED: u64 = 0x5ee7;
const HELD_SEED: u64 = 0x04e1_d0c7;
const REAL_SEED: u64 = 0x4ea1_c010;
/// Clips sampled at once.
const CHUNK: usize = 32;

/// What `minisora evaluate-video --captions` was asked for.
#[derive(Clone, Debug)]
pub struct CaptionEvalRequest {
    pub ckpt: PathBuf,
    pub vae: PathBuf,
    /// Captions (one clip each) per split.
    pub clips: usize,
    pub guidance: f32,
    /// DDIM steps.
    pub steps: usize,
    pub seed: u64,
    pub scorer_cache: PathBuf,
}

/// The scores, and what they were measured on.
pub struct CaptionEval {
    pub seen: CaptionReport,
    pub held_out: CaptionReport,
    pub fvd: f64,
    pub fvd_floor: f64,
    /// The evaluation captions and their generated clips `(N, 3, F, H, W)`, seen then held out.
    pub captions: Vec<String>,
    pub pixels: Array5<f32>,
    pub seconds: f64,
}

impl CaptionEval {
    /// The figures as one JSON object.
    pub fn to_json(&self, guidance: f32) -> Json {
        let (s, h) = (&self.seen, &self.held_out);
        Json::obj([
            ("caption_accuracy_seen", Json::num(s.accuracy, 4)),
            ("caption_accuracy_held_out", Json::num(h.accuracy, 4)),
            ("seen_one_digit", Json::num(s.one_digit_accuracy, 4)),
            ("seen_two_digit", Json::num(s.two_digit_accuracy, 4)),
            ("held_out_one_digit", Json::num(h.one_digit_accuracy, 4)),
            ("held_out_two_digit", Json::num(h.two_digit_accuracy, 4)),
            ("seen_digit", Json::num(s.digit_accuracy, 4)),
            ("seen_motion", Json::num(s.motion_accuracy, 4)),
            ("seen_speed", Json::num(s.speed_accuracy, 4)),
            ("held_out_digit", Json::num(h.digit_accuracy, 4)),
            ("held_out_motion", Json::num(h.motion_accuracy, 4)),
            ("held_out_speed", Json::num(h.speed_accuracy, 4)),
            ("fvd", Json::num(self.fvd, 3)),
            ("fvd_floor", Json::num(self.fvd_floor, 3)),
            ("clips_per_split", Json::num(s.clips as f64, 0)),
            ("guidance", Json::num(guidance as f64, 2)),
        ])
    }
}

// ANCHOR: generate_clips
/// One clip per caption from a text-conditioned model, decoded to pixels `(N, 3, F, H, W)`:
/// DDIM with `steps` steps and guidance `guidance` on the text (the unconditional half reads
/// the null caption). Chunk `i` draws its noise from `seed + i`.
pub fn generate_clips(
    loaded: &Loaded,
    vae: Option<&Codec>,
    captions: &[Tokens],
    guidance: f32,
    steps: usize,
    seed: u64,
) -> Result<Array5<f32>> {
    if !loaded.metadata.contains_key("text.vocab") {
        return Err(Error::new(
            "the checkpoint is not a text-conditioned video DiT (no text.* metadata)",
            "pass a checkpoint written by `minisora demo-text` (out/demo-text/video-dit/video.safetensors)",
        ));
    }
    let bar = Progress::new(captions.len().div_ceil(CHUNK) as u64, "generate clips");
    let mut parts: Vec<ArrayD<f32>> = Vec::new();
    for (i, chunk) in captions.chunks(CHUNK).enumerate() {
        let how = Draw {
            kind: SamplerKind::Ddim { eta: 0.0 },
            steps,
            guidance,
            clip_x0: false,
            seed: seed.wrapping_add(i as u64),
        };
        let y = Condition::Captions(chunk.iter().cloned().map(Some).collect());
        let x = draw(
            &*loaded.model,
            &loaded.diffusion,
            &loaded.shape,
            chunk.len(),
            &y,
            &how,
            &mut |_| {},
        )?;
        parts.push(to_pixels(&x, vae, &loaded.norm));
        bar.step(0.0);
    }
    bar.finish();
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    let pixels = concatenate(Axis(0), &views).expect("chunks share their shape");
    Ok(pixels
        .into_dimensionality::<Ix5>()
        .expect("(N, C, F, H, W)"))
}
// ANCHOR_END: generate_clips

/// The evaluation captions of one split: `n` drawn from the grammar (a fixed seed).
pub fn eval_captions(frames: usize, n: usize, split: Split) -> Result<CaptionedClips> {
    let seed = match split {
        Split::Train => SEEN_SEED,
        Split::HeldOut => HELD_SEED,
    };
    ColourDigits {
        frames,
        ..ColourDigits::default()
    }
    .generate(n, seed, split)
}

// ANCHOR: evaluate_captions
/// Generates a clip for each of `req.clips` seen and held-out captions and scores them.
pub fn evaluate_captions(req: &CaptionEvalRequest) -> Result<CaptionEval> {
    let start = Instant::now();
    if req.steps == 0 || req.clips == 0 {
        return Err(Error::new(
            "--steps and --clips must be at least 1",
            "e.g. --steps 25 --clips 64",
        ));
    }
    let loaded = load_model(&req.ckpt)?;
    let vae = decoder(&req.vae, &req.ckpt, &loaded)?;
    let frames = loaded.shape[1];
    // each colour channel is a grayscale moving-digit clip: the moving digits' scorer reads it
    let gray = MovingDigits {
        frames,
        ..MovingDigits::default()
    };
    let scorer = load_or_train_scorer(&gray, &req.scorer_cache)?;
    let mut reports = Vec::new();
    let mut all = Vec::new();
    let mut captions = Vec::new();
    for (k, split) in [Split::Train, Split::HeldOut].into_iter().enumerate() {
        let set = eval_captions(frames, req.clips, split)?;
        let tokens = set
            .captions
            .iter()
            .map(|c| tokenize(c))
            .collect::<Result<Vec<_>>>()?;
        let seed = req.seed.wrapping_add(1000 * k as u64);
        let pixels = generate_clips(
            &loaded,
            vae.as_ref(),
            &tokens,
            req.guidance,
            req.steps,
            seed,
        )?;
        let report = caption_accuracy(&scorer, pixels.view(), &set.specs)?;
        println!("{} captions: {report}", split.name());
        reports.push(report);
        all.push(pixels);
        captions.extend(set.captions);
    }
    let views: Vec<_> = all.iter().map(|p| p.view()).collect();
    let pixels = concatenate(Axis(0), &views).expect("same clip shape");
    // the real clips: as many, half of each split, so the mix matches the generated one
    let gen = ColourDigits {
        frames,
        ..ColourDigits::default()
    };
    let n = req.clips;
    let real_seen = gen.generate(2 * n, REAL_SEED, Split::Train)?;
    let real_held = gen.generate(2 * n, REAL_SEED ^ 1, Split::HeldOut)?;
    // set A and set B of real clips for the floor, each half seen, half held out
    let real = concatenate(
        Axis(0),
        &[
            real_seen.clips.slice(ndarray::s![..n, .., .., .., ..]),
            real_held.clips.slice(ndarray::s![..n, .., .., .., ..]),
            real_seen.clips.slice(ndarray::s![n.., .., .., .., ..]),
            real_held.clips.slice(ndarray::s![n.., .., .., .., ..]),
        ],
    )
    .expect("same clip shape");
    let (fvd, fvd_floor) = rgb_fvd(&scorer, pixels.view(), real.view())?;
    let held_out = reports.pop().expect("two splits");
    let seen = reports.pop().expect("two splits");
    println!(
        "FVD {fvd:.1} (real vs real {fvd_floor:.1}), guidance {}, DDIM {} steps",
        req.guidance, req.steps
    );
    Ok(CaptionEval {
        seen,
        held_out,
        fvd,
        fvd_floor,
        captions,
        pixels,
        seconds: start.elapsed().as_secs_f64(),
    })
}
// ANCHOR_END: evaluate_captions

/// The same measure on `n` real clips of each split through the VAE (encoded and decoded
/// frame by frame): what a perfect video model could score through this VAE.
pub fn vae_ceiling(
    vae: &std::path::Path,
    frames: usize,
    n: usize,
    scorer_cache: &std::path::Path,
) -> Result<(CaptionReport, CaptionReport)> {
    let (model, _) = crate::vae::train::load_vae(vae)?;
    let gray = MovingDigits {
        frames,
        ..MovingDigits::default()
    };
    let scorer = load_or_train_scorer(&gray, scorer_cache)?;
    let mut out = Vec::new();
    for split in [Split::Train, Split::HeldOut] {
        let set = eval_captions(frames, n, split)?;
        // frame by frame through the VAE, and back into clips
        let x = clips_to_frames(set.clips.view());
        let y = frames_to_clips(model.reconstruct(&x), frames);
        out.push(caption_accuracy(&scorer, y.view(), &set.specs)?);
    }
    let held = out.pop().expect("two");
    Ok((out.pop().expect("two"), held))
}

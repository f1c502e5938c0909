//! Numbers for generated clips, each asked for a (digit, motion) class:
//!
//! - **digit accuracy**: the clip is right when the majority of its frames' digits (by the
//!   frame classifier, [`ClipScorer::digit`], each frame centred on its digit) is the asked digit (ties go to the smaller digit);
//! - **motion accuracy**: the clip is right when the motion read off its pixels
//!   ([`track::main_motion`](super::track::main_motion), no network) is the asked motion; a
//!   clip whose digit cannot be tracked counts as wrong;
//! - **speed error**: the asked class has no speed, so this is the mean distance from each
//!   tracked clip's measured speed to the *nearest speed the real clips use* (1 or 2 px/frame
//!   by default): 0 for a clip moving at a real speed, up to 0.5 between two, more outside;
//! - **consistency**: the mean over clips of the fraction of frames showing the clip's
//!   majority digit (1 when the digit never changes identity);
//! - **FVD**: the Fréchet distance between the clip classifier's features of the generated
//!   clips and of a set `A` of real clips with the same labels, and its **floor**: the same
//!   distance for a second, disjoint real set `B` with the same labels, $d(B, A)$.
//!
//! $d = \lVert\mu_1 - \mu_2\rVert^2 + \mathrm{tr}(\Sigma_1 + \Sigma_2 - 2(\Sigma_1\Sigma_2)^{1/2})$
//! ([`frechet_from_stats`]).

use super::scorer::{clip_input, frame_input, ClipScorer};
use super::track::{main_motion, track};
use crate::error::{Error, Result};
use crate::io::json::Json;
use crate::metrics::{frechet_from_stats, FeatureStats};
use crate::tensor::rng;
use crate::video::clip_set::ClipSet;
use crate::video::moving_digits::{unlabel, NUM_CLASSES};
use ndarray::{ArrayView5, Axis};
use ndarray_rand::rand::seq::SliceRandom;
use std::fmt;

/// The scores of a set of generated clips (see the module doc).
#[derive(Clone, Debug, PartialEq)]
pub struct VideoReport {
    pub digit_accuracy: f64,
    pub motion_accuracy: f64,
    /// Mean |measured speed − nearest real speed|, px/frame, over tracked clips (NaN if none).
    pub speed_error: f64,
    pub consistency: f64,
    pub fvd: f64,
    pub fvd_floor: f64,
    /// Clips scored.
    pub clips: usize,
    /// Clips whose motion could be measured (ink in at least two frames, not standing still).
    pub tracked: usize,
}

impl VideoReport {
    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        Json::obj([
            ("digit_accuracy", Json::num(self.digit_accuracy, 4)),
            ("motion_accuracy", Json::num(self.motion_accuracy, 4)),
            ("speed_error", Json::num(self.speed_error, 4)),
            ("consistency", Json::num(self.consistency, 4)),
            ("fvd", Json::num(self.fvd, 4)),
            ("fvd_floor", Json::num(self.fvd_floor, 4)),
            ("clips", Json::Num(self.clips as f64)),
            ("tracked", Json::Num(self.tracked as f64)),
        ])
        .to_line()
    }
}

impl fmt::Display for VideoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} clips: digit {:.1} %, motion {:.1} %, speed error {:.2} px/frame ({} tracked), \
             consistency {:.3}, FVD {:.3} (real vs real {:.3})",
            self.clips,
            100.0 * self.digit_accuracy,
            100.0 * self.motion_accuracy,
            self.speed_error,
            self.tracked,
            self.consistency,
            self.fvd,
            self.fvd_floor
        )
    }
}

// ANCHOR: score_clips
/// Scores `generated` clips `(N, 1, F, H, W)` in `[−1, 1]`, asked for the classes `asked`,
/// against `real` clips, which need twice as many clips of each asked class as were asked for
/// (the two disjoint reference sets are drawn from them with `seed`).
pub fn score_clips(
    scorer: &ClipScorer,
    generated: ArrayView5<f32>,
    asked: &[usize],
    real: &ClipSet,
    seed: u64,
) -> Result<VideoReport> {
    check(scorer, generated, asked, real)?;
    let (n, _, f, _, _) = generated.dim();

    // Per-frame digits → majority per clip, and the share of frames that agree with it.
    let frames = frame_input(generated); // (N·F, 1, H, W)
    let per_frame = scorer.digit.predict(frames.view()); // (N·F)
    let (mut digit_right, mut consistency) = (0usize, 0.0f64);
    for (clip, &l) in per_frame.chunks(f).zip(asked) {
        let (top, votes) = majority_digit(clip);
        digit_right += usize::from(top == unlabel(l).0);
        consistency += votes as f64 / f as f64;
    }

    // Motion read off the pixels; speed against the real speeds.
    let mut real_speeds: Vec<usize> = real.speeds.clone();
    real_speeds.sort_unstable();
    real_speeds.dedup();
    let (mut motion_right, mut tracked, mut speed_err) = (0usize, 0usize, 0.0f64);
    for (clip, &l) in generated.outer_iter().zip(asked) {
        if let Some((m, speed)) = main_motion(&track(clip)) {
            tracked += 1;
            motion_right += usize::from(m == unlabel(l).1);
            speed_err += real_speeds
                .iter()
                .map(|&s| (speed as f64 - s as f64).abs())
                .fold(f64::INFINITY, f64::min);
        }
    }

    // Two disjoint real sets with the asked labels.
    let (set_a, set_b) = reference_sets(real, asked, seed)?;
    let stats = |clips: ArrayView5<f32>| {
        FeatureStats::new(scorer.video.features(clip_input(clips).view()).view())
    };
    let stats_a = stats(real.clips.select(Axis(0), &set_a).view());
    let stats_b = stats(real.clips.select(Axis(0), &set_b).view());
    let stats_g = stats(generated);
    Ok(VideoReport {
        digit_accuracy: digit_right as f64 / n as f64,
        motion_accuracy: motion_right as f64 / n as f64,
        speed_error: speed_err / tracked as f64,
        consistency: consistency / n as f64,
        fvd: frechet_from_stats(&stats_g, &stats_a),
        fvd_floor: frechet_from_stats(&stats_b, &stats_a),
        clips: n,
        tracked,
    })
}
// ANCHOR_END: score_clips

/// The digit most frames of a clip show, by the frame classifier's per-frame digits (ties go
/// to the smaller digit), and how many frames show it.
pub fn majority_digit(per_frame: &[usize]) -> (usize, usize) {
    let mut votes = [0usize; 10];
    for &d in per_frame {
        votes[d.min(9)] += 1;
    }
    let top = (0..10)
        .max_by_key(|&d| (votes[d], std::cmp::Reverse(d)))
        .unwrap_or(0);
    (top, votes[top])
}

/// For each asked clip, one real clip of its class for `A` and another for `B`, drawn without
/// replacement in an order shuffled by `seed`.
fn reference_sets(real: &ClipSet, asked: &[usize], seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    let mut pools: Vec<Vec<usize>> = vec![Vec::new(); NUM_CLASSES];
    for (i, &l) in real.labels.iter().enumerate() {
        pools[l].push(i);
    }
    let mut r = rng(seed);
    for p in &mut pools {
        p.shuffle(&mut r);
    }
    let mut wanted = vec![0usize; NUM_CLASSES];
    for &l in asked {
        wanted[l] += 1;
    }
    if let Some(l) = (0..NUM_CLASSES).find(|&l| pools[l].len() < 2 * wanted[l]) {
        return Err(Error::new(
            format!(
                "{} real clips of class {:?} for {} generated ones",
                pools[l].len(),
                real.class_names[l],
                wanted[l]
            ),
            "give at least twice as many real clips of each class as generated (two disjoint \
             reference sets), e.g. a balanced real set of 2·N clips for N balanced ones",
        ));
    }
    let mut used = vec![0usize; NUM_CLASSES];
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for &l in asked {
        a.push(pools[l][used[l]]);
        b.push(pools[l][wanted[l] + used[l]]);
        used[l] += 1;
    }
    Ok((a, b))
}

/// Shapes, counts and labels a caller could get wrong, as errors.
fn check(
    scorer: &ClipScorer,
    generated: ArrayView5<f32>,
    asked: &[usize],
    real: &ClipSet,
) -> Result<()> {
    let (n, c, f, h, w) = generated.dim();
    let (want_f, size) = (scorer.frames, scorer.size);
    for (what, (c, f, h, w)) in [
        ("generated clips", (c, f, h, w)),
        ("real clips", {
            let (_, c, f, h, w) = real.clips.dim();
            (c, f, h, w)
        }),
    ] {
        if (c, f, h, w) != (1, want_f, size, size) {
            return Err(Error::new(
                format!("the {what} are (C, F, H, W) = ({c}, {f}, {h}, {w})"),
                format!(
                    "the clip scorer reads (1, {want_f}, {size}, {size}): score clips of the \
                     frame count and size it was trained on, or train one for them"
                ),
            ));
        }
    }
    if n < 2 {
        return Err(Error::new(
            format!("{n} generated clips: a Fréchet distance needs a covariance"),
            "score at least 2 clips (hundreds for a meaningful FVD)",
        ));
    }
    if asked.len() != n {
        return Err(Error::new(
            format!("{n} clips but {} labels", asked.len()),
            "give the class each clip was generated for",
        ));
    }
    if let Some(&bad) = asked.iter().find(|&&l| l >= NUM_CLASSES) {
        return Err(Error::new(
            format!("label {bad}, but there are {NUM_CLASSES} (digit, motion) classes"),
            "use labels 4·digit + motion, below 40",
        ));
    }
    Ok(())
}

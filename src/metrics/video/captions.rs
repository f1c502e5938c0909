//! Does a colour clip show what its caption says? Each digit a caption mentions is judged in
//! its colour's channel, which in a real clip is exactly a grayscale moving-digit clip
//! ([`crate::video::colour_digits`]), so the [`ClipScorer`] trained on grayscale moving digits
//! reads it unchanged:
//!
//! - **there**: the majority of the channel's frames, by the frame classifier, is the asked
//!   digit ([`majority_digit`], as [`score_clips`](super::clips::score_clips) votes);
//! - **motion**: the direction read off the channel's pixels ([`main_motion`]) is the asked one
//!   (an untrackable channel is wrong);
//! - **speed**: no speed asked, or the measured speed within [`SPEED_TOLERANCE`] of the asked
//!   one (an untrackable channel is wrong when a speed is asked).
//!
//! A clip scores 1 when every clause of every digit holds, else 0; the report has that
//! accuracy over all clips and over one- and two-digit clips, and the share of mentioned
//! digits right on each clause.
//!
//! **RGB FVD** ([`rgb_fvd`]): the clip classifier's features of each channel, concatenated,
//! $\phi(x) = [\phi_{\text{video}}(x_R), \phi_{\text{video}}(x_G), \phi_{\text{video}}(x_B)]$
//! (3 × the feature width), and the Fréchet distance of generated to real set `A`, with the
//! floor $d(B, A)$ of a disjoint real set `B` of the same size, as `score_clips` has it.

use super::clips::majority_digit;
use super::scorer::{clip_input, frame_input, ClipScorer};
use super::track::{main_motion, track};
use crate::error::{Error, Result};
use crate::io::json::Json;
use crate::metrics::{frechet_from_stats, FeatureStats};
use crate::video::captions::ClipSpec;
use ndarray::{concatenate, s, Array2, Array5, ArrayView5, Axis};
use std::fmt;

/// How far (px/frame) a measured speed may be from the asked one: half the step between the
/// two speeds.
pub const SPEED_TOLERANCE: f32 = 0.5;

/// How well clips show their captions (see the module doc). Accuracies are fractions; one
/// over a set with no such clips is NaN.
#[derive(Clone, Debug, PartialEq)]
pub struct CaptionReport {
    /// Clips with every clause right.
    pub accuracy: f64,
    pub one_digit_accuracy: f64,
    pub two_digit_accuracy: f64,
    /// Mentioned digits shown (majority of frames) in their colour.
    pub digit_accuracy: f64,
    /// Mentioned digits moving the asked way.
    pub motion_accuracy: f64,
    /// Mentioned digits at the asked speed (or no speed asked).
    pub speed_accuracy: f64,
    pub clips: usize,
    pub one_digit_clips: usize,
    pub two_digit_clips: usize,
}

impl CaptionReport {
    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        Json::obj([
            ("accuracy", Json::num(self.accuracy, 4)),
            ("one_digit_accuracy", Json::num(self.one_digit_accuracy, 4)),
            ("two_digit_accuracy", Json::num(self.two_digit_accuracy, 4)),
            ("digit_accuracy", Json::num(self.digit_accuracy, 4)),
            ("motion_accuracy", Json::num(self.motion_accuracy, 4)),
            ("speed_accuracy", Json::num(self.speed_accuracy, 4)),
            ("clips", Json::Num(self.clips as f64)),
            ("one_digit_clips", Json::Num(self.one_digit_clips as f64)),
            ("two_digit_clips", Json::Num(self.two_digit_clips as f64)),
        ])
        .to_line()
    }
}

impl fmt::Display for CaptionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} clips: caption {:.1} % (one digit {:.1} % of {}, two digits {:.1} % of {}); \
             per digit: digit {:.1} %, motion {:.1} %, speed {:.1} %",
            self.clips,
            100.0 * self.accuracy,
            100.0 * self.one_digit_accuracy,
            self.one_digit_clips,
            100.0 * self.two_digit_accuracy,
            self.two_digit_clips,
            100.0 * self.digit_accuracy,
            100.0 * self.motion_accuracy,
            100.0 * self.speed_accuracy
        )
    }
}

/// Scores clips `(N, 3, F, H, W)` in `[−1, 1]` against the specs they were asked for.
pub fn caption_accuracy(
    scorer: &ClipScorer,
    clips: ArrayView5<f32>,
    specs: &[ClipSpec],
) -> Result<CaptionReport> {
    check_rgb(scorer, clips, "clips", false)?;
    let (n, _, f, h, w) = clips.dim();
    if specs.len() != n {
        return Err(Error::new(
            format!("{n} clips but {} specs", specs.len()),
            "give the spec each clip was generated for",
        ));
    }
    for spec in specs {
        spec.validate()?;
    }
    // ANCHOR: caption_accuracy
    // Every mentioned digit's channel as a grayscale clip: (J, 1, F, H, W), J = digits.
    let jobs: Vec<(usize, usize)> = specs
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.digits.iter().map(move |d| (i, d.colour.channel())))
        .collect();
    let mut grey = Array5::from_elem((jobs.len(), 1, f, h, w), -1.0f32);
    for (j, &(i, c)) in jobs.iter().enumerate() {
        grey.slice_mut(s![j, 0, .., .., ..])
            .assign(&clips.slice(s![i, c, .., .., ..]));
    }
    let per_frame = scorer.digit.predict(frame_input(grey.view()).view()); // (J·F)

    let mut right = [0usize; 3]; // digit, motion, speed
    let (mut all, mut by_count, mut count) = (0usize, [0usize; 2], [0usize; 2]);
    let mut j = 0;
    for spec in specs {
        let mut clip_ok = true;
        for d in &spec.digits {
            let (top, _) = majority_digit(&per_frame[j * f..(j + 1) * f]);
            let moved = main_motion(&track(grey.slice(s![j, .., .., .., ..])));
            let digit_ok = top == d.digit;
            let motion_ok = moved.is_some_and(|(m, _)| m == d.motion);
            let speed_ok = match d.speed {
                None => true,
                Some(want) => moved.is_some_and(|(_, v)| {
                    (v - want.px_per_frame() as f32).abs() <= SPEED_TOLERANCE
                }),
            };
            for (r, ok) in right.iter_mut().zip([digit_ok, motion_ok, speed_ok]) {
                *r += usize::from(ok);
            }
            clip_ok &= digit_ok && motion_ok && speed_ok;
            j += 1;
        }
        let k = spec.digits.len() - 1; // 0: one digit, 1: two
        count[k] += 1;
        by_count[k] += usize::from(clip_ok);
        all += usize::from(clip_ok);
    }
    // ANCHOR_END: caption_accuracy
    let share = |a: usize, b: usize| a as f64 / b as f64; // NaN when b = 0
    Ok(CaptionReport {
        accuracy: share(all, n),
        one_digit_accuracy: share(by_count[0], count[0]),
        two_digit_accuracy: share(by_count[1], count[1]),
        digit_accuracy: share(right[0], jobs.len()),
        motion_accuracy: share(right[1], jobs.len()),
        speed_accuracy: share(right[2], jobs.len()),
        clips: n,
        one_digit_clips: count[0],
        two_digit_clips: count[1],
    })
}

/// The clip classifier's features of each channel, side by side: `(N, 3·D)`.
pub fn rgb_features(scorer: &ClipScorer, clips: ArrayView5<f32>) -> Array2<f32> {
    let per_channel: Vec<Array2<f32>> = (0..clips.dim().1)
        .map(|c| {
            let one = clips.slice(s![.., c..c + 1, .., .., ..]); // (N, 1, F, H, W)
            scorer.video.features(clip_input(one).view()) // (N, D)
        })
        .collect();
    let views: Vec<_> = per_channel.iter().map(|a| a.view()).collect();
    concatenate(Axis(1), &views).expect("one feature width") // (N, 3·D)
}

/// The Fréchet video distance of `generated` clips `(N, 3, F, H, W)` to the first `N` of the
/// `real` clips, and its floor: the distance of the next `N` real clips to those first `N`.
/// `real` needs at least `2N` clips, drawn like the generated ones (same split and mix).
pub fn rgb_fvd(
    scorer: &ClipScorer,
    generated: ArrayView5<f32>,
    real: ArrayView5<f32>,
) -> Result<(f64, f64)> {
    check_rgb(scorer, generated, "generated clips", true)?;
    check_rgb(scorer, real, "real clips", true)?;
    let n = generated.dim().0;
    if real.dim().0 < 2 * n {
        return Err(Error::new(
            format!("{} real clips for {n} generated ones", real.dim().0),
            "give at least twice as many real clips as generated (two disjoint reference sets)",
        ));
    }
    let stats = |x: ArrayView5<f32>| FeatureStats::new(rgb_features(scorer, x).view());
    let a = stats(real.slice(s![..n, .., .., .., ..]));
    let b = stats(real.slice(s![n..2 * n, .., .., .., ..]));
    let g = stats(generated);
    Ok((frechet_from_stats(&g, &a), frechet_from_stats(&b, &a)))
}

/// RGB clips of the scorer's size (and frame count, for the clip classifier), and enough of
/// them: 1 to score, 2 for a covariance.
fn check_rgb(scorer: &ClipScorer, x: ArrayView5<f32>, what: &str, fvd: bool) -> Result<()> {
    let (n, c, f, h, w) = x.dim();
    let size = scorer.size;
    let frames_ok = !fvd || f == scorer.frames;
    if c != 3 || h != size || w != size || !frames_ok || f == 0 {
        let want_f = if fvd {
            scorer.frames.to_string()
        } else {
            "F".into()
        };
        return Err(Error::new(
            format!("the {what} are (C, F, H, W) = ({c}, {f}, {h}, {w})"),
            format!(
                "give RGB clips (3, {want_f}, {size}, {size}), the size (and frame count) the \
                 clip scorer was trained on"
            ),
        ));
    }
    let least = if fvd { 2 } else { 1 };
    if n < least {
        return Err(Error::new(
            format!("{n} {what}"),
            format!("give at least {least} (a Fréchet distance needs a covariance)"),
        ));
    }
    Ok(())
}

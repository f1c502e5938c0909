//! Scoring clips of any frame size and length with the scorers trained on 32×32 frames: the
//! **digit** of each frame is read in a 32×32 window centred on that frame's ink (clamped into
//! the canvas; a side under 32 pixels is padded with background), which the frame classifier
//! then centres again as it always does ([`frame_input`]); the **motion** is read off the
//! whole canvas by the tracker, which needs no network and no size ([`main_motion`]). The clip
//! classifier (FVD) reads 32×32 clips of its own length only, so there is no FVD here.
//!
//! Same rules as [`score_clips`](super::clips::score_clips): a clip's digit is the majority of
//! its frames' digits, its consistency the share of frames that agree, an untrackable clip's
//! motion is wrong.

use super::clips::majority_digit;
use super::scorer::{frame_input, ClipScorer};
use super::track::{centroid, main_motion, track};
use crate::video::moving_digits::unlabel;
use ndarray::{s, Array5, ArrayView2, ArrayView5};

/// The window side the frame classifier reads.
pub const WINDOW: usize = 32;

/// Digit and motion accuracy and consistency of clips of any size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShapeScore {
    pub digit_accuracy: f64,
    pub motion_accuracy: f64,
    pub consistency: f64,
    pub clips: usize,
}

// ANCHOR: window
/// The `WINDOW × WINDOW` window of `frame` `(H, W)` centred on its ink (the middle when it has
/// none), clamped into the frame; background (−1) where the frame is smaller.
pub fn window(frame: ArrayView2<f32>) -> ndarray::Array2<f32> {
    let (h, w) = frame.dim();
    let (cx, cy) = centroid(frame).unwrap_or(((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0));
    // top-left corner: the centre minus half a window, kept inside the frame
    let corner = |c: f32, n: usize| {
        let lo = (c - (WINDOW as f32 - 1.0) / 2.0).round().max(0.0) as usize;
        lo.min(n.saturating_sub(WINDOW))
    };
    let (x0, y0) = (corner(cx, w), corner(cy, h));
    let (hh, ww) = (h.min(WINDOW), w.min(WINDOW));
    let mut out = ndarray::Array2::from_elem((WINDOW, WINDOW), -1.0f32);
    out.slice_mut(s![..hh, ..ww])
        .assign(&frame.slice(s![y0..y0 + hh, x0..x0 + ww]));
    out
}
// ANCHOR_END: window

/// Scores `generated` clips `(N, 1, F, H, W)` in `[−1, 1]`, asked for the classes `asked`.
pub fn score_any_size(
    scorer: &ClipScorer,
    generated: ArrayView5<f32>,
    asked: &[usize],
) -> ShapeScore {
    let (n, c, f, _, _) = generated.dim();
    assert_eq!(asked.len(), n, "one asked class per clip");
    let mut windows = Array5::zeros((n, c, f, WINDOW, WINDOW));
    for i in 0..n {
        for ch in 0..c {
            for t in 0..f {
                let frame = generated.slice(s![i, ch, t, .., ..]);
                windows
                    .slice_mut(s![i, ch, t, .., ..])
                    .assign(&window(frame));
            }
        }
    }
    let per_frame = scorer.digit.predict(frame_input(windows.view()).view()); // (N·F)
    let (mut digit_right, mut consistency, mut motion_right) = (0usize, 0.0f64, 0usize);
    for ((clip, &l), digits) in generated.outer_iter().zip(asked).zip(per_frame.chunks(f)) {
        let (top, votes) = majority_digit(digits);
        digit_right += usize::from(top == unlabel(l).0);
        consistency += votes as f64 / f as f64;
        if let Some((m, _)) = main_motion(&track(clip)) {
            motion_right += usize::from(m == unlabel(l).1);
        }
    }
    ShapeScore {
        digit_accuracy: digit_right as f64 / n as f64,
        motion_accuracy: motion_right as f64 / n as f64,
        consistency: consistency / n as f64,
        clips: n,
    }
}

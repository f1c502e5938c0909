//! A frame mask in the video DiT (Open-Sora 1.2's `x_mask` in STDiT3): the tokens of the
//! given frames are modulated with the adaLN parameters of timestep 0, the others with the
//! clip's timestep $t$.
//!
//! The conditioning rows are stacked: rows `0..B` are $c_b = e_{t_b} + e_{y_b}$, rows
//! `B..2B` are $c^0_b = e_0 + e_{y_b}$, and token $n$ of clip $b$ reads row
//! $r_n = b$ or $B + b$ ([`token_rows`]). Each block's modulation Linear runs on the $2B$
//! rows and is then copied per token, $m_n = W\,\mathrm{silu}(c_{r_n}) + b$; its backward adds
//! each token's $\partial L/\partial m_n$ into row $r_n$
//! ([`scatter_rows`](crate::dit::block::scatter_rows)), and the two halves of
//! $\partial L/\partial c$ go to $e_t$ (at $t$ and at 0) and both into $e_y$ ([`fold`]).
//!
//! **Tubelets.** With a temporal patch $p_t > 1$ a token spans $p_t$ frames; it is *given*
//! only if all of them are. A mask that gives part of a tubelet (the first frame of a 2-frame
//! tubelet) changes no modulation: that token is still at $t$, and the given frame reaches the
//! model only as the clean values in its input, and by its absence from the loss.

use super::factorized::Grid;
use crate::diffusion::FrameMask;
use ndarray::{concatenate, s, Array2, Axis};

// ANCHOR: token_rows
/// Each token's conditioning row, in `(b f s)` order over `B·F'·S` tokens: `b` for a token
/// at $t$, `B + b` for a token of given frames (all its `p_t` frames given).
pub fn token_rows(mask: &FrameMask, grid: Grid, temporal_patch: usize) -> Vec<usize> {
    let b = mask.clips();
    let mut rows = Vec::with_capacity(b * grid.frames * grid.tokens);
    for clip in 0..b {
        for tf in 0..grid.frames {
            let frames = tf * temporal_patch..(tf + 1) * temporal_patch;
            let given = frames.into_iter().all(|f| mask.is_given(clip, f));
            let row = if given { b + clip } else { clip };
            rows.extend(std::iter::repeat_n(row, grid.tokens));
        }
    }
    rows
}
// ANCHOR_END: token_rows

/// The timesteps of the stacked rows: `t` (B), then `B` zeros.
pub fn with_t0(t: &[usize]) -> Vec<usize> {
    t.iter()
        .copied()
        .chain(std::iter::repeat_n(0, t.len()))
        .collect()
}

/// `a` (B, D) stacked on itself, (2B, D): the same label (or caption) term for both halves.
pub fn twice(a: &Array2<f32>) -> Array2<f32> {
    concatenate(Axis(0), &[a.view(), a.view()]).expect("same width")
}

/// Backward of [`twice`]: the two halves of `d` (2B, D) added, (B, D).
pub fn fold(d: &Array2<f32>) -> Array2<f32> {
    let b = d.nrows() / 2;
    &d.slice(s![..b, ..]) + &d.slice(s![b.., ..])
}

/// Panics unless `mask` covers `b` clips of `frames` frames (the commands check first).
pub fn check_mask(mask: &FrameMask, b: usize, frames: usize) {
    assert!(
        mask.clips() == b && mask.frames == frames,
        "video DiT: a frame mask of {} clips × {} frames for {b} clips × {frames} frames",
        mask.clips(),
        mask.frames
    );
}

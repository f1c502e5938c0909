//! Clips to spacetime tokens and back, and the two token orders of a video Transformer.
//!
//! A `(B, C, F, H, W)` clip is cut into $p_t \times p \times p$ patches: token frame `f'`
//! holds frames `f'·p_t .. (f'+1)·p_t`, and within it the patches are in the image DiT's
//! row-major order. Tokens are numbered frame by frame, `(b f' s)`: the `S` tokens of a
//! frame are consecutive rows, so a spatial attention reads them as one sequence. A patch is
//! flattened in the conv weight's `(c, τ, u, v)` order for the patch embedding (Open-Sora's
//! `PatchEmbed3D`, kernel = stride = patch; with $p_t = 1$ it is Latte's per-frame
//! `PatchEmbed` on `(b f) c h w`), and read back in `(τ, u, v, c)` order from the final layer
//! (Open-Sora's unpatchify, `B (T S) (tp hp wp C) -> B C (T tp) (H hp) (W wp)`).
//!
//! A temporal attention needs each position's `F'` tokens consecutive, `(b s f')`: the
//! rearranges [`to_temporal`] and [`to_spatial`] (Latte's `'(b f) t d -> (b t) f d'` and
//! back) are permutations, each the other's backward.

use ndarray::{Array2, Array5, ArrayView2, ArrayView5};
use rayon::prelude::*;

/// Where the channel index sits in a flattened patch.
pub use crate::dit::ChannelOrder;

/// Patch sizes: $p_t$ frames × $p$ × $p$ pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tubelet {
    pub frames: usize,
    pub side: usize,
}

impl Tubelet {
    /// Values in one patch of `c` channels.
    pub fn len(&self, c: usize) -> usize {
        c * self.frames * self.side * self.side
    }

    /// Position of channel `ch`, frame `tau`, pixel `(u, v)` in a patch flattened in `order`.
    fn index(
        &self,
        order: ChannelOrder,
        ch: usize,
        tau: usize,
        u: usize,
        v: usize,
        c: usize,
    ) -> usize {
        let (pt, p) = (self.frames, self.side);
        match order {
            ChannelOrder::First => ((ch * pt + tau) * p + u) * p + v,
            ChannelOrder::Last => ((tau * p + u) * p + v) * c + ch,
        }
    }
}

// ANCHOR: clip_patchify
/// `(B, C, F, H, W)` → `(B·F'·S, C·p_t·p·p)`: row `(b·F' + f')·S + i·(W/p) + j` holds patch
/// `(f', i, j)` of clip `b`, flattened in `order`.
pub fn clip_patchify(x: ArrayView5<f32>, t: Tubelet, order: ChannelOrder) -> Array2<f32> {
    let (b, c, f, h, w) = x.dim();
    let (pt, p) = (t.frames, t.side);
    assert!(
        f % pt == 0 && h % p == 0 && w % p == 0,
        "clip_patchify: {f}×{h}×{w} does not cut into {pt}×{p}×{p} patches"
    );
    let (gf, gh, gw) = (f / pt, h / p, w / p);
    let len = t.len(c);
    let mut out = Array2::zeros((b * gf * gh * gw, len));
    out.as_slice_mut()
        .expect("fresh")
        .par_chunks_mut(len)
        .enumerate()
        .for_each(|(row, patch)| {
            let (n, rest) = (row / (gf * gh * gw), row % (gf * gh * gw));
            let (fi, i, j) = (rest / (gh * gw), rest % (gh * gw) / gw, rest % gw);
            for ch in 0..c {
                for tau in 0..pt {
                    for u in 0..p {
                        for v in 0..p {
                            patch[t.index(order, ch, tau, u, v, c)] =
                                x[[n, ch, fi * pt + tau, i * p + u, j * p + v]];
                        }
                    }
                }
            }
        });
    out
}

/// `(B·F'·S, C·p_t·p·p)` → `(B, C, F, H, W)`, the inverse of [`clip_patchify`] with the same
/// `order` (so also its backward).
pub fn clip_unpatchify(
    tokens: ArrayView2<f32>,
    shape: (usize, usize, usize, usize, usize),
    t: Tubelet,
    order: ChannelOrder,
) -> Array5<f32> {
    let (b, c, f, h, w) = shape;
    let (pt, p) = (t.frames, t.side);
    let (gf, gh, gw) = (f / pt, h / p, w / p);
    assert_eq!(
        tokens.dim(),
        (b * gf * gh * gw, t.len(c)),
        "clip_unpatchify: tokens do not fit {pt}×{p}×{p} patches of {shape:?}"
    );
    let mut clip = Array5::zeros(shape);
    // One task per clip, each writing only its own (C, F, H, W) block.
    clip.as_slice_mut()
        .expect("fresh")
        .par_chunks_mut(c * f * h * w)
        .enumerate()
        .for_each(|(n, out)| {
            for row in 0..gf * gh * gw {
                let (fi, i, j) = (row / (gh * gw), row % (gh * gw) / gw, row % gw);
                let patch = tokens.row(n * gf * gh * gw + row);
                for ch in 0..c {
                    for tau in 0..pt {
                        for u in 0..p {
                            for v in 0..p {
                                let at = ((ch * f + fi * pt + tau) * h + i * p + u) * w + j * p + v;
                                out[at] = patch[t.index(order, ch, tau, u, v, c)];
                            }
                        }
                    }
                }
            }
        });
    clip
}
// ANCHOR_END: clip_patchify

// ANCHOR: rearrange
/// `(b f s) d -> (b s f) d`: each position's `f` tokens become consecutive rows, for a
/// temporal attention. `x` holds `b·f·s` rows.
pub fn to_temporal(x: &Array2<f32>, f: usize, s: usize) -> Array2<f32> {
    permute(x, f, s)
}

/// `(b s f) d -> (b f s) d`, the inverse of [`to_temporal`] (and its backward).
pub fn to_spatial(x: &Array2<f32>, f: usize, s: usize) -> Array2<f32> {
    permute(x, s, f)
}

/// `(b m n) d -> (b n m) d`: row `(b·m + i)·n + j` goes to row `(b·n + j)·m + i`.
fn permute(x: &Array2<f32>, m: usize, n: usize) -> Array2<f32> {
    let (rows, d) = x.dim();
    assert_eq!(
        rows % (m * n),
        0,
        "rearrange: {rows} rows are not whole clips of {m}×{n}"
    );
    let src = x.as_slice().expect("standard layout");
    let mut out = Array2::zeros((rows, d));
    out.as_slice_mut()
        .expect("fresh")
        .par_chunks_mut(d)
        .enumerate()
        .for_each(|(r, row)| {
            // output row r = (b·n + j)·m + i reads input row (b·m + i)·n + j
            let (b, rest) = (r / (m * n), r % (m * n));
            let (j, i) = (rest / m, rest % m);
            let from = (b * m + i) * n + j;
            row.copy_from_slice(&src[from * d..(from + 1) * d]);
        });
    out
}
// ANCHOR_END: rearrange

pub use crate::tensor::{clips_to_frames, frames_to_clips};

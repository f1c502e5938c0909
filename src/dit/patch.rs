//! Images to tokens and back: DiT's patch embedding (timm's `PatchEmbed`) and `unpatchify`.
//!
//! A `p × p` conv with stride `p` sees every pixel exactly once, so it is a Linear applied to
//! each patch flattened: cut `(B, C, H, W)` into $T = (H/p)(W/p)$ patches, flatten each to
//! `C·p·p` values in the conv weight's `(c, u, v)` order ([`patchify`]), and multiply all
//! `B·T` rows by the weight seen as `(D, C·p·p)` in one GEMM. The parameter keeps the conv's
//! name and shape, `proj.weight (D, C, p, p)`, so PyTorch checkpoints load unchanged. Tokens
//! are in row-major patch order, `n = i·(W/p) + j`, as timm's `flatten(2).transpose(1, 2)`.
//!
//! At the other end the final layer gives each token `p·p·C_out` values in the order
//! `(u, v, c)` — channels last — and [`unpatchify`] puts them back into an image, as the
//! reference's `einsum('nhwpqc->nchpwq')`. Both directions are permutations, so each one's
//! backward is the other direction with the same channel order.

use crate::param::{join, Param, Parameters};
use crate::tensor::{gemm, init, Rng};
use ndarray::{Array2, Array4, ArrayView2, ArrayView4, Axis};
use rayon::prelude::*;

/// Where the `C` channel index sits in a patch's flattened values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelOrder {
    /// `(c, u, v)`: the conv weight's order, used by the patch embedding.
    First,
    /// `(u, v, c)`: the order the final layer's outputs are read in.
    Last,
}

// ANCHOR: patchify
/// `(B, C, H, W)` → `(B·T, C·p·p)`: row `b·T + i·(W/p) + j` holds patch `(i, j)` of image `b`,
/// flattened in `order`. Each output row is one patch; the rows are filled in parallel.
pub fn patchify(x: ArrayView4<f32>, p: usize, order: ChannelOrder) -> Array2<f32> {
    let (b, c, h, w) = x.dim();
    assert!(
        p > 0 && h % p == 0 && w % p == 0,
        "patchify: {h}×{w} does not cut into {p}×{p} patches"
    );
    let (gh, gw) = (h / p, w / p);
    let mut out = Array2::zeros((b * gh * gw, c * p * p));
    out.as_slice_mut()
        .expect("fresh")
        .par_chunks_mut(c * p * p)
        .enumerate()
        .for_each(|(row, patch)| {
            let (n, i, j) = (row / (gh * gw), row % (gh * gw) / gw, row % gw);
            for ch in 0..c {
                for u in 0..p {
                    for v in 0..p {
                        patch[index(order, ch, u, v, c, p)] = x[[n, ch, i * p + u, j * p + v]];
                    }
                }
            }
        });
    out
}

/// `(B·T, C·p·p)` → `(B, C, H, W)`, the inverse of [`patchify`] with the same `order`
/// (so also its backward). With `ChannelOrder::Last` this is the reference's `unpatchify`.
pub fn unpatchify(
    tokens: ArrayView2<f32>,
    shape: (usize, usize, usize, usize),
    p: usize,
    order: ChannelOrder,
) -> Array4<f32> {
    let (b, c, h, w) = shape;
    let (gh, gw) = (h / p, w / p);
    assert_eq!(
        tokens.dim(),
        (b * gh * gw, c * p * p),
        "unpatchify: tokens do not fit {p}×{p} patches of {shape:?}"
    );
    let mut img = Array4::zeros(shape);
    // One task per image, each writing only its own (C, H, W) block.
    img.as_slice_mut()
        .expect("fresh")
        .par_chunks_mut(c * h * w)
        .enumerate()
        .for_each(|(n, im)| {
            for i in 0..gh {
                for j in 0..gw {
                    let patch = tokens.row(n * gh * gw + i * gw + j);
                    for ch in 0..c {
                        for u in 0..p {
                            for v in 0..p {
                                im[(ch * h + i * p + u) * w + j * p + v] =
                                    patch[index(order, ch, u, v, c, p)];
                            }
                        }
                    }
                }
            }
        });
    img
}

/// Position of channel `ch`, pixel `(u, v)` in a patch flattened in `order`.
fn index(order: ChannelOrder, ch: usize, u: usize, v: usize, c: usize, p: usize) -> usize {
    match order {
        ChannelOrder::First => (ch * p + u) * p + v,
        ChannelOrder::Last => (u * p + v) * c + ch,
    }
}
// ANCHOR_END: patchify

/// The patch embedding `x_embedder`: a `p × p`, stride-`p` conv from `C` to `D` channels.
#[derive(Clone, Debug)]
pub struct PatchEmbed {
    pub weight: Param, // proj.weight (D, C, p, p)
    pub bias: Param,   // proj.bias (D)
    pub patch: usize,
}

/// What backward needs: the input's shape and its patches.
pub struct PatchEmbedCache {
    patches: Array2<f32>, // (B·T, C·p·p)
    shape: (usize, usize, usize, usize),
}

impl PatchEmbed {
    /// DiT's initialisation: Xavier-uniform on the weight seen as `(D, C·p·p)` — like a
    /// Linear, not a conv — and a zero bias.
    pub fn new(in_channels: usize, hidden: usize, patch: usize, rng: &mut Rng) -> Self {
        let fan_in = in_channels * patch * patch;
        PatchEmbed {
            weight: Param::new(init::xavier_uniform(
                &[hidden, in_channels, patch, patch],
                fan_in,
                hidden,
                rng,
            )),
            bias: Param::zeros(&[hidden]),
            patch,
        }
    }

    /// The video patch embedding: a `p_t × p × p` conv with stride = kernel on clips,
    /// weight `(D, C, p_t, p, p)` (`(D, C, p, p)` when `p_t = 1`, Latte's per-frame patch),
    /// initialised like [`new`](Self::new) on the weight seen as `(D, C·p_t·p·p)`.
    pub fn tubelet(
        in_channels: usize,
        hidden: usize,
        frames: usize,
        patch: usize,
        rng: &mut Rng,
    ) -> Self {
        if frames == 1 {
            return PatchEmbed::new(in_channels, hidden, patch, rng);
        }
        let fan_in = in_channels * frames * patch * patch;
        PatchEmbed {
            weight: Param::new(init::xavier_uniform(
                &[hidden, in_channels, frames, patch, patch],
                fan_in,
                hidden,
                rng,
            )),
            bias: Param::zeros(&[hidden]),
            patch,
        }
    }

    /// Output channels `D`.
    pub fn hidden(&self) -> usize {
        self.weight.shape()[0]
    }

    // ANCHOR: patch_embed
    /// `(B, C, H, W)` → tokens `(B·T, D)`: $y = \mathrm{patchify}(x)\,W^\top + b$.
    pub fn forward(&self, x: ArrayView4<f32>) -> (Array2<f32>, PatchEmbedCache) {
        let patches = patchify(x, self.patch, ChannelOrder::First); // (B·T, C·p·p)
        let y = self.project(&patches);
        let cache = PatchEmbedCache {
            patches,
            shape: x.dim(),
        };
        (y, cache)
    }

    /// The same tokens without keeping anything (sampling).
    pub fn forward_infer(&self, x: ArrayView4<f32>) -> Array2<f32> {
        self.project(&patchify(x, self.patch, ChannelOrder::First))
    }

    /// $y = b + P W^\top$   P: (B·T, C·p·p) → (B·T, D)
    pub fn project(&self, patches: &Array2<f32>) -> Array2<f32> {
        let d = self.hidden();
        let mut y = self
            .bias
            .v1()
            .broadcast((patches.nrows(), d))
            .expect("bias has D elements")
            .to_owned();
        gemm(
            1.0,
            patches.view(),
            self.weight.v_rows(d).t(),
            1.0,
            y.view_mut(),
        );
        y
    }
    // ANCHOR_END: patch_embed

    /// Given `dy = ∂L/∂tokens` (B·T, D), adds $dW = dy^\top P$ and $db = \sum dy$ into the
    /// gradients and returns $dx = \mathrm{unpatchify}(dy\,W)$ (B, C, H, W).
    pub fn backward(&mut self, cache: &PatchEmbedCache, dy: &Array2<f32>) -> Array4<f32> {
        let dp = self.project_backward(&cache.patches, dy);
        unpatchify(dp.view(), cache.shape, self.patch, ChannelOrder::First)
    }

    /// Backward of [`project`](Self::project): adds $dW = dy^\top P$ and $db = \sum dy$ into
    /// the gradients and returns $dP = dy\,W$ (B·T, C·p·p).
    pub fn project_backward(&mut self, patches: &Array2<f32>, dy: &Array2<f32>) -> Array2<f32> {
        let d = self.hidden();
        gemm(1.0, dy.t(), patches.view(), 1.0, self.weight.g_rows(d));
        self.bias.g1().scaled_add(1.0, &dy.sum_axis(Axis(0)));
        let mut dp = Array2::zeros(patches.raw_dim()); // (B·T, C·p·p)
        gemm(1.0, dy.view(), self.weight.v_rows(d), 0.0, dp.view_mut());
        dp
    }
}

impl Parameters for PatchEmbed {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        f(&join(prefix, "proj.weight"), &mut self.weight);
        f(&join(prefix, "proj.bias"), &mut self.bias);
    }
}

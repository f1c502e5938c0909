//! The caption branch of a text-conditioned DiT block (PixArt-α's and Open-Sora STDiT's
//! `cross_attn`): after the block's self-attention, every token of a sample attends to the
//! words of that sample's caption, and the result is added to the residual stream:
//!
//! $$x \leftarrow x + \mathrm{CrossAttn}(x, y)
//!   = x + \mathrm{proj}\Big(\mathrm{softmax}\big(\tfrac{(x W_q)(y W_k)^\top}{\sqrt d} + M\big)\,y W_v\Big)$$
//!
//! with $y$ (B, L, D) the projected caption and $M$ the padding mask ($-\infty$ on padding,
//! so no token ever reads a pad). As in PixArt and STDiT there is no LayerNorm and no adaLN
//! modulation on this branch, and its output projection `proj` starts at zero: the branch
//! adds nothing at step 0, so a model inflated from a class-conditioned one starts as that
//! model, and the caption's influence grows as training opens it.
//!
//! Tokens are `(N, D)` rows with each sample's rows consecutive (any order inside a sample:
//! `(b f s)` for spatial blocks, `(b s f)` for temporal ones), so `(N, D)` is viewed as
//! `(B, N/B, D)` queries against `(B, L, D)` keys and values.

use crate::nn::{xavier_linear, zero_linear, CrossAttention, CrossAttentionCache};
use ndarray::{Array2, Array3};

/// A batch of captions as the blocks read them.
#[derive(Clone, Debug)]
pub struct Context {
    /// `(B, L, D)`: the caption embedder's output, one row per token.
    pub tokens: Array3<f32>,
    /// `(B, L)`: `true` for words, `false` for padding.
    pub mask: Array2<bool>,
}

/// What [`caption_branch_backward`] needs.
pub struct CaptionBranchCache {
    attn: CrossAttentionCache,
    rows: usize, // N/B, tokens per sample
}

/// PixArt's initialisation: Xavier `q` and `kv`, zero `proj`.
pub fn caption_cross_attention(
    dim: usize,
    heads: usize,
    rng: &mut crate::tensor::Rng,
) -> CrossAttention {
    CrossAttention {
        q: xavier_linear(dim, dim, rng),
        kv: xavier_linear(dim, 2 * dim, rng),
        proj: zero_linear(dim, dim),
        heads,
        kernel: crate::nn::Kernel::Auto,
    }
}

/// `(N, D)` rows → `(B, N/B, D)`, one sequence of queries per sample.
fn per_sample(x: Array2<f32>, b: usize) -> Array3<f32> {
    let (n, d) = x.dim();
    assert!(
        b > 0 && n % b == 0,
        "caption branch: {n} tokens do not split over {b} captions"
    );
    x.into_shape_with_order((b, n / b, d))
        .expect("contiguous rows")
}

// ANCHOR: caption_branch
/// $x + \mathrm{CrossAttn}(x, y)$   x: (N, D), context (B, L, D) → (N, D).
pub fn caption_branch(
    attn: &CrossAttention,
    x: Array2<f32>,
    ctx: &Context,
) -> (Array2<f32>, CaptionBranchCache) {
    let (n, d) = x.dim();
    let b = ctx.tokens.shape()[0];
    let q = per_sample(x.clone(), b); // (B, N/B, D)
    let (o, cache) = attn.forward_masked(&q, &ctx.tokens, Some(&ctx.mask)); // (B, N/B, D)
    let o = o.into_shape_with_order((n, d)).expect("contiguous");
    let cache = CaptionBranchCache {
        attn: cache,
        rows: n / b,
    };
    (x + o, cache)
}
// ANCHOR_END: caption_branch

/// [`caption_branch`] without keeping anything.
pub fn caption_branch_infer(attn: &CrossAttention, x: Array2<f32>, ctx: &Context) -> Array2<f32> {
    let (n, d) = x.dim();
    let q = per_sample(x.clone(), ctx.tokens.shape()[0]);
    let o = attn.forward_infer_masked(&q, &ctx.tokens, Some(&ctx.mask));
    x + o.into_shape_with_order((n, d)).expect("contiguous")
}

/// Backward of [`caption_branch`]: given `dy = ∂L/∂y` (N, D), adds into the attention's
/// gradients and into `dctx = ∂L/∂y_{caption}` (B, L, D), and returns `∂L/∂x`: the residual
/// path plus the queries' share.
pub fn caption_branch_backward(
    attn: &mut CrossAttention,
    cache: &CaptionBranchCache,
    dy: Array2<f32>,
    dctx: &mut Array3<f32>,
) -> Array2<f32> {
    let (n, d) = dy.dim();
    let d_o = dy
        .view()
        .into_shape_with_order((n / cache.rows, cache.rows, d))
        .expect("contiguous")
        .to_owned();
    let (dq, dc) = attn.backward(&cache.attn, &d_o);
    *dctx += &dc;
    dy + dq.into_shape_with_order((n, d)).expect("contiguous")
}

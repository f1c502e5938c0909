//! Multi-head cross-attention: queries from the tokens `x: (B, T, C)`, keys and values from a
//! context `c: (B, S, Cc)` such as text embeddings (as in PixArt-α's `MultiHeadCrossAttention`
//! and Stable Diffusion's U-Net, [Rombach et al. 2022](https://arxiv.org/abs/2112.10752)).
//!
//! `q: C → C` projects the tokens, one fused `kv: Cc → 2C` projects the context, read in
//! PyTorch's `reshape(B, S, 2, h, d)` order (keys are the first `C` columns, values the
//! last), and `proj: C → C` mixes the heads. The per-head scaled dot-product core is
//! self-attention's ([`crate::nn::attention_kernel`] picks the clear or the tiled one); only
//! the projections differ.

use ndarray::{Array2, Array3, Axis};

use crate::nn::attention_kernel::{sdpa, sdpa_grad, Kernel, Saved};
use crate::nn::{Linear, LinearCache};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;

/// Cross-attention from tokens `(B, T, C)` to a context `(B, S, Cc)` with `heads` heads.
#[derive(Clone, Debug)]
pub struct CrossAttention {
    pub q: Linear,    // C → C, with bias
    pub kv: Linear,   // Cc → 2C, with bias
    pub proj: Linear, // C → C, with bias
    pub heads: usize,
    /// Which scaled dot-product core runs ([`Kernel::Auto`] unless set).
    pub kernel: Kernel,
}

/// What backward needs from forward.
pub struct CrossAttentionCache {
    q: LinearCache,
    kv: LinearCache,
    q_out: Array3<f32>,  // (B, T, C)
    kv_out: Array3<f32>, // (B, S, 2C): keys then values
    saved: Saved,        // the probabilities (B, h, T, S), or the tiled core's (B·h, T)
    proj: LinearCache,   // keeps the heads' output o (B·T, C)
}

impl CrossAttention {
    /// `dim` token channels, `context_dim` context channels, `heads` heads of `dim / heads`.
    pub fn new(dim: usize, context_dim: usize, heads: usize, rng: &mut Rng) -> Self {
        assert!(
            heads > 0 && dim % heads == 0,
            "cross-attention: {dim} channels do not split into {heads} heads"
        );
        CrossAttention {
            q: Linear::new(dim, dim, true, rng),
            kv: Linear::new(context_dim, 2 * dim, true, rng),
            proj: Linear::new(dim, dim, true, rng),
            heads,
            kernel: Kernel::Auto,
        }
    }

    /// Token channels `C`.
    pub fn dim(&self) -> usize {
        self.proj.d_out()
    }

    // ANCHOR: forward
    /// `y = proj(MultiHead(q(x), kv(context)))`   x: (B, T, C), context: (B, S, Cc) → (B, T, C).
    pub fn forward(
        &self,
        x: &Array3<f32>,
        context: &Array3<f32>,
    ) -> (Array3<f32>, CrossAttentionCache) {
        self.forward_masked(x, context, None)
    }

    /// [`forward`](Self::forward) attending only to the context tokens where `mask` (B, S)
    /// is true: a padded caption's words, never its padding.
    pub fn forward_masked(
        &self,
        x: &Array3<f32>,
        context: &Array3<f32>,
        mask: Option<&Array2<bool>>,
    ) -> (Array3<f32>, CrossAttentionCache) {
        check_batch(x, context);
        let (q_out, q) = self.q.forward(x); // (B, T, C)
        let (kv_out, kv) = self.kv.forward(context); // (B, S, 2C)
        let (k, v) = kv_out.view().split_at(Axis(2), self.dim()); // each (B, S, C)
        let mask = mask.map(|m| m.view());
        let (o, saved) = sdpa(q_out.view(), k, v, self.heads, mask, self.kernel); // (B, T, C)
        let (y, proj) = self.proj.forward_owned(o);
        let cache = CrossAttentionCache {
            q,
            kv,
            q_out,
            kv_out,
            saved,
            proj,
        };
        (y, cache)
    }
    // ANCHOR_END: forward

    /// The same output without keeping anything (sampling).
    pub fn forward_infer(&self, x: &Array3<f32>, context: &Array3<f32>) -> Array3<f32> {
        self.forward_infer_masked(x, context, None)
    }

    /// [`forward_masked`](Self::forward_masked) without keeping anything.
    pub fn forward_infer_masked(
        &self,
        x: &Array3<f32>,
        context: &Array3<f32>,
        mask: Option<&Array2<bool>>,
    ) -> Array3<f32> {
        check_batch(x, context);
        let q_out = self.q.forward_infer(x);
        let kv_out = self.kv.forward_infer(context);
        let (k, v) = kv_out.view().split_at(Axis(2), self.dim());
        let mask = mask.map(|m| m.view());
        let (o, _) = sdpa(q_out.view(), k, v, self.heads, mask, self.kernel);
        self.proj.forward_infer(&o)
    }

    // ANCHOR: backward
    /// Given `dy = ∂L/∂y`, adds into every parameter's gradient and returns
    /// `(dx, dcontext)`.
    pub fn backward(
        &mut self,
        cache: &CrossAttentionCache,
        dy: &Array3<f32>,
    ) -> (Array3<f32>, Array3<f32>) {
        let c = self.dim();
        let d_o = self.proj.backward(&cache.proj, dy); // (B, T, C)
        let (k, v) = cache.kv_out.view().split_at(Axis(2), c);
        let mut dq = Array3::zeros(cache.q_out.raw_dim()); // (B, T, C)
        let mut dkv = Array3::zeros(cache.kv_out.raw_dim()); // (B, S, 2C)
        let (dk, dv) = dkv.view_mut().split_at(Axis(2), c);
        let q = cache.q_out.view();
        let o = cache.proj.input_as(d_o.raw_dim()); // (B, T, C), kept by `proj`
        let (h, saved) = (self.heads, &cache.saved);
        sdpa_grad(q, k, v, h, saved, o, d_o.view(), dq.view_mut(), dk, dv);
        let dx = self.q.backward(&cache.q, &dq);
        let dcontext = self.kv.backward(&cache.kv, &dkv);
        (dx, dcontext)
    }
    // ANCHOR_END: backward
}

impl Parameters for CrossAttention {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.q.visit(&join(prefix, "q"), f);
        self.kv.visit(&join(prefix, "kv"), f);
        self.proj.visit(&join(prefix, "proj"), f);
    }
}

fn check_batch(x: &Array3<f32>, context: &Array3<f32>) {
    assert_eq!(
        x.shape()[0],
        context.shape()[0],
        "cross-attention: tokens and context have different batch sizes"
    );
}

//! The VAE's self-attention block: latent-diffusion's `AttnBlock`
//! (`ldm/modules/diffusionmodules/model.py`; attention as in Vaswani et al. 2017,
//! <https://arxiv.org/abs/1706.03762>).
//!
//! Every one of the `H·W` positions of a `(B, C, H, W)` feature map is a token of `C`
//! channels, and one head attends over all of them:
//!
//! $$y = x + \mathrm{proj\_out}\big(V\,\mathrm{softmax}(Q K^\top / \sqrt C)\big),\qquad
//! Q, K, V = q(\hat h), k(\hat h), v(\hat h),\quad \hat h = \mathrm{norm}(x)$$
//!
//! with `q`, `k`, `v`, `proj_out` 1×1 convs (a Linear applied at every position). LDM uses it
//! in the middle of the encoder and decoder, at the lowest resolution, where `H·W` is small
//! enough for the `(H·W)²` attention matrix.
//!
//! The attention itself is [`sdpa_forward`] / [`sdpa_backward`] with one head, run on
//! *token views* `(B, H·W, C)` of the `(B, C, H, W)` conv outputs: the same memory with the
//! channel and position axes swapped, so nothing is copied on the way in. Parameter names
//! are LDM's: `norm.…`, `q.…`, `k.…`, `v.…`, `proj_out.…`.

use crate::nn::attention::{sdpa_backward, sdpa_forward};
use crate::nn::{Conv2d, Conv2dCache, GroupNorm, GroupNormCache};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use ndarray::{Array4, ArrayView3, ArrayViewMut3};

/// LDM's `AttnBlock`: single-head self-attention over the `H·W` positions, with a residual.
#[derive(Clone, Debug)]
pub struct AttnBlock {
    pub norm: GroupNorm,  // GroupNorm(groups, C, 1e-6)
    pub q: Conv2d,        // 1×1, C → C
    pub k: Conv2d,        // 1×1, C → C
    pub v: Conv2d,        // 1×1, C → C
    pub proj_out: Conv2d, // 1×1, C → C
}

/// What backward needs from forward.
pub struct AttnBlockCache {
    norm: GroupNormCache,
    /// The cache of `q`, which is just its input $\hat h$: `k` and `v` read the same input, so
    /// this one cache serves all three backward passes (and $\hat h$ is stored once).
    qkv_in: Conv2dCache,
    q: Array4<f32>, // (B, C, H, W)
    k: Array4<f32>, // (B, C, H, W)
    v: Array4<f32>, // (B, C, H, W)
    p: Array4<f32>, // (B, 1, H·W, H·W): the attention probabilities
    proj_out: Conv2dCache,
}

/// `(B, C, H, W)` seen as tokens `(B, H·W, C)`: a strided view, nothing copied.
fn tokens(x: &Array4<f32>) -> ArrayView3<'_, f32> {
    let (b, c, h, w) = x.dim();
    x.view()
        .into_shape_with_order((b, c, h * w))
        .expect("conv outputs are contiguous")
        .permuted_axes([0, 2, 1])
}

/// The mutable token view `(B, H·W, C)` of a contiguous `(B, C, H, W)`.
fn tokens_mut(x: &mut Array4<f32>) -> ArrayViewMut3<'_, f32> {
    let (b, c, h, w) = x.dim();
    x.view_mut()
        .into_shape_with_order((b, c, h * w))
        .expect("fresh arrays are contiguous")
        .permuted_axes([0, 2, 1])
}

impl AttnBlock {
    /// A block over `c` channels; the GroupNorm uses `groups` groups and `eps = 1e-6`.
    pub fn new(c: usize, groups: usize, rng: &mut Rng) -> Self {
        AttnBlock {
            norm: GroupNorm::new(groups, c, 1e-6),
            q: Conv2d::new(c, c, 1, 1, 0, true, rng),
            k: Conv2d::new(c, c, 1, 1, 0, true, rng),
            v: Conv2d::new(c, c, 1, 1, 0, true, rng),
            proj_out: Conv2d::new(c, c, 1, 1, 0, true, rng),
        }
    }

    /// Channels `C`.
    pub fn channels(&self) -> usize {
        self.q.c_out()
    }

    // ANCHOR: attn_block_forward
    /// `y = x + proj_out(attn(norm(x)))`   x: (B, C, H, W) → y: (B, C, H, W)
    pub fn forward(&self, x: &Array4<f32>) -> (Array4<f32>, AttnBlockCache) {
        let (hn, norm) = self.norm.forward(x); // $\hat h$ (B, C, H, W)
        let (q, qkv_in) = self.q.forward(&hn); // (B, C, H, W)
        let k = self.k.forward_infer(&hn);
        let v = self.v.forward_infer(&hn);
        // $O = \mathrm{softmax}(Q K^\top / \sqrt C)\, V$ over tokens   o: (B, H·W, C)
        let (o, p) = sdpa_forward(tokens(&q), tokens(&k), tokens(&v), 1);
        let (mut y, proj_out) = self.proj_out.forward(&channels_first(o, x.dim()));
        // $y = x + \mathrm{proj\_out}(O)$
        y += x;
        let cache = AttnBlockCache {
            norm,
            qkv_in,
            q,
            k,
            v,
            p,
            proj_out,
        };
        (y, cache)
    }
    // ANCHOR_END: attn_block_forward

    /// The same output without keeping anything (sampling).
    pub fn forward_infer(&self, x: &Array4<f32>) -> Array4<f32> {
        let hn = self.norm.forward_infer(x);
        let (q, k, v) = (
            self.q.forward_infer(&hn),
            self.k.forward_infer(&hn),
            self.v.forward_infer(&hn),
        );
        let (o, _) = sdpa_forward(tokens(&q), tokens(&k), tokens(&v), 1);
        let mut y = self.proj_out.forward_infer(&channels_first(o, x.dim()));
        y += x;
        y
    }

    // ANCHOR: attn_block_backward
    /// Given `dy = ∂L/∂y` (B, C, H, W), adds into every parameter's gradient and returns
    /// `dx = dy + ∂L/∂x` through the attention branch.
    pub fn backward(&mut self, cache: &AttnBlockCache, dy: &Array4<f32>) -> Array4<f32> {
        let d_o = self.proj_out.backward(&cache.proj_out, dy); // (B, C, H, W)

        // dQ, dK, dV are written through token views of (B, C, H, W) arrays, ready for the
        // 1×1 convs' backward passes.
        let mut dq = Array4::zeros(cache.q.raw_dim());
        let mut dk = Array4::zeros(cache.k.raw_dim());
        let mut dv = Array4::zeros(cache.v.raw_dim());
        sdpa_backward(
            tokens(&cache.q),
            tokens(&cache.k),
            tokens(&cache.v),
            &cache.p,
            tokens(&d_o),
            tokens_mut(&mut dq),
            tokens_mut(&mut dk),
            tokens_mut(&mut dv),
        );
        // $\partial L/\partial \hat h = q^\top(dQ) + k^\top(dK) + v^\top(dV)$
        let mut dh = self.q.backward(&cache.qkv_in, &dq);
        dh += &self.k.backward(&cache.qkv_in, &dk);
        dh += &self.v.backward(&cache.qkv_in, &dv);
        // $dx = dy + \mathrm{norm}^\top(\partial L/\partial \hat h)$
        let mut dx = self.norm.backward(&cache.norm, &dh);
        dx += dy;
        dx
    }
    // ANCHOR_END: attn_block_backward
}

/// Tokens `(B, H·W, C)` back to a contiguous `(B, C, H, W)` for the next conv (one copy).
fn channels_first(
    o: ndarray::Array3<f32>,
    (b, c, h, w): (usize, usize, usize, usize),
) -> Array4<f32> {
    o.permuted_axes([0, 2, 1])
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((b, c, h, w))
        .expect("standard layout")
}

impl Parameters for AttnBlock {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.norm.visit(&join(prefix, "norm"), f);
        self.q.visit(&join(prefix, "q"), f);
        self.k.visit(&join(prefix, "k"), f);
        self.v.visit(&join(prefix, "v"), f);
        self.proj_out.visit(&join(prefix, "proj_out"), f);
    }
}

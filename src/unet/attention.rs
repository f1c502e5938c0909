//! The U-Net's self-attention block: ADM's `AttentionBlock` and `QKVAttention`
//! (openai/improved-diffusion `unet.py`; attention as in Vaswani et al. 2017,
//! <https://arxiv.org/abs/1706.03762>).
//!
//! Every one of the `T = H·W` positions of a `(B, C, H, W)` feature map is a token of `C`
//! channels. One 1×1 conv `qkv` makes `3C` channels; they are read as ADM does,
//! `reshape(B·heads, 3d, T)` with `d = C / heads`: for head `j`, channels `3dj … 3dj + 3d`
//! hold its queries, keys and values, `d` each. Each (sample, head) attends over all
//! positions,
//!
//! $$O_j = \mathrm{softmax}\!\big(Q_j K_j^\top / \sqrt d\big)\, V_j,\qquad
//! y = x + \mathrm{proj\_out}([O_1, …, O_{heads}])$$
//!
//! and the heads' outputs are laid side by side (head `j` = channels `dj … dj + d`) for the
//! 1×1 conv `proj_out`, which starts at zero, so a fresh block is the identity.
//!
//! The attention core is the shared [`sdpa_forward`] / [`sdpa_backward`], run with one head
//! on `B·heads` "samples": strided `(B·heads, T, d)` views into the `qkv` output, nothing
//! copied on the way in. ADM's `qkv` and `proj_out` are 1-D convs over the flattened
//! positions; ours are 2-D 1×1 convs, the same weights with two trailing unit axes.
//! Parameter names are ADM's: `norm.…`, `qkv.…`, `proj_out.…`.

use super::resblock::{normalization, zero_conv};
use crate::nn::attention::{sdpa_backward, sdpa_forward};
use crate::nn::{Conv2d, Conv2dCache, GroupNorm, GroupNormCache};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use ndarray::{s, Array3, Array4, ArrayView3, ArrayViewMut3};

/// ADM's `AttentionBlock`: multi-head self-attention over the positions, with a residual.
#[derive(Clone, Debug)]
pub struct AttentionBlock {
    pub norm: GroupNorm,  // GroupNorm(groups, C)
    pub qkv: Conv2d,      // 1×1, C → 3C
    pub proj_out: Conv2d, // 1×1, C → C, zero-init
    pub num_heads: usize,
}

/// What backward needs from forward.
pub struct AttentionBlockCache {
    norm: GroupNormCache,
    qkv_in: Conv2dCache,
    qkv: Array4<f32>, // (B, 3C, H, W)
    p: Array4<f32>,   // (B·heads, 1, T, T): the attention probabilities
    proj_out: Conv2dCache,
}

/// The queries, keys and values of `qkv` (B, 3C, H, W) as `(B·heads, T, d)` views, in ADM's
/// `reshape(B·heads, 3d, T)` order.
fn split_qkv(
    qkv: &Array4<f32>,
    heads: usize,
) -> (
    ArrayView3<'_, f32>,
    ArrayView3<'_, f32>,
    ArrayView3<'_, f32>,
) {
    let (b, c3, h, w) = qkv.dim();
    let d = c3 / 3 / heads;
    let v = qkv
        .view()
        .into_shape_with_order((b * heads, 3 * d, h * w))
        .expect("conv outputs are contiguous");
    let part = |i: usize| {
        v.slice_move(s![.., i * d..(i + 1) * d, ..])
            .permuted_axes([0, 2, 1])
    };
    (part(0), part(1), part(2))
}

/// The same split of a mutable `(B, 3C, H, W)` gradient into three disjoint views.
fn split_qkv_mut(
    dqkv: &mut Array4<f32>,
    heads: usize,
) -> (
    ArrayViewMut3<'_, f32>,
    ArrayViewMut3<'_, f32>,
    ArrayViewMut3<'_, f32>,
) {
    let (b, c3, h, w) = dqkv.dim();
    let d = c3 / 3 / heads;
    let v = dqkv
        .view_mut()
        .into_shape_with_order((b * heads, 3 * d, h * w))
        .expect("fresh arrays are contiguous");
    let (q, rest) = v.split_at(ndarray::Axis(1), d);
    let (k, v) = rest.split_at(ndarray::Axis(1), d);
    let t = [0, 2, 1];
    (q.permuted_axes(t), k.permuted_axes(t), v.permuted_axes(t))
}

/// The heads' outputs `(B·heads, T, d)` side by side as a contiguous `(B, C, H, W)` (one copy).
fn merge_heads(o: Array3<f32>, (b, c, h, w): (usize, usize, usize, usize)) -> Array4<f32> {
    o.permuted_axes([0, 2, 1])
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((b, c, h, w))
        .expect("standard layout")
}

/// `(B, C, H, W)` seen as `(B·heads, T, d)`, head `j` = channels `dj … dj + d` (a view).
fn split_heads(x: &Array4<f32>, heads: usize) -> ArrayView3<'_, f32> {
    let (b, c, h, w) = x.dim();
    x.view()
        .into_shape_with_order((b * heads, c / heads, h * w))
        .expect("conv outputs are contiguous")
        .permuted_axes([0, 2, 1])
}

impl AttentionBlock {
    /// A block over `c` channels split into `num_heads` heads; the GroupNorm uses `groups`.
    pub fn new(c: usize, num_heads: usize, groups: usize, rng: &mut Rng) -> Self {
        assert!(
            num_heads > 0 && c % num_heads == 0,
            "AttentionBlock: {c} channels do not split into {num_heads} heads"
        );
        AttentionBlock {
            norm: normalization(groups, c),
            qkv: Conv2d::new(c, 3 * c, 1, 1, 0, true, rng),
            proj_out: zero_conv(c, c, 1, rng),
            num_heads,
        }
    }

    /// Channels `C`.
    pub fn channels(&self) -> usize {
        self.proj_out.c_out()
    }

    // ANCHOR: unet_attention_forward
    /// `y = x + proj_out(attention(qkv(norm(x))))`   x: (B, C, H, W) → y: (B, C, H, W)
    pub fn forward(&self, x: &Array4<f32>) -> (Array4<f32>, AttentionBlockCache) {
        let (hn, norm) = self.norm.forward(x); // (B, C, H, W)
        let (qkv, qkv_in) = self.qkv.forward(&hn); // (B, 3C, H, W)
                                                   // $O_j = \mathrm{softmax}(Q_j K_j^\top / \sqrt d)\, V_j$ for every (sample, head)
        let (q, k, v) = split_qkv(&qkv, self.num_heads); // each (B·heads, T, d)
        let (o, p) = sdpa_forward(q, k, v, 1); // o: (B·heads, T, d)
                                               // $y = x + \mathrm{proj\_out}([O_1, …, O_{heads}])$
        let (mut y, proj_out) = self.proj_out.forward(&merge_heads(o, x.dim()));
        y += x;
        let cache = AttentionBlockCache {
            norm,
            qkv_in,
            qkv,
            p,
            proj_out,
        };
        (y, cache)
    }
    // ANCHOR_END: unet_attention_forward

    /// The same output without keeping anything (sampling).
    pub fn forward_infer(&self, x: &Array4<f32>) -> Array4<f32> {
        let qkv = self.qkv.forward_infer(&self.norm.forward_infer(x));
        let (q, k, v) = split_qkv(&qkv, self.num_heads);
        let (o, _) = sdpa_forward(q, k, v, 1);
        let mut y = self.proj_out.forward_infer(&merge_heads(o, x.dim()));
        y += x;
        y
    }

    // ANCHOR: unet_attention_backward
    /// Given `dy = ∂L/∂y` (B, C, H, W), adds into every parameter's gradient and returns
    /// `dx = dy + ∂L/∂x` through the attention branch.
    pub fn backward(&mut self, cache: &AttentionBlockCache, dy: &Array4<f32>) -> Array4<f32> {
        let d_o = self.proj_out.backward(&cache.proj_out, dy); // (B, C, H, W)
                                                               // dQ, dK, dV are written straight into their places in d(qkv)   (B, 3C, H, W)
        let mut dqkv = Array4::zeros(cache.qkv.raw_dim());
        let (q, k, v) = split_qkv(&cache.qkv, self.num_heads);
        let (dq, dk, dv) = split_qkv_mut(&mut dqkv, self.num_heads);
        let d_o_heads = split_heads(&d_o, self.num_heads);
        sdpa_backward(q, k, v, &cache.p, d_o_heads, dq, dk, dv);
        let dh = self.qkv.backward(&cache.qkv_in, &dqkv);
        // $dx = dy + \mathrm{norm}^\top(\partial L/\partial \hat h)$
        let mut dx = self.norm.backward(&cache.norm, &dh);
        dx += dy;
        dx
    }
    // ANCHOR_END: unet_attention_backward
}

impl Parameters for AttentionBlock {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.norm.visit(&join(prefix, "norm"), f);
        self.qkv.visit(&join(prefix, "qkv"), f);
        self.proj_out.visit(&join(prefix, "proj_out"), f);
    }
}

//! Multi-head self-attention, as in timm's `Attention` used by DiT
//! ([Vaswani et al. 2017](https://arxiv.org/abs/1706.03762),
//! [Peebles & Xie 2023](https://arxiv.org/abs/2212.09748)).
//!
//! One fused Linear `qkv: C → 3C` makes queries, keys and values for every token; the `3C`
//! outputs are read in PyTorch's `reshape(B, T, 3, h, d)` order, so head `j` of the queries
//! is columns `j·d .. (j+1)·d` of the first `C`. Each (batch, head) pair then runs scaled
//! dot-product attention $O = \mathrm{softmax}(QK^\top/\sqrt d)\,V$, the heads are laid side
//! by side again and a Linear `proj: C → C` mixes them.
//!
//! The scaled dot-product core ([`sdpa_forward`], [`sdpa_backward`]) is written once here and
//! shared with [`crate::nn::cross_attention`]. It never copies a head out: a head is a strided
//! `(T, d)` view into the `qkv` output, which the GEMM reads directly. The (batch, head) pairs
//! run in parallel on rayon's threads, each writing only its own views of the outputs.

use ndarray::{
    Array2, Array3, Array4, ArrayView1, ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis,
};
use rayon::prelude::*;

use crate::nn::attention_kernel::{sdpa, sdpa_grad, Kernel, Saved};
use crate::nn::softmax::{softmax_backward_into, softmax_inplace};
use crate::nn::{Linear, LinearCache};
use crate::param::{join, Param, Parameters};
use crate::tensor::{gemm_serial, Rng};

/// Multi-head self-attention over tokens `x: (B, T, C)` with `heads` heads of size `C / heads`.
#[derive(Clone, Debug)]
pub struct Attention {
    pub qkv: Linear,  // C → 3C, with bias
    pub proj: Linear, // C → C, with bias
    pub heads: usize,
    /// Which scaled dot-product core runs ([`Kernel::Auto`] unless set).
    pub kernel: Kernel,
}

/// What backward needs from forward.
pub struct AttentionCache {
    qkv: LinearCache,
    qkv_out: Array3<f32>, // (B, T, 3C): queries, keys and values
    saved: Saved,         // the probabilities (B, h, T, T), or the tiled core's (B·h, T)
    proj: LinearCache,    // keeps the heads' output o (B·T, C)
}

impl Attention {
    /// `dim` channels split into `heads` heads; PyTorch's default Linear initialisation.
    pub fn new(dim: usize, heads: usize, rng: &mut Rng) -> Self {
        assert!(
            heads > 0 && dim % heads == 0,
            "attention: {dim} channels do not split into {heads} heads"
        );
        Attention {
            qkv: Linear::new(dim, 3 * dim, true, rng),
            proj: Linear::new(dim, dim, true, rng),
            heads,
            kernel: Kernel::Auto,
        }
    }

    /// Channels `C`.
    pub fn dim(&self) -> usize {
        self.proj.d_out()
    }

    // ANCHOR: forward
    /// `y = proj(MultiHead(x))`   x: (B, T, C) → y: (B, T, C).
    pub fn forward(&self, x: &Array3<f32>) -> (Array3<f32>, AttentionCache) {
        self.forward_masked(x, None)
    }

    /// [`forward`](Self::forward) where token `j` of sample `b` is attended only where
    /// `mask[b, j]` (B, T) is true: a padded sequence, such as a caption.
    pub fn forward_masked(
        &self,
        x: &Array3<f32>,
        mask: Option<&Array2<bool>>,
    ) -> (Array3<f32>, AttentionCache) {
        let (qkv_out, qkv) = self.qkv.forward(x); // (B, T, 3C)
        let (q, k, v) = split3(qkv_out.view(), self.dim()); // each (B, T, C), strided
        let mask = mask.map(|m| m.view());
        let (o, saved) = sdpa(q, k, v, self.heads, mask, self.kernel); // o: (B, T, C)
        let (y, proj) = self.proj.forward_owned(o);
        let cache = AttentionCache {
            qkv,
            qkv_out,
            saved,
            proj,
        };
        (y, cache)
    }
    // ANCHOR_END: forward

    /// The same output without keeping anything (sampling).
    pub fn forward_infer(&self, x: &Array3<f32>) -> Array3<f32> {
        self.forward_infer_masked(x, None)
    }

    /// [`forward_masked`](Self::forward_masked) without keeping anything.
    pub fn forward_infer_masked(
        &self,
        x: &Array3<f32>,
        mask: Option<&Array2<bool>>,
    ) -> Array3<f32> {
        let qkv_out = self.qkv.forward_infer(x);
        let (q, k, v) = split3(qkv_out.view(), self.dim());
        let (o, _) = sdpa(q, k, v, self.heads, mask.map(|m| m.view()), self.kernel);
        self.proj.forward_infer(&o)
    }

    // ANCHOR: backward
    /// Given `dy = ∂L/∂y`, adds into every parameter's gradient and returns `dx = ∂L/∂x`.
    pub fn backward(&mut self, cache: &AttentionCache, dy: &Array3<f32>) -> Array3<f32> {
        let c = self.dim();
        let d_o = self.proj.backward(&cache.proj, dy); // (B, T, C)
        let (q, k, v) = split3(cache.qkv_out.view(), c);
        // dq, dk, dv are the three column blocks of one (B, T, 3C) gradient, like qkv_out.
        let mut dqkv = Array3::zeros(cache.qkv_out.raw_dim());
        let (dq, dkv) = dqkv.view_mut().split_at(Axis(2), c);
        let (dk, dv) = dkv.split_at(Axis(2), c);
        let o = cache.proj.input_as(d_o.raw_dim()); // (B, T, C), kept by `proj`
        sdpa_grad(q, k, v, self.heads, &cache.saved, o, d_o.view(), dq, dk, dv);
        self.qkv.backward(&cache.qkv, &dqkv)
    }
    // ANCHOR_END: backward
}

impl Parameters for Attention {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.qkv.visit(&join(prefix, "qkv"), f);
        self.proj.visit(&join(prefix, "proj"), f);
    }
}

/// `(B, T, 3C)` → three `(B, T, C)` views: the `3` of PyTorch's `(B, T, 3, h, d)` comes first.
fn split3(
    qkv: ArrayView3<'_, f32>,
    c: usize,
) -> (
    ArrayView3<'_, f32>,
    ArrayView3<'_, f32>,
    ArrayView3<'_, f32>,
) {
    let (q, kv) = qkv.split_at(Axis(2), c);
    let (k, v) = kv.split_at(Axis(2), c);
    (q, k, v)
}

// ANCHOR: heads
/// `(B, T, C)` → `B·h` views `(T, d)`, in (batch, head) order: head `j` is columns
/// `j·d .. (j+1)·d`, PyTorch's `reshape(B, T, h, d)`. Nothing is copied.
pub fn heads(x: ArrayView3<'_, f32>, h: usize) -> Vec<ArrayView2<'_, f32>> {
    let d = head_dim(x.shape()[2], h);
    x.into_outer_iter()
        .flat_map(|xb| xb.into_axis_chunks_iter(Axis(1), d))
        .collect()
}

/// The same split of a mutable `(B, T, C)` into disjoint `(T, d)` views.
pub fn heads_mut(x: ArrayViewMut3<'_, f32>, h: usize) -> Vec<ArrayViewMut2<'_, f32>> {
    let d = head_dim(x.shape()[2], h);
    x.into_outer_iter_mut()
        .flat_map(|xb| xb.into_axis_chunks_iter_mut(Axis(1), d))
        .collect()
}
// ANCHOR_END: heads

fn head_dim(c: usize, h: usize) -> usize {
    assert!(
        h > 0 && c % h == 0 && c > 0,
        "attention: {c} channels do not split into {h} heads"
    );
    c / h
}

// ANCHOR: sdpa_forward
/// Multi-head scaled dot-product attention.
///
/// `q: (B, T, C)`, `k, v: (B, S, C)` (any strides) with `h` heads of size `d = C / h`.
/// Returns the heads laid side by side, `o: (B, T, C)`, and the probabilities
/// `p: (B, h, T, S)` that the backward pass needs.
pub fn sdpa_forward(
    q: ArrayView3<f32>,
    k: ArrayView3<f32>,
    v: ArrayView3<f32>,
    h: usize,
) -> (Array3<f32>, Array4<f32>) {
    sdpa_forward_masked(q, k, v, h, None)
}

/// [`sdpa_forward`] with a key padding mask `(B, S)`: `true` where key `j` of sample `b`
/// may be attended. A masked key's score is $-\infty$ before the softmax, so its
/// probability is exactly 0: it changes no output, and — since the softmax backward is
/// $dS = P \odot (\dots)$ — it receives no gradient, with no change to [`sdpa_backward`].
/// Every sample needs at least one valid key.
pub fn sdpa_forward_masked(
    q: ArrayView3<f32>,
    k: ArrayView3<f32>,
    v: ArrayView3<f32>,
    h: usize,
    mask: Option<ArrayView2<bool>>,
) -> (Array3<f32>, Array4<f32>) {
    let (b, t, c) = q.dim();
    let s = k.shape()[1];
    assert!(
        k.dim() == v.dim() && k.dim() == (b, s, c) && s > 0,
        "attention: q {:?}, k {:?}, v {:?} do not fit (B, T, C), (B, S, C), (B, S, C), S > 0",
        q.shape(),
        k.shape(),
        v.shape()
    );
    if let Some(mask) = &mask {
        assert!(
            mask.dim() == (b, s) && mask.outer_iter().all(|row| row.iter().any(|&m| m)),
            "attention: the mask {:?} must be (B, S) = ({b}, {s}) with a valid key in every row",
            mask.shape()
        );
    }
    let scale = 1.0 / (head_dim(c, h) as f32).sqrt();
    let mut o = Array3::zeros((b, t, c));
    let mut p = Array4::zeros((b, h, t, s));
    let p_heads = p.view_mut().into_shape_with_order((b * h, t, s)).unwrap();
    // One task per (batch, head), each writing its own block of `o` and of `p`.
    let inputs = heads(q, h).into_iter().zip(heads(k, h)).zip(heads(v, h));
    let outputs = heads_mut(o.view_mut(), h)
        .into_iter()
        .zip(p_heads.into_outer_iter_mut());
    // each (batch, head) task reads its sample's row of the mask
    let masks = (0..b * h).map(|i| mask.as_ref().map(|m| m.row(i / h)));
    let tasks: Vec<_> = inputs.zip(masks).zip(outputs).collect();
    tasks
        .into_par_iter()
        .for_each(|((((q, k), v), m), (o, p))| head_forward(q, k, v, m, scale, p, o));
    (o, p)
}

/// One head: `P = softmax(Q Kᵀ · scale)` into `p: (T, S)`, then `O = P V` into `o: (T, d)`;
/// keys where `mask` is false score $-\infty$.
fn head_forward(
    q: ArrayView2<f32>,
    k: ArrayView2<f32>,
    v: ArrayView2<f32>,
    mask: Option<ArrayView1<bool>>,
    scale: f32,
    mut p: ArrayViewMut2<f32>,
    o: ArrayViewMut2<f32>,
) {
    // ANCHOR: key_padding_mask
    // $S = Q K^\top / \sqrt d$   (T, S)
    gemm_serial(scale, q, k.t(), 0.0, p.view_mut());
    if let Some(mask) = mask {
        for mut row in p.rows_mut() {
            row.zip_mut_with(&mask, |s, &valid| {
                if !valid {
                    *s = f32::NEG_INFINITY
                }
            });
        }
    }
    // $P = \mathrm{softmax}(S)$, row by row
    let s = p.ncols();
    for row in p.as_slice_mut().expect("p is contiguous").chunks_mut(s) {
        softmax_inplace(row);
    }
    // ANCHOR_END: key_padding_mask
    // $O = P V$   (T, d)
    gemm_serial(1.0, p.view(), v, 0.0, o);
}
// ANCHOR_END: sdpa_forward

// ANCHOR: sdpa_backward
/// Backward of [`sdpa_forward`]: given `d_o = ∂L/∂o: (B, T, C)`, writes (overwrites)
/// `dq: (B, T, C)` and `dk, dv: (B, S, C)`.
#[allow(clippy::too_many_arguments)]
pub fn sdpa_backward(
    q: ArrayView3<f32>,
    k: ArrayView3<f32>,
    v: ArrayView3<f32>,
    p: &Array4<f32>,
    d_o: ArrayView3<f32>,
    dq: ArrayViewMut3<f32>,
    dk: ArrayViewMut3<f32>,
    dv: ArrayViewMut3<f32>,
) {
    let (b, h, t, s) = p.dim();
    let scale = 1.0 / (head_dim(q.shape()[2], h) as f32).sqrt();
    let p_heads = p.view().into_shape_with_order((b * h, t, s)).unwrap();
    // One task per (batch, head), each writing its own blocks of `dq`, `dk` and `dv`.
    let inputs = heads(q, h).into_iter().zip(heads(k, h)).zip(heads(v, h));
    let outputs = heads_mut(dq, h)
        .into_iter()
        .zip(heads_mut(dk, h))
        .zip(heads_mut(dv, h));
    let tasks: Vec<_> = inputs
        .zip(p_heads.into_outer_iter().zip(heads(d_o, h)))
        .zip(outputs)
        .collect();
    tasks
        .into_par_iter()
        .for_each(|((((q, k), v), (p, d_o)), ((dq, dk), dv))| {
            head_backward(q, k, v, p, d_o, scale, dq, dk, dv)
        });
}

/// One head's backward.
#[allow(clippy::too_many_arguments)]
fn head_backward(
    q: ArrayView2<f32>,
    k: ArrayView2<f32>,
    v: ArrayView2<f32>,
    p: ArrayView2<f32>,
    d_o: ArrayView2<f32>,
    scale: f32,
    dq: ArrayViewMut2<f32>,
    dk: ArrayViewMut2<f32>,
    dv: ArrayViewMut2<f32>,
) {
    let (t, s) = p.dim();
    // $dV = P^\top dO$   (S, d)
    gemm_serial(1.0, p.t(), d_o, 0.0, dv);
    // $dP = dO\, V^\top$   (T, S)
    let mut dp = Array2::zeros((t, s));
    gemm_serial(1.0, d_o, v.t(), 0.0, dp.view_mut());
    // $dS_{i\cdot} = \text{softmax-backward}(P_{i\cdot}, dP_{i\cdot})$, row by row
    let mut ds = Array2::zeros((t, s));
    let rows = p.as_slice().expect("p is contiguous").chunks(s);
    let d_rows = dp.as_slice().unwrap().chunks(s);
    for ((y, dy), dx) in rows
        .zip(d_rows)
        .zip(ds.as_slice_mut().unwrap().chunks_mut(s))
    {
        softmax_backward_into(y, dy, dx);
    }
    // $dQ = dS\, K / \sqrt d$   (T, d)
    gemm_serial(scale, ds.view(), k, 0.0, dq);
    // $dK = dS^\top Q / \sqrt d$   (S, d)
    gemm_serial(scale, ds.t(), q, 0.0, dk);
}
// ANCHOR_END: sdpa_backward

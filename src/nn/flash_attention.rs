//! Tiled scaled dot-product attention that never holds the $T \times S$ probability matrix:
//! the FlashAttention-2 algorithm ([Dao 2023](https://arxiv.org/abs/2307.08691)) on the CPU.
//!
//! The clear core in [`crate::nn::attention`] computes $P = \mathrm{softmax}(QK^\top/\sqrt d)$
//! for a whole head and keeps it for the backward pass: $B \cdot h \cdot T \cdot S$ floats per
//! layer, which for a video DiT with `full` space-time attention grows with the square of the
//! clip length. This kernel gives the same numbers (up to rounding) from blocks:
//!
//! - **Forward**, one task per (batch, head, block of queries): the queries meet the keys one
//!   block at a time, and an *online softmax* keeps, per query row, the running maximum $m$ and
//!   the running sum $\ell$ of $e^{s - m}$, rescaling what it has accumulated when $m$ grows.
//!   What is kept for the backward pass is the output $O$ (the caller keeps it anyway) and the
//!   log-sum-exp $L = m + \ln \ell$ of every row: $T$ floats instead of $T \cdot S$.
//! - **Backward**, one task per (batch, head): each block of $P$ is recomputed as
//!   $e^{S - L}$, and with $D_i = \sum_c dO_{ic}\, O_{ic}$ (which equals
//!   $\sum_j P_{ij}\, dP_{ij}$) the softmax backward is $dS = P \odot (dP - D)$ one block at a
//!   time. A task owns its head's $dQ$, $dK$, $dV$, so the blocks accumulate into them without
//!   races or atomics, and the result is the same bits on any number of threads.
//!
//! The same key padding mask as the clear core is supported (a masked key's probability is
//! exactly 0), and keys and queries may come from different sequences (cross-attention).

use ndarray::{
    s, Array2, Array3, ArrayView1, ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis,
};
use rayon::prelude::*;

use crate::nn::attention::{heads, heads_mut};
use crate::nn::fast_gelu::exp_f32;
use crate::tensor::gemm_serial;
use crate::tensor::simd::avx2_twin;

/// Block sizes: queries per task in the forward pass, and keys per step of the inner loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tiles {
    pub q: usize,
    pub k: usize,
}

impl Default for Tiles {
    /// 64 queries × 256 keys: of 64×64 … 128×1024, the fastest forward + backward at 512
    /// and 1024 tokens (width 64, 4 heads) and within 5 % of the fastest at 128 and 256; a
    /// score block is 64 KiB, inside the L2 cache.
    fn default() -> Self {
        Tiles { q: 64, k: 256 }
    }
}

// ANCHOR: flash_forward
/// Tiled multi-head attention: `q: (B, T, C)`, `k, v: (B, S, C)` (any strides), `h` heads,
/// an optional key padding mask `(B, S)` → the output `o: (B, T, C)` and the log-sum-exp of
/// every score row, `lse: (B·h, T)`, which [`flash_backward`] needs.
pub fn flash_forward(
    q: ArrayView3<f32>,
    k: ArrayView3<f32>,
    v: ArrayView3<f32>,
    h: usize,
    mask: Option<ArrayView2<bool>>,
    tiles: Tiles,
) -> (Array3<f32>, Array2<f32>) {
    let (b, t, c) = q.dim();
    check(q, k, v, h, mask, tiles);
    let scale = 1.0 / ((c / h) as f32).sqrt();
    let mut o = Array3::zeros((b, t, c));
    let mut lse = Array2::zeros((b * h, t));
    // One task per (batch, head, block of queries), each writing its rows of `o` and `lse`.
    let mut tasks = Vec::new();
    let heads_in = heads(q, h).into_iter().zip(heads(k, h)).zip(heads(v, h));
    let heads_out = heads_mut(o.view_mut(), h)
        .into_iter()
        .zip(lse.outer_iter_mut());
    for (i, (((qh, kh), vh), (oh, lh))) in heads_in.zip(heads_out).enumerate() {
        let m = mask.as_ref().map(|m| m.row(i / h));
        let q_blocks = (0..t)
            .step_by(tiles.q)
            .map(|i0| qh.slice_move(s![i0..(i0 + tiles.q).min(t), ..]));
        let o_blocks = oh.into_axis_chunks_iter_mut(Axis(0), tiles.q);
        let l_blocks = lh.into_slice().expect("fresh").chunks_mut(tiles.q);
        for ((qi, oi), li) in q_blocks.zip(o_blocks).zip(l_blocks) {
            tasks.push((qi, kh, vh, m, oi, li));
        }
    }
    tasks
        .into_par_iter()
        .for_each(|(qi, kh, vh, m, oi, li)| forward_block(qi, kh, vh, m, scale, tiles.k, oi, li));
    (o, lse)
}

/// One block of queries `q: (n, d)` against every key, `tk` keys at a time.
#[allow(clippy::too_many_arguments)]
fn forward_block(
    q: ArrayView2<f32>,
    k: ArrayView2<f32>,
    v: ArrayView2<f32>,
    mask: Option<ArrayView1<bool>>,
    scale: f32,
    tk: usize,
    mut o: ArrayViewMut2<f32>,
    lse: &mut [f32],
) {
    let n = q.nrows();
    let mut m = vec![f32::NEG_INFINITY; n]; // running row maxima
    let mut l = vec![0.0f32; n]; // running sums of $e^{s - m}$
    let mut scores = Array2::zeros((n, tk));
    // `o` accumulates $\sum_j e^{s_j - m} v_j$ and is divided by $\ell$ at the end
    for j0 in (0..k.nrows()).step_by(tk) {
        let j1 = (j0 + tk).min(k.nrows());
        let mut s = scores.slice_mut(s![.., ..j1 - j0]);
        // $S = Q K_j^\top / \sqrt d$   (n, tk)
        gemm_serial(scale, q, k.slice(s![j0..j1, ..]).t(), 0.0, s.view_mut());
        if let Some(mask) = &mask {
            mask_keys(&mut s, mask.slice(s![j0..j1]));
        }
        for (r, mut row) in s.rows_mut().into_iter().enumerate() {
            let row = row.as_slice_mut().expect("rows of a row-major block");
            let m_new = lanes(row, m[r], f32::max);
            if m_new == f32::NEG_INFINITY {
                row.fill(0.0); // every key so far masked: nothing to add yet
                continue;
            }
            // $\alpha = e^{m - m'}$ rescales what was summed under the old maximum
            let alpha = exp_or_zero(m[r] - m_new);
            let mut sum = 0.0;
            exp_shifted(row, m_new, &mut sum); // $P = e^{S - m'}$
            l[r] = l[r] * alpha + sum;
            m[r] = m_new;
            o.row_mut(r).map_inplace(|x| *x *= alpha);
        }
        // $O \mathrel{+}= P V_j$   (n, d)
        gemm_serial(1.0, s.view(), v.slice(s![j0..j1, ..]), 1.0, o.view_mut());
    }
    for r in 0..n {
        // $O = O / \ell$, $L = m + \ln \ell$
        let inv = 1.0 / l[r];
        o.row_mut(r).map_inplace(|x| *x *= inv);
        lse[r] = m[r] + l[r].ln();
    }
}
// ANCHOR_END: flash_forward

// ANCHOR: flash_backward
/// Backward of [`flash_forward`]: given its inputs, its output `o`, its `lse` and
/// `d_o = ∂L/∂o: (B, T, C)`, writes (overwrites) `dq: (B, T, C)` and `dk, dv: (B, S, C)`.
#[allow(clippy::too_many_arguments)]
pub fn flash_backward(
    q: ArrayView3<f32>,
    k: ArrayView3<f32>,
    v: ArrayView3<f32>,
    h: usize,
    mask: Option<ArrayView2<bool>>,
    tiles: Tiles,
    o: ArrayView3<f32>,
    lse: &Array2<f32>,
    d_o: ArrayView3<f32>,
    dq: ArrayViewMut3<f32>,
    dk: ArrayViewMut3<f32>,
    dv: ArrayViewMut3<f32>,
) {
    check(q, k, v, h, mask, tiles);
    let (b, t, c) = q.dim();
    assert!(
        o.dim() == (b, t, c) && d_o.dim() == (b, t, c) && lse.dim() == (b * h, t),
        "flash attention backward: o {:?}, d_o {:?}, lse {:?} do not fit q {:?}",
        o.shape(),
        d_o.shape(),
        lse.shape(),
        q.shape()
    );
    let scale = 1.0 / ((c / h) as f32).sqrt();
    // One task per (batch, head); it owns that head's dQ, dK and dV.
    let inputs = heads(q, h).into_iter().zip(heads(k, h)).zip(heads(v, h));
    let saved = heads(o, h)
        .into_iter()
        .zip(lse.outer_iter())
        .zip(heads(d_o, h));
    let outputs = heads_mut(dq, h)
        .into_iter()
        .zip(heads_mut(dk, h))
        .zip(heads_mut(dv, h));
    let tasks: Vec<_> = inputs.zip(saved).zip(outputs).enumerate().collect();
    tasks
        .into_par_iter()
        .for_each(|(i, ((((q, k), v), ((o, lse), d_o)), ((dq, dk), dv)))| {
            let m = mask.as_ref().map(|m| m.row(i / h));
            let lse = lse.as_slice().expect("rows of a fresh array");
            backward_head(q, k, v, m, scale, tiles, o, lse, d_o, dq, dk, dv)
        });
}

/// One head's backward, key blocks outside, query blocks inside (each $dK_j$, $dV_j$ is
/// finished before the next; $dQ$ collects a term from every key block).
#[allow(clippy::too_many_arguments)]
fn backward_head(
    q: ArrayView2<f32>,
    k: ArrayView2<f32>,
    v: ArrayView2<f32>,
    mask: Option<ArrayView1<bool>>,
    scale: f32,
    tiles: Tiles,
    o: ArrayView2<f32>,
    lse: &[f32],
    d_o: ArrayView2<f32>,
    mut dq: ArrayViewMut2<f32>,
    mut dk: ArrayViewMut2<f32>,
    mut dv: ArrayViewMut2<f32>,
) {
    let (t, s_len) = (q.nrows(), k.nrows());
    // $D_i = \sum_c dO_{ic} O_{ic} = \sum_j P_{ij}\, dP_{ij}$   (T)
    let delta: Vec<f32> = (0..t).map(|i| d_o.row(i).dot(&o.row(i))).collect();
    dq.fill(0.0);
    dk.fill(0.0);
    dv.fill(0.0);
    let mut p_blk = Array2::zeros((tiles.q, tiles.k));
    let mut dp_blk = Array2::zeros((tiles.q, tiles.k));
    for j0 in (0..s_len).step_by(tiles.k) {
        let j1 = (j0 + tiles.k).min(s_len);
        let (kj, vj) = (k.slice(s![j0..j1, ..]), v.slice(s![j0..j1, ..]));
        for i0 in (0..t).step_by(tiles.q) {
            let i1 = (i0 + tiles.q).min(t);
            let (qi, d_oi) = (q.slice(s![i0..i1, ..]), d_o.slice(s![i0..i1, ..]));
            let mut p = p_blk.slice_mut(s![..i1 - i0, ..j1 - j0]);
            let mut dp = dp_blk.slice_mut(s![..i1 - i0, ..j1 - j0]);
            // $P = e^{Q K_j^\top / \sqrt d - L}$, recomputed   (tq, tk)
            gemm_serial(scale, qi, kj.t(), 0.0, p.view_mut());
            if let Some(mask) = &mask {
                mask_keys(&mut p, mask.slice(s![j0..j1]));
            }
            for (mut row, &l) in p.rows_mut().into_iter().zip(&lse[i0..i1]) {
                let mut sum = 0.0;
                exp_shifted(row.as_slice_mut().expect("row-major block"), l, &mut sum);
            }
            // $dV_j \mathrel{+}= P^\top dO$   (tk, d)
            gemm_serial(1.0, p.t(), d_oi, 1.0, dv.slice_mut(s![j0..j1, ..]));
            // $dP = dO\, V_j^\top$   (tq, tk)
            gemm_serial(1.0, d_oi, vj.t(), 0.0, dp.view_mut());
            // $dS = P \odot (dP - D)$
            for ((dp_row, p_row), &d) in dp.rows_mut().into_iter().zip(p.rows()).zip(&delta[i0..i1])
            {
                softmax_grad_row(
                    p_row.as_slice().expect("row-major block"),
                    dp_row.into_slice().expect("row-major block"),
                    d,
                );
            }
            // $dQ \mathrel{+}= dS\, K_j / \sqrt d$,  $dK_j \mathrel{+}= dS^\top Q / \sqrt d$
            gemm_serial(scale, dp.view(), kj, 1.0, dq.slice_mut(s![i0..i1, ..]));
            gemm_serial(scale, dp.t(), qi, 1.0, dk.slice_mut(s![j0..j1, ..]));
        }
    }
}
// ANCHOR_END: flash_backward

/// Scores of masked keys become $-\infty$, so their probability is exactly 0.
fn mask_keys(s: &mut ArrayViewMut2<f32>, mask: ArrayView1<bool>) {
    for mut row in s.rows_mut() {
        row.zip_mut_with(&mask, |x, &valid| {
            if !valid {
                *x = f32::NEG_INFINITY
            }
        });
    }
}

/// $e^x$, and exactly 0 below $e^{-80}$ (so $e^{-\infty} = 0$, as a masked key needs).
#[inline(always)]
fn exp_or_zero(x: f32) -> f32 {
    let e = exp_f32(x);
    if x < -80.0 {
        0.0
    } else {
        e
    }
}

avx2_twin! {
    /// `row ← e^{row − shift}`, adding the new row's sum into `sum` (in lanes, so the loop
    /// vectorises).
    fn exp_shifted(row: &mut [f32], shift: f32, sum: &mut f32) {
        for x in row.iter_mut() {
            *x = exp_or_zero(*x - shift);
        }
        *sum += lanes(row, 0.0, |a, b| a + b);
    }
}

/// `op` folded over `row` in 8 independent lanes, then across them: unlike one running
/// value, which chains every step to the last, a reduction the compiler can vectorise.
#[inline(always)]
fn lanes(row: &[f32], init: f32, op: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [init; 8];
    let chunks = row.chunks_exact(8);
    let tail = chunks.remainder().iter().fold(init, |a, &x| op(a, x));
    for chunk in chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a = op(*a, x);
        }
    }
    acc.iter().fold(tail, |a, &x| op(a, x))
}

avx2_twin! {
    /// `dp ← p ⊙ (dp − d)`: one row of the softmax backward, given $d = \sum_j p_j\, dp_j$.
    fn softmax_grad_row(p: &[f32], dp: &mut [f32], d: f32) {
        for (g, &p) in dp.iter_mut().zip(p) {
            *g = p * (*g - d);
        }
    }
}

fn check(
    q: ArrayView3<f32>,
    k: ArrayView3<f32>,
    v: ArrayView3<f32>,
    h: usize,
    mask: Option<ArrayView2<bool>>,
    tiles: Tiles,
) {
    let (b, _, c) = q.dim();
    let s = k.shape()[1];
    assert!(
        k.dim() == v.dim() && k.dim() == (b, s, c) && s > 0 && h > 0 && c % h == 0,
        "flash attention: q {:?}, k {:?}, v {:?} do not fit (B, T, C), (B, S, C), (B, S, C) \
         with S > 0 and C divisible by {h} heads",
        q.shape(),
        k.shape(),
        v.shape()
    );
    assert!(
        tiles.q > 0 && tiles.k > 0,
        "flash attention: empty tiles {tiles:?}"
    );
    if let Some(mask) = &mask {
        assert!(
            mask.dim() == (b, s) && mask.outer_iter().all(|row| row.iter().any(|&m| m)),
            "flash attention: the mask {:?} must be (B, S) = ({b}, {s}) with a valid key in \
             every row",
            mask.shape()
        );
    }
}

//! adaLN: the conditioning `c` scales, shifts and gates every token of its sample.
//!
//! DiT's blocks never see `c` directly. A Linear turns it into per-sample vectors — shift
//! $\beta$, scale $\gamma$ and gate $\alpha$, each `(B, D)` — that act on all `T` tokens of
//! the sample (`unsqueeze(1)` in the reference):
//!
//! - [`norm_modulate`]: $a = \mathrm{LN}(x)\,(1 + \gamma) + \beta$, a LayerNorm without its own
//!   affine (eps 1e-6) whose scale and shift come from `c` — the reference's
//!   `modulate(norm(x), shift, scale)`.
//! - [`gated_add`]: $x \mathrel{+}= \alpha \odot y$, the gated residual. With $\alpha = 0$, as
//!   adaLN-*Zero* initialises it, the branch is off and the block is the identity.
//!
//! Tokens are `(B·T, D)` rows, sample `b` owning rows `b·T .. (b+1)·T`.
//!
//! Each comes twice. The clear versions ([`norm_modulate_clear`], [`gated_add_clear`] and
//! their backwards) are a few lines of [`LayerNorm`] and broadcasts: what the book shows. The
//! fused ones are what the model runs: one pass per sample that normalises and modulates
//! (or gates) together, its loops compiled for AVX2 where the CPU has it
//! ([`avx2_twin!`](crate::tensor::simd)). Each task writes its own rows and its own row of
//! the `(B, D)` gradients, summing over its `T` tokens in order, so results do not depend on
//! the thread count. `tests/fast_vs_clear.rs` checks the fused against the clear.

use crate::nn::{LayerNorm, LayerNormCache};
use crate::tensor::simd::avx2_twin;
use ndarray::{Array1, Array2, Array3, ArrayView2, Axis};
use rayon::prelude::*;

/// LayerNorm epsilon of every DiT norm.
pub const EPS: f32 = 1e-6;

/// What [`norm_modulate_clear_backward`] needs.
pub struct NormClearCache {
    norm: LayerNormCache,
    xhat: Array3<f32>, // (B, T, D): LN(x)
}

// ANCHOR: modulate_clear
/// $a = \mathrm{LN}(x)\,(1 + \gamma_b) + \beta_b$: a [`LayerNorm`] without affine, then the
/// sample's scale and shift broadcast over its `T` tokens.
/// x: (B·T, D), shift β and scale γ: (B, D) → a: (B·T, D), and the cache.
pub fn norm_modulate_clear(
    x: &Array2<f32>,
    shift: ArrayView2<f32>,
    scale: ArrayView2<f32>,
) -> (Array2<f32>, NormClearCache) {
    let (n, d) = x.dim();
    let b = shift.nrows();
    let x = x.to_shape((b, n / b, d)).expect("B·T rows").to_owned(); // (B, T, D)
    let (xhat, norm) = LayerNorm::new(d, EPS, false).forward(&x);
    // $a = \hat x\,(1 + \gamma) + \beta$, with γ and β as (B, 1, D)
    let a = &xhat * &(&scale + 1.0).insert_axis(Axis(1)) + shift.insert_axis(Axis(1));
    let a = a.to_shape((n, d)).expect("B·T rows").into_owned();
    (a, NormClearCache { norm, xhat })
}
// ANCHOR_END: modulate_clear

// ANCHOR: modulate_clear_backward

/// Backward of [`norm_modulate_clear`]: given `da` (B·T, D), adds $\partial L/\partial x$ into
/// `dx` and returns $\partial L/\partial\beta_b$ and $\partial L/\partial\gamma_b$, each (B, D).
pub fn norm_modulate_clear_backward(
    cache: &NormClearCache,
    da: &Array2<f32>,
    scale: ArrayView2<f32>,
    dx: &mut Array2<f32>,
) -> (Array2<f32>, Array2<f32>) {
    let (n, d) = da.dim();
    let da = da.to_shape(cache.xhat.raw_dim()).expect("B·T rows"); // (B, T, D)

    // $\partial L/\partial\beta_b = \sum_t da$
    let d_shift = da.sum_axis(Axis(1));
    // $\partial L/\partial\gamma_b = \sum_t da \odot \hat x$
    let d_scale = (&da * &cache.xhat).sum_axis(Axis(1));
    // $\partial L/\partial\hat x = da\,(1 + \gamma)$, then back through the LayerNorm
    let dxhat = &da * &(&scale + 1.0).insert_axis(Axis(1));
    let dx_norm = LayerNorm::new(d, EPS, false).backward(&cache.norm, &dxhat);
    *dx += &dx_norm.to_shape((n, d)).expect("B·T rows");
    (d_shift, d_scale)
}
// ANCHOR_END: modulate_clear_backward

// ANCHOR: gated_add_clear
/// The gated residual $x + \alpha_b \odot y$, the sample's gate broadcast over its tokens.
/// x, y: (B·T, D), gate α: (B, D) → (B·T, D)
pub fn gated_add_clear(x: &Array2<f32>, gate: ArrayView2<f32>, y: &Array2<f32>) -> Array2<f32> {
    let (n, d) = x.dim();
    let y = y
        .to_shape((gate.nrows(), n / gate.nrows(), d))
        .expect("B·T rows"); // (B, T, D)
    let gy = &y * &gate.insert_axis(Axis(1));
    x + &gy.to_shape((n, d)).expect("B·T rows")
}

/// Backward of [`gated_add_clear`] through the branch: given `dout` (B·T, D), returns
/// $\partial L/\partial y = \alpha_b \odot dout$ (B·T, D) and
/// $\partial L/\partial\alpha_b = \sum_t dout \odot y$ (B, D).
pub fn gated_add_clear_backward(
    dout: &Array2<f32>,
    gate: ArrayView2<f32>,
    y: &Array2<f32>,
) -> (Array2<f32>, Array2<f32>) {
    let (n, d) = dout.dim();
    let btd = (gate.nrows(), n / gate.nrows(), d);
    let dout = dout.to_shape(btd).expect("B·T rows"); // (B, T, D)
    let y = y.to_shape(btd).expect("B·T rows"); // (B, T, D)
    let dy = &dout * &gate.insert_axis(Axis(1));
    let d_gate = (&dout * &y).sum_axis(Axis(1));
    (dy.to_shape((n, d)).expect("B·T rows").into_owned(), d_gate)
}
// ANCHOR_END: gated_add_clear

/// What the backward of [`norm_modulate`] needs.
pub struct NormCache {
    xhat: Array2<f32>, // (B·T, D): the normalised tokens
    rstd: Array1<f32>, // (B·T): $1/\sqrt{\sigma^2 + \epsilon}$ of each token
}

// ANCHOR: modulate
/// $a = \hat x\,(1 + \gamma_b) + \beta_b$ with $\hat x = \mathrm{LN}(x)$
/// x: (B·T, D), shift β and scale γ: (B, D) → a: (B·T, D), and the cache.
pub fn norm_modulate(
    x: &Array2<f32>,
    shift: ArrayView2<f32>,
    scale: ArrayView2<f32>,
) -> (Array2<f32>, NormCache) {
    let (n, d) = x.dim();
    let t = tokens_per_sample(n, shift);
    let mut a = Array2::zeros((n, d));
    let mut xhat = Array2::zeros((n, d));
    let mut rstd = Array1::zeros(n);
    slice_mut(&mut a)
        .par_chunks_mut(t * d)
        .zip(slice_mut(&mut xhat).par_chunks_mut(t * d))
        .zip(rstd.as_slice_mut().expect("fresh").par_chunks_mut(t))
        .zip(slice(x).par_chunks(t * d))
        .enumerate()
        .for_each(|(b, (((a, xhat), rstd), x))| {
            modulate_sample(x, a, xhat, rstd, row(shift, b), row(scale, b))
        });
    (a, NormCache { xhat, rstd })
}

/// Backward of [`norm_modulate`]: given `da` (B·T, D), adds $\partial L/\partial x$ into `dx`
/// (the caller's residual gradient) and returns $\partial L/\partial\beta_b = \sum_t da$ and
/// $\partial L/\partial\gamma_b = \sum_t da \odot \hat x$, each (B, D).
pub fn norm_modulate_backward(
    cache: &NormCache,
    da: &Array2<f32>,
    scale: ArrayView2<f32>,
    dx: &mut Array2<f32>,
) -> (Array2<f32>, Array2<f32>) {
    let (n, d) = da.dim();
    let b = scale.nrows();
    let t = tokens_per_sample(n, scale);
    assert_eq!(dx.dim(), (n, d), "dx does not match the tokens");
    let mut d_shift = Array2::zeros((b, d));
    let mut d_scale = Array2::zeros((b, d));
    slice_mut(dx)
        .par_chunks_mut(t * d)
        .zip(slice_mut(&mut d_shift).par_chunks_mut(d))
        .zip(slice_mut(&mut d_scale).par_chunks_mut(d))
        .zip(slice(da).par_chunks(t * d))
        .zip(slice(&cache.xhat).par_chunks(t * d))
        .zip(cache.rstd.as_slice().expect("cached").par_chunks(t))
        .enumerate()
        .for_each(|(b, (((((dx, d_shift), d_scale), da), xhat), rstd))| {
            modulate_sample_backward(da, xhat, rstd, row(scale, b), dx, d_shift, d_scale)
        });
    (d_shift, d_scale)
}

avx2_twin! {
    /// One sample's tokens (rows of `beta.len()`): $\hat x$, $r$ and $a = \hat x (1 + \gamma) + \beta$.
    fn modulate_sample(
        x: &[f32],
        a: &mut [f32],
        xhat: &mut [f32],
        rstd: &mut [f32],
        beta: &[f32],
        gamma: &[f32],
    ) {
        let d = beta.len();
        for (((a, h), r), x) in a
            .chunks_mut(d)
            .zip(xhat.chunks_mut(d))
            .zip(rstd.iter_mut())
            .zip(x.chunks(d))
        {
            *r = normalise_row(x, h);
            // $a = \hat x (1 + \gamma) + \beta$
            for (((a, &h), &g), &s) in a.iter_mut().zip(&*h).zip(gamma).zip(beta) {
                *a = h * (1.0 + g) + s;
            }
        }
    }
}

avx2_twin! {
    /// One sample's backward: adds into `dx`, `d_shift` and `d_scale` (rows of `gamma.len()`).
    fn modulate_sample_backward(
        da: &[f32],
        xhat: &[f32],
        rstd: &[f32],
        gamma: &[f32],
        dx: &mut [f32],
        d_shift: &mut [f32],
        d_scale: &mut [f32],
    ) {
        let d = gamma.len();
        let mut g = vec![0.0f32; d];
        for (((dx, da), h), &r) in dx
            .chunks_mut(d)
            .zip(da.chunks(d))
            .zip(xhat.chunks(d))
            .zip(rstd)
        {
            // $\partial L/\partial\beta \mathrel{+}= da$, $\partial L/\partial\gamma \mathrel{+}= da\,\hat x$,
            // $g = \partial L/\partial\hat x = da\,(1 + \gamma)$
            for ((((ds, dg), g), &a), (&h, &gm)) in d_shift
                .iter_mut()
                .zip(d_scale.iter_mut())
                .zip(g.iter_mut())
                .zip(da)
                .zip(h.iter().zip(gamma))
            {
                *ds += a;
                *dg += a * h;
                *g = a * (1.0 + gm);
            }
            // $dx \mathrel{+}= r\,(g - \bar g - \hat x\,\overline{g \hat x})$
            normalise_row_backward_add(&g, h, r, dx);
        }
    }
}
// ANCHOR_END: modulate

// ANCHOR: gated_add
/// The gated residual $x \mathrel{+}= \alpha_b \odot y$   x, y: (B·T, D), gate α: (B, D).
pub fn gated_add(x: &mut Array2<f32>, gate: ArrayView2<f32>, y: &Array2<f32>) {
    let (n, d) = x.dim();
    let t = tokens_per_sample(n, gate);
    slice_mut(x)
        .par_chunks_mut(t * d)
        .zip(slice(y).par_chunks(t * d))
        .enumerate()
        .for_each(|(b, (x, y))| {
            let alpha = row(gate, b);
            for (x, y) in x.chunks_mut(d).zip(y.chunks(d)) {
                for ((x, &y), &g) in x.iter_mut().zip(y).zip(alpha) {
                    *x += g * y;
                }
            }
        });
}

/// Backward of [`gated_add`] through the branch: given `dx = ∂L/∂x_out`, returns
/// $\partial L/\partial y = \alpha_b \odot dx$ and $\partial L/\partial\alpha_b = \sum_t dx \odot y$
/// (B, D). (The residual's own gradient is `dx` itself.)
pub fn gated_add_backward(
    dx: &Array2<f32>,
    gate: ArrayView2<f32>,
    y: &Array2<f32>,
) -> (Array2<f32>, Array2<f32>) {
    let (n, d) = dx.dim();
    let t = tokens_per_sample(n, gate);
    let mut dy = Array2::zeros((n, d));
    let mut d_gate = Array2::zeros((gate.nrows(), d));
    slice_mut(&mut dy)
        .par_chunks_mut(t * d)
        .zip(slice_mut(&mut d_gate).par_chunks_mut(d))
        .zip(slice(dx).par_chunks(t * d))
        .zip(slice(y).par_chunks(t * d))
        .enumerate()
        .for_each(|(b, (((dy, d_gate), dx), y))| {
            let alpha = row(gate, b);
            for ((dy, dx), y) in dy.chunks_mut(d).zip(dx.chunks(d)).zip(y.chunks(d)) {
                for i in 0..d {
                    d_gate[i] += dx[i] * y[i];
                    dy[i] = alpha[i] * dx[i];
                }
            }
        });
    (dy, d_gate)
}
// ANCHOR_END: gated_add

/// Lanes of the f64 partial sums: enough independent additions for the loops to vectorise.
const LANES: usize = 8;

/// $\sum_i f(a_i, b_i)$ in f64, as [`LANES`] interleaved partial sums added at the end (the
/// same terms as a left-to-right sum, in a fixed order that does not depend on threads).
#[inline(always)]
fn sum_f64(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f64) -> f64 {
    let mut acc = [0.0f64; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (ca, cb) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += f(ca[l], cb[l]);
        }
    }
    let mut s = acc.iter().sum::<f64>();
    for (&a, &b) in ra.iter().zip(rb) {
        s += f(a, b);
    }
    s
}

/// LayerNorm of one token: writes $\hat x = (x - \mu)\,r$ and returns
/// $r = 1/\sqrt{\sigma^2 + \epsilon}$ (biased variance, as PyTorch; sums in f64).
#[inline(always)]
fn normalise_row(x: &[f32], xhat: &mut [f32]) -> f32 {
    let n = x.len();
    // $\mu = \frac1n \sum_i x_i$
    let mu = sum_f64(x, x, |v, _| v as f64) / n as f64;
    // $\sigma^2 = \frac1n \sum_i (x_i - \mu)^2$
    let var = sum_f64(x, x, |v, _| (v as f64 - mu) * (v as f64 - mu)) / n as f64;
    let r = 1.0 / (var + EPS as f64).sqrt();
    for (h, &v) in xhat.iter_mut().zip(x) {
        *h = ((v as f64 - mu) * r) as f32;
    }
    r as f32
}

/// Backward through one token's normalisation: given $g = \partial L/\partial \hat x$, adds
/// $r\,\big(g - \overline{g} - \hat x\,\overline{g \hat x}\big)$ into `dx` (bars: means over the token).
#[inline(always)]
fn normalise_row_backward_add(g: &[f32], xhat: &[f32], r: f32, dx: &mut [f32]) {
    let n = g.len();
    let mean_g = (sum_f64(g, g, |v, _| v as f64) / n as f64) as f32;
    let mean_gx = (sum_f64(g, xhat, |v, h| v as f64 * h as f64) / n as f64) as f32;
    for ((d, &gi), &hi) in dx.iter_mut().zip(g).zip(xhat) {
        *d += r * (gi - mean_g - hi * mean_gx);
    }
}

/// Row `b` of a per-sample `(B, D)` view (a column block of a row-major matrix) as a slice.
fn row(v: ArrayView2<'_, f32>, b: usize) -> &'_ [f32] {
    v.index_axis_move(Axis(0), b)
        .to_slice()
        .expect("per-sample rows are contiguous")
}

fn slice(a: &Array2<f32>) -> &[f32] {
    a.as_slice().expect("tokens are row-major")
}

fn slice_mut(a: &mut Array2<f32>) -> &mut [f32] {
    a.as_slice_mut().expect("tokens are row-major")
}

/// `T` for `n` token rows and a `(B, D)` per-sample tensor; panics unless `B` divides `n`.
fn tokens_per_sample(n: usize, per_sample: ArrayView2<f32>) -> usize {
    let b = per_sample.nrows();
    assert!(
        b > 0 && n % b == 0 && n > 0,
        "adaLN: {n} token rows do not split into {b} samples"
    );
    n / b
}

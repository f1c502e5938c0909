//! Layer normalisation over the last axis (Ba, Kiros & Hinton 2016,
//! <https://arxiv.org/abs/1607.06450>).
//!
//! Each row `x` of `C` features becomes $\hat x = (x - \mu)/\sqrt{\sigma^2 + \epsilon}$, then
//! optionally $y = \gamma \odot \hat x + \beta$. The input may have any leading axes, flattened
//! into rows as `Linear` does. DiT normalises with `affine = false, eps = 1e-6` and lets adaLN
//! supply the scale and shift.
//!
//! The per-row kernels [`normalise_row`] and [`normalise_row_backward`] are shared with
//! [`GroupNorm`](super::GroupNorm), whose "rows" are (batch, group) slices.

use super::linear::{rows, unflatten};
use crate::param::{join, Param, Parameters};
use ndarray::{Array, Array1, Array2, ArrayD, Axis, Dimension, IxDyn};
use rayon::prelude::*;

/// Elements of work per parallel task (rows are grouped until they reach this size).
pub(crate) const PAR_GRAIN: usize = 1 << 13;

/// `y = (x − μ)/√(σ² + ε) · γ + β` over the last axis.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub weight: Option<Param>, // γ (C), only when affine
    pub bias: Option<Param>,   // β (C), only when affine
    pub dim: usize,
    pub eps: f32,
}

/// What backward needs: the normalised rows and each row's $1/\sqrt{\sigma^2+\epsilon}$.
pub struct LayerNormCache {
    xhat: Array2<f32>, // (N, C)
    rstd: Array1<f32>, // (N)
}

// ANCHOR: row_kernels
/// Normalises one row: writes $\hat x = (x - \mu)\,r$ into `xhat` and returns
/// $r = 1/\sqrt{\sigma^2 + \epsilon}$ (biased variance, as PyTorch). Sums run in f64.
pub(crate) fn normalise_row(x: &[f32], eps: f32, xhat: &mut [f32]) -> f32 {
    let n = x.len() as f64;
    // $\mu = \frac1n \sum_i x_i$
    let mu = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    // $\sigma^2 = \frac1n \sum_i (x_i - \mu)^2$
    let var = x.iter().map(|&v| (v as f64 - mu).powi(2)).sum::<f64>() / n;
    let r = 1.0 / (var + eps as f64).sqrt();
    for (h, &v) in xhat.iter_mut().zip(x) {
        *h = ((v as f64 - mu) * r) as f32;
    }
    r as f32
}

/// Backward through one row's normalisation: given $g = \partial L/\partial \hat x$, writes
/// $dx = r\,\big(g - \overline{g} - \hat x\,\overline{g \hat x}\big)$ (bars are means over the row).
pub(crate) fn normalise_row_backward(g: &[f32], xhat: &[f32], r: f32, dx: &mut [f32]) {
    let n = g.len() as f64;
    let mean_g = g.iter().map(|&v| v as f64).sum::<f64>() / n;
    let mean_gx = g
        .iter()
        .zip(xhat)
        .map(|(&a, &b)| a as f64 * b as f64)
        .sum::<f64>()
        / n;
    let (mean_g, mean_gx) = (mean_g as f32, mean_gx as f32);
    for ((d, &gi), &hi) in dx.iter_mut().zip(g).zip(xhat) {
        *d = r * (gi - mean_g - hi * mean_gx);
    }
}
// ANCHOR_END: row_kernels

impl LayerNorm {
    /// A LayerNorm over `dim` features; with `affine`, `weight = 1` and `bias = 0` as PyTorch.
    pub fn new(dim: usize, eps: f32, affine: bool) -> Self {
        let (weight, bias) = if affine {
            (
                Some(Param::new(ArrayD::ones(IxDyn(&[dim])))),
                Some(Param::zeros(&[dim])),
            )
        } else {
            (None, None)
        };
        LayerNorm {
            weight,
            bias,
            dim,
            eps,
        }
    }

    // ANCHOR: forward
    /// Normalises every row of `x` (…, C), keeping $\hat x$ and $1/\sigma$ for backward.
    pub fn forward<D: Dimension>(&self, x: &Array<f32, D>) -> (Array<f32, D>, LayerNormCache) {
        let (xhat, rstd) = self.normalise(x);
        let y = self.affine(xhat.clone());
        (unflatten(y, x.raw_dim()), LayerNormCache { xhat, rstd })
    }

    /// The same output without keeping anything.
    pub fn forward_infer<D: Dimension>(&self, x: &Array<f32, D>) -> Array<f32, D> {
        let (xhat, _) = self.normalise(x);
        unflatten(self.affine(xhat), x.raw_dim())
    }

    /// $\hat x$ (N, C) and $r = 1/\sqrt{\sigma^2+\epsilon}$ (N), parallel over groups of rows.
    fn normalise<D: Dimension>(&self, x: &Array<f32, D>) -> (Array2<f32>, Array1<f32>) {
        let x2 = rows(x.view(), self.dim).as_standard_layout().into_owned(); // (N, C)
        let c = self.dim.max(1);
        let mut xhat = Array2::zeros(x2.raw_dim());
        let mut rstd = Array1::zeros(x2.nrows());
        xhat.as_slice_mut()
            .unwrap()
            .par_chunks_mut(c)
            .zip(x2.as_slice().unwrap().par_chunks(c))
            .zip(rstd.as_slice_mut().unwrap().par_iter_mut())
            .with_min_len(PAR_GRAIN / c + 1)
            .for_each(|((h, xr), r)| *r = normalise_row(xr, self.eps, h));
        (xhat, rstd)
    }

    /// $y = \gamma \odot \hat x + \beta$ in place (identity without affine).
    fn affine(&self, mut xhat: Array2<f32>) -> Array2<f32> {
        if let (Some(w), Some(b)) = (&self.weight, &self.bias) {
            xhat *= &w.v1();
            xhat += &b.v1();
        }
        xhat
    }
    // ANCHOR_END: forward

    // ANCHOR: backward
    /// Given `dy`, adds $\partial L/\partial\gamma = \sum_n dy \odot \hat x$ and
    /// $\partial L/\partial\beta = \sum_n dy$ into the gradients and returns `dx`.
    pub fn backward<D: Dimension>(
        &mut self,
        cache: &LayerNormCache,
        dy: &Array<f32, D>,
    ) -> Array<f32, D> {
        let dy2 = rows(dy.view(), self.dim).as_standard_layout().into_owned(); // (N, C)
        assert_eq!(
            dy2.raw_dim(),
            cache.xhat.raw_dim(),
            "dy does not match forward"
        );
        // $g = \partial L/\partial \hat x = dy \odot \gamma$
        let g = match (&mut self.weight, &mut self.bias) {
            (Some(w), Some(b)) => {
                w.g1()
                    .scaled_add(1.0, &(&dy2 * &cache.xhat).sum_axis(Axis(0)));
                b.g1().scaled_add(1.0, &dy2.sum_axis(Axis(0)));
                &dy2 * &w.v1()
            }
            _ => dy2,
        };
        let c = self.dim.max(1);
        let mut dx = Array2::zeros(g.raw_dim());
        dx.as_slice_mut()
            .unwrap()
            .par_chunks_mut(c)
            .zip(g.as_slice().unwrap().par_chunks(c))
            .zip(cache.xhat.as_slice().unwrap().par_chunks(c))
            .zip(cache.rstd.as_slice().unwrap().par_iter())
            .with_min_len(PAR_GRAIN / c + 1)
            .for_each(|(((d, gr), h), &r)| normalise_row_backward(gr, h, r, d));
        unflatten(dx, dy.raw_dim())
    }
    // ANCHOR_END: backward
}

impl Parameters for LayerNorm {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        if let Some(w) = &mut self.weight {
            f(&join(prefix, "weight"), w);
        }
        if let Some(b) = &mut self.bias {
            f(&join(prefix, "bias"), b);
        }
    }
}

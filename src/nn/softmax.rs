//! Softmax over the last axis, and its Jacobian-vector product.
//!
//! $\mathrm{softmax}(x)_i = e^{x_i} / \sum_j e^{x_j}$ turns a row of scores into a probability
//! distribution. The two free functions [`softmax_inplace`] and [`softmax_backward_into`] work
//! on one row and are shared by the [`Softmax`] layer and by attention
//! ([`crate::nn::attention`]), which applies them to every row of its score matrices.

use ndarray::{Array, Dimension};
use rayon::prelude::*;

use crate::param::{Param, Parameters};

/// Inputs with at least this many elements are split over rayon's threads, row by row.
const PAR_MIN_ELEMS: usize = 1 << 15;

// ANCHOR: softmax_row
/// `row ← softmax(row)`, numerically stable.
///
/// Subtracting the row maximum $m$ first changes nothing mathematically,
/// $e^{x_i - m} / \sum_j e^{x_j - m} = e^{x_i} / \sum_j e^{x_j}$, but keeps every exponent
/// $\le 0$, so nothing overflows and the largest term is exactly 1.
pub fn softmax_inplace(row: &mut [f32]) {
    let m = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0f32;
    for v in row.iter_mut() {
        // $e^{x_i - m}$
        *v = (*v - m).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// Given `y = softmax(x)` and `dy = ∂L/∂y` for one row, writes `dx = ∂L/∂x`.
///
/// The Jacobian is $\partial y_i / \partial x_j = y_i(\delta_{ij} - y_j)$, so the
/// Jacobian-vector product never needs the matrix:
/// $dx_i = y_i \,(dy_i - \sum_j y_j\, dy_j)$.
pub fn softmax_backward_into(y: &[f32], dy: &[f32], dx: &mut [f32]) {
    assert!(
        y.len() == dy.len() && y.len() == dx.len(),
        "softmax backward: rows of different lengths"
    );
    // $\sum_j y_j\, dy_j$
    let dot: f32 = y.iter().zip(dy).map(|(&a, &b)| a * b).sum();
    for ((dx, &y), &dy) in dx.iter_mut().zip(y).zip(dy) {
        // $dx_i = y_i (dy_i - \textstyle\sum_j y_j dy_j)$
        *dx = y * (dy - dot);
    }
}
// ANCHOR_END: softmax_row

/// Softmax over the last axis of an input of any rank, e.g. `(B, T, C)` or `(N, C)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Softmax;

/// What backward needs from forward: the output `y` itself (the Jacobian is written in `y`).
pub struct SoftmaxCache<D: Dimension> {
    y: Array<f32, D>,
}

impl Softmax {
    /// `y = softmax(x)` over the last axis, keeping `y` for the backward pass.
    pub fn forward<D: Dimension>(&self, x: &Array<f32, D>) -> (Array<f32, D>, SoftmaxCache<D>) {
        let y = self.forward_infer(x);
        (y.clone(), SoftmaxCache { y })
    }

    /// `y = softmax(x)` over the last axis without keeping anything.
    pub fn forward_infer<D: Dimension>(&self, x: &Array<f32, D>) -> Array<f32, D> {
        let mut y = x.as_standard_layout().into_owned();
        let n = last_len(&y);
        for_rows(
            y.as_slice_mut().expect("standard layout"),
            n,
            softmax_inplace,
        );
        y
    }

    /// Given `dy = ∂L/∂y`, returns `dx = ∂L/∂x` row by row.
    pub fn backward<D: Dimension>(
        &self,
        cache: &SoftmaxCache<D>,
        dy: &Array<f32, D>,
    ) -> Array<f32, D> {
        assert_eq!(cache.y.shape(), dy.shape(), "softmax backward: dy shape");
        let dy = dy.as_standard_layout();
        let y = cache.y.as_slice().expect("standard layout");
        let dys = dy.as_slice().expect("standard layout");
        let n = last_len(&cache.y);
        let mut dx = Array::zeros(cache.y.raw_dim());
        if n == 0 {
            return dx;
        }
        let dxs = dx.as_slice_mut().expect("fresh array");
        let row = |(i, dx): (usize, &mut [f32])| {
            let r = i * n..(i + 1) * n;
            softmax_backward_into(&y[r.clone()], &dys[r], dx);
        };
        if dxs.len() >= PAR_MIN_ELEMS {
            dxs.par_chunks_mut(n).enumerate().for_each(row);
        } else {
            dxs.chunks_mut(n).enumerate().for_each(row);
        }
        dx
    }
}

impl Parameters for Softmax {
    /// No parameters.
    fn visit(&mut self, _prefix: &str, _f: &mut dyn FnMut(&str, &mut Param)) {}
}

/// Length of the last axis (rows are that long).
fn last_len<D: Dimension>(a: &Array<f32, D>) -> usize {
    *a.shape()
        .last()
        .expect("softmax needs an input of rank at least 1")
}

/// Applies `f` to every row of length `n` of `data`, in parallel when `data` is large.
/// Each row is written by exactly one task, so the result does not depend on the threads.
fn for_rows(data: &mut [f32], n: usize, f: impl Fn(&mut [f32]) + Sync + Send) {
    if n == 0 {
        return;
    }
    if data.len() >= PAR_MIN_ELEMS {
        data.par_chunks_mut(n).for_each(f);
    } else {
        data.chunks_mut(n).for_each(f);
    }
}

//! Regression losses with mean reduction, as PyTorch's defaults: the diffusion loss is the MSE
//! between predicted and true noise; the VAE's reconstruction loss is L1 or MSE.
//!
//! Each returns the scalar loss and its gradient with respect to `pred` (the target is data).
//! The loss is summed in f64 over fixed-size chunks, in parallel, and the chunk sums are added
//! in order, so the value is the same bits whatever the thread count.

use ndarray::{Array, Dimension};
use rayon::prelude::*;

/// Elements per parallel chunk.
const CHUNK: usize = 1 << 14;

/// Sum over `pred`/`target` pairs of `term(p, t)` in f64, and the gradient `grad(p, t)` of each.
fn reduce<D: Dimension>(
    pred: &Array<f32, D>,
    target: &Array<f32, D>,
    term: impl Fn(f32, f32) -> f64 + Sync,
    grad: impl Fn(f32, f32) -> f32 + Sync,
) -> (f64, Array<f32, D>) {
    assert_eq!(
        pred.shape(),
        target.shape(),
        "loss: prediction and target shapes differ"
    );
    let (p, t) = (pred.as_standard_layout(), target.as_standard_layout());
    let mut dpred = Array::zeros(pred.raw_dim());
    let partial: Vec<f64> = dpred
        .as_slice_mut()
        .unwrap()
        .par_chunks_mut(CHUNK)
        .zip(p.as_slice().unwrap().par_chunks(CHUNK))
        .zip(t.as_slice().unwrap().par_chunks(CHUNK))
        .map(|((d, p), t)| {
            let mut sum = 0.0f64;
            for ((d, &p), &t) in d.iter_mut().zip(p).zip(t) {
                sum += term(p, t);
                *d = grad(p, t);
            }
            sum
        })
        .collect();
    (partial.iter().sum(), dpred)
}

// ANCHOR: mse
/// Mean squared error $L = \frac1n \sum_i (p_i - t_i)^2$ and
/// $\partial L/\partial p_i = \frac2n (p_i - t_i)$.
pub fn mse<D: Dimension>(pred: &Array<f32, D>, target: &Array<f32, D>) -> (f32, Array<f32, D>) {
    let n = pred.len().max(1);
    let scale = 2.0 / n as f32;
    let (sum, dpred) = reduce(
        pred,
        target,
        |p, t| (p as f64 - t as f64).powi(2),
        |p, t| scale * (p - t),
    );
    ((sum / n as f64) as f32, dpred)
}
// ANCHOR_END: mse

// ANCHOR: l1
/// Mean absolute error $L = \frac1n \sum_i |p_i - t_i|$ and
/// $\partial L/\partial p_i = \frac1n \operatorname{sign}(p_i - t_i)$.
///
/// $|\cdot|$ has no derivative at 0; like PyTorch we use the subgradient
/// $\operatorname{sign}(0) = 0$, so an exact match contributes no gradient.
pub fn l1<D: Dimension>(pred: &Array<f32, D>, target: &Array<f32, D>) -> (f32, Array<f32, D>) {
    let n = pred.len().max(1);
    let scale = 1.0 / n as f32;
    let sign = |d: f32| {
        if d > 0.0 {
            1.0
        } else if d < 0.0 {
            -1.0
        } else {
            0.0
        }
    };
    let (sum, dpred) = reduce(
        pred,
        target,
        |p, t| (p as f64 - t as f64).abs(),
        |p, t| scale * sign(p - t),
    );
    ((sum / n as f64) as f32, dpred)
}
// ANCHOR_END: l1

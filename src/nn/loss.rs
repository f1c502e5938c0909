//! Losses with mean reduction, as PyTorch's defaults: the diffusion loss is the MSE between
//! predicted and true noise; the VAE's reconstruction loss is L1 or MSE; the evaluation
//! classifier ([`crate::metrics`]) learns with the softmax cross-entropy.
//!
//! Each returns the scalar loss and its gradient with respect to `pred` (the target is data).
//! The loss is summed in f64 over fixed-size chunks, in parallel, and the chunk sums are added
//! in order, so the value is the same bits whatever the thread count.

use ndarray::{Array, Array2, Dimension};
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

// ANCHOR: cross_entropy
/// Softmax cross-entropy of `logits` `(N, K)` against class indices `labels` (one per row),
/// averaged over the rows, as PyTorch's `F.cross_entropy(logits, labels)`:
/// $L = -\frac1N \sum_n \log \mathrm{softmax}(z_n)_{y_n}$ and
/// $\partial L/\partial z_{n,k} = \frac1N \left(\mathrm{softmax}(z_n)_k - [k = y_n]\right)$.
///
/// Each row's $\log \sum_k e^{z_k}$ is computed as $m + \log \sum_k e^{z_k - m}$ with
/// $m = \max_k z_k$ (in f64), so large logits neither overflow nor lose the small terms.
pub fn cross_entropy(logits: &Array2<f32>, labels: &[usize]) -> (f32, Array2<f32>) {
    let (n, k) = logits.dim();
    assert_eq!(
        labels.len(),
        n,
        "cross_entropy: {n} rows of logits but {} labels",
        labels.len()
    );
    if let Some(&bad) = labels.iter().find(|&&y| y >= k) {
        panic!("cross_entropy: label {bad} but only {k} classes");
    }
    let inv_n = 1.0 / n.max(1) as f64;
    let mut dlogits = Array2::zeros((n, k));
    let mut sum = 0.0f64;
    for ((z, mut d), &y) in logits
        .rows()
        .into_iter()
        .zip(dlogits.rows_mut())
        .zip(labels)
    {
        let m = z.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
        // $\log \sum_k e^{z_k} = m + \log \sum_k e^{z_k - m}$
        let lse = m + z.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
        // $-\log \mathrm{softmax}(z)_y = \log \sum_k e^{z_k} - z_y$
        sum += lse - z[y] as f64;
        for (j, (dv, &v)) in d.iter_mut().zip(z).enumerate() {
            // $(\mathrm{softmax}(z)_j - [j = y]) / N$
            let p = (v as f64 - lse).exp();
            *dv = ((p - if j == y { 1.0 } else { 0.0 }) * inv_n) as f32;
        }
    }
    ((sum * inv_n) as f32, dlogits)
}
// ANCHOR_END: cross_entropy

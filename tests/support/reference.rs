//! What the PyTorch reference tests share: the error measure and the fixtures' loss.

use ndarray::{ArrayD, IxDyn};

/// $\max_i |a_i - b_i| / \max_i |b_i|$: the error of `got` relative to the scale of `want`.
pub fn relative_error(got: &ArrayD<f32>, want: &ArrayD<f32>) -> f64 {
    assert_eq!(got.shape(), want.shape(), "shapes differ");
    let scale = want.iter().fold(0.0f64, |m, &v| m.max(v.abs() as f64));
    let diff = got
        .iter()
        .zip(want.iter())
        .fold(0.0f64, |m, (&a, &b)| m.max((a as f64 - b as f64).abs()));
    assert!(scale > 0.0, "a reference tensor is all zeros");
    diff / scale
}

/// `L = mean((out - target)^2)` in f64, and `dL/dout = 2 (out - target) / N`.
pub fn loss_and_grad(out: &ArrayD<f32>, target: &ArrayD<f32>) -> (f64, ArrayD<f32>) {
    assert_eq!(out.shape(), target.shape(), "output vs target shape");
    let n = out.len() as f64;
    let loss = out
        .iter()
        .zip(target.iter())
        .map(|(&o, &r)| (o as f64 - r as f64).powi(2))
        .sum::<f64>()
        / n;
    let d_out = ArrayD::from_shape_vec(
        IxDyn(out.shape()),
        out.iter()
            .zip(target.iter())
            .map(|(&o, &r)| (2.0 * (o as f64 - r as f64) / n) as f32)
            .collect(),
    )
    .expect("same shape");
    (loss, d_out)
}

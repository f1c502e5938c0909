//! Gradient check for `Conv2d` over random shapes, kernels, strides, paddings, bias and
//! seeds, and an exact comparison of its forward pass with a naive direct convolution.

use minisora::gradcheck::{check, random_input, GradCheck};
use minisora::nn::Conv2d;
use minisora::tensor::rng;
use ndarray::{Array4, Ix4};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn conv2d_gradients_match_finite_differences(
        b in 1usize..3,
        c_in in 1usize..5,
        c_out in 1usize..5,
        h in 1usize..8,
        w in 1usize..8,
        k in 1usize..4,
        stride in 1usize..3,
        pad in 0usize..3,
        bias in any::<bool>(),
        seed in any::<u64>(),
    ) {
        prop_assume!(h + 2 * pad >= k && w + 2 * pad >= k);
        let mut r = rng(seed);
        let mut layer = Conv2d::new(c_in, c_out, k, stride, pad, bias, &mut r);
        let x = random_input(&[b, c_in, h, w], &mut r);
        let report = check(
            &mut layer,
            &[x],
            |l, xs| l.forward_infer(&four(&xs[0])).into_dyn(),
            |l, xs, dy| {
                let (_, cache) = l.forward(&four(&xs[0]));
                vec![l.backward(&cache, &four(dy)).into_dyn()]
            },
            &GradCheck { seed, ..GradCheck::default() },
        );
        prop_assert!(report.passed, "{report:?}");
        // every tensor was checked: the input and each parameter
        prop_assert!(report.checked > 0);
    }
}

fn four(a: &ndarray::ArrayD<f32>) -> Array4<f32> {
    a.clone().into_dimensionality::<Ix4>().unwrap()
}

/// $y[n, o, i, j] = b_o + \sum_{c, u, v} W[o, c, u, v]\, x[n, c, i s + u - p, j s + v - p]$
fn naive(layer: &Conv2d, x: &Array4<f32>) -> Array4<f32> {
    let (bn, c, h, w) = x.dim();
    let (o, k, s, p) = (layer.c_out(), layer.kernel(), layer.stride, layer.padding);
    let oh = (h + 2 * p - k) / s + 1;
    let ow = (w + 2 * p - k) / s + 1;
    let wt = layer
        .weight
        .value
        .view()
        .into_dimensionality::<Ix4>()
        .unwrap();
    Array4::from_shape_fn((bn, o, oh, ow), |(n, oc, i, j)| {
        let mut acc = layer.bias.as_ref().map_or(0.0f64, |b| b.value[[oc]] as f64);
        for ci in 0..c {
            for u in 0..k {
                for v in 0..k {
                    let (iy, ix) = (
                        (i * s + u) as isize - p as isize,
                        (j * s + v) as isize - p as isize,
                    );
                    if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                        acc +=
                            wt[[oc, ci, u, v]] as f64 * x[[n, ci, iy as usize, ix as usize]] as f64;
                    }
                }
            }
        }
        acc as f32
    })
}

#[test]
fn conv2d_forward_matches_naive_direct_convolution() {
    // (B, C, O, H, W, k, stride, pad, bias)
    for &(b, c, o, h, w, k, s, p, bias) in &[
        (3, 3, 5, 7, 5, 3, 1, 1, true),
        (2, 2, 3, 9, 6, 3, 2, 1, false),
        (1, 4, 2, 5, 7, 2, 2, 0, true),
        (3, 5, 4, 6, 6, 1, 1, 0, true),
        (2, 3, 3, 5, 3, 1, 2, 1, false),
        (1, 1, 2, 1, 1, 3, 1, 2, true),
        (5, 2, 3, 11, 4, 5, 3, 2, true),
    ] {
        let mut r = rng(7 + b as u64 * 13 + k as u64);
        let layer = Conv2d::new(c, o, k, s, p, bias, &mut r);
        let x = four(&random_input(&[b, c, h, w], &mut r));
        let got = layer.forward_infer(&x);
        let want = naive(&layer, &x);
        assert_eq!(got.shape(), want.shape());
        let err = got
            .iter()
            .zip(&want)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            err < 1e-5,
            "shape {:?} k={k} s={s} p={p}: max error {err}",
            x.shape()
        );
        // the transposed (non-standard-layout) input gives the same result
        let xt = x.view().permuted_axes([0, 1, 3, 2]).to_owned();
        let xt = xt.view().permuted_axes([0, 1, 3, 2]).to_owned();
        assert_eq!(layer.forward_infer(&xt), got);
    }
}

/// Two runs give the same bits (per-image work is parallel, the dW/db partials are summed in
/// a fixed order), both when the batch is split over threads and when a single image's GEMMs
/// are; and an image's output does not depend on which batch it is in.
#[test]
fn conv2d_is_deterministic_and_batch_independent() {
    let mut r = rng(3);
    let mut layer = Conv2d::new(3, 4, 3, 1, 1, true, &mut r);
    for b in [1, 5] {
        let x = four(&random_input(&[b, 3, 9, 8], &mut r));
        let dy = four(&random_input(&[b, 4, 9, 8], &mut r));
        let mut runs = Vec::new();
        for _ in 0..2 {
            use minisora::Parameters;
            layer.zero_grad();
            let (y, cache) = layer.forward(&x);
            let dx = layer.backward(&cache, &dy);
            runs.push((y, dx, layer.weight.grad.clone()));
        }
        assert_eq!(runs[0], runs[1], "batch {b}");
        let y0 = layer.forward_infer(&x.slice(ndarray::s![0..1, .., .., ..]).to_owned());
        let err = (&y0 - &runs[0].0.slice(ndarray::s![0..1, .., .., ..]))
            .iter()
            .fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(err < 1e-6, "batch {b}: {err}");
    }
}

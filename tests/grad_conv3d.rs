//! `Conv3d`: finite-difference gradients on the input and both parameters over random
//! shapes, kernels, strides, paddings and both time paddings; the forward pass against a
//! naive direct convolution (7 loops, causal replicate padding included); causality; a
//! `(1, k, k)` kernel against `Conv2d` frame by frame; and the same bits on one and two threads.

use minisora::gradcheck::{check, random_input, GradCheck};
use minisora::nn::{Conv2d, Conv3d, Padding3d, TimePadding};
use minisora::tensor::rng;
use minisora::Parameters;
use ndarray::{s, Array4, Array5, ArrayD, Ix5};
use proptest::prelude::*;

fn five(a: &ArrayD<f32>) -> Array5<f32> {
    a.clone().into_dimensionality::<Ix5>().unwrap()
}

fn max_abs_diff(a: &Array5<f32>, b: &Array5<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
}

fn padding(causal: bool, pt: usize, ph: usize, pw: usize) -> Padding3d {
    if causal {
        Padding3d::causal(ph, pw)
    } else {
        Padding3d::zeros(pt, ph, pw)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn conv3d_gradients_match_finite_differences(
        b in 1usize..3,
        c_in in 1usize..4,
        c_out in 1usize..4,
        f in 1usize..5,
        h in 1usize..6,
        w in 1usize..6,
        k in (1usize..4, 1usize..4, 1usize..4),
        st in (1usize..3, 1usize..3, 1usize..3),
        pad in (0usize..3, 0usize..3, 0usize..3),
        causal in any::<bool>(),
        bias in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let pt = if causal { k.0 - 1 } else { 2 * pad.0 };
        prop_assume!(f + pt >= k.0 && h + 2 * pad.1 >= k.1 && w + 2 * pad.2 >= k.2);
        let mut r = rng(seed);
        let mut layer = Conv3d::new(
            c_in,
            c_out,
            [k.0, k.1, k.2],
            [st.0, st.1, st.2],
            padding(causal, pad.0, pad.1, pad.2),
            bias,
            &mut r,
        );
        let x = random_input(&[b, c_in, f, h, w], &mut r);
        let report = check(
            &mut layer,
            &[x],
            |l, xs| l.forward_infer(&five(&xs[0])).into_dyn(),
            |l, xs, dy| {
                let (_, cache) = l.forward(&five(&xs[0]));
                vec![l.backward(&cache, &five(dy)).into_dyn()]
            },
            &GradCheck { seed, ..GradCheck::default() },
        );
        prop_assert!(report.passed, "{report:?}");
        prop_assert!(report.checked > 0);
    }
}

// ANCHOR: naive
/// $y[n, o, t, i, j] = b_o + \sum_{c, a, u, v} W[o, c, a, u, v]\,
///   x[n, c, t s_t + a - p_t, i s_h + u - p_h, j s_w + v - p_w]$,
/// zero outside the clip, except that in causal mode ($p_t = k_t - 1$, nothing after) a
/// frame index below 0 reads frame 0.
fn naive(layer: &Conv3d, x: &Array5<f32>) -> Array5<f32> {
    let (bn, c, f, h, w) = x.dim();
    let ([kt, kh, kw], [st, sh, sw]) = (layer.kernel(), layer.stride);
    let p = layer.padding;
    let (pt_front, pt_back, causal) = match p.time {
        TimePadding::Zeros(pt) => (pt, pt, false),
        TimePadding::CausalReplicate => (kt - 1, 0, true),
    };
    let of = (f + pt_front + pt_back - kt) / st + 1;
    let oh = (h + 2 * p.h - kh) / sh + 1;
    let ow = (w + 2 * p.w - kw) / sw + 1;
    let wt = layer
        .weight
        .value
        .view()
        .into_dimensionality::<Ix5>()
        .unwrap();
    let mut y = Array5::zeros((bn, layer.c_out(), of, oh, ow));
    for n in 0..bn {
        for o in 0..layer.c_out() {
            for t in 0..of {
                for i in 0..oh {
                    for j in 0..ow {
                        let mut acc = layer.bias.as_ref().map_or(0.0f64, |b| b.value[[o]] as f64);
                        for ci in 0..c {
                            for a in 0..kt {
                                let mut it = (t * st + a) as isize - pt_front as isize;
                                if causal && it < 0 {
                                    it = 0;
                                }
                                if it < 0 || it as usize >= f {
                                    continue;
                                }
                                for u in 0..kh {
                                    for v in 0..kw {
                                        let iy = (i * sh + u) as isize - p.h as isize;
                                        let ix = (j * sw + v) as isize - p.w as isize;
                                        if iy < 0 || ix < 0 || iy as usize >= h || ix as usize >= w
                                        {
                                            continue;
                                        }
                                        let xv = x[[n, ci, it as usize, iy as usize, ix as usize]];
                                        acc += wt[[o, ci, a, u, v]] as f64 * xv as f64;
                                    }
                                }
                            }
                        }
                        y[[n, o, t, i, j]] = acc as f32;
                    }
                }
            }
        }
    }
    y
}
// ANCHOR_END: naive

#[test]
fn conv3d_forward_matches_naive_direct_convolution() {
    // (B, C, O, F, H, W, kernel, stride, (pt, ph, pw), causal, bias)
    for &(b, c, o, f, h, w, k, st, p, causal, bias) in &[
        (
            2,
            3,
            4,
            5,
            6,
            5,
            [3, 3, 3],
            [1, 1, 1],
            (1, 1, 1),
            false,
            true,
        ),
        (
            2,
            3,
            4,
            5,
            6,
            5,
            [3, 3, 3],
            [1, 1, 1],
            (0, 1, 1),
            true,
            true,
        ),
        (
            1,
            2,
            3,
            9,
            7,
            6,
            [3, 2, 3],
            [2, 2, 1],
            (0, 0, 2),
            true,
            false,
        ),
        (
            3,
            2,
            2,
            4,
            5,
            7,
            [2, 3, 1],
            [1, 2, 3],
            (2, 1, 0),
            false,
            true,
        ),
        (
            2,
            4,
            3,
            6,
            4,
            4,
            [1, 1, 1],
            [1, 1, 1],
            (0, 0, 0),
            false,
            true,
        ),
        (
            1,
            2,
            2,
            3,
            3,
            3,
            [1, 1, 1],
            [2, 1, 2],
            (1, 1, 0),
            true,
            false,
        ),
        (
            1,
            1,
            2,
            1,
            1,
            1,
            [3, 3, 3],
            [1, 1, 1],
            (0, 1, 1),
            true,
            true,
        ),
        (
            9,
            2,
            3,
            17,
            5,
            4,
            [3, 3, 3],
            [2, 1, 1],
            (0, 1, 1),
            true,
            true,
        ),
        (
            2,
            3,
            2,
            40,
            6,
            6,
            [3, 3, 3],
            [1, 1, 1],
            (1, 1, 1),
            false,
            true,
        ),
    ] {
        let mut r = rng(11 + b as u64 * 7 + f as u64);
        let layer = Conv3d::new(c, o, k, st, padding(causal, p.0, p.1, p.2), bias, &mut r);
        let x = five(&random_input(&[b, c, f, h, w], &mut r));
        let got = layer.forward_infer(&x);
        let err = max_abs_diff(&got, &naive(&layer, &x));
        assert!(
            err < 1e-5,
            "{:?} k={k:?} s={st:?} p={p:?} causal={causal}: {err}",
            x.shape()
        );
        // a non-standard-layout input gives the same bits
        let xt = x.view().permuted_axes([0, 1, 2, 4, 3]).to_owned();
        let xt = xt.view().permuted_axes([0, 1, 2, 4, 3]).to_owned();
        assert_eq!(layer.forward_infer(&xt), got);
    }
}

/// Causal mode: changing input frames after `t` leaves output frames `≤ t` bit-identical, and
/// the output has as many frames as the input (time stride 1).
#[test]
fn causal_conv3d_does_not_see_the_future() {
    let mut r = rng(5);
    let layer = Conv3d::new(
        2,
        3,
        [3, 3, 3],
        [1, 1, 1],
        Padding3d::causal(1, 1),
        true,
        &mut r,
    );
    let x = five(&random_input(&[2, 2, 9, 5, 4], &mut r));
    let y = layer.forward_infer(&x);
    assert_eq!(y.shape(), &[2, 3, 9, 5, 4]);
    for t in 0..9 {
        let mut x2 = x.clone();
        let noise = five(&random_input(&[2, 2, 9 - t - 1, 5, 4], &mut r));
        x2.slice_mut(s![.., .., t + 1.., .., ..]).assign(&noise);
        let y2 = layer.forward_infer(&x2);
        assert_eq!(
            y2.slice(s![.., .., ..=t, .., ..]),
            y.slice(s![.., .., ..=t, .., ..]),
            "frame {t}"
        );
        if t + 1 < 9 {
            assert_ne!(
                y2.slice(s![.., .., t + 1, .., ..]),
                y.slice(s![.., .., t + 1, .., ..])
            );
        }
    }
}

/// A `(1, k, k)` kernel with no time padding is `Conv2d` applied to every frame, with the
/// same weights seen as `(O, C, k, k)`.
#[test]
fn conv3d_with_one_frame_kernel_is_conv2d_per_frame() {
    for &(k, s, p) in &[(3, 1, 1), (3, 2, 0), (1, 1, 0), (2, 2, 1)] {
        let (b, c, o, f, h, w) = (2, 3, 4, 5, 7, 6);
        let mut r = rng(9 + k as u64);
        let c3 = Conv3d::new(
            c,
            o,
            [1, k, k],
            [1, s, s],
            Padding3d::zeros(0, p, p),
            true,
            &mut r,
        );
        let mut c2 = Conv2d::new(c, o, k, s, p, true, &mut r);
        c2.weight.value = c3
            .weight
            .value
            .clone()
            .into_shape_with_order(vec![o, c, k, k])
            .unwrap();
        c2.bias.as_mut().unwrap().value = c3.bias.as_ref().unwrap().value.clone();
        let x = five(&random_input(&[b, c, f, h, w], &mut r));
        let y3 = c3.forward_infer(&x);
        for t in 0..f {
            let frame: Array4<f32> = x.slice(s![.., .., t, .., ..]).to_owned();
            let y2 = c2.forward_infer(&frame);
            let d = (&y2 - &y3.slice(s![.., .., t, .., ..]))
                .iter()
                .fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(d < 1e-5, "k={k} s={s} p={p} frame {t}: {d}");
        }
    }
}

/// One training pass (output, input gradient, weight and bias gradients) on `threads` threads.
fn pass(layer: &Conv3d, x: &Array5<f32>, dy: &Array5<f32>, threads: usize) -> Vec<ArrayD<f32>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut layer = layer.clone();
        layer.zero_grad();
        let infer = layer.forward_infer(x);
        let (y, cache) = layer.forward(x);
        let dx = layer.backward(&cache, dy);
        let b = layer.bias.as_ref().unwrap().grad.clone();
        vec![
            infer.into_dyn(),
            y.into_dyn(),
            dx.into_dyn(),
            layer.weight.grad.clone(),
            b,
        ]
    })
}

/// The same bits on one thread and on two, when clips run in parallel (batch 5, 12) and when
/// one clip's GEMMs are split (batch 1), in both time paddings; and a clip's output does not
/// depend on the batch it is in.
#[test]
fn conv3d_gives_the_same_bits_on_one_and_two_threads() {
    for (b, causal) in [(1, true), (5, false), (12, true)] {
        let mut r = rng(b as u64);
        let layer = Conv3d::new(
            4,
            5,
            [3, 3, 3],
            [1, 1, 1],
            padding(causal, 1, 1, 1),
            true,
            &mut r,
        );
        let x = five(&random_input(&[b, 4, 6, 12, 12], &mut r));
        let dy = five(&random_input(&[b, 5, 6, 12, 12], &mut r));
        let one = pass(&layer, &x, &dy, 1);
        assert_eq!(one, pass(&layer, &x, &dy, 2), "batch {b}");
        let y0 = layer.forward_infer(&x.slice(s![0..1, .., .., .., ..]).to_owned());
        let y = five(&one[0]);
        assert!(max_abs_diff(&y0, &y.slice(s![0..1, .., .., .., ..]).to_owned()) < 1e-6);
    }
}

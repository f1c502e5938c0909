//! Self- and cross-attention: gradient checks for the inputs and every parameter, the
//! one-token case, agreement with a naive loop implementation, and determinism across threads.

use minisora::gradcheck::{check, random_input, GradCheck};
use minisora::nn::{Attention, CrossAttention};
use minisora::param::Parameters;
use minisora::tensor::rng;
use ndarray::{s, Array2, Array3, ArrayD, Ix3};
use proptest::prelude::*;

fn to3(a: &ArrayD<f32>) -> Array3<f32> {
    a.clone().into_dimensionality::<Ix3>().unwrap()
}

fn cfg() -> ProptestConfig {
    // At PyTorch's default initialisation the scores are small and the softmax nearly uniform,
    // so some gradients (dx through the queries, the key bias, whose true gradient is exactly 0)
    // are as small as the loss's f32 rounding; the checker's noise floor covers them. The
    // `…_f64_differences_everywhere` tests below check every coordinate against an f64
    // reference with no such noise (they catch a 0.1 % error in one gradient).
    ProptestConfig::with_cases(CASES)
}

const CASES: u32 = 24;

proptest! {
    #![proptest_config(cfg())]
    #[test]
    fn attention_gradients_match_finite_differences(
        b in 1usize..3, t in 1usize..6, h in 1usize..4, d in 1usize..5, seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let mut layer = Attention::new(h * d, h, &mut r);
        let x = random_input(&[b, t, h * d], &mut r);
        let report = check(
            &mut layer,
            &[x],
            |l, xs| l.forward_infer(&to3(&xs[0])).into_dyn(),
            |l, xs, dy| {
                let (_, cache) = l.forward(&to3(&xs[0]));
                vec![l.backward(&cache, &to3(dy)).into_dyn()]
            },
            &GradCheck { seed, ..GradCheck::default() },
        );
        prop_assert!(report.passed, "{report:?}");
    }

    #[test]
    fn cross_attention_gradients_match_finite_differences(
        b in 1usize..3, t in 1usize..6, h in 1usize..4, d in 1usize..5,
        s in 1usize..6, cc in 1usize..7, seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let mut layer = CrossAttention::new(h * d, cc, h, &mut r);
        let x = random_input(&[b, t, h * d], &mut r);
        let c = random_input(&[b, s, cc], &mut r);
        let report = check(
            &mut layer,
            &[x, c],
            |l, xs| l.forward_infer(&to3(&xs[0]), &to3(&xs[1])).into_dyn(),
            |l, xs, dy| {
                let (_, cache) = l.forward(&to3(&xs[0]), &to3(&xs[1]));
                let (dx, dc) = l.backward(&cache, &to3(dy));
                vec![dx.into_dyn(), dc.into_dyn()]
            },
            &GradCheck { seed, ..GradCheck::default() },
        );
        prop_assert!(report.passed, "{report:?}");
    }
}

#[test]
fn parameter_names_follow_timm_and_pixart() {
    let mut r = rng(0);
    let mut a = Attention::new(8, 2, &mut r);
    let got = a.param_shapes();
    let want = [
        ("qkv.weight", vec![24, 8]),
        ("qkv.bias", vec![24]),
        ("proj.weight", vec![8, 8]),
        ("proj.bias", vec![8]),
    ];
    assert_eq!(got, want.map(|(n, s)| (n.to_string(), s)));
    let mut c = CrossAttention::new(8, 5, 2, &mut r);
    let got: Vec<String> = c.param_shapes().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        got,
        [
            "q.weight",
            "q.bias",
            "kv.weight",
            "kv.bias",
            "proj.weight",
            "proj.bias"
        ]
    );
    assert_eq!(c.kv.weight.shape(), &[16, 5]);
}

#[test]
fn one_token_attends_only_to_itself_so_the_output_is_proj_of_v() {
    let mut r = rng(11);
    let (b, h, d) = (3, 2, 4);
    let c = h * d;
    let layer = Attention::new(c, h, &mut r);
    let x = to3(&random_input(&[b, 1, c], &mut r));
    let qkv = layer.qkv.forward_infer(&x); // (B, 1, 3C)
    let v = qkv.slice(s![.., .., 2 * c..]).to_owned();
    let want = layer.proj.forward_infer(&v);
    let got = layer.forward_infer(&x);
    let diff = (&got - &want).mapv(f32::abs).fold(0.0f32, |m, &e| m.max(e));
    assert!(diff < 1e-6, "max difference {diff}");
}

/// softmax(q kᵀ / √d) v for one head, by loops, in f64.
fn naive_head(q: &Array2<f64>, k: &Array2<f64>, v: &Array2<f64>) -> Array2<f64> {
    let (t, d) = q.dim();
    let s = k.nrows();
    let mut o = Array2::zeros((t, d));
    for i in 0..t {
        let scores: Vec<f64> = (0..s)
            .map(|j| (0..d).map(|e| q[[i, e]] * k[[j, e]]).sum::<f64>() / (d as f64).sqrt())
            .collect();
        let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = scores.iter().map(|x| (x - m).exp()).collect();
        let z: f64 = w.iter().sum();
        for j in 0..s {
            for e in 0..d {
                o[[i, e]] += w[j] / z * v[[j, e]];
            }
        }
    }
    o
}

fn max_abs_diff(a: &Array3<f32>, want: &[Array2<f64>]) -> f64 {
    let mut m = 0.0f64;
    for (bi, w) in want.iter().enumerate() {
        for ((i, j), &v) in w.indexed_iter() {
            m = m.max((a[[bi, i, j]] as f64 - v).abs());
        }
    }
    m
}

/// The parameters of a layer, in visiting order.
fn params(layer: &mut dyn Parameters) -> Vec<ArrayD<f32>> {
    let mut out = Vec::new();
    layer.visit("", &mut |_, p| out.push(p.value.clone()));
    out
}

#[test]
fn self_attention_matches_a_naive_implementation() {
    let mut r = rng(5);
    let (b, t, h, d) = (2, 7, 3, 5);
    let mut layer = Attention::new(h * d, h, &mut r);
    let x = random_input(&[b, t, h * d], &mut r);
    let got = layer.forward_infer(&to3(&x));
    let mut p = vec![x];
    p.extend(params(&mut layer));
    let p: Vec<ArrayD<f64>> = p.iter().map(|a| a.mapv(f64::from)).collect();
    let diff = max_abs_diff(&got, &naive_self(&p, h));
    assert!(diff < 1e-5, "max difference {diff}");
}

#[test]
fn cross_attention_matches_a_naive_implementation() {
    let mut r = rng(6);
    let (b, t, s_len, h, d, cc) = (2, 4, 6, 2, 3, 5);
    let mut layer = CrossAttention::new(h * d, cc, h, &mut r);
    let x = random_input(&[b, t, h * d], &mut r);
    let ctx = random_input(&[b, s_len, cc], &mut r);
    let got = layer.forward_infer(&to3(&x), &to3(&ctx));
    let mut p = vec![x, ctx];
    p.extend(params(&mut layer));
    let p: Vec<ArrayD<f64>> = p.iter().map(|a| a.mapv(f64::from)).collect();
    let diff = max_abs_diff(&got, &naive_cross(&p, h));
    assert!(diff < 1e-5, "max difference {diff}");
}

#[test]
fn results_are_bit_identical_for_one_and_two_threads() {
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut r = rng(9);
            let mut layer = Attention::new(32, 4, &mut r);
            let x = to3(&random_input(&[3, 40, 32], &mut r));
            let dy = to3(&random_input(&[3, 40, 32], &mut r));
            let (y, cache) = layer.forward(&x);
            let dx = layer.backward(&cache, &dy);
            (y, dx, layer.qkv.weight.grad.clone())
        })
    };
    let (a, b) = (run(1), run(2));
    assert!(
        a.0 == b.0 && a.1 == b.1 && a.2 == b.2,
        "results differ between 1 and 2 threads"
    );
    let c = run(2);
    assert!(
        b.0 == c.0 && b.1 == c.1 && b.2 == c.2,
        "two runs on 2 threads differ"
    );
}

/// `x W^T + b` on f64 arrays.
fn lin64(x: &Array2<f64>, w: &ArrayD<f64>, b: &ArrayD<f64>) -> Array2<f64> {
    let w = w.view().into_dimensionality::<ndarray::Ix2>().unwrap();
    let b = b.view().into_dimensionality::<ndarray::Ix1>().unwrap();
    x.dot(&w.t()) + b
}

/// Naive multi-head attention in f64: head `j` reads columns `j·d..` of `q`, and of `kv`
/// after the offsets `koff` (keys) and `voff` (values), PyTorch's reshape order.
fn naive_mha(q: &Array2<f64>, kv: &Array2<f64>, koff: usize, voff: usize, h: usize) -> Array2<f64> {
    let c = q.ncols();
    let d = c / h;
    let mut o = Array2::zeros((q.nrows(), c));
    for j in 0..h {
        let cols = |m: &Array2<f64>, off: usize| {
            m.slice(s![.., off + j * d..off + (j + 1) * d]).to_owned()
        };
        let oh = naive_head(&cols(q, 0), &cols(kv, koff), &cols(kv, voff));
        o.slice_mut(s![.., j * d..(j + 1) * d]).assign(&oh);
    }
    o
}

/// Self-attention in f64 from `[x, qkv.weight, qkv.bias, proj.weight, proj.bias]`.
fn naive_self(p: &[ArrayD<f64>], h: usize) -> Vec<Array2<f64>> {
    let x = p[0].view().into_dimensionality::<Ix3>().unwrap();
    let c = x.shape()[2];
    x.outer_iter()
        .map(|xb| {
            let qkv = lin64(&xb.to_owned(), &p[1], &p[2]);
            let q = qkv.slice(s![.., ..c]).to_owned();
            lin64(&naive_mha(&q, &qkv, c, 2 * c, h), &p[3], &p[4])
        })
        .collect()
}

/// Cross-attention in f64 from `[x, context, q.w, q.b, kv.w, kv.b, proj.w, proj.b]`.
fn naive_cross(p: &[ArrayD<f64>], h: usize) -> Vec<Array2<f64>> {
    let x = p[0].view().into_dimensionality::<Ix3>().unwrap();
    let ctx = p[1].view().into_dimensionality::<Ix3>().unwrap();
    let c = x.shape()[2];
    x.outer_iter()
        .zip(ctx.outer_iter())
        .map(|(xb, cb)| {
            let q = lin64(&xb.to_owned(), &p[2], &p[3]);
            let kv = lin64(&cb.to_owned(), &p[4], &p[5]);
            lin64(&naive_mha(&q, &kv, 0, c, h), &p[6], &p[7])
        })
        .collect()
}

/// Compares analytic f32 gradients with central differences of an f64 forward, coordinate
/// by coordinate. In f64 the differences are accurate to ~1e-9, far below f32's rounding,
/// so this check has no noise floor to hide behind.
fn assert_matches_f64_differences(
    f: impl Fn(&[ArrayD<f64>]) -> Vec<Array2<f64>>,
    point: &[ArrayD<f32>],
    analytic: &[ArrayD<f32>],
    dy: &Array3<f32>,
) {
    let mut p: Vec<ArrayD<f64>> = point.iter().map(|a| a.mapv(f64::from)).collect();
    let loss = |p: &[ArrayD<f64>]| -> f64 {
        f(p).iter()
            .enumerate()
            .map(|(b, yb)| {
                yb.indexed_iter()
                    .map(|((i, j), &y)| y * dy[[b, i, j]] as f64)
                    .sum::<f64>()
            })
            .sum()
    };
    let eps = 1e-5;
    for t in 0..p.len() {
        let mut numeric = Vec::new();
        for i in 0..p[t].len() {
            let orig = p[t].as_slice().unwrap()[i];
            p[t].as_slice_mut().unwrap()[i] = orig + eps;
            let plus = loss(&p);
            p[t].as_slice_mut().unwrap()[i] = orig - eps;
            let minus = loss(&p);
            p[t].as_slice_mut().unwrap()[i] = orig;
            numeric.push((plus - minus) / (2.0 * eps));
        }
        let scale = numeric.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-3);
        for (i, (&a, &n)) in analytic[t].iter().zip(&numeric).enumerate() {
            assert!(
                (a as f64 - n).abs() <= 1e-4 * scale,
                "tensor {t}[{i}]: analytic {a:e}, f64 numeric {n:e} (largest {scale:e})"
            );
        }
    }
}

#[test]
fn self_attention_gradients_match_f64_differences_everywhere() {
    for (seed, (b, t, h, d)) in [(1, 4, 2, 3), (2, 5, 3, 2), (1, 1, 1, 4), (2, 3, 1, 1)]
        .into_iter()
        .enumerate()
    {
        let mut r = rng(100 + seed as u64);
        let mut layer = Attention::new(h * d, h, &mut r);
        let x = random_input(&[b, t, h * d], &mut r);
        let dy = to3(&random_input(&[b, t, h * d], &mut r));
        let (_, cache) = layer.forward(&to3(&x));
        let dx = layer.backward(&cache, &dy).into_dyn();
        let mut point = vec![x];
        let mut analytic = vec![dx];
        layer.visit("", &mut |_, p| {
            point.push(p.value.clone());
            analytic.push(p.grad.clone());
        });
        assert_matches_f64_differences(|p| naive_self(p, h), &point, &analytic, &dy);
    }
}

#[test]
fn cross_attention_gradients_match_f64_differences_everywhere() {
    for (seed, (b, t, h, d, s_len, cc)) in [
        (1, 4, 2, 3, 5, 3),
        (2, 3, 3, 2, 2, 4),
        (1, 1, 1, 4, 1, 1),
        (2, 5, 1, 1, 3, 2),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = rng(200 + seed as u64);
        let mut layer = CrossAttention::new(h * d, cc, h, &mut r);
        let x = random_input(&[b, t, h * d], &mut r);
        let ctx = random_input(&[b, s_len, cc], &mut r);
        let dy = to3(&random_input(&[b, t, h * d], &mut r));
        let (_, cache) = layer.forward(&to3(&x), &to3(&ctx));
        let (dx, dctx) = layer.backward(&cache, &dy);
        let mut point = vec![x, ctx];
        let mut analytic = vec![dx.into_dyn(), dctx.into_dyn()];
        layer.visit("", &mut |_, p| {
            point.push(p.value.clone());
            analytic.push(p.grad.clone());
        });
        assert_matches_f64_differences(|p| naive_cross(p, h), &point, &analytic, &dy);
    }
}

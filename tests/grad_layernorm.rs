//! Gradient checks and hand-computed values for `LayerNorm`, with and without affine.

mod support;

use minisora::gradcheck::{check, random_input};
use minisora::nn::LayerNorm;
use minisora::param::Parameters;
use minisora::tensor::rng;
use ndarray::{arr1, arr2, Array2};
use proptest::prelude::*;
use support::{check_seeded, randomise_affine};

/// A standard-normal input plus a ramp from −3 to 3 across each normalised slice of `len`
/// elements. The checker's step `h = 1e-2` assumes the function is smooth at that scale, but
/// $\hat x$ curves like $1/\sigma^2$: a slice of a few nearly equal values (σ ≈ 0.05, which
/// plain N(0, 1) draws of 3 values hit about once in a few hundred) makes the central
/// difference itself wrong by 10 %, while a smaller step drowns small gradients in f32 rounding.
/// The ramp keeps every slice's σ away from 0 without fixing its mean or variance.
fn spread_input(
    shape: &[usize],
    len: usize,
    r: &mut minisora::tensor::Rng,
) -> ndarray::ArrayD<f32> {
    let mut x = random_input(shape, r);
    for (k, v) in x.iter_mut().enumerate() {
        *v += 3.0 * (2.0 * (k % len) as f32 / (len - 1) as f32 - 1.0);
    }
    x
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn layernorm_gradients_match_finite_differences(
        lead in proptest::collection::vec(1usize..4, 0..3),
        // dim ≤ 2 normalises to a constant (0, or ±1 up to ε): an input gradient of ~ε.
        dim in 4usize..10,
        eps in prop::sample::select(vec![1e-6f32, 1e-5, 1e-3, 0.1]),
        affine in any::<bool>(),
        seed in any::<u64>(),
    ) {
        // A stream apart from the checker's own `rng(seed)` (which draws dy).
        let mut r = rng(seed ^ 0x5eed);
        let mut layer = LayerNorm::new(dim, eps, affine);
        // Random γ, β so their gradients (and g = dy·γ) are exercised away from 1 and 0.
        randomise_affine(&mut layer, &mut r);
        let mut shape = lead.clone();
        shape.push(dim);
        let x = spread_input(&shape, dim, &mut r);
        let report = check_seeded(seed, |cfg| {
            check(
                &mut layer.clone(),
                std::slice::from_ref(&x),
                |l, xs| l.forward_infer(&xs[0]),
                |l, xs, dy| {
                    let (_, cache) = l.forward(&xs[0]);
                    vec![l.backward(&cache, dy)]
                },
                cfg,
            )
        });
        prop_assert!(report.passed, "{report:?}");
    }
}

#[test]
fn layernorm_of_one_two_three() {
    // μ = 2, σ² = 2/3, so x̂ = (x − 2)/√(2/3) = [−√1.5, 0, √1.5].
    let ln = LayerNorm::new(3, 0.0, false);
    let y = ln.forward_infer(&arr1(&[1.0f32, 2.0, 3.0]));
    let s = 1.5f32.sqrt();
    for (a, b) in y.iter().zip([-s, 0.0, s]) {
        assert!((a - b).abs() < 1e-6, "{y}");
    }
    // With eps: 1/√(2/3 + 0.1); with affine γ = [1, 2, 3], β = [0, 0, 1].
    let mut ln = LayerNorm::new(3, 0.1, true);
    ln.weight.as_mut().unwrap().value = arr1(&[1.0f32, 2.0, 3.0]).into_dyn();
    ln.bias.as_mut().unwrap().value = arr1(&[0.0f32, 0.0, 1.0]).into_dyn();
    let y = ln.forward_infer(&arr2(&[[1.0f32, 2.0, 3.0]]));
    let k = 1.0 / (2.0f32 / 3.0 + 0.1).sqrt();
    for (a, b) in y.iter().zip([-k, 0.0, 3.0 * k + 1.0]) {
        assert!((a - b).abs() < 1e-6, "{y}");
    }
}

#[test]
fn layernorm_param_names_follow_pytorch() {
    assert!(LayerNorm::new(4, 1e-6, false).param_shapes().is_empty());
    let names = LayerNorm::new(4, 1e-5, true).param_shapes();
    assert_eq!(
        names,
        [("weight".into(), vec![4]), ("bias".into(), vec![4])]
    );
}

#[test]
fn large_inputs_give_the_same_rows_as_one_row_at_a_time() {
    // 2000 rows of 16 spans many parallel tasks; every row must match a lone forward/backward.
    let mut r = rng(3);
    let mut ln = LayerNorm::new(16, 1e-6, true);
    ln.visit("", &mut |_, p| p.value = random_input(p.shape(), &mut r));
    let x: Array2<f32> = random_input(&[2000, 16], &mut r)
        .into_dimensionality()
        .unwrap();
    let dy: Array2<f32> = random_input(&[2000, 16], &mut r)
        .into_dimensionality()
        .unwrap();
    let (y, cache) = ln.forward(&x);
    let dx = ln.backward(&cache, &dy);
    for i in (0..2000).step_by(97) {
        let xi = x.row(i).to_owned();
        let (yi, ci) = ln.forward(&xi);
        assert_eq!(yi, y.row(i));
        assert_eq!(ln.backward(&ci, &dy.row(i).to_owned()), dx.row(i));
    }
}

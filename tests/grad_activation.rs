//! Gradient checks and exact values for SiLU and GELU (exact and tanh), and `erf`.

mod support;

use minisora::gradcheck::{check, random_input};
use minisora::nn::{erf, Gelu, GeluKind, Silu};
use minisora::tensor::rng;
use ndarray::{arr1, Array1, ArrayD, IxDyn};
use proptest::prelude::*;
use support::check_seeded;

/// Random shapes of rank 1 to 4 with small axes, scaled so inputs reach the tails (|x| ≈ 6).
fn input(shape: &[usize], scale: f32, seed: u64) -> ArrayD<f32> {
    random_input(shape, &mut rng(seed ^ 0x5eed)) * scale
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn silu_gradients_match_finite_differences(
        // At least 4 elements: the checker's floor is 1 % of the tensor's largest gradient, so
        // a lone element near GELU's minimum (x ≈ −0.75, where y' = 0) would compare pure
        // truncation error relatively.
        shape in proptest::collection::vec(2usize..5, 2..5),
        scale in 0.5f32..3.0,
        seed in any::<u64>(),
    ) {
        let x = input(&shape, scale, seed);
        let report = check_seeded(seed, |cfg| {
            check(
                &mut Silu,
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

    #[test]
    fn gelu_gradients_match_finite_differences(
        // At least 4 elements: the checker's floor is 1 % of the tensor's largest gradient, so
        // a lone element near GELU's minimum (x ≈ −0.75, where y' = 0) would compare pure
        // truncation error relatively.
        shape in proptest::collection::vec(2usize..5, 2..5),
        tanh in any::<bool>(),
        scale in 0.5f32..3.0,
        seed in any::<u64>(),
    ) {
        let kind = if tanh { GeluKind::Tanh } else { GeluKind::Exact };
        let x = input(&shape, scale, seed);
        let report = check_seeded(seed, |cfg| {
            check(
                &mut Gelu::new(kind),
                std::slice::from_ref(&x),
                |l, xs| l.forward_infer(&xs[0]),
                |l, xs, dy| {
                    let (_, cache) = l.forward(&xs[0]);
                    vec![l.backward(&cache, dy)]
                },
                cfg,
            )
        });
        prop_assert!(report.passed, "{kind:?} {report:?}");
    }
}

fn close(a: f32, b: f64, tol: f64) -> bool {
    (a as f64 - b).abs() <= tol
}

#[test]
fn activations_match_hand_computed_values() {
    let x = arr1(&[1.0f32, 0.0, -1.0]);
    let silu = Silu.forward_infer(&x);
    // SiLU(1) = 1/(1+e^{-1}); SiLU(-1) = -1/(1+e)
    assert!(close(silu[0], 0.731_058_578_630_004_9, 1e-7), "{silu}");
    assert_eq!(silu[1], 0.0);
    assert!(close(silu[2], -0.268_941_421_369_995_1, 1e-7), "{silu}");

    // GELU(1) = Φ(1) = 0.8413447460685429; GELU(-1) = -Φ(-1) = -0.15865525393145707
    let exact = Gelu::new(GeluKind::Exact).forward_infer(&x);
    assert!(close(exact[0], 0.841_344_746_068_542_9, 1e-7), "{exact}");
    assert_eq!(exact[1], 0.0);
    assert!(close(exact[2], -0.158_655_253_931_457_07, 1e-7), "{exact}");

    // ½(1 + tanh(√(2/π)·1.044715)) = 0.8411919906082768
    let tanh = Gelu::new(GeluKind::Tanh).forward_infer(&x);
    assert!(close(tanh[0], 0.841_191_990_608_276_8, 1e-7), "{tanh}");
    assert!(
        close(tanh[2], 0.841_191_990_608_276_8 - 1.0, 1e-7),
        "{tanh}"
    );
}

#[test]
fn activation_derivatives_match_hand_computed_values() {
    let x = arr1(&[0.0f32, 1.0]);
    let dy = Array1::ones(2);
    // SiLU'(0) = ½; SiLU'(1) = σ(1)(1 + 1 − σ(1)) = 0.9276705118714869
    let (_, c) = Silu.forward(&x);
    let d = Silu.backward(&c, &dy);
    assert!(
        close(d[0], 0.5, 1e-7) && close(d[1], 0.927_670_511_871_486_9, 1e-6),
        "{d}"
    );
    // GELU'(0) = ½ for both; exact GELU'(1) = Φ(1) + φ(1) = 0.8413447 + 0.2419707 = 1.0833155
    let g = Gelu::new(GeluKind::Exact);
    let (_, c) = g.forward(&x);
    let d = g.backward(&c, &dy);
    assert!(
        close(d[0], 0.5, 1e-7) && close(d[1], 1.083_315_470_587_686_4, 1e-6),
        "{d}"
    );
    let g = Gelu::new(GeluKind::Tanh);
    let (_, c) = g.forward(&x);
    let d = g.backward(&c, &dy);
    assert!(close(d[0], 0.5, 1e-7), "{d}");
}

#[test]
fn erf_matches_reference_values() {
    for (x, e) in [
        (0.25, 0.276_326_390_168_236_9),
        (1.0, 0.842_700_792_949_714_9),
        (2.0, 0.995_322_265_018_952_7),
        (3.5, 0.999_999_256_901_627_7),
    ] {
        assert!((erf(x) - e).abs() < 1e-14, "erf({x}) = {} not {e}", erf(x));
        assert!((erf(-x) + e).abs() < 1e-14, "erf(-{x})");
    }
}

#[test]
fn large_arrays_take_the_parallel_path_with_the_same_values() {
    // 3·7·1000 elements spans several parallel chunks; each must equal the scalar formula.
    let x = random_input(&[3, 7, 1000], &mut rng(7)) * 3.0;
    let g = Gelu::new(GeluKind::Exact);
    let (y, cache) = g.forward(&x);
    let dy = ArrayD::ones(IxDyn(&[3, 7, 1000]));
    let dx = g.backward(&cache, &dy);
    for ((&xi, &yi), &di) in x.iter().zip(&y).zip(&dx) {
        let x1 = ArrayD::from_elem(IxDyn(&[1]), xi);
        assert_eq!(yi, g.forward_infer(&x1)[0]);
        let (_, c1) = g.forward(&x1);
        assert_eq!(di, g.backward(&c1, &ArrayD::ones(IxDyn(&[1])))[0]);
    }
    // Non-contiguous input (a transpose) gives the transposed output.
    let xt = x.clone().reversed_axes();
    let yt = Silu.forward_infer(&xt);
    assert_eq!(yt.shape(), xt.shape());
    assert_eq!(yt.reversed_axes(), Silu.forward_infer(&x));
}

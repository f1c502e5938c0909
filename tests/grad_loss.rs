//! Gradient checks for the MSE and L1 losses (pred is the input, target fixed) and their
//! values by hand.

mod support;

use minisora::gradcheck::{check, random_input};
use minisora::nn::{l1, mse};
use minisora::param::{Param, Parameters};
use minisora::tensor::rng;
use ndarray::{arr1, arr2, ArrayD, IxDyn};
use proptest::prelude::*;
use support::check_seeded;

/// A loss has no parameters; the checker still wants a model to walk.
struct NoParams;
impl Parameters for NoParams {
    fn visit(&mut self, _prefix: &str, _f: &mut dyn FnMut(&str, &mut Param)) {}
}

type Loss = fn(&ArrayD<f32>, &ArrayD<f32>) -> (f32, ArrayD<f32>);

/// Checks `loss(pred, target)` as a layer with a one-element output `[L]`.
fn check_loss(loss: Loss, pred: ArrayD<f32>, target: ArrayD<f32>, seed: u64) -> bool {
    let report = check_seeded(seed, |cfg| {
        check(
            &mut NoParams,
            std::slice::from_ref(&pred),
            |_, xs| ArrayD::from_elem(IxDyn(&[1]), loss(&xs[0], &target).0),
            |_, xs, dy| vec![loss(&xs[0], &target).1 * dy[0]],
            cfg,
        )
    });
    assert!(report.passed, "{report:?}");
    report.passed
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn mse_gradients_match_finite_differences(
        // At most 64 elements: the loss is one f32 whose rounding (~1e-7 of L) divided by 2h
        // must stay small next to a single coordinate's gradient, which shrinks like 1/n.
        shape in proptest::collection::vec(1usize..5, 1..4),
        seed in any::<u64>(),
    ) {
        let mut r = rng(seed ^ 0x5eed);
        let pred = random_input(&shape, &mut r);
        let target = random_input(&shape, &mut r);
        prop_assert!(check_loss(mse, pred, target, seed));
    }

    #[test]
    fn l1_gradients_match_finite_differences(
        // At most 64 elements: the loss is one f32 whose rounding (~1e-7 of L) divided by 2h
        // must stay small next to a single coordinate's gradient, which shrinks like 1/n.
        shape in proptest::collection::vec(1usize..5, 1..4),
        seed in any::<u64>(),
    ) {
        let mut r = rng(seed ^ 0x5eed);
        let pred = random_input(&shape, &mut r);
        // |p − t| ≥ 0.1 everywhere: the kink at p = t must lie outside the finite-difference
        // steps (±1e-2 per coordinate), where |·| is not differentiable.
        let gap = random_input(&shape, &mut r).mapv(|d| d + 0.1f32.copysign(d));
        let target = &pred - &gap;
        prop_assert!(check_loss(l1, pred, target, seed));
    }
}

#[test]
fn losses_by_hand() {
    // MSE of [1, 2] against [0, 0]: (1 + 4)/2 = 2.5, dpred = 2(p − t)/2 = [1, 2].
    let (l, d) = mse(&arr1(&[1.0f32, 2.0]), &arr1(&[0.0, 0.0]));
    assert_eq!(l, 2.5);
    assert_eq!(d, arr1(&[1.0, 2.0]));
    // L1 of [[1, −2, 0.5]] against [[0, 0, 0.5]]: (1 + 2 + 0)/3 = 1; the exact match gets 0.
    let (l, d) = l1(&arr2(&[[1.0f32, -2.0, 0.5]]), &arr2(&[[0.0, 0.0, 0.5]]));
    assert_eq!(l, 1.0);
    assert_eq!(d, arr2(&[[1.0 / 3.0, -1.0 / 3.0, 0.0]]));
}

#[test]
fn large_losses_are_accurate_and_thread_independent() {
    // 100 000 elements of (p − t) = 0.1: f32 accumulation would drift, f64 chunk sums do not.
    let p = ArrayD::from_elem(IxDyn(&[100, 1000]), 1.1f32);
    let t = ArrayD::from_elem(IxDyn(&[100, 1000]), 1.0f32);
    let diff = (1.1f32 - 1.0f32) as f64;
    let (l, _) = mse(&p, &t);
    assert!(
        (l as f64 - diff * diff).abs() < 1e-7 * diff * diff * 10.0,
        "{l}"
    );
    let (a, _) = l1(&p, &t);
    assert!((a as f64 - diff).abs() < 1e-7, "{a}");
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let (l1t, d1t) = single.install(|| mse(&p, &t));
    assert_eq!(l1t.to_bits(), l.to_bits());
    assert_eq!(d1t, mse(&p, &t).1);
}

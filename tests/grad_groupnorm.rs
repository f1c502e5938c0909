//! Gradient checks and hand-computed values for `GroupNorm` over ranks 2 to 5.

mod support;

use minisora::gradcheck::{check, random_input};
use minisora::nn::GroupNorm;
use minisora::param::Parameters;
use minisora::tensor::rng;
use ndarray::{arr1, arr3, ArrayD};
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
    fn groupnorm_gradients_match_finite_differences(
        batch in 1usize..3,
        groups in 1usize..4,
        per_group in 1usize..4,
        spatial in proptest::collection::vec(1usize..4, 0..4),
        eps in prop::sample::select(vec![1e-6f32, 1e-5, 1e-3, 0.1]),
        seed in any::<u64>(),
    ) {
        let channels = groups * per_group;
        // A slice of n ≤ 2 elements normalises to a constant (0, or ±1 up to ε): its input
        // gradient is ~ε, i.e. f32 rounding noise, and no finite difference can check it.
        prop_assume!(per_group * spatial.iter().product::<usize>() >= 4);
        // A stream apart from the checker's own `rng(seed)` (which draws dy).
        let mut r = rng(seed ^ 0x5eed);
        let mut layer = GroupNorm::new(groups, channels, eps);
        randomise_affine(&mut layer, &mut r);
        let mut shape = vec![batch, channels];
        shape.extend(&spatial);
        let x = spread_input(&shape, per_group * spatial.iter().product::<usize>(), &mut r);
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
fn groupnorm_matches_hand_computed_values() {
    // x = (1, 2, 2): channel 0 = [1, 2], channel 1 = [3, 4].
    let x = arr3(&[[[1.0f32, 2.0], [3.0, 4.0]]]);
    // One group: μ = 2.5, σ² = 1.25, x̂ = (x − 2.5)/√1.25.
    let gn = GroupNorm::new(1, 2, 0.0);
    let y = gn.forward_infer(&x);
    let k = 1.0 / 1.25f32.sqrt();
    for (a, b) in y.iter().zip([-1.5 * k, -0.5 * k, 0.5 * k, 1.5 * k]) {
        assert!((a - b).abs() < 1e-6, "{y}");
    }
    // Two groups (one channel each): x̂ = [−1, 1] per channel; γ = [2, 1], β = [0, 1].
    let mut gn = GroupNorm::new(2, 2, 0.0);
    gn.weight.value = arr1(&[2.0f32, 1.0]).into_dyn();
    gn.bias.value = arr1(&[0.0f32, 1.0]).into_dyn();
    let y = gn.forward_infer(&x);
    for (a, b) in y.iter().zip([-2.0, 2.0, 0.0, 2.0]) {
        assert!((a - b).abs() < 1e-6, "{y}");
    }
    let names: Vec<_> = gn.param_shapes().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["weight", "bias"]);
}

#[test]
fn large_inputs_match_one_sample_at_a_time() {
    // (3, 8, 16, 16) runs over many parallel tasks; each sample must match a lone pass.
    let mut r = rng(5);
    let mut gn = GroupNorm::new(4, 8, 1e-6);
    gn.visit("", &mut |_, p| p.value = random_input(p.shape(), &mut r));
    let x = random_input(&[3, 8, 16, 16], &mut r);
    let dy = random_input(&[3, 8, 16, 16], &mut r);
    let (y, cache) = gn.forward(&x);
    let dx = gn.backward(&cache, &dy);
    let dw_all = gn.weight.grad.clone();
    gn.zero_grad();
    let mut dw_sum = ArrayD::zeros(dw_all.raw_dim());
    for b in 0..3 {
        let xb = x.slice(ndarray::s![b..b + 1, .., .., ..]).to_owned();
        let dyb = dy.slice(ndarray::s![b..b + 1, .., .., ..]).to_owned();
        let (yb, cb) = gn.forward(&xb);
        assert_eq!(yb, y.slice(ndarray::s![b..b + 1, .., .., ..]));
        let dxb = gn.backward(&cb, &dyb);
        assert_eq!(dxb, dx.slice(ndarray::s![b..b + 1, .., .., ..]));
        dw_sum += &gn.weight.grad;
        gn.zero_grad();
    }
    for (a, b) in dw_all.iter().zip(&dw_sum) {
        assert!(
            (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
            "{dw_all} vs {dw_sum}"
        );
    }
}

//! Properties of the forward process, the ε/x₀/v conversions and respacing.
#![allow(clippy::needless_range_loop)]

use minisora::diffusion::{
    space_timesteps, BetaSchedule, Diffusion, LossType, Prediction, Schedule, VarianceType,
};
use minisora::tensor::{init, rng};
use ndarray::ArrayD;
use proptest::prelude::*;

const KINDS: [BetaSchedule; 3] = [
    BetaSchedule::Linear,
    BetaSchedule::Cosine,
    BetaSchedule::ScaledLinear,
];

fn max_abs_diff(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    a.iter()
        .zip(b.iter())
        .fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// Random data, noise and timesteps for a batch of `bsz` samples of shape (C, H).
fn batch(
    s: &Schedule,
    bsz: usize,
    c: usize,
    h: usize,
    seed: u64,
) -> (ArrayD<f32>, ArrayD<f32>, Vec<usize>) {
    let mut r = rng(seed);
    let x0 = init::uniform(&[bsz, c, h], 1.0, &mut r);
    let eps = init::normal(&[bsz, c, h], 1.0, &mut r);
    let t = minisora::diffusion::sample_uniform(bsz, s.num_timesteps(), &mut r);
    (x0, eps, t)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// q_sample(x₀, ε) then x₀ from the true ε gives x₀ back. For t where √ᾱ is tiny the
    /// division amplifies float error by 1/√ᾱ, so the tolerance scales with it.
    #[test]
    fn q_sample_then_x0_from_true_eps_recovers_x0(steps in 2usize..1500, k in 0usize..3,
            bsz in 1usize..5, c in 1usize..4, h in 1usize..6, seed in 0u64..1000) {
        let s = Schedule::new(KINDS[k], steps);
        let (x0, eps, t) = batch(&s, bsz, c, h, seed);
        let xt = s.q_sample(&x0, &t, &eps);
        let back = s.x0_from_eps(&xt, &t, &eps);
        for b in 0..bsz {
            let tol = 1e-5 * (1.0 + 4.0 / s.sqrt_alphas_cumprod[t[b]] as f32);
            let d = (&back.index_axis(ndarray::Axis(0), b) - &x0.index_axis(ndarray::Axis(0), b))
                .iter().fold(0.0f32, |m, v| m.max(v.abs()));
            prop_assert!(d <= tol, "t={} err {d} tol {tol}", t[b]);
        }
        // And the true ε is recovered from the true x₀.
        let e_back = s.eps_from_x0(&xt, &t, &x0);
        for b in 0..bsz {
            let tol = 1e-5 * (1.0 + 4.0 / s.sqrt_one_minus_alphas_cumprod[t[b]] as f32);
            let d = (&e_back.index_axis(ndarray::Axis(0), b) - &eps.index_axis(ndarray::Axis(0), b))
                .iter().fold(0.0f32, |m, v| m.max(v.abs()));
            prop_assert!(d <= tol, "eps t={} err {d}", t[b]);
        }
    }

    /// v = √ᾱ ε − √(1−ᾱ) x₀; from (x_t, v) both x₀ and ε come back (no division involved).
    #[test]
    fn v_conversions_round_trip(steps in 2usize..1500, k in 0usize..3, bsz in 1usize..5,
            c in 1usize..4, seed in 0u64..1000) {
        let s = Schedule::new(KINDS[k], steps);
        let (x0, eps, t) = batch(&s, bsz, c, 3, seed);
        let xt = s.q_sample(&x0, &t, &eps);
        let v = s.v_from_x0_eps(&x0, &t, &eps);
        prop_assert!(max_abs_diff(&s.x0_from_v(&xt, &t, &v), &x0) < 2e-5);
        prop_assert!(max_abs_diff(&s.eps_from_v(&xt, &t, &v), &eps) < 2e-5);
        // ε → x₀ → ε is the identity where both coefficients are moderate.
        let mid: Vec<usize> = t.iter().map(|_| steps / 2).collect();
        let xt_mid = s.q_sample(&x0, &mid, &eps);
        let x0_hat = s.x0_from_eps(&xt_mid, &mid, &eps);
        let eps_hat = s.eps_from_x0(&xt_mid, &mid, &x0_hat);
        let tol = 1e-4 / s.sqrt_alphas_cumprod[steps / 2].min(s.sqrt_one_minus_alphas_cumprod[steps / 2]) as f32;
        prop_assert!(max_abs_diff(&eps_hat, &eps) < tol);
    }

    /// The kept steps of a respaced schedule have the original ᾱ, and the model sees the
    /// original timesteps.
    #[test]
    fn respaced_abar_equals_original(steps in 40usize..2000, k in 0usize..3, n in 1usize..10,
            sections in 1usize..4) {
        let d = Diffusion::new(Schedule::new(KINDS[k], steps), Prediction::Epsilon,
                               VarianceType::FixedSmall, LossType::Mse);
        let counts: Vec<String> = (0..sections).map(|i| (n + i).to_string()).collect();
        let keep = space_timesteps(steps, &counts.join(",")).unwrap();
        let total: usize = (0..sections).map(|i| n + i).sum();
        prop_assert!(keep.len() <= total && !keep.is_empty());
        let r = d.respace(&keep);
        prop_assert_eq!(&r.timestep_map, &keep);
        for (i, &s) in keep.iter().enumerate() {
            let (a, b) = (r.schedule.alphas_cumprod[i], d.schedule.alphas_cumprod[s]);
            prop_assert!((a - b).abs() <= 1e-12 * b.max(1e-300) + 1e-15, "step {s}: {a} vs {b}");
        }
        // Respacing twice composes the maps.
        if keep.len() >= 2 {
            let r2 = r.respace(&[0, keep.len() - 1]);
            prop_assert_eq!(r2.timestep_map, vec![keep[0], *keep.last().unwrap()]);
        }
    }
}

#[test]
fn space_timesteps_matches_reference_examples() {
    // "ddim50" of 1000: stride 20.
    let d = space_timesteps(1000, "ddim50").unwrap();
    assert_eq!(d, (0..1000).step_by(20).collect::<Vec<_>>());
    // "10" of 100: stride (100−1)/(10−1) = 11.
    assert_eq!(
        space_timesteps(100, "10").unwrap(),
        (0..100).step_by(11).collect::<Vec<_>>()
    );
    // "250" of 1000: 999/249 ≈ 4.012, rounded: first and last kept.
    let k = space_timesteps(1000, "250").unwrap();
    assert_eq!(k.len(), 250);
    assert_eq!((k[0], k[1], k[2], k[249]), (0, 4, 8, 999));
    // Sections: "2,3" of 10 → [0, 4] and 5 + [0, 2, 4].
    assert_eq!(space_timesteps(10, "2,3").unwrap(), vec![0, 4, 5, 7, 9]);
    assert!(
        space_timesteps(10, "ddim9").is_err(),
        "no stride gives 9 of 10"
    );
    assert_eq!(space_timesteps(1000, "ddim7").unwrap().len(), 7);
    assert!(space_timesteps(10, "20").is_err());
    assert!(space_timesteps(10, "abc").is_err());
}

/// Over many draws, q_sample has mean √ᾱ x₀ and variance 1 − ᾱ.
#[test]
fn q_sample_empirical_moments() {
    let n = 40_000;
    for kind in KINDS {
        let s = Schedule::new(kind, 1000);
        let mut r = rng(7);
        for (t, x0v) in [(0usize, 0.7f32), (100, -0.3), (500, 1.0), (999, 0.5)] {
            let x0 = ArrayD::from_elem(vec![n, 1], x0v);
            let eps = init::normal(&[n, 1], 1.0, &mut r);
            let xt = s.q_sample(&x0, &vec![t; n], &eps);
            let mean = xt.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            let var = xt.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
            let (m_true, v_true) = (
                s.sqrt_alphas_cumprod[t] * x0v as f64,
                1.0 - s.alphas_cumprod[t],
            );
            // 5 standard errors: sd(mean) = √(v/n), sd(var) ≈ v·√(2/n).
            assert!(
                (mean - m_true).abs() < 5.0 * (v_true / n as f64).sqrt(),
                "{kind:?} t={t}: mean {mean} vs {m_true}"
            );
            assert!(
                (var - v_true).abs() < 5.0 * v_true * (2.0 / n as f64).sqrt(),
                "{kind:?} t={t}: var {var} vs {v_true}"
            );
        }
    }
}

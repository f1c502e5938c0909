//! Properties of the noise schedules: valid betas, a strictly decreasing ᾱ, the posterior
//! equal to Bayes' rule, and values of the linear schedule worked out by hand.

use minisora::diffusion::{BetaSchedule, Schedule};
use proptest::prelude::*;

const KINDS: [BetaSchedule; 3] = [
    BetaSchedule::Linear,
    BetaSchedule::Cosine,
    BetaSchedule::ScaledLinear,
];

fn check_valid(kind: BetaSchedule, steps: usize) -> Result<(), TestCaseError> {
    let s = Schedule::new(kind, steps);
    prop_assert_eq!(s.num_timesteps(), steps);
    for (t, &b) in s.betas.iter().enumerate() {
        prop_assert!(b > 0.0 && b < 1.0, "{kind:?} T={steps}: beta[{t}] = {b}");
    }
    for (t, &a) in s.alphas_cumprod.iter().enumerate() {
        prop_assert!(a > 0.0 && a < 1.0, "{kind:?} T={steps}: abar[{t}] = {a}");
        if t > 0 {
            prop_assert!(
                a < s.alphas_cumprod[t - 1],
                "{kind:?} T={steps}: abar not strictly decreasing at {t}"
            );
        }
    }
    for v in s
        .posterior_log_variance_clipped
        .iter()
        .chain(&s.posterior_mean_coef1)
        .chain(&s.posterior_mean_coef2)
        .chain(&s.sqrt_recipm1_alphas_cumprod)
    {
        prop_assert!(v.is_finite());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn betas_valid_and_abar_strictly_decreasing(steps in 2usize..=4000, k in 0usize..3) {
        check_valid(KINDS[k], steps)?;
    }

    /// $q(x_{t-1} | x_t, x_0) ∝ q(x_t | x_{t-1})\, q(x_{t-1} | x_0)$: multiply the two Gaussians
    /// and compare with the schedule's coefficients.
    #[test]
    fn posterior_matches_bayes(steps in 2usize..=2000, k in 0usize..3, frac in 0.0f64..1.0,
                               x0 in -2.0f64..2.0, xt in -3.0f64..3.0) {
        let s = Schedule::new(KINDS[k], steps);
        let t = 1 + ((steps - 2) as f64 * frac) as usize;
        let (abar_prev, alpha, beta) = (s.alphas_cumprod_prev[t], s.alphas[t], s.betas[t]);
        let prec = 1.0 / (1.0 - abar_prev) + alpha / beta;
        let var = 1.0 / prec;
        let mean = var * (abar_prev.sqrt() * x0 / (1.0 - abar_prev) + alpha.sqrt() * xt / beta);
        let ours = s.posterior_mean_coef1[t] * x0 + s.posterior_mean_coef2[t] * xt;
        prop_assert!((ours - mean).abs() <= 1e-9 * (1.0 + mean.abs()), "mean {ours} vs {mean}");
        prop_assert!((s.posterior_variance[t] - var).abs() <= 1e-9 * var, "var");
        prop_assert!((s.posterior_log_variance_clipped[t] - var.ln()).abs() < 1e-9);
    }
}

#[test]
fn edge_lengths_are_valid() {
    for kind in KINDS {
        for steps in [2, 3, 20, 21, 50, 999, 1000, 1001, 4000] {
            check_valid(kind, steps).unwrap();
        }
    }
}

#[test]
fn posterior_at_t0_is_x0() {
    let s = Schedule::new(BetaSchedule::Linear, 1000);
    assert!((s.posterior_mean_coef1[0] - 1.0).abs() < 1e-12);
    assert!(s.posterior_mean_coef2[0].abs() < 1e-12);
    assert_eq!(s.posterior_variance[0], 0.0);
    // The clipped log replaces log 0 with log of the next variance.
    assert_eq!(
        s.posterior_log_variance_clipped[0],
        s.posterior_variance[1].ln()
    );
}

/// Linear, T = 1000: β_t = 1e-4 + (0.02 − 1e-4)·t/999, ᾱ_t = ∏(1 − β_s), computed in exact
/// rational arithmetic (Python `fractions`) and rounded.
#[test]
fn linear_1000_hand_values() {
    let s = Schedule::new(BetaSchedule::Linear, 1000);
    let close = |a: f64, b: f64, rel: f64| (a - b).abs() <= rel * b.abs();
    let want = [
        (0, 0.0001, 0.9999),
        (1, 0.00011991991991991992, 0.9997800920720721),
        (9, 0.0002792792792792793, 0.9981052047858346),
        (99, 0.002072072072072072, 0.8970181456749604),
        (499, 0.01004004004004004, 0.07858724288177824),
        (999, 0.02, 4.0358297653756835e-05),
    ];
    for (t, beta, abar) in want {
        assert!(close(s.betas[t], beta, 1e-12), "beta[{t}] = {}", s.betas[t]);
        assert!(
            close(s.alphas_cumprod[t], abar, 1e-10),
            "abar[{t}] = {}",
            s.alphas_cumprod[t]
        );
    }
    assert!(close(
        s.sqrt_alphas_cumprod[999],
        0.006352818087570022,
        1e-10
    ));
    assert!(close(
        s.posterior_variance[1],
        5.4531876613026055e-05,
        1e-10
    ));
    assert!(close(
        s.posterior_variance[500],
        0.010051335778909593,
        1e-10
    ));
}

/// Cosine: without clipping, ᾱ telescopes to f(t+1)/f(0) with f(t) = cos²(((t/T)+s)/(1+s)·π/2).
#[test]
fn cosine_matches_closed_form() {
    for steps in [10usize, 1000, 4000] {
        let s = Schedule::new(BetaSchedule::Cosine, steps);
        let f = |t: f64| {
            let c = ((t / steps as f64 + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2).cos();
            c * c
        };
        for t in [0, steps / 4, steps / 2, (3 * steps) / 4] {
            let want = f(t as f64 + 1.0) / f(0.0);
            assert!(
                (s.alphas_cumprod[t] - want).abs() < 1e-9,
                "T={steps} t={t}: {} vs {want}",
                s.alphas_cumprod[t]
            );
        }
        // Hand value: T = 1000, ᾱ_499 = f(500)/f(0) = 0.4938435904406…
        if steps == 1000 {
            assert!((s.alphas_cumprod[499] - 0.493_843_590_440_6).abs() < 1e-9);
        }
        assert_eq!(*s.betas.last().unwrap(), 0.999, "last beta clipped");
    }
}

#[test]
fn scaled_linear_endpoints() {
    let s = Schedule::new(BetaSchedule::ScaledLinear, 1000);
    assert!((s.betas[0] - 0.00085).abs() < 1e-15);
    assert!((s.betas[999] - 0.012).abs() < 1e-15);
    // Linear in √β: the midpoint of √β is the mean of the endpoint roots.
    let mid = (s.betas[0].sqrt() + s.betas[999].sqrt()) / 2.0;
    let lin = s.betas[0].sqrt() + (s.betas[999].sqrt() - s.betas[0].sqrt()) * 500.0 / 999.0;
    assert!((s.betas[500].sqrt() - lin).abs() < 1e-12 && (lin - mid).abs() < 1e-4);
}

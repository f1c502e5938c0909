//! The training losses: the hand-written gradient of L_simple + L_vlb w.r.t. the whole model
//! output (with the stop-gradient on the mean inside L_vlb), the KL and the discretized
//! likelihood checked against their definitions.

use minisora::diffusion::losses::{
    discretized_gaussian_log_likelihood, normal_kl, training_losses, training_losses_frozen,
};
use minisora::diffusion::{BetaSchedule, Diffusion, LossType, Prediction, Schedule, VarianceType};
use minisora::gradcheck::{check, GradCheck};
use minisora::param::{Param, Parameters};
use minisora::tensor::{init, rng};
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;

/// The loss has no parameters of its own: the model output is the checked input.
struct NoParams;
impl Parameters for NoParams {
    fn visit(&mut self, _: &str, _: &mut dyn FnMut(&str, &mut Param)) {}
}

const PREDS: [Prediction; 3] = [Prediction::Epsilon, Prediction::X0, Prediction::V];
const VARS: [VarianceType; 3] = [
    VarianceType::FixedSmall,
    VarianceType::FixedLarge,
    VarianceType::LearnedRange,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// ∂loss/∂output by hand agrees with finite differences, for every target and variance
    /// type, both loss types, with t = 0 (decoder NLL) always in the batch.
    #[test]
    fn loss_gradient_matches_finite_differences(steps in 5usize..200, k in 0usize..2,
            p in 0usize..3, v in 0usize..3, rescaled in proptest::bool::ANY,
            bsz in 1usize..4, c in 1usize..3, h in 1usize..4, seed in 0u64..1000) {
        let kind = [BetaSchedule::Linear, BetaSchedule::Cosine][k];
        let loss = if rescaled { LossType::RescaledMse } else { LossType::Mse };
        let d = Diffusion::new(Schedule::new(kind, steps), PREDS[p], VARS[v], loss);
        let mut r = rng(seed);
        // Data quantised to 256 levels in [−1, 1], with the edges present.
        let mut x0 = init::uniform(&[bsz, c, h], 1.0, &mut r).mapv(|x| (x * 127.5).round() / 127.5);
        x0.as_slice_mut().unwrap()[0] = -1.0;
        let noise = init::normal(&[bsz, c, h], 1.0, &mut r);
        let mut t = minisora::diffusion::sample_uniform(bsz, steps, &mut r);
        t[0] = 0;
        let x_t = d.schedule.q_sample(&x0, &t, &noise);
        let oc = if d.learns_variance() { 2 * c } else { c };
        // A plausible output: near the target, variance channels in (−1, 1).
        let out = init::uniform(&[bsz, oc, h], 0.9, &mut r);
        let frozen = out.clone();
        let weights: Vec<f32> = (0..bsz).map(|b| 0.5 + b as f32).collect();
        // The loss minus its value at `out`, differenced in f64: the t = 0 term can be tens
        // of bits while its gradient is 1e-4, which f32 rounding of the total would swamp.
        let base = training_losses(&d, &x0, &x_t, &t, &noise, &out, Some(&weights)).loss_f64;
        let fwd = |_: &NoParams, xs: &[ArrayD<f32>]| {
            let l = training_losses_frozen(&d, &x0, &x_t, &t, &noise, &xs[0], &frozen, Some(&weights));
            ArrayD::from_elem(IxDyn(&[1]), (l.loss_f64 - base) as f32)
        };
        let bwd = |_: &mut NoParams, xs: &[ArrayD<f32>], dy: &ArrayD<f32>| {
            let l = training_losses(&d, &x0, &x_t, &t, &noise, &xs[0], Some(&weights));
            vec![l.d_out * dy[0]]
        };
        // A smaller step than the default: the t = 0 likelihood curves sharply in the log scale,
        // and the loss is differenced in f64, so rounding does not limit it.
        // Every coordinate is checked one by one (outputs here have at most 36 < 64), and the
        // directional derivative at the default 1e-3 (passed 400 random cases).
        let cfg = GradCheck { step: 5e-3, seed, ..GradCheck::default() };
        let rep = check(&mut NoParams, &[out], fwd, bwd, &cfg);
        prop_assert!(rep.passed, "{:?}", rep);
    }

    /// Over all 256 bins of [−1, 1] the discretized likelihood sums to 1, whatever the mean
    /// and scale; its derivative in the log scale matches a central difference.
    #[test]
    fn discretized_likelihood_is_a_distribution(mean in -1.2f64..1.2, log_scale in -6.0f64..0.5) {
        let total: f64 = (0..256)
            .map(|i| discretized_gaussian_log_likelihood(-1.0 + 2.0 * i as f64 / 255.0, mean, log_scale).0.exp())
            .sum();
        prop_assert!((total - 1.0).abs() < 1e-6, "sums to {total}");
        for i in [0usize, 100, 255] {
            let x = -1.0 + 2.0 * i as f64 / 255.0;
            let (lp, d) = discretized_gaussian_log_likelihood(x, mean, log_scale);
            // Within a factor e of the 1e-12 floor the central difference straddles its kink.
            if lp <= (1e-12f64).ln() + 1.0 { continue; }
            let h = 1e-4;
            let num = (discretized_gaussian_log_likelihood(x, mean, log_scale + h).0
                - discretized_gaussian_log_likelihood(x, mean, log_scale - h).0) / (2.0 * h);
            prop_assert!((num - d).abs() <= 1e-4 * (1.0 + d.abs()), "x={x}: {d} vs {num}");
        }
    }

    /// KL(N(m1, e^l1) || N(m2, e^l2)) against the textbook formula via variances, and
    /// zero for equal Gaussians.
    #[test]
    fn normal_kl_matches_definition(m1 in -2.0f64..2.0, l1 in -5.0f64..2.0, m2 in -2.0f64..2.0,
            l2 in -5.0f64..2.0) {
        let (v1, v2) = (l1.exp(), l2.exp());
        let want = (v2.sqrt() / v1.sqrt()).ln() + (v1 + (m1 - m2).powi(2)) / (2.0 * v2) - 0.5;
        let (kl, d) = normal_kl(m1, l1, m2, l2);
        prop_assert!((kl - want).abs() < 1e-9 * (1.0 + want.abs()));
        prop_assert!(normal_kl(m1, l1, m1, l1).0.abs() < 1e-12);
        let h = 1e-6;
        let num = (normal_kl(m1, l1, m2, l2 + h).0 - normal_kl(m1, l1, m2, l2 - h).0) / (2.0 * h);
        prop_assert!((num - d).abs() < 1e-5 * (1.0 + d.abs()));
    }
}

/// L_simple is the per-sample mean square error on the target; a perfect output has zero
/// MSE, and with a fixed variance there is no vb term.
#[test]
fn l_simple_values() {
    let d = Diffusion::new(
        Schedule::new(BetaSchedule::Linear, 100),
        Prediction::Epsilon,
        VarianceType::FixedSmall,
        LossType::Mse,
    );
    let mut r = rng(3);
    let x0 = init::uniform(&[2, 3], 1.0, &mut r);
    let noise = init::normal(&[2, 3], 1.0, &mut r);
    let t = vec![10, 60];
    let x_t = d.schedule.q_sample(&x0, &t, &noise);
    let l = training_losses(&d, &x0, &x_t, &t, &noise, &noise, None);
    assert_eq!(l.loss, 0.0);
    let out = &noise + 0.5;
    let l = training_losses(&d, &x0, &x_t, &t, &noise, &out, None);
    assert!((l.loss - 0.25).abs() < 1e-6 && l.mse == vec![0.25, 0.25]);
    assert_eq!(l.vb, vec![0.0, 0.0]);
}

/// With learned variance, the vb term at a t > 0 is the KL between the true posterior and
/// the model's Gaussian, in bits per dimension; it is zero when the model hits both.
#[test]
fn vb_is_zero_for_the_true_posterior() {
    let d = Diffusion::new(
        Schedule::new(BetaSchedule::Linear, 100),
        Prediction::X0,
        VarianceType::LearnedRange,
        LossType::Mse,
    );
    let mut r = rng(4);
    let x0 = init::uniform(&[2, 3], 1.0, &mut r);
    let noise = init::normal(&[2, 3], 1.0, &mut r);
    let t = vec![10, 60];
    let x_t = d.schedule.q_sample(&x0, &t, &noise);
    // x₀-prediction equal to x₀ and v = −1 (log σ² = log β̃): model = true posterior.
    let out = Diffusion::join(&x0, &ArrayD::from_elem(vec![2, 3], -1.0));
    let l = training_losses(&d, &x0, &x_t, &t, &noise, &out, None);
    assert!(l.loss.abs() < 1e-6, "loss {}", l.loss);
    // v = +1 (log σ² = log β): KL = ½(β̃/β − 1 − log(β̃/β)) / ln 2 per dim.
    let out = Diffusion::join(&x0, &ArrayD::from_elem(vec![2, 3], 1.0));
    let l = training_losses(&d, &x0, &x_t, &t, &noise, &out, None);
    for (b, &tb) in t.iter().enumerate() {
        let ratio = d.schedule.posterior_variance[tb] / d.schedule.betas[tb];
        let want = 0.5 * (ratio - 1.0 - ratio.ln()) / std::f64::consts::LN_2;
        assert!(
            (l.vb[b] as f64 - want).abs() < 1e-4 * want.max(1e-3),
            "{} vs {want}",
            l.vb[b]
        );
    }
}

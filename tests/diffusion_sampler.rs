//! Properties of the samplers: with an oracle that knows x₀, DDIM (η = 0) and DDPM land on
//! x₀; DDIM's σ at η = 1 is DDPM's posterior variance; respaced sampling calls the model with
//! the original timesteps; guidance combines the two predictions as stated.

use minisora::diffusion::sampler::ddim_sigma;
use minisora::diffusion::Condition;
use minisora::diffusion::{
    BetaSchedule, Denoiser, Diffusion, Guided, LossType, Prediction, SampleOptions, SamplerKind,
    Schedule, VarianceType,
};
use minisora::nn::timestep_embedding;
use minisora::tensor::{init, rng};
use ndarray::{ArrayD, Axis};
use proptest::prelude::*;
use std::sync::Mutex;

const KINDS: [BetaSchedule; 3] = [
    BetaSchedule::Linear,
    BetaSchedule::Cosine,
    BetaSchedule::ScaledLinear,
];
const PREDS: [Prediction; 3] = [Prediction::Epsilon, Prediction::X0, Prediction::V];
const VARS: [VarianceType; 3] = [
    VarianceType::FixedSmall,
    VarianceType::FixedLarge,
    VarianceType::LearnedRange,
];

/// A model that knows x₀ and answers with the true target for whatever x_t it is given:
/// ε = (x_t − √ᾱ x₀)/√(1−ᾱ) (so it is exact on the DDIM η = 0 path), x₀ itself, or v.
/// `orig` is the un-respaced schedule: the model sees the original timesteps.
fn oracle<'a>(
    orig: &'a Schedule,
    x0: &'a ArrayD<f32>,
    pred: Prediction,
    learned: bool,
) -> impl Fn(&ArrayD<f32>, &[usize], &Condition) -> ArrayD<f32> + 'a {
    move |x_t, t, _| {
        let eps = orig.eps_from_x0(x_t, t, x0);
        let out = match pred {
            Prediction::Epsilon => eps,
            Prediction::X0 => x0.clone(),
            Prediction::V => orig.v_from_x0_eps(x0, t, &eps),
        };
        if learned {
            Diffusion::join(&out, &ArrayD::zeros(out.raw_dim()))
        } else {
            out
        }
    }
}

fn max_abs_diff(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    a.iter()
        .zip(b.iter())
        .fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// DDIM with η = 0 and the true prediction maps x_T = q_sample(x₀, T−1, ε) back to x₀,
    /// for every schedule, target and respacing; DDPM does too, since its last step is the
    /// noise-free posterior mean at t = 0 (whose x₀ weight is exactly 1).
    #[test]
    fn oracle_samplers_recover_x0(steps in 10usize..400, k in 0usize..3, p in 0usize..3,
            v in 0usize..3, keep in 3usize..10, seed in 0u64..1000, ddpm in proptest::bool::ANY) {
        let orig = Diffusion::new(Schedule::new(KINDS[k], steps), PREDS[p], VARS[v], LossType::Mse);
        let d = orig.respace_spec(&keep.to_string()).unwrap();
        let mut r = rng(seed);
        let x0 = init::uniform(&[3, 2, 2], 1.0, &mut r);
        let eps = init::normal(&[3, 2, 2], 1.0, &mut r);
        let first = d.timestep_map[d.num_timesteps() - 1];
        let x_t = orig.schedule.q_sample(&x0, &[first; 3], &eps);
        let model = oracle(&orig.schedule, &x0, PREDS[p], orig.learns_variance());
        let kind = if ddpm { SamplerKind::Ddpm } else { SamplerKind::Ddim { eta: 0.0 } };
        let mut seen = Vec::new();
        let out = d.sample(&model, &[3, 2, 2], Some(x_t), &Condition::None,
            SampleOptions { kind, clip_x0: false }, &mut r,
            &mut |t, x, _| seen.push((t, x.clone())));
        prop_assert_eq!(seen.len(), d.num_timesteps());
        prop_assert!(seen.iter().map(|s| s.0).eq((0..d.num_timesteps()).rev()));
        let err = max_abs_diff(&out, &x0);
        prop_assert!(err < 2e-3, "recovered x0 off by {err}");
    }

    /// At η = 1, DDIM's σ² equals the posterior variance β̃_t (DDPM's fixed-small variance).
    #[test]
    fn ddim_eta1_is_ddpm_variance(steps in 2usize..2000, k in 0usize..3, frac in 0.0f64..1.0) {
        let s = Schedule::new(KINDS[k], steps);
        let t = 1 + ((steps - 2) as f64 * frac) as usize;
        let sig = ddim_sigma(1.0, s.alphas_cumprod[t], s.alphas_cumprod_prev[t]);
        prop_assert!((sig * sig - s.posterior_variance[t]).abs() <= 1e-9 * s.posterior_variance[t]);
        prop_assert_eq!(ddim_sigma(0.0, s.alphas_cumprod[t], s.alphas_cumprod_prev[t]), 0.0);
    }
}

/// A respaced sampler calls the model with the original timesteps, in decreasing order.
#[test]
fn respaced_sampling_uses_original_timesteps() {
    let d = Diffusion::new(
        Schedule::new(BetaSchedule::Linear, 1000),
        Prediction::Epsilon,
        VarianceType::FixedSmall,
        LossType::Mse,
    )
    .respace_spec("ddim50")
    .unwrap();
    let calls = Mutex::new(Vec::new());
    let model = |x: &ArrayD<f32>, t: &[usize], _: &Condition| {
        calls.lock().unwrap().push(t[0]);
        ArrayD::zeros(x.raw_dim())
    };
    let opts = SampleOptions {
        kind: SamplerKind::Ddim { eta: 0.0 },
        clip_x0: true,
    };
    d.sample(
        &model,
        &[2, 3],
        None,
        &Condition::None,
        opts,
        &mut rng(0),
        &mut |_, _, _| {},
    );
    let want: Vec<usize> = (0..1000).step_by(20).rev().collect();
    assert_eq!(*calls.lock().unwrap(), want);
}

/// ε̂ = ε_u + s(ε_c − ε_u) on the first C channels; the variance channels come from the
/// conditional half; the null label is used for the unconditional half.
#[test]
fn guidance_combines_cond_and_uncond() {
    let null = 10;
    // Output channel j of sample b: label + 0.1·j, and −label for the variance channels.
    let model = |x: &ArrayD<f32>, _t: &[usize], y: &Condition| {
        let y = y.label_ids(null).unwrap();
        let mut out = ArrayD::zeros(vec![x.shape()[0], 4]);
        for (b, mut row) in out.axis_iter_mut(Axis(0)).enumerate() {
            for j in 0..4 {
                row[j] = if j < 2 {
                    y[b] as f32 + 0.1 * j as f32
                } else {
                    -(y[b] as f32)
                };
            }
        }
        out
    };
    let x = ArrayD::zeros(vec![2, 2]);
    for scale in [1.0f32, 4.0] {
        let g = Guided {
            model: &model,
            scale,
            channels: 2,
        };
        let out = g.predict(&x, &[5, 5], &Condition::labels(&[3, 7]));
        assert_eq!(out.shape(), &[2, 4]);
        for (b, &label) in [3usize, 7].iter().enumerate() {
            for j in 0..2 {
                let (c, u) = (label as f32 + 0.1 * j as f32, null as f32 + 0.1 * j as f32);
                let want = u + scale * (c - u);
                assert!(
                    (out[[b, j]] - want).abs() < 1e-4,
                    "{} vs {want}",
                    out[[b, j]]
                );
            }
            assert_eq!(out[[b, 2]], -(label as f32));
        }
    }
}

/// DiT's embedding: [cos(t ω_i) …, sin(t ω_i) …], ω_i = 10000^(−i/half).
#[test]
fn timestep_embedding_layout() {
    let e = timestep_embedding(&[0.0, 1.0, 500.0], 8, 10000.0);
    assert_eq!(e.shape(), &[3, 8]);
    for i in 0..4 {
        assert_eq!(e[[0, i]], 1.0);
        assert_eq!(e[[0, 4 + i]], 0.0);
        let w = 10000f32.powf(-(i as f32) / 4.0);
        assert!((e[[2, i]] - (500.0 * w).cos()).abs() < 1e-4);
        assert!((e[[2, 4 + i]] - (500.0 * w).sin()).abs() < 1e-4);
    }
    assert!((e[[1, 0]] - 1f32.cos()).abs() < 1e-6 && (e[[1, 4]] - 1f32.sin()).abs() < 1e-6);
    let odd = timestep_embedding(&[3.0], 5, 10000.0);
    assert_eq!(odd[[0, 4]], 0.0, "odd dims are zero-padded");
}

/// From the same x_T, DDIM with η = 0 gives the same sample whatever the generator's seed;
/// with η = 1 it adds fresh noise, so different seeds give different samples.
#[test]
fn ddim_eta0_is_deterministic_and_eta1_is_not() {
    let d = Diffusion::new(
        Schedule::new(BetaSchedule::Cosine, 50),
        Prediction::Epsilon,
        VarianceType::FixedSmall,
        LossType::Mse,
    );
    let model = |x: &ArrayD<f32>, _: &[usize], _: &Condition| x * 0.5;
    let x_t = init::normal(&[4, 2], 1.0, &mut rng(1));
    let run = |eta: f32, seed: u64| {
        let opts = SampleOptions {
            kind: SamplerKind::Ddim { eta },
            clip_x0: false,
        };
        d.sample(
            &model,
            &[4, 2],
            Some(x_t.clone()),
            &Condition::None,
            opts,
            &mut rng(seed),
            &mut |_, _, _| {},
        )
    };
    assert_eq!(run(0.0, 1), run(0.0, 2));
    assert!(max_abs_diff(&run(1.0, 1), &run(1.0, 2)) > 1e-3);
}

/// For Gaussian data N(μ, s²), the exact ε-predictor is
/// E[ε | x_t] = √(1−ᾱ)(x_t − √ᾱ μ) / (ᾱ s² + 1 − ᾱ). DDPM (both fixed variances) and DDIM
/// (η = 0 and 1) with it must produce samples with mean μ and std s. (All 200 steps: with
/// few large steps a fixed variance misses Var(x₀ | x_t), and the spread comes out too small —
/// at 50 steps, η = 1 gives std 0.25 for s = 0.3; that is what a learned variance fixes.)
#[test]
fn exact_gaussian_denoiser_samples_the_gaussian() {
    let (mu, sd) = (0.8f64, 0.3f64);
    for variance in [VarianceType::FixedSmall, VarianceType::FixedLarge] {
        let d = Diffusion::new(
            Schedule::new(BetaSchedule::Linear, 200),
            Prediction::Epsilon,
            variance,
            LossType::Mse,
        );
        let s = d.schedule.clone();
        let model = move |x: &ArrayD<f32>, t: &[usize], _: &Condition| {
            let mut out = x.clone();
            for (b, mut row) in out.axis_iter_mut(Axis(0)).enumerate() {
                let ab = s.alphas_cumprod[t[b]];
                row.mapv_inplace(|v| {
                    ((1.0 - ab).sqrt() * (v as f64 - ab.sqrt() * mu) / (ab * sd * sd + 1.0 - ab))
                        as f32
                });
            }
            out
        };
        let n = 4_000;
        for (kind, dd) in [
            (SamplerKind::Ddpm, d.clone()),
            (SamplerKind::Ddim { eta: 0.0 }, d.clone()),
            (SamplerKind::Ddim { eta: 1.0 }, d.clone()),
        ] {
            let x = dd.sample(
                &model,
                &[n, 1],
                None,
                &Condition::None,
                SampleOptions {
                    kind,
                    clip_x0: false,
                },
                &mut rng(5),
                &mut |_, _, _| {},
            );
            let m = x.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            let v = x.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n as f64;
            assert!((m - mu).abs() < 0.02, "{variance:?} {kind:?}: mean {m}");
            assert!(
                (v.sqrt() - sd).abs() < 0.02,
                "{variance:?} {kind:?}: std {}",
                v.sqrt()
            );
        }
    }
}

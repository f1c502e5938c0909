//! The causal temporal VAE: gradient checks of its residual block, its encoder and
//! decoder, and its whole loss on input and every parameter; the frame arithmetic
//! `1 + 4k → 1 + k`; causality (an image encodes as the first frame of any clip does, and
//! later frames never reach earlier latents); the time upsampling as the adjoint of its
//! backward; and the error for a clip of the wrong length.

mod support;

use minisora::gradcheck::{check, random_input, GradCheck};
use minisora::param::Parameters;
use minisora::tensor::{init, rng, Rng};
use minisora::vae::temporal::{
    time_upsample, time_upsample_backward, CausalCoder, CausalResBlock, Direction, TemporalVae,
    TemporalVaeConfig,
};
use minisora::vae::{Recon, VaeLoss};
use ndarray::{s, Array5, ArrayD, Ix5};
use proptest::prelude::*;

fn five(a: &ArrayD<f32>) -> Array5<f32> {
    a.clone().into_dimensionality::<Ix5>().unwrap()
}

/// GroupNorm γ of random sign, |γ| in [0.5, 1.5], and β ~ N(0, 1), so no norm silences its
/// input; every conv weight three times its initialisation. A norm after a conv makes the loss
/// curve like $1/|W|^2$ in that conv's weight, and at PyTorch's initialisation (as small as
/// $1/\sqrt{27 \cdot 4}$ here) the finite differences are no longer small steps (see
/// `grad_vae_blocks.rs`, which scales conv1 by 4 for the same reason).
fn randomise(m: &mut impl Parameters, r: &mut Rng) {
    m.visit("", &mut |name, p| {
        if name.contains("norm") {
            p.value = random_input(p.shape(), r);
            if name.ends_with("weight") {
                p.value
                    .mapv_inplace(|v| v.signum() * (0.5 + v.abs().min(1.0)));
            }
        } else if name.ends_with("weight") {
            p.value *= 3.0;
        }
    });
}

/// The checker for whole networks: 16 sampled coordinates per tensor beside the directional
/// check through all of them, and a directional tolerance of 5e-3. Measured on the encoder and
/// decoder over every (direction, resamplings 0–2, frames, side 2–4), 3 seeds each: the worst
/// directional errors were 2.2e-3, 2.8e-3 and 2.9e-3 at steps 3e-3, 1e-3 and 3e-4 — they do
/// not shrink with the step, so they are the f32 rounding of a dozen per-frame GroupNorms over
/// slices of 8–32 values, not truncation and not a wrong gradient (one causal block alone:
/// 5e-4 over 20 seeds). A gradient 3 % off still fails (below).
fn model_check(seed: u64, step: f32) -> GradCheck {
    GradCheck {
        seed,
        step,
        max_coords: 16,
        dir_tol: 5e-3,
        ..GradCheck::default()
    }
}

fn tiny(c: usize, z: usize) -> TemporalVaeConfig {
    TemporalVaeConfig {
        in_channels: c,
        width: 4,
        z_channels: z,
        downs: 2,
        groups: 2,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]
    #[test]
    fn causal_resblock_gradients_match_finite_differences(
        b in 1usize..3, groups in 1usize..3, per in 1usize..3,
        f in 1usize..6, h in 2usize..4, w in 2usize..4, seed in any::<u64>(),
    ) {
        let c = groups * per;
        let mut r = rng(seed ^ 0x3d0c);
        let mut block = CausalResBlock::new(c, groups, &mut r);
        randomise(&mut block, &mut r);
        let x = random_input(&[b, c, f, h, w], &mut r);
        let report = check(
            &mut block,
            &[x],
            |m, xs| m.forward_infer(&five(&xs[0])).into_dyn(),
            |m, xs, dy| {
                let (y, cache) = m.forward(&five(&xs[0]));
                assert_eq!(y, m.forward_infer(&five(&xs[0])));
                vec![m.backward(&cache, &five(dy)).into_dyn()]
            },
            &model_check(seed, 2.5e-3),
        );
        prop_assert!(report.passed, "c {c} f {f}: {report:?}");
    }

    #[test]
    fn causal_coder_gradients_match_finite_differences(
        down in any::<bool>(), b in 1usize..3, k in 0usize..3, n in 1usize..3,
        h in 2usize..4, seed in any::<u64>(),
    ) {
        let (direction, f) = if down {
            (Direction::Down, 1 + (1 << n) * k)
        } else {
            (Direction::Up, 1 + k)
        };
        let mut r = rng(seed ^ 0xc0de);
        let mut coder = CausalCoder::new(direction, 2, 4, 3, n, 2, &mut r);
        randomise(&mut coder, &mut r);
        let x = random_input(&[b, 2, f, h, h], &mut r);
        let frames_out = coder.frames_out(f);
        let report = check(
            &mut coder,
            &[x],
            |m, xs| m.forward_infer(&five(&xs[0])).into_dyn(),
            |m, xs, dy| {
                let (y, cache) = m.forward(&five(&xs[0]));
                assert_eq!(y.dim(), (b, 3, frames_out, h, h));
                vec![m.backward(&cache, &five(dy)).into_dyn()]
            },
            &model_check(seed, 1e-3),
        );
        prop_assert!(report.passed, "{direction:?} f {f} n {n}: {report:?}");
    }

    /// The whole loss (MSE + β·KL) on every parameter and the clip; β = 0.1 and 1 make the KL
    /// part of every encoder gradient. Frames of 4×4: at 2×2 a norm's slice is 8 values and a
    /// one-frame clip's loss is too curved for any step (errors of 1–3 % at every step tried).
    /// Clips of 5 and 9 frames: a one-frame clip (every time tap on frame 0) gave directional
    /// errors of 4–6e-3 at steps 5e-4 and 1e-3 alike; the encoder and decoder alone are checked
    /// on one frame above.
    #[test]
    fn temporal_vae_loss_gradients_match_finite_differences(
        b in 1usize..3, c in 1usize..3, z in 1usize..3, k in 1usize..3,
        kl_weight in prop::sample::select(vec![0.1f32, 1.0]), seed in any::<u64>(),
    ) {
        let mut r = rng(seed ^ 0x7e3a);
        let mut vae = TemporalVae::new(tiny(c, z), &mut r).unwrap();
        randomise(&mut vae, &mut r);
        calm_moments(&mut vae);
        let f = 1 + 4 * k;
        let x = init::uniform(&[b, c, f, 4, 4], 1.0, &mut r);
        let eps = five(&random_input(&[b, z, 1 + k, 4, 4], &mut r));
        let loss = VaeLoss { recon: Recon::Mse, kl_weight };
        let report = check(
            &mut vae,
            &[x],
            |m, xs| ArrayD::from_elem(vec![1], m.loss(&five(&xs[0]), &eps, &loss).total as f32),
            |m, xs, dy| {
                let (parts, dx) = m.loss_and_input_grad(&five(&xs[0]), &eps, &loss);
                assert_eq!(parts.x_rec.dim(), (b, c, f, 4, 4));
                m.visit("", &mut |_, p| p.grad.mapv_inplace(|g| g * dy[0]));
                vec![(dx * dy[0]).into_dyn()]
            },
            &model_check(seed, 1e-3),
        );
        prop_assert!(report.passed, "k {k}: {report:?}");
    }
}

/// The encoder's last conv back at its initialisation: three times larger, log σ² reaches ±10
/// and $e^{\log\sigma^2}$ in the KL curves too fast for any finite-difference step.
fn calm_moments(vae: &mut TemporalVae) {
    vae.encoder.conv_out.weight.value /= 3.0;
}

/// A wrong gradient is caught at the fine step: the first block's conv1 weight gradient
/// scaled by 1.03.
#[test]
fn the_loss_check_catches_a_gradient_three_percent_off() {
    let mut r = rng(17);
    let mut vae = TemporalVae::new(tiny(2, 2), &mut r).unwrap();
    randomise(&mut vae, &mut r);
    calm_moments(&mut vae);
    let x = init::uniform(&[2, 2, 5, 4, 4], 1.0, &mut r);
    let eps = five(&random_input(&[2, 2, 2, 4, 4], &mut r));
    let loss = VaeLoss {
        recon: Recon::Mse,
        kl_weight: 0.1,
    };
    let report = check(
        &mut vae,
        &[x],
        |m, xs| ArrayD::from_elem(vec![1], m.loss(&five(&xs[0]), &eps, &loss).total as f32),
        |m, xs, dy| {
            let (_, dx) = m.loss_and_input_grad(&five(&xs[0]), &eps, &loss);
            m.visit("", &mut |name, p| {
                p.grad.mapv_inplace(|g| g * dy[0]);
                if name == "encoder.blocks.0.conv1.weight" {
                    p.grad.mapv_inplace(|g| g * 1.03);
                }
            });
            vec![(dx * dy[0]).into_dyn()]
        },
        &model_check(1, 1e-3),
    );
    assert!(!report.passed, "a 3 % error passed: {report:?}");
}

#[test]
fn frames_one_plus_four_k_become_one_plus_k() {
    let mut r = rng(3);
    let vae = TemporalVae::new(tiny(2, 3), &mut r).unwrap();
    for k in 0..4 {
        let x = init::uniform(&[1, 2, 1 + 4 * k, 3, 2], 1.0, &mut r);
        let x = five(&x);
        let (mean, logvar) = vae.encode(&x);
        assert_eq!(mean.dim(), (1, 3, 1 + k, 3, 2));
        assert_eq!(logvar.dim(), mean.dim());
        assert_eq!(vae.decode(&mean).dim(), x.dim());
    }
    let config = TemporalVaeConfig::default();
    assert!(config.check_frames(17).is_ok() && config.check_frames(1).is_ok());
    for bad in [0, 2, 8, 16] {
        let e = config.check_frames(bad).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{bad} frames")) && e.contains("1 + 4k"),
            "{e}"
        );
    }
    let e = config.check_frames(16).unwrap_err().to_string();
    assert!(
        e.contains("crop the clip to 13") && e.contains("pad it to 17"),
        "{e}"
    );
}

/// An image is a one-frame clip: its latent is the first latent frame of any clip that starts
/// with it, and what comes after frame 4t never reaches latent frame t.
#[test]
fn the_encoder_is_causal_and_an_image_is_the_first_frame() {
    let mut r = rng(5);
    let mut vae = TemporalVae::new(tiny(2, 2), &mut r).unwrap();
    randomise(&mut vae, &mut r);
    let clip = five(&init::uniform(&[2, 2, 13, 4, 4], 1.0, &mut r)); // 13 frames → 4 latents
    let (mean, _) = vae.encode(&clip);
    let image = clip.slice(s![.., .., 0..1, .., ..]).to_owned();
    let (alone, _) = vae.encode(&image);
    let first = mean.slice(s![.., .., 0..1, .., ..]);
    let diff = (&alone - &first)
        .mapv(f32::abs)
        .fold(0.0f32, |a, &b| a.max(b));
    assert!(diff < 1e-5, "image vs first frame: {diff}");

    // change frames 5.. : latent frames 0 and 1 (frames ≤ 4) stay
    let mut later = clip.clone();
    later
        .slice_mut(s![.., .., 5.., .., ..])
        .mapv_inplace(|v| -v + 0.3);
    let (moved, _) = vae.encode(&later);
    let kept = (&moved.slice(s![.., .., ..2, .., ..]) - &mean.slice(s![.., .., ..2, .., ..]))
        .mapv(f32::abs)
        .fold(0.0f32, |a, &b| a.max(b));
    assert!(kept < 1e-5, "latent frames 0, 1 moved by {kept}");
    let changed = (&moved.slice(s![.., .., 2.., .., ..]) - &mean.slice(s![.., .., 2.., .., ..]))
        .mapv(f32::abs)
        .fold(0.0f32, |a, &b| a.max(b));
    assert!(changed > 1e-3, "latent frames 2, 3 did not see frames 5..");
}

/// ⟨up(x), dy⟩ = ⟨x, up_backward(dy)⟩ for every x, dy: the backward is the adjoint, and frame
/// 0 is copied once, every later frame twice.
#[test]
fn time_upsample_backward_is_its_adjoint() {
    let mut r = rng(9);
    let x = five(&random_input(&[2, 3, 4, 2, 3], &mut r));
    let y = time_upsample(&x);
    assert_eq!(y.dim(), (2, 3, 7, 2, 3));
    for (o, i) in [(0, 0), (1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (6, 3)] {
        assert_eq!(
            y.index_axis(ndarray::Axis(2), o),
            x.index_axis(ndarray::Axis(2), i)
        );
    }
    let dy = five(&random_input(&[2, 3, 7, 2, 3], &mut r));
    let dx = time_upsample_backward(&dy);
    let a: f64 = y.iter().zip(&dy).map(|(&p, &q)| p as f64 * q as f64).sum();
    let b: f64 = x.iter().zip(&dx).map(|(&p, &q)| p as f64 * q as f64).sum();
    assert!((a - b).abs() < 1e-4 * a.abs().max(1.0), "{a} vs {b}");
}

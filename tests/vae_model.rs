//! The KL-VAE model: config validation and metadata, the diagonal Gaussian (sample, KL and
//! their gradients), and gradient checks of the encoder, the decoder and the whole loss.

use minisora::gradcheck::{check, random_input, GradCheck};
use minisora::param::{Param, Parameters};
use minisora::tensor::rng;
use minisora::vae::{DiagonalGaussian, VaeConfig};
use ndarray::{Array4, ArrayD, Ix4};
use proptest::prelude::*;

fn four(a: &ArrayD<f32>) -> Array4<f32> {
    a.clone().into_dimensionality::<Ix4>().unwrap()
}

/// The checker needs a `Parameters` model; the distribution has none.
struct NoParams;
impl Parameters for NoParams {
    fn visit(&mut self, _prefix: &str, _f: &mut dyn FnMut(&str, &mut Param)) {}
}

// ---------------------------------------------------------------------------------------------
// Config

#[test]
fn default_config_is_valid_and_downsamples_by_four() {
    let c = VaeConfig::default();
    c.validate().unwrap();
    assert_eq!(c.downsample_factor(), 4);
    assert_eq!(c.widths(), vec![32, 64, 64]);
}

#[test]
fn config_validation_names_the_bad_field() {
    let err = |c: VaeConfig| c.validate().unwrap_err().to_string();
    let e = err(VaeConfig {
        groups: 5,
        ..VaeConfig::default()
    });
    assert!(e.contains("groups = 5") && e.contains("level 0"), "{e}");
    // 12 · 1 = 12 is divisible by 4, but 12 · 3 = 36 by 8 is not: the level is named.
    let e = err(VaeConfig {
        base_channels: 12,
        channel_mult: vec![2, 3],
        groups: 8,
        ..VaeConfig::default()
    });
    assert!(e.contains("groups = 8") && e.contains("level 1"), "{e}");
    let e = err(VaeConfig {
        channel_mult: vec![],
        ..VaeConfig::default()
    });
    assert!(e.contains("channel_mult is empty"), "{e}");
    let e = err(VaeConfig {
        channel_mult: vec![1, 0],
        ..VaeConfig::default()
    });
    assert!(e.contains("channel_mult[1] is 0"), "{e}");
    let e = err(VaeConfig {
        z_channels: 0,
        ..VaeConfig::default()
    });
    assert!(e.contains("z_channels is 0") && e.contains("fix"), "{e}");
    let e = err(VaeConfig {
        in_channels: 0,
        ..VaeConfig::default()
    });
    assert!(e.contains("in_channels is 0"), "{e}");
}

#[test]
fn config_metadata_round_trips_and_rejects_damage() {
    let c = VaeConfig {
        in_channels: 3,
        base_channels: 16,
        channel_mult: vec![1, 2, 4, 4],
        num_res_blocks: 2,
        z_channels: 8,
        mid_attention: false,
        groups: 4,
    };
    let m = c.to_metadata();
    assert_eq!(m["vae.channel_mult"], "1,2,4,4");
    assert_eq!(m["vae.mid_attention"], "false");
    assert_eq!(VaeConfig::from_metadata(&m).unwrap(), c);
    let d = VaeConfig::default();
    assert_eq!(VaeConfig::from_metadata(&d.to_metadata()).unwrap(), d);

    let mut missing = m.clone();
    missing.remove("vae.groups");
    let e = VaeConfig::from_metadata(&missing).unwrap_err().to_string();
    assert!(e.contains("vae.groups") && e.contains("missing"), "{e}");
    let mut garbled = m.clone();
    garbled.insert("vae.channel_mult".into(), "1,two".into());
    let e = VaeConfig::from_metadata(&garbled).unwrap_err().to_string();
    assert!(e.contains("vae.channel_mult"), "{e}");
    let mut invalid = m;
    invalid.insert("vae.groups".into(), "3".into());
    let e = VaeConfig::from_metadata(&invalid).unwrap_err().to_string();
    assert!(e.contains("groups = 3"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Diagonal Gaussian

#[test]
fn kl_is_zero_for_the_standard_normal_and_matches_the_closed_form() {
    let zeros = Array4::<f32>::zeros((2, 6, 3, 3));
    let g = DiagonalGaussian::from_moments(&zeros);
    assert_eq!(g.kl(), vec![0.0, 0.0]);

    // Per image, the closed form for N(μ, σ²) against N(0, 1) is
    // Σ [log(1/σ) + (σ² + μ²)/2 − 1/2], computed here independently in f64.
    let mut r = rng(7);
    let moments = four(&random_input(&[3, 4, 2, 5], &mut r));
    let g = DiagonalGaussian::from_moments(&moments);
    let kl = g.kl();
    for (b, &k) in kl.iter().enumerate() {
        let mut want = 0.0f64;
        for c in 0..2 {
            for i in 0..2 {
                for j in 0..5 {
                    let mu = moments[[b, c, i, j]] as f64;
                    let sigma = (moments[[b, c + 2, i, j]] as f64 / 2.0).exp();
                    want += (1.0 / sigma).ln() + (sigma * sigma + mu * mu) / 2.0 - 0.5;
                }
            }
        }
        assert!(
            (k - want).abs() < 1e-5 * want.abs().max(1.0),
            "{k} vs {want}"
        );
        assert!(k > 0.0);
    }
}

#[test]
fn logvar_is_clamped_and_the_clamp_stops_the_gradient() {
    let mut moments = Array4::<f32>::zeros((1, 2, 1, 3));
    moments[[0, 1, 0, 0]] = -50.0;
    moments[[0, 1, 0, 1]] = 1.5;
    moments[[0, 1, 0, 2]] = 45.0;
    let g = DiagonalGaussian::from_moments(&moments);
    let lv: Vec<f32> = g.logvar.iter().copied().collect();
    assert_eq!(lv, vec![-30.0, 1.5, 20.0]);
    let ones = Array4::<f32>::ones((1, 1, 1, 3));
    let dm = g.moments_backward(&ones, &ones);
    let d: Vec<f32> = dm.iter().copied().collect();
    assert_eq!(d, vec![1.0, 1.0, 1.0, 0.0, 1.0, 0.0]);
}

#[test]
fn sample_is_mean_plus_sigma_eps() {
    let mut r = rng(3);
    let moments = four(&random_input(&[2, 4, 3, 3], &mut r));
    let eps = four(&random_input(&[2, 2, 3, 3], &mut r));
    let g = DiagonalGaussian::from_moments(&moments);
    let z = g.sample(&eps);
    let sd = g.std();
    for ((b, c, i, j), &v) in z.indexed_iter() {
        let want = moments[[b, c, i, j]] + sd[[b, c, i, j]] * eps[[b, c, i, j]];
        assert!((v - want).abs() < 1e-6);
        assert!((sd[[b, c, i, j]] - (moments[[b, c + 2, i, j]] / 2.0).exp()).abs() < 1e-6);
    }
    assert_eq!(g.mode(), &g.mean);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    /// `y = (z, KL)` as a function of the moments: the sample's and the KL's gradients together.
    #[test]
    fn gaussian_sample_and_kl_gradients_match_finite_differences(
        b in 1usize..3, z in 1usize..4, h in 1usize..4, w in 1usize..4,
        kl_weight in prop::sample::select(vec![0.0f32, 0.1, 1.0]),
        seed in any::<u64>(),
    ) {
        let mut r = rng(seed ^ 0x6a05);
        let moments = random_input(&[b, 2 * z, h, w], &mut r);
        let eps = four(&random_input(&[b, z, h, w], &mut r));
        let n = b * z * h * w;
        let report = check(
            &mut NoParams,
            &[moments],
            |_, xs| {
                let g = DiagonalGaussian::from_moments(&four(&xs[0]));
                let mut y: Vec<f32> = g.sample(&eps).iter().copied().collect();
                y.extend(g.kl().iter().map(|&k| kl_weight * k as f32));
                ArrayD::from_shape_vec(vec![n + b], y).unwrap()
            },
            |_, xs, dy| {
                let g = DiagonalGaussian::from_moments(&four(&xs[0]));
                let dz = Array4::from_shape_vec((b, z, h, w), dy.as_slice().unwrap()[..n].to_vec())
                    .unwrap();
                let (mut dmean, mut dlogvar) = g.sample_backward(&eps, &dz);
                let weights: Vec<f32> =
                    dy.as_slice().unwrap()[n..].iter().map(|&d| d * kl_weight).collect();
                g.kl_backward_into(&weights, &mut dmean, &mut dlogvar);
                vec![g.moments_backward(&dmean, &dlogvar).into_dyn()]
            },
            &GradCheck { seed, ..GradCheck::default() },
        );
        prop_assert!(report.passed, "{report:?}");
    }
}

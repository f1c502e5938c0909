//! The latents' normalisation: per channel it brings every channel of the latents a batch
//! draws to mean 0 and variance 1, it inverts exactly enough to decode, the global factor is
//! the LDM scale factor bit for bit, and it survives the checkpoint's metadata (an older
//! checkpoint with only `train.scale_factor` reads as the global factor).

use minisora::tensor::{init, rng};
use minisora::train::{LatentNorm, NormKind, TrainData};
use ndarray::{ArrayD, Axis, IxDyn};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// Posteriors `(n, 3, 4, 4)` whose channels have very different means and spreads.
fn posteriors(n: usize, seed: u64) -> (ArrayD<f32>, ArrayD<f32>) {
    let mut r = rng(seed);
    let mut mean = init::normal(&[n, 3, 4, 4], 1.0, &mut r);
    for (c, (m, s)) in [(1.5f32, 3.0f32), (-0.5, 0.5), (0.2, 1.0)]
        .iter()
        .enumerate()
    {
        mean.index_axis_mut(Axis(1), c).mapv_inplace(|v| m + s * v);
    }
    let logvar = ArrayD::from_elem(IxDyn(&[n, 3, 4, 4]), -3.0f32);
    (mean, logvar)
}

/// Latent training data of `posteriors` with `norm`.
fn data(mean: ArrayD<f32>, logvar: ArrayD<f32>, norm: LatentNorm) -> TrainData {
    let n = mean.shape()[0];
    TrainData {
        mean,
        logvar: Some(logvar),
        norm,
        ..TrainData::new(ArrayD::zeros(IxDyn(&[n, 3, 4, 4])), vec![0; n], vec![])
    }
}

#[test]
fn per_channel_batches_have_unit_mean_and_variance() {
    let (mean, logvar) = posteriors(2000, 1);
    let norm = LatentNorm::per_channel(&mean, &logvar);
    assert!((norm.shift[0] - 1.5).abs() < 0.1, "{:?}", norm.shift);
    let d = data(mean, logvar, norm);
    let idx: Vec<usize> = (0..2000).collect();
    let z = d.batch(&idx, &mut rng(2));
    for c in 0..3 {
        let zc = z.index_axis(Axis(1), c);
        let m = zc.mean().unwrap();
        let v = zc.mapv(|x| (x - m) * (x - m)).mean().unwrap();
        assert!(m.abs() < 0.03, "channel {c}: mean {m}");
        assert!((v - 1.0).abs() < 0.05, "channel {c}: variance {v}");
    }
}

#[test]
fn the_global_factor_is_the_scale_factor_bit_for_bit() {
    let (mean, logvar) = posteriors(8, 3);
    let s = 0.47f32;
    let d = data(mean.clone(), logvar.clone(), LatentNorm::global(s, 3));
    let z = d.batch(&[0, 5, 7], &mut rng(4));
    // What the trainer drew before the normalisation had a type: s·(μ + σε).
    let eps = init::normal(&[3, 3, 4, 4], 1.0, &mut rng(4));
    let sel = |a: &ArrayD<f32>| a.select(Axis(0), &[0, 5, 7]);
    let (m, lv) = (sel(&mean), sel(&logvar));
    let mut want = eps.clone();
    ndarray::Zip::from(&mut want)
        .and(&m)
        .and(&lv)
        .for_each(|z, &m, &lv| *z = s * (m + (0.5 * lv).exp() * *z));
    assert_eq!(z, want);
}

#[test]
fn it_round_trips_through_the_metadata_and_reads_old_checkpoints() {
    let (mean, logvar) = posteriors(50, 5);
    let norm = LatentNorm::per_channel(&mean, &logvar);
    assert!(!norm.is_global());
    let back = LatentNorm::from_metadata(&norm.to_metadata(), 3).unwrap();
    assert_eq!(back, norm);
    let old: BTreeMap<String, String> = [("train.scale_factor".to_string(), "0.25".to_string())]
        .into_iter()
        .collect();
    let g = LatentNorm::from_metadata(&old, 4).unwrap();
    assert_eq!(g, LatentNorm::global(0.25, 4));
    assert!(g.is_global());
    // Wrong channel count, or a damaged list: errors naming the key or the count.
    let err = LatentNorm::from_metadata(&norm.to_metadata(), 4).unwrap_err();
    assert!(err.to_string().contains("for 4 channels"), "{err}");
    let mut bad = norm.to_metadata();
    bad.insert("train.latent_scale".into(), "1,x,3".into());
    let err = LatentNorm::from_metadata(&bad, 3).unwrap_err();
    assert!(err.to_string().contains("train.latent_scale"), "{err}");
}

#[test]
fn kinds_parse_and_a_typo_names_the_choices() {
    assert_eq!(NormKind::parse("global").unwrap(), NormKind::Global);
    assert_eq!(NormKind::parse("channel").unwrap(), NormKind::PerChannel);
    let err = NormKind::parse("channels").unwrap_err().to_string();
    assert!(
        err.contains("--latent-norm global") && err.contains("channel"),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn denormalise_inverts_normalise(seed in 0u64..1000, n in 1usize..6) {
        let (mean, logvar) = posteriors(20, seed);
        let norm = LatentNorm::per_channel(&mean, &logvar);
        let z = init::normal(&[n, 3, 4, 4], 2.0, &mut rng(seed + 1));
        let mut x = z.clone();
        norm.normalise(&mut x);
        let back = norm.denormalise(x.view());
        let err = (&back - &z).mapv(f32::abs).fold(0.0f32, |a, &b| a.max(b));
        prop_assert!(err < 1e-5, "largest error {}", err);
    }
}

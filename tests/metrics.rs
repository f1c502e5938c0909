//! The evaluation metrics: the Fréchet distance against closed forms derived independently,
//! the Jacobi eigendecomposition, accuracy, `evaluate` on real and degraded images, and the
//! classifier cache.

mod support;

use minisora::data::{DataSource, ImageDataset};
use minisora::metrics::{
    accuracy, classifier_path, evaluate, evaluate_seeded, frechet_distance, frechet_from_stats,
    load_or_train_classifier_with, sqrtm_psd, symmetric_eigen, train_classifier, CacheStatus,
    Classifier, ClassifierTrainOptions, FeatureStats,
};
use minisora::tensor::{init, rng, Rng};
use ndarray::{s, Array1, Array2, Axis, Ix2, Ix4};
use ndarray_rand::rand::seq::SliceRandom;
use proptest::prelude::*;
use std::sync::OnceLock;
use support::TempDir;

/// A standard-normal `(rows, cols)` matrix in f64.
fn normal64(rows: usize, cols: usize, r: &mut Rng) -> Array2<f64> {
    init::normal(&[rows, cols], 1.0, r)
        .into_dimensionality::<Ix2>()
        .unwrap()
        .mapv(|v| v as f64)
}

/// `n` feature vectors of width `f`: correlated (a random linear map of normals) and shifted.
fn features(n: usize, f: usize, shift: f32, r: &mut Rng) -> Array2<f32> {
    let z = normal64(n, f, r);
    let mix = normal64(f, f, r);
    (z.dot(&mix) + shift as f64).mapv(|v| v as f32)
}

/// A random orthogonal matrix by Gram–Schmidt on the columns of a normal matrix (independent
/// of the Jacobi code under test).
fn orthogonal(n: usize, r: &mut Rng) -> Array2<f64> {
    let mut q = normal64(n, n, r);
    for j in 0..n {
        for k in 0..j {
            let d = q.column(j).dot(&q.column(k));
            let qk = q.column(k).to_owned();
            q.column_mut(j).scaled_add(-d, &qk);
        }
        let norm = q.column(j).dot(&q.column(j)).sqrt();
        q.column_mut(j).mapv_inplace(|v| v / norm);
    }
    q
}

fn stats(mean: Array1<f64>, cov: Array2<f64>) -> FeatureStats {
    FeatureStats { mean, cov, n: 2 }
}

fn trace(a: &Array2<f64>) -> f64 {
    a.diag().sum()
}

/// Largest absolute entry.
fn max_abs(a: &Array2<f64>) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn frechet_of_a_set_with_itself_is_zero(n in 2usize..40, f in 1usize..8, seed in any::<u64>()) {
        let a = features(n, f, 0.5, &mut rng(seed));
        let d = frechet_distance(a.view(), a.view());
        // Rounding: a zero eigenvalue of Σ (n ≤ f) comes out as ±ε‖Σ‖, and its square root as
        // √ε·‖Σ‖^{1/2}-sized terms: up to f·1e-8·trΣ; allow 1e-6·trΣ.
        let tr = trace(&FeatureStats::new(a.view()).cov);
        prop_assert!(d <= 1e-6 * tr + 1e-12, "d = {d}, tr Σ = {tr}");
    }

    #[test]
    fn frechet_in_one_dimension_is_the_difference_of_means_and_deviations(
        n1 in 2usize..50, n2 in 2usize..50, shift in -3.0f32..3.0, scale in 0.1f32..3.0,
        seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let a = init::normal(&[n1, 1], 1.0, &mut r).into_dimensionality::<Ix2>().unwrap();
        let b = init::normal(&[n2, 1], scale, &mut r).into_dimensionality::<Ix2>().unwrap() + shift;
        // By hand: sample mean and unbiased deviation of each column.
        let moments = |x: &Array2<f32>| {
            let v: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
            (m, var.sqrt())
        };
        let ((m1, s1), (m2, s2)) = (moments(&a), moments(&b));
        // $d = (\mu_1 - \mu_2)^2 + (\sigma_1 - \sigma_2)^2$
        let want = (m1 - m2).powi(2) + (s1 - s2).powi(2);
        let got = frechet_distance(a.view(), b.view());
        let scale_of = (m1 - m2).powi(2) + s1 * s1 + s2 * s2;
        prop_assert!((got - want).abs() <= 1e-9 * scale_of, "got {got}, want {want}");
    }

    #[test]
    fn frechet_of_commuting_covariances_is_the_distance_of_their_roots(
        f in 1usize..7, seed in any::<u64>(),
    ) {
        // Σᵢ = R Dᵢ Rᵀ with one rotation R: they commute, and
        // $d = \|\mu_1-\mu_2\|^2 + \sum_k (\sqrt{d_{1k}} - \sqrt{d_{2k}})^2$.
        let mut r = rng(seed);
        let rot = orthogonal(f, &mut r);
        let d1 = normal64(1, f, &mut r).row(0).mapv(|v| 0.01 + v * v);
        let d2 = normal64(1, f, &mut r).row(0).mapv(|v| 0.01 + v * v);
        let (mu1, mu2) = (normal64(1, f, &mut r).row(0).to_owned(), normal64(1, f, &mut r).row(0).to_owned());
        let cov = |d: &Array1<f64>| (&rot * d).dot(&rot.t());
        let got = frechet_from_stats(&stats(mu1.clone(), cov(&d1)), &stats(mu2.clone(), cov(&d2)));
        let dmu = (&mu1 - &mu2).mapv(|v| v * v).sum();
        let want = dmu + d1.iter().zip(&d2).map(|(a, b)| (a.sqrt() - b.sqrt()).powi(2)).sum::<f64>();
        let scale_of = dmu + d1.sum() + d2.sum();
        prop_assert!((got - want).abs() <= 1e-9 * scale_of, "got {got}, want {want}");
    }

    #[test]
    fn frechet_of_any_two_by_two_covariances_matches_the_closed_form(seed in any::<u64>()) {
        // For 2×2 PSD M, $(\operatorname{tr} M^{1/2})^2 = \operatorname{tr} M + 2\sqrt{\det M}$
        // (the eigenvalues' roots summed, squared), and M = Σ₁^{1/2}Σ₂Σ₁^{1/2} has
        // tr M = tr(Σ₁Σ₂), det M = det Σ₁ det Σ₂. Σ₁, Σ₂ do not commute in general.
        let mut r = rng(seed);
        let (a, b) = (normal64(2, 2, &mut r), normal64(2, 2, &mut r));
        let eye = Array2::<f64>::eye(2) * 0.01;
        let (s1, s2) = (a.dot(&a.t()) + &eye, b.dot(&b.t()) + &eye);
        let (mu1, mu2) = (normal64(1, 2, &mut r).row(0).to_owned(), normal64(1, 2, &mut r).row(0).to_owned());
        let det = |m: &Array2<f64>| m[[0, 0]] * m[[1, 1]] - m[[0, 1]] * m[[1, 0]];
        let dmu = (&mu1 - &mu2).mapv(|v| v * v).sum();
        let tr_sqrt = (trace(&s1.dot(&s2)) + 2.0 * (det(&s1) * det(&s2)).sqrt()).sqrt();
        let want = dmu + trace(&s1) + trace(&s2) - 2.0 * tr_sqrt;
        let got = frechet_from_stats(&stats(mu1, s1.clone()), &stats(mu2, s2.clone()));
        let scale_of = dmu + trace(&s1) + trace(&s2);
        prop_assert!((got - want).abs() <= 1e-9 * scale_of, "got {got}, want {want}");
    }

    #[test]
    fn frechet_is_symmetric_and_ignores_sample_order(
        n1 in 2usize..40, n2 in 2usize..40, f in 1usize..8, seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let a = features(n1, f, 0.0, &mut r);
        let b = features(n2, f, 1.0, &mut r);
        let d = frechet_distance(a.view(), b.view());
        let sa = FeatureStats::new(a.view());
        let sb = FeatureStats::new(b.view());
        let scale_of = trace(&sa.cov) + trace(&sb.cov) + (&sa.mean - &sb.mean).mapv(|v| v * v).sum();
        // Symmetric in exact arithmetic; computed through Σ_a^{1/2} one way and Σ_b^{1/2} the
        // other, so singular covariances (n ≤ f) differ by √ε-sized rounding: allow 1e-6.
        let back = frechet_distance(b.view(), a.view());
        prop_assert!((d - back).abs() <= 1e-6 * scale_of, "{d} vs {back}");
        let mut order: Vec<usize> = (0..n1).collect();
        order.shuffle(&mut r);
        let shuffled = a.select(Axis(0), &order);
        let d2 = frechet_distance(shuffled.view(), b.view());
        prop_assert!((d - d2).abs() <= 1e-6 * scale_of, "{d} vs {d2} after shuffling");
        prop_assert!(d >= 0.0);
    }

    #[test]
    fn jacobi_reconstructs_symmetric_matrices(n in 1usize..12, seed in any::<u64>()) {
        let mut r = rng(seed);
        let b = normal64(n, n, &mut r);
        let a = &b + &b.t();
        let (lambda, v) = symmetric_eigen(&a);
        // $V \Lambda V^\top = A$ and $V^\top V = I$
        let rebuilt = (&v * &lambda).dot(&v.t());
        prop_assert!(max_abs(&(&rebuilt - &a)) <= 1e-12 * n as f64 * max_abs(&a).max(1.0));
        prop_assert!(max_abs(&(v.t().dot(&v) - Array2::<f64>::eye(n))) <= 1e-12 * n as f64);
        // and the trace is the eigenvalues' sum
        prop_assert!((lambda.sum() - trace(&a)).abs() <= 1e-12 * n as f64 * max_abs(&a).max(1.0));
        // a PSD matrix's square root squares back to it
        let p = b.dot(&b.t());
        let root = sqrtm_psd(&p);
        prop_assert!(max_abs(&(root.dot(&root) - &p)) <= 1e-10 * max_abs(&p).max(1.0));
        prop_assert!(max_abs(&(&root - &root.t())) <= 1e-12 * max_abs(&p).max(1.0));
    }
}

#[test]
fn jacobi_by_hand() {
    // [[2, 1], [1, 2]] has eigenvalues 1 and 3, with eigenvectors (1, ∓1)/√2.
    let a = ndarray::arr2(&[[2.0, 1.0], [1.0, 2.0]]);
    let (l, v) = symmetric_eigen(&a);
    let mut sorted = l.to_vec();
    sorted.sort_by(f64::total_cmp);
    assert!(
        (sorted[0] - 1.0).abs() < 1e-14 && (sorted[1] - 3.0).abs() < 1e-14,
        "{l}"
    );
    assert!((v[[0, 0]].abs() - 0.5f64.sqrt()).abs() < 1e-14, "{v}");
    // The square root of diag(4, 9) is diag(2, 3).
    let root = sqrtm_psd(&ndarray::arr2(&[[4.0, 0.0], [0.0, 9.0]]));
    assert!(max_abs(&(root - ndarray::arr2(&[[2.0, 0.0], [0.0, 3.0]]))) < 1e-14);
}

#[test]
fn frechet_of_gaussian_samples_approaches_the_closed_form() {
    // 20 000 draws each of N(0, 1) and N(1, 2²): d = (0 − 1)² + (1 − 2)² = 2. The estimate's
    // standard error is about 0.03 (mean ±0.014, deviation ±0.01·(2σ)); allow 0.15.
    let mut r = rng(7);
    let a = init::normal(&[20_000, 1], 1.0, &mut r)
        .into_dimensionality::<Ix2>()
        .unwrap();
    let b = init::normal(&[20_000, 1], 2.0, &mut r)
        .into_dimensionality::<Ix2>()
        .unwrap()
        + 1.0;
    let d = frechet_distance(a.view(), b.view());
    assert!((d - 2.0).abs() < 0.15, "{d}");
}

#[test]
fn accuracy_counts_matches() {
    assert_eq!(accuracy(&[0, 1, 2, 2], &[0, 1, 1, 2]), 0.75);
    assert_eq!(accuracy(&[3, 3], &[1, 2]), 0.0);
    assert_eq!(accuracy(&[], &[]), 0.0);
}

/// Sample images for evaluation, drawn with a seed the classifier never saw.
const N: usize = 150;

/// A small classifier trained once for this file's tests (about a second of compute).
fn tiny_classifier() -> &'static Classifier {
    static CLF: OnceLock<Classifier> = OnceLock::new();
    CLF.get_or_init(|| {
        let all = DataSource::Digits.load(1200, 32, 0).unwrap();
        let part = |a: usize, b: usize| {
            ImageDataset::new(
                all.images.slice(s![a..b, .., .., ..]).to_owned(),
                all.labels[a..b].to_vec(),
                all.class_names.clone(),
            )
            .unwrap()
        };
        let opts = ClassifierTrainOptions {
            steps: 60,
            batch: 32,
            verbose: false,
            ..ClassifierTrainOptions::default()
        };
        train_classifier(&part(0, 1000), &part(1000, 1200), &opts, 0).unwrap()
    })
}

#[test]
fn classifier_features_and_predictions_are_consistent() {
    let clf = tiny_classifier();
    // More than one chunk of 256, so the chunked path is exercised.
    let x = DataSource::Digits.load(300, 32, 3).unwrap().images;
    let f = clf.features(x.view());
    assert_eq!(f.dim(), (300, 64));
    let one = clf.features(x.slice(s![299..300, .., .., ..]));
    let gap = (&f.slice(s![299..300, ..]) - &one)
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()));
    assert!(
        gap <= 1e-5,
        "features of one image depend on its batch by {gap}"
    );
    let logits = clf.logits(x.view());
    let pred = clf.predict(x.view());
    for (row, &p) in logits.rows().into_iter().zip(&pred) {
        assert!(row.iter().all(|&v| v <= row[p]));
    }
}

#[test]
fn evaluate_on_real_images_is_near_the_floor_and_degraded_images_are_far() {
    let clf = tiny_classifier();
    let real = DataSource::Digits.load(3 * N, 32, 11).unwrap();
    let samples = real.images.slice(s![..N, .., .., ..]).to_owned();
    let labels = &real.labels[..N];
    let pool = real.images.slice(s![N.., .., .., ..]);
    let good = evaluate(clf, samples.view(), labels, pool).unwrap();
    assert_eq!(good.n, N);
    assert!(good.accuracy > 0.4, "{good}"); // chance: 0.1

    // Real samples are real-vs-real too, so distance and floor are draws of one statistic.
    // One draw is noisy (their ratio ranged over [0.38, 2.1] across 40 seeds at N = 100), so
    // compare the means over five choices of the real sets.
    let runs: Vec<_> = (0..5)
        .map(|seed| evaluate_seeded(clf, samples.view(), labels, pool, seed).unwrap())
        .collect();
    let mean =
        |f: &dyn Fn(&minisora::metrics::EvalReport) -> f64| runs.iter().map(f).sum::<f64>() / 5.0;
    let (dist, floor) = (mean(&|r| r.frechet), mean(&|r| r.frechet_floor));
    assert!(
        (1.0 / 3.0..3.0).contains(&(dist / floor)),
        "mean distance {dist}, mean floor {floor}"
    );
    // Mode collapse: every sample a real "1" (correctly labelled, so only the distance sees it).
    let ones: Vec<usize> = (0..real.len()).filter(|&i| real.labels[i] == 1).collect();
    let one = real.images.select(Axis(0), &ones[..ones.len().min(40)]);
    let one_pool = real.images.slice(s![..3 * one.dim().0, .., .., ..]);
    let collapsed = evaluate(clf, one.view(), &vec![1; one.dim().0], one_pool).unwrap();
    assert!(
        collapsed.frechet > 2.0 * collapsed.frechet_floor,
        "{collapsed}"
    );
    // Heavy noise moves every feature.
    let noise = init::normal(samples.shape(), 0.8, &mut rng(5))
        .into_dimensionality::<Ix4>()
        .unwrap();
    let noisy = (&samples + &noise).mapv(|v| v.clamp(-1.0, 1.0));
    let bad = evaluate(clf, noisy.view(), labels, pool).unwrap();
    assert!(bad.frechet > 3.0 * dist.max(floor), "{bad} vs {good}");
}

#[test]
fn evaluate_with_wrong_labels_has_low_accuracy() {
    let clf = tiny_classifier();
    let real = DataSource::Digits.load(3 * N, 32, 12).unwrap();
    let samples = real.images.slice(s![..N, .., .., ..]);
    let pool = real.images.slice(s![N.., .., .., ..]);
    let right = evaluate_seeded(clf, samples, &real.labels[..N], pool, 4).unwrap();
    let shifted: Vec<usize> = real.labels[..N].iter().map(|&l| (l + 1) % 10).collect();
    let wrong = evaluate_seeded(clf, samples, &shifted, pool, 4).unwrap();
    // A prediction can match at most one of the two labels of an image.
    assert!(
        wrong.accuracy <= 1.0 - right.accuracy + 1e-12,
        "{wrong} vs {right}"
    );
    assert!(
        wrong.accuracy < 0.3 && right.accuracy > 0.4,
        "{wrong} vs {right}"
    );
    // The labels do not enter the distance.
    assert_eq!(wrong.frechet, right.frechet);
    assert_eq!(wrong.frechet_floor, right.frechet_floor);
    assert!(right.class_accuracy.iter().all(|a| a.is_some()));
}

#[test]
fn evaluate_rejects_bad_inputs_and_reports_as_json() {
    let clf = tiny_classifier();
    let real = DataSource::Digits.load(30, 32, 13).unwrap();
    let x = real.images.slice(s![..10, .., .., ..]);
    let labels = &real.labels[..10];
    let few = evaluate(clf, x, labels, real.images.slice(s![10..25, .., .., ..])).unwrap_err();
    assert!(
        few.to_string().contains("15 real images for 10 samples"),
        "{few}"
    );
    let bad_label =
        evaluate(clf, x, &[10; 10], real.images.slice(s![10.., .., .., ..])).unwrap_err();
    assert!(bad_label.to_string().contains("label 10"), "{bad_label}");
    let rgb = ndarray::Array4::<f32>::zeros((10, 3, 32, 32));
    let chans = evaluate(clf, rgb.view(), labels, real.images.view()).unwrap_err();
    assert!(chans.to_string().contains("3 channels"), "{chans}");
    let small = ndarray::Array4::<f32>::zeros((10, 1, 16, 16));
    let size = evaluate(clf, small.view(), labels, real.images.view()).unwrap_err();
    assert!(size.to_string().contains("16×16 pixels"), "{size}");
    let ok = evaluate(clf, x, labels, real.images.slice(s![10.., .., .., ..])).unwrap();
    let json = ok.to_json();
    assert!(
        json.starts_with("{\"accuracy\":") && json.ends_with("]}"),
        "{json}"
    );
    assert!(
        json.contains("\"n\":10") && json.contains("\"frechet_floor\":"),
        "{json}"
    );
    assert!(ok.to_string().contains("real-vs-real floor"), "{ok}");
}

fn tiny_opts() -> ClassifierTrainOptions {
    ClassifierTrainOptions {
        steps: 4,
        batch: 8,
        n_train: 64,
        n_held_out: 16,
        verbose: false,
        ..ClassifierTrainOptions::default()
    }
}

#[test]
fn cached_classifier_is_reused_and_a_mismatched_one_retrained() {
    let dir = TempDir::new("clf-cache");
    let opts = tiny_opts();
    let src = DataSource::Digits;
    let (first, status) = load_or_train_classifier_with(&src, 32, 0, &dir.0, &opts).unwrap();
    assert!(
        matches!(status, CacheStatus::Trained(ref why) if why.contains("no cached")),
        "{status:?}"
    );
    assert!(classifier_path(&dir.0, &src, 32).exists());
    let (again, status) = load_or_train_classifier_with(&src, 32, 0, &dir.0, &opts).unwrap();
    assert_eq!(status, CacheStatus::Loaded);
    assert_eq!(again.conv1.weight.value, first.conv1.weight.value);
    assert_eq!(
        again.head.bias.as_ref().unwrap().value,
        first.head.bias.as_ref().unwrap().value
    );
    assert_eq!(again.held_out_accuracy, first.held_out_accuracy);
    // Another recipe (here one more step, then another seed) is retrained, naming the key.
    let more = ClassifierTrainOptions {
        steps: 5,
        ..opts.clone()
    };
    let (_, status) = load_or_train_classifier_with(&src, 32, 0, &dir.0, &more).unwrap();
    assert!(
        matches!(status, CacheStatus::Trained(ref why) if why.contains("classifier.steps")),
        "{status:?}"
    );
    let (_, status) = load_or_train_classifier_with(&src, 32, 1, &dir.0, &more).unwrap();
    assert!(
        matches!(status, CacheStatus::Trained(ref why) if why.contains("classifier.seed")),
        "{status:?}"
    );
    let (_, status) = load_or_train_classifier_with(&src, 32, 1, &dir.0, &more).unwrap();
    assert_eq!(status, CacheStatus::Loaded);
}

#[test]
fn a_corrupt_cache_file_is_an_error_naming_it() {
    let dir = TempDir::new("clf-corrupt");
    let src = DataSource::Digits;
    let path = classifier_path(&dir.0, &src, 32);
    std::fs::write(&path, b"not a safetensors file").unwrap();
    let err = load_or_train_classifier_with(&src, 32, 0, &dir.0, &tiny_opts()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("delete"), "{msg}");
}

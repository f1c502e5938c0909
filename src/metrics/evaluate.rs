//! Judging a set of class-conditional samples with the classifier: does a sample of a "3"
//! look like a 3 (class accuracy), and do the samples, as a set, look like the real images
//! (the Fréchet distance between the classifier's features of samples and of real images)?
//!
//! A Fréchet distance on its own has no scale: it shrinks with a better model, but also grows
//! when fewer images are compared (a covariance from $N$ samples is noisy, and the noise adds
//! about $\operatorname{tr}\Sigma / N$-sized terms). So the report also gives the **floor**:
//! the distance between two disjoint random sets of real images of the same size $N$. The
//! samples are compared with one of those two real sets, so both figures carry the same
//! finite-sample bias; a perfect generator would score about the floor.

use super::classifier::Classifier;
use super::frechet::{frechet_from_stats, FeatureStats};
use crate::error::{Error, Result};
use crate::tensor::rng;
use ndarray::{ArrayView4, Axis};
use ndarray_rand::rand::seq::SliceRandom;
use std::fmt;

/// What [`evaluate`] measured.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalReport {
    /// Fraction of samples the classifier assigns to the class they were generated for.
    pub accuracy: f64,
    /// Per class `k`, the accuracy over the samples labelled `k` (`None` if there were none).
    pub class_accuracy: Vec<Option<f64>>,
    /// Fréchet distance between the features of the samples and of `n` real images.
    pub frechet: f64,
    /// Fréchet distance between two disjoint sets of `n` real images: what a perfect
    /// generator would score at this sample size.
    pub frechet_floor: f64,
    /// Number of samples `N`.
    pub n: usize,
}

/// The fraction of `predicted[i] == labels[i]` (0 for empty lists).
pub fn accuracy(predicted: &[usize], labels: &[usize]) -> f64 {
    assert_eq!(
        predicted.len(),
        labels.len(),
        "accuracy: {} predictions for {} labels",
        predicted.len(),
        labels.len()
    );
    if labels.is_empty() {
        return 0.0;
    }
    let right = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
    right as f64 / labels.len() as f64
}

// ANCHOR: evaluate
/// Evaluates `samples` `(N, C, H, W)` in `[−1, 1]`, generated for classes `labels`, against
/// `real` images `(M, C, H, W)` with `M ≥ 2N` (held out from the classifier's training, ideally),
/// with the real sets drawn by seed 0. See [`evaluate_seeded`].
pub fn evaluate(
    classifier: &Classifier,
    samples: ArrayView4<f32>,
    labels: &[usize],
    real: ArrayView4<f32>,
) -> Result<EvalReport> {
    evaluate_seeded(classifier, samples, labels, real, 0)
}

/// [`evaluate`] with the seed of the shuffle that picks two disjoint sets `A`, `B` of `N` real
/// images: `frechet` = d(samples, A), `frechet_floor` = d(B, A).
pub fn evaluate_seeded(
    classifier: &Classifier,
    samples: ArrayView4<f32>,
    labels: &[usize],
    real: ArrayView4<f32>,
    seed: u64,
) -> Result<EvalReport> {
    let (n, m) = (samples.dim().0, real.dim().0);
    check_inputs(classifier, samples, labels, real)?;
    let predicted = classifier.predict(samples);
    let k = classifier.config.num_classes;
    let class_accuracy = (0..k)
        .map(|c| {
            let (p, l): (Vec<usize>, Vec<usize>) = predicted
                .iter()
                .zip(labels)
                .filter(|(_, &l)| l == c)
                .map(|(&p, &l)| (p, l))
                .unzip();
            (!l.is_empty()).then(|| accuracy(&p, &l))
        })
        .collect();

    // Two disjoint random sets of N real images.
    let mut order: Vec<usize> = (0..m).collect();
    order.shuffle(&mut rng(seed));
    let set_a = real.select(Axis(0), &order[..n]);
    let set_b = real.select(Axis(0), &order[n..2 * n]);
    let stats_a = FeatureStats::new(classifier.features(set_a.view()).view());
    let stats_b = FeatureStats::new(classifier.features(set_b.view()).view());
    let stats_s = FeatureStats::new(classifier.features(samples).view());
    Ok(EvalReport {
        accuracy: accuracy(&predicted, labels),
        class_accuracy,
        frechet: frechet_from_stats(&stats_s, &stats_a),
        frechet_floor: frechet_from_stats(&stats_b, &stats_a),
        n,
    })
}
// ANCHOR_END: evaluate

/// Shapes, counts and labels a caller could get wrong, as errors.
fn check_inputs(
    classifier: &Classifier,
    samples: ArrayView4<f32>,
    labels: &[usize],
    real: ArrayView4<f32>,
) -> Result<()> {
    let (n, m) = (samples.dim().0, real.dim().0);
    let c = classifier.config.in_channels;
    for (what, x) in [("samples", samples), ("real images", real)] {
        if x.dim().1 != c {
            return Err(Error::new(
                format!(
                    "the {what} have {} channels but the classifier reads {c}",
                    x.dim().1
                ),
                "evaluate with the classifier trained on the same dataset",
            ));
        }
        let size = classifier.config.image_size;
        if x.dim().2 != size || x.dim().3 != size {
            return Err(Error::new(
                format!(
                    "the {what} are {}×{} pixels but the classifier reads {size}×{size}",
                    x.dim().2,
                    x.dim().3
                ),
                "evaluate images of the size the classifier was trained on",
            ));
        }
    }
    if n < 2 {
        return Err(Error::new(
            format!("{n} samples: a Fréchet distance needs a covariance"),
            "evaluate at least 2 samples (hundreds for a meaningful distance)",
        ));
    }
    if labels.len() != n {
        return Err(Error::new(
            format!("{n} samples but {} labels", labels.len()),
            "give the class each sample was generated for",
        ));
    }
    let k = classifier.config.num_classes;
    if let Some(&bad) = labels.iter().find(|&&l| l >= k) {
        return Err(Error::new(
            format!("label {bad} but the classifier knows {k} classes"),
            format!("use labels 0..{k}"),
        ));
    }
    if m < 2 * n {
        return Err(Error::new(
            format!("{m} real images for {n} samples"),
            format!(
                "give at least 2·{n} = {} real images (two disjoint sets of the sample count), \
                 or evaluate fewer samples",
                2 * n
            ),
        ));
    }
    Ok(())
}

/// A number as JSON (`null` if not finite, which JSON cannot write).
fn json_number(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.6}")
    } else {
        "null".into()
    }
}

impl EvalReport {
    /// The report as one JSON object:
    /// `{"accuracy":…,"frechet":…,"frechet_floor":…,"n":…,"class_accuracy":[…]}`.
    pub fn to_json(&self) -> String {
        let classes: Vec<String> = self
            .class_accuracy
            .iter()
            .map(|a| a.map_or("null".into(), json_number))
            .collect();
        format!(
            "{{\"accuracy\":{},\"frechet\":{},\"frechet_floor\":{},\"n\":{},\"class_accuracy\":[{}]}}",
            json_number(self.accuracy),
            json_number(self.frechet),
            json_number(self.frechet_floor),
            self.n,
            classes.join(",")
        )
    }
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "class accuracy {:.1} % over {} samples, Fréchet distance {:.4} (real-vs-real floor {:.4})",
            100.0 * self.accuracy,
            self.n,
            self.frechet,
            self.frechet_floor
        )
    }
}

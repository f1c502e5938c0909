//! What the PyTorch reference tests share: the fixture file, the error measure and the
//! fixtures' loss.

use minisora::io::checkpoint::{load_tensors, Tensors};
use ndarray::{ArrayD, IxDyn};
use std::collections::BTreeMap;
use std::path::Path;

/// A fixture written by a script in `tests/reference/`: named tensors and metadata. Each test
/// adds the reading of its own model's config and weights.
pub struct Fixture {
    pub tensors: Tensors,
    pub meta: BTreeMap<String, String>,
}

impl Fixture {
    /// `tests/fixtures/<name>.safetensors`.
    pub fn load(name: &str) -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(format!("{name}.safetensors"));
        let (tensors, meta) = load_tensors(&path)
            .unwrap_or_else(|e| panic!("cannot read the fixture {}: {e}", path.display()));
        Fixture { tensors, meta }
    }

    pub fn get(&self, name: &str) -> &ArrayD<f32> {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("the fixture has no tensor `{name}`"))
    }

    pub fn meta(&self, key: &str) -> &str {
        self.meta
            .get(key)
            .unwrap_or_else(|| panic!("the fixture's metadata has no `{key}`"))
    }

    pub fn usize(&self, key: &str) -> usize {
        self.meta(key).parse().expect("an integer")
    }

    /// A stored vector of integers (timesteps, labels are stored as f32).
    pub fn indices(&self, name: &str) -> Vec<usize> {
        self.get(name)
            .iter()
            .map(|&v| {
                assert!(v >= 0.0 && v.fract() == 0.0, "`{name}` holds {v}");
                v as usize
            })
            .collect()
    }
}

/// Per-tensor errors as an aligned table for a failure message.
pub fn error_table(errors: &[(String, f64)]) -> String {
    errors
        .iter()
        .map(|(n, e)| format!("  {n:45} {e:.3e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// $\max_i |a_i - b_i| / \max_i |b_i|$: the error of `got` relative to the scale of `want`.
pub fn relative_error(got: &ArrayD<f32>, want: &ArrayD<f32>) -> f64 {
    assert_eq!(got.shape(), want.shape(), "shapes differ");
    let scale = want.iter().fold(0.0f64, |m, &v| m.max(v.abs() as f64));
    let diff = got
        .iter()
        .zip(want.iter())
        .fold(0.0f64, |m, (&a, &b)| m.max((a as f64 - b as f64).abs()));
    assert!(scale > 0.0, "a reference tensor is all zeros");
    diff / scale
}

/// `L = mean((out - target)^2)` in f64, and `dL/dout = 2 (out - target) / N`.
pub fn loss_and_grad(out: &ArrayD<f32>, target: &ArrayD<f32>) -> (f64, ArrayD<f32>) {
    assert_eq!(out.shape(), target.shape(), "output vs target shape");
    let n = out.len() as f64;
    let loss = out
        .iter()
        .zip(target.iter())
        .map(|(&o, &r)| (o as f64 - r as f64).powi(2))
        .sum::<f64>()
        / n;
    let d_out = ArrayD::from_shape_vec(
        IxDyn(out.shape()),
        out.iter()
            .zip(target.iter())
            .map(|(&o, &r)| (2.0 * (o as f64 - r as f64) / n) as f32)
            .collect(),
    )
    .expect("same shape");
    (loss, d_out)
}

//! Helpers shared by the gradient-check tests. Each test file uses some of them.
#![allow(dead_code)]

pub mod tiny;

use minisora::gradcheck::{random_input, GradCheck, Report};
use minisora::tensor::Rng;
use ndarray::{Array4, ArrayD, Ix4};

/// Runs a gradient check with the default tolerances and the case's own checker seed (its
/// `dy`, sampled coordinates and directions), so every proptest case draws fresh ones.
pub fn check_seeded(seed: u64, run: impl Fn(&GradCheck) -> Report) -> Report {
    run(&GradCheck {
        seed,
        ..GradCheck::default()
    })
}

/// A dynamic-rank array seen as `(B, C, H, W)`.
pub fn four(a: &ArrayD<f32>) -> Array4<f32> {
    a.clone().into_dimensionality::<Ix4>().unwrap()
}

/// A standard-normal `(B, C, H, W)` input plus a ramp from −3 to 3 across each GroupNorm slice
/// (`C/G` channels × `H·W`). The checker's step `h = 1e-2` assumes the function is smooth at
/// that scale, but a normalised value curves like $1/\sigma^2$; the ramp keeps a slice of a few
/// nearly equal values from making the central difference itself wrong (see
/// `grad_groupnorm.rs`).
pub fn spread_input(shape: [usize; 4], groups: usize, r: &mut Rng) -> ArrayD<f32> {
    let len = shape[1] / groups * shape[2] * shape[3];
    let mut x = random_input(&shape, r);
    for (k, v) in x.iter_mut().enumerate() {
        *v += 3.0 * (2.0 * (k % len) as f32 / (len.max(2) - 1) as f32 - 1.0);
    }
    x
}

/// A fresh temporary folder, removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "minisora-{tag}-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

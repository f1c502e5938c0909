//! What the benchmark examples share (`#[path]`-included by `bench_train` and `bench_video`):
//! the sgemm ceiling, medians, the process's memory, and timed guided DDIM sampling.

#![allow(dead_code)] // each example uses its own subset

use minisora::diffusion::{Condition, Denoiser, Guided, SampleOptions, SamplerKind};
use minisora::models::dit::dit_diffusion;
use minisora::tensor::{gemm, rng};
use ndarray::{Array2, ArrayD};
use std::hint::black_box;
use std::time::Instant;

/// Seconds of one `n³` sgemm `C = A Aᵀ` (`a`, `c`: `n × n`): the ceiling's measurement.
pub fn sgemm_seconds(a: &Array2<f32>, c: &mut Array2<f32>) -> f64 {
    let start = Instant::now();
    gemm(1.0, a.view(), a.t(), 0.0, c.view_mut());
    black_box(&c);
    start.elapsed().as_secs_f64()
}

/// The median (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A `kB` line of `/proc/self/status` in MiB: `VmHWM:` (peak resident) or `VmRSS:` (now).
pub fn status_mib(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Resets the peak resident set to the current one (Linux ≥ 4.0: "5" into `clear_refs`).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Seconds of `steps`-step DDIM (η = 0) with classifier-free guidance `scale` on the first 4
/// (ε) channels, from the fixed `noise`, for the labels `y`.
pub fn guided_ddim_seconds(
    model: &dyn Denoiser,
    noise: &ArrayD<f32>,
    y: &[usize],
    scale: f32,
    steps: usize,
) -> f64 {
    let diffusion = dit_diffusion(true)
        .respace_spec(&format!("ddim{steps}"))
        .expect("steps divides 1000");
    let guided = Guided {
        model,
        scale,
        channels: 4,
    };
    let opts = SampleOptions {
        kind: SamplerKind::Ddim { eta: 0.0 },
        clip_x0: false,
    };
    let start = Instant::now();
    let x = diffusion.sample(
        &guided,
        noise.shape(),
        Some(noise.clone()),
        &Condition::labels(y),
        opts,
        &mut rng(2),
        &mut |_, _, _| {},
    );
    black_box(x);
    start.elapsed().as_secs_f64()
}

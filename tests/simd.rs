//! Every `avx2_twin!` kernel gives the same bits on its AVX2 path and on its portable path:
//! the fast GELU (with and without its slope) and adaLN's fused LayerNorm + modulate, forward
//! and backward, over shapes that leave remainders after the 8-lane loops and span several
//! parallel chunks. `tensor::simd::force_portable` is one switch for the whole process, so
//! this file holds a single test.

use minisora::dit::modulate::{norm_modulate, norm_modulate_backward};
use minisora::nn::{fast_gelu, fast_gelu_with_slope};
use minisora::tensor::simd::{avx2_enabled, force_portable};
use minisora::tensor::{init, rng, Rng};
use ndarray::{Array2, Ix2};

/// A standard-normal `(rows, cols)` matrix times `scale`, with a few extreme values planted
/// (±100 and ±0 exercise the GELU's clamped `exp`).
fn matrix(rows: usize, cols: usize, scale: f32, r: &mut Rng) -> Array2<f32> {
    let mut a = init::normal(&[rows, cols], scale, r)
        .into_dimensionality::<Ix2>()
        .unwrap();
    for (k, v) in [100.0, -100.0, 0.0, -0.0].into_iter().enumerate() {
        if let Some(x) = a.iter_mut().nth(k * 7) {
            *x = v;
        }
    }
    a
}

/// Every output of every kernel, in order, for one input set.
fn run_kernels(b: usize, t: usize, d: usize, seed: u64) -> Vec<Array2<f32>> {
    let mut r = rng(seed);
    // GELU over (B·T, 4D), the MLP's hidden layer
    let h = matrix(b * t, 4 * d, 3.0, &mut r);
    let g = fast_gelu(&h);
    let (g2, slope) = fast_gelu_with_slope(&h);
    // adaLN: x (B·T, D), shift and scale (B, D), da (B·T, D)
    let x = matrix(b * t, d, 2.0, &mut r);
    let shift = matrix(b, d, 1.0, &mut r);
    let scale = matrix(b, d, 1.0, &mut r);
    let da = matrix(b * t, d, 1.0, &mut r);
    let (a, cache) = norm_modulate(&x, shift.view(), scale.view());
    let mut dx = matrix(b * t, d, 1.0, &mut r); // the residual gradient it adds into
    let (d_shift, d_scale) = norm_modulate_backward(&cache, &da, scale.view(), &mut dx);
    vec![g, g2, slope, a, dx, d_shift, d_scale]
}

#[test]
fn avx2_and_portable_paths_give_the_same_bits() {
    #[cfg(target_arch = "x86_64")]
    let has_avx2 = std::arch::is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    let has_avx2 = false;
    if !has_avx2 {
        eprintln!("no AVX2 on this CPU: both runs take the portable path");
    }
    // (B, T, D): D below, at and above the 8 lanes; B·T·4D above the 2^14-element chunk
    let shapes = [
        (1, 1, 1),
        (2, 3, 5),
        (3, 16, 8),
        (2, 4, 13),
        (4, 16, 64),
        (2, 16, 130),
    ];
    for (i, &(b, t, d)) in shapes.iter().enumerate() {
        force_portable(false);
        assert_eq!(avx2_enabled(), has_avx2, "AVX2 is not taken by default");
        let fast = run_kernels(b, t, d, i as u64);
        force_portable(true);
        assert!(!avx2_enabled(), "force_portable did not switch AVX2 off");
        let portable = run_kernels(b, t, d, i as u64);
        force_portable(false);
        let names = [
            "gelu",
            "gelu (with slope)",
            "slope",
            "a",
            "dx",
            "dshift",
            "dscale",
        ];
        for ((name, f), p) in names.iter().zip(&fast).zip(&portable) {
            let same = f.iter().zip(p).all(|(u, v)| u.to_bits() == v.to_bits());
            assert!(
                same,
                "{name} at (B, T, D) = {:?}: the two paths differ",
                (b, t, d)
            );
        }
    }
}

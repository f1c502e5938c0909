//! Coloured geometric shapes, 32×32 RGB, labelled by shape: circle, square, triangle, ring,
//! cross. Seeded, no download.
//!
//! Each sample picks a shape, a position, a size, a rotation (square, triangle, cross), a
//! saturated colour and a dark background of a different hue. Shapes are drawn from their
//! signed distance functions (negative inside, positive outside, Quílez's 2D SDFs), which gives
//! anti-aliased edges for free: coverage $c = \mathrm{clamp}(\tfrac12 - d, 0, 1)$, `d` in
//! pixels. Sample `i` uses its own generator seeded from `(seed, i)`, so the result does not
//! depend on thread count.

use super::dataset::ImageDataset;
use super::digits::sample_seed;
use crate::tensor::{rng, Rng};
use ndarray::Array4;
use ndarray_rand::rand::Rng as _;
use rayon::prelude::*;

/// Class names, indexed by label.
pub const CLASS_NAMES: [&str; 5] = ["circle", "square", "triangle", "ring", "cross"];

/// `n` shapes of size 32×32, labels `i mod 5` (balanced).
pub fn generate(n: usize, seed: u64) -> ImageDataset {
    generate_sized(n, 32, seed)
}

/// `n` shapes of size `size × size`.
pub fn generate_sized(n: usize, size: usize, seed: u64) -> ImageDataset {
    let plane = size * size;
    let mut pixels = vec![0.0f32; n * 3 * plane]; // (N, 3, H, W) flattened
    pixels
        .par_chunks_mut(3 * plane)
        .enumerate()
        .for_each(|(i, img)| {
            let mut r = rng(sample_seed(seed, i as u64));
            render_shape(i % CLASS_NAMES.len(), size, &mut r, img);
        });
    let images = Array4::from_shape_vec((n, 3, size, size), pixels).expect("sizes agree");
    let labels = (0..n).map(|i| i % CLASS_NAMES.len()).collect();
    let names = CLASS_NAMES.iter().map(|s| s.to_string()).collect();
    ImageDataset::new(images, labels, names).expect("one label per image")
}

/// RGB in `[0, 1]` from hue `h ∈ [0, 1)`, saturation and value (HSV).
fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let f = |n: f32| {
        let k = (n + h * 6.0) % 6.0;
        v - v * s * (k.min(4.0 - k).clamp(0.0, 1.0))
    };
    [f(5.0), f(3.0), f(1.0)]
}

// ANCHOR: sdf
/// Signed distance (in units of the shape's radius `1`) from `(x, y)` to shape `kind`, centred
/// at the origin: negative inside.
fn sdf(kind: usize, x: f32, y: f32) -> f32 {
    match kind {
        // circle: $|p| - 1$
        0 => x.hypot(y) - 1.0,
        // square of half-side 0.8
        1 => {
            let (qx, qy) = (x.abs() - 0.8, y.abs() - 0.8);
            qx.max(0.0).hypot(qy.max(0.0)) + qx.max(qy).min(0.0)
        }
        // equilateral triangle of circumradius 1.1, centred on its centroid, apex up
        2 => {
            let k = 3f32.sqrt();
            let half_side = 1.1 * k / 2.0;
            let mut px = x.abs() - half_side;
            let mut py = -y + half_side / k; // y grows down in images
            if px + k * py > 0.0 {
                (px, py) = ((px - k * py) / 2.0, (-k * px - py) / 2.0);
            }
            px -= px.clamp(-2.0 * half_side, 0.0);
            -px.hypot(py) * py.signum()
        }
        // ring: an annulus of radii 0.55 and 1
        3 => (x.hypot(y) - 0.775).abs() - 0.225,
        // cross: a plus of two bars of half-width 0.28
        4 => {
            let bar = |a: f32, b: f32| {
                let (qx, qy) = (a.abs() - 1.0, b.abs() - 0.28);
                qx.max(0.0).hypot(qy.max(0.0)) + qx.max(qy).min(0.0)
            };
            bar(x, y).min(bar(y, x))
        }
        _ => unreachable!("shape kind < 5"),
    }
}
// ANCHOR_END: sdf

/// Draws shape `kind` into `img` `(3, H, W)` flattened, values in `[−1, 1]`.
pub fn render_shape(kind: usize, size: usize, r: &mut Rng, img: &mut [f32]) {
    let s = size as f32;
    let radius = r.random_range(0.17f32..0.36) * s;
    let margin = radius * 1.15 + 1.0;
    let cx = r.random_range(margin..(s - margin).max(margin + 1e-3));
    let cy = r.random_range(margin..(s - margin).max(margin + 1e-3));
    let angle = match kind {
        1 | 2 | 4 => r.random_range(0.0f32..std::f32::consts::TAU),
        _ => 0.0,
    };
    let hue = r.random_range(0.0f32..1.0);
    let fg = hsv(
        hue,
        r.random_range(0.6f32..1.0),
        r.random_range(0.75f32..1.0),
    );
    let bg_hue = (hue + r.random_range(0.25f32..0.75)) % 1.0;
    let bg = hsv(
        bg_hue,
        r.random_range(0.3f32..0.8),
        r.random_range(0.05f32..0.3),
    );
    let (sin, cos) = angle.sin_cos();
    let plane = size * size;
    for y in 0..size {
        for x in 0..size {
            // pixel centre in the shape's frame, in units of its radius
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            let (u, v) = (
                (cos * dx + sin * dy) / radius,
                (-sin * dx + cos * dy) / radius,
            );
            // $c = \mathrm{clamp}(\frac12 - d, 0, 1)$ with `d` in pixels
            let c = (0.5 - sdf(kind, u, v) * radius).clamp(0.0, 1.0);
            for ch in 0..3 {
                let value = bg[ch] + (fg[ch] - bg[ch]) * c; // in [0, 1]
                img[ch * plane + y * size + x] = 2.0 * value - 1.0;
            }
        }
    }
}

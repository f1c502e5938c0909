//! Procedurally drawn handwritten-looking digits 0–9: 32×32 grey, labelled, seeded, no download.
//!
//! Each digit has one or more *stroke templates* (the ways people write it: a 1 with or without
//! a flag, an open or closed 4, a 7 with or without a bar, …). A stroke is a list of waypoints
//! that the pen passes through; a centripetal Catmull–Rom spline (Yuksel et al., 2011) turns the
//! waypoints into a smooth curve, as a moving hand does. Every sample then gets its own
//!
//! 1. wobble of each waypoint (no two hands put a loop in the same place),
//! 2. smooth elastic distortion (a sum of random low-frequency sine waves, in the spirit of
//!    Simard et al., 2003, "Best practices for CNNs applied to visual document analysis"),
//! 3. affine jitter: rotation, slant (shear), scale in x and y, translation,
//! 4. pen width, varying gently along the stroke like pen pressure,
//!
//! and is drawn with anti-aliased thick strokes: a pixel is covered by how far its centre is
//! inside the stroke's half-width. Sample `i` uses its own generator seeded from `(seed, i)`,
//! so the dataset is identical whatever the number of threads that draw it.

use super::dataset::ImageDataset;
use crate::tensor::{rng, Rng};
use ndarray::Array4;
use ndarray_rand::rand::Rng as _;
use ndarray_rand::rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

/// Class names, indexed by label.
pub const CLASS_NAMES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// A point `(x, y)`; in templates `x ∈ [−0.5, 0.5]`, `y ∈ [−1, 1]`, `y` pointing down.
type P = (f32, f32);
/// One way of writing a digit: its strokes, each a list of waypoints.
type Template = &'static [&'static [P]];

const ZERO: &[Template] = &[&[&[
    (0.05, -1.0),
    (-0.3, -0.85),
    (-0.48, -0.35),
    (-0.45, 0.35),
    (-0.2, 0.9),
    (0.1, 0.98),
    (0.38, 0.7),
    (0.48, 0.0),
    (0.4, -0.6),
    (0.2, -0.93),
    (-0.05, -0.97),
]]];
const ONE: &[Template] = &[
    &[&[(0.02, -1.0), (0.0, 0.0), (-0.02, 1.0)]],
    &[
        &[(-0.3, -0.58), (-0.12, -0.78), (0.05, -1.0)],
        &[(0.05, -1.0), (0.02, 0.0), (0.0, 1.0)],
    ],
    &[
        &[(-0.28, -0.6), (-0.1, -0.8), (0.05, -1.0)],
        &[(0.05, -1.0), (0.02, 0.0), (0.0, 1.0)],
        &[(-0.3, 1.0), (0.0, 0.99), (0.3, 1.0)],
    ],
];
const TWO: &[Template] = &[
    &[
        &[
            (-0.42, -0.6),
            (-0.2, -0.93),
            (0.12, -1.0),
            (0.4, -0.78),
            (0.42, -0.4),
            (0.2, 0.05),
            (-0.15, 0.5),
            (-0.45, 0.95),
        ],
        &[(-0.45, 0.95), (0.0, 0.92), (0.5, 0.95)],
    ],
    &[&[
        (-0.42, -0.6),
        (-0.2, -0.93),
        (0.12, -1.0),
        (0.4, -0.78),
        (0.42, -0.4),
        (0.2, 0.05),
        (-0.15, 0.5),
        (-0.42, 0.88),
        (-0.3, 0.7),
        (-0.05, 0.8),
        (0.2, 0.95),
        (0.5, 0.92),
    ]],
];
const THREE: &[Template] = &[
    &[
        &[
            (-0.42, -0.75),
            (-0.1, -1.0),
            (0.28, -0.95),
            (0.4, -0.6),
            (0.2, -0.2),
            (-0.12, -0.08),
        ],
        &[
            (-0.12, -0.08),
            (0.25, 0.05),
            (0.45, 0.45),
            (0.3, 0.85),
            (-0.05, 1.0),
            (-0.45, 0.78),
        ],
    ],
    // flat top, like a Z that ends in a bowl
    &[
        &[(-0.4, -1.0), (0.0, -0.98), (0.42, -1.0)],
        &[(0.42, -1.0), (0.15, -0.5), (-0.1, -0.12)],
        &[
            (-0.1, -0.12),
            (0.3, -0.02),
            (0.46, 0.42),
            (0.3, 0.85),
            (-0.05, 1.0),
            (-0.45, 0.78),
        ],
    ],
];
const FOUR: &[Template] = &[
    &[
        &[(0.18, -1.0), (-0.15, -0.3), (-0.48, 0.35)],
        &[(-0.48, 0.35), (0.0, 0.33), (0.5, 0.32)],
        &[(0.22, -0.55), (0.22, 0.3), (0.2, 1.0)],
    ],
    &[
        &[(-0.35, -1.0), (-0.42, -0.3), (-0.45, 0.25)],
        &[(-0.45, 0.25), (0.0, 0.28), (0.5, 0.25)],
        &[(0.3, -1.0), (0.28, 0.0), (0.25, 1.0)],
    ],
];
const FIVE: &[Template] = &[&[
    &[(0.45, -1.0), (0.05, -0.98), (-0.32, -1.0)],
    &[(-0.32, -1.0), (-0.36, -0.55), (-0.38, -0.12)],
    &[
        (-0.38, -0.12),
        (0.0, -0.3),
        (0.35, -0.15),
        (0.47, 0.3),
        (0.35, 0.78),
        (0.0, 1.0),
        (-0.45, 0.82),
    ],
]];
const SIX: &[Template] = &[
    &[&[
        (0.35, -1.0),
        (0.0, -0.72),
        (-0.3, -0.3),
        (-0.45, 0.25),
        (-0.35, 0.78),
        (0.0, 1.0),
        (0.35, 0.8),
        (0.42, 0.35),
        (0.15, 0.05),
        (-0.2, 0.1),
        (-0.42, 0.4),
    ]],
    // straighter stem, smaller loop
    &[&[
        (0.22, -1.0),
        (-0.1, -0.4),
        (-0.36, 0.3),
        (-0.3, 0.8),
        (0.05, 1.0),
        (0.36, 0.75),
        (0.33, 0.35),
        (0.0, 0.2),
        (-0.33, 0.45),
    ]],
];
const SEVEN: &[Template] = &[
    &[
        &[(-0.45, -1.0), (0.0, -0.98), (0.5, -1.0)],
        &[(0.5, -1.0), (0.2, -0.35), (0.0, 0.3), (-0.1, 1.0)],
    ],
    &[
        &[(-0.45, -1.0), (0.0, -0.98), (0.5, -1.0)],
        &[(0.5, -1.0), (0.2, -0.35), (0.0, 0.3), (-0.1, 1.0)],
        &[(-0.1, 0.0), (0.15, 0.0), (0.4, 0.0)],
    ],
];
const EIGHT: &[Template] = &[
    &[&[
        (0.35, -0.75),
        (0.05, -1.0),
        (-0.32, -0.82),
        (-0.3, -0.4),
        (0.0, -0.12),
        (0.35, 0.2),
        (0.42, 0.65),
        (0.05, 1.0),
        (-0.38, 0.75),
        (-0.3, 0.25),
        (0.0, -0.12),
        (0.3, -0.42),
        (0.35, -0.75),
        (0.1, -0.98),
    ]],
    &[
        &[
            (0.0, -1.0),
            (-0.33, -0.78),
            (-0.25, -0.3),
            (0.0, -0.12),
            (0.3, -0.35),
            (0.33, -0.8),
            (0.02, -1.0),
        ],
        &[
            (0.0, -0.12),
            (-0.4, 0.15),
            (-0.42, 0.7),
            (0.0, 1.0),
            (0.42, 0.7),
            (0.38, 0.15),
            (-0.02, -0.12),
        ],
    ],
];
const NINE: &[Template] = &[
    &[
        &[
            (0.38, -0.7),
            (0.1, -1.0),
            (-0.3, -0.88),
            (-0.42, -0.45),
            (-0.15, -0.15),
            (0.2, -0.25),
            (0.4, -0.6),
        ],
        &[(0.4, -0.85), (0.38, 0.0), (0.3, 1.0)],
    ],
    &[
        &[
            (0.38, -0.7),
            (0.1, -1.0),
            (-0.3, -0.88),
            (-0.42, -0.45),
            (-0.15, -0.15),
            (0.2, -0.25),
            (0.4, -0.6),
        ],
        &[(0.4, -0.85), (0.42, 0.1), (0.2, 0.85), (-0.25, 0.95)],
    ],
];
/// The templates of each digit, indexed by digit.
const TEMPLATES: [&[Template]; 10] = [ZERO, ONE, TWO, THREE, FOUR, FIVE, SIX, SEVEN, EIGHT, NINE];

/// A seed for sample `index` of a dataset seeded with `seed` (SplitMix64 finaliser), so each
/// sample has its own generator and the result does not depend on thread count or order.
pub fn sample_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed
        .wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `n` digits of size 32×32, labels `i mod 10` (balanced; shuffle with a
/// [`Batcher`](super::Batcher)).
pub fn generate(n: usize, seed: u64) -> ImageDataset {
    generate_sized(n, 32, seed)
}

/// `n` digits of size `size × size` (the glyph scales with the canvas).
pub fn generate_sized(n: usize, size: usize, seed: u64) -> ImageDataset {
    let mut pixels = vec![0.0f32; n * size * size]; // (N, 1, H, W) flattened
    pixels
        .par_chunks_mut(size * size)
        .enumerate()
        .for_each(|(i, img)| {
            let mut r = rng(sample_seed(seed, i as u64));
            let ink = render_digit(i % 10, size, &mut r); // (H·W) coverage in [0, 1]
            for (o, c) in img.iter_mut().zip(ink) {
                // $x = 2c - 1$: background −1, ink +1
                *o = 2.0 * c - 1.0;
            }
        });
    let images = Array4::from_shape_vec((n, 1, size, size), pixels).expect("sizes agree");
    let labels = (0..n).map(|i| i % 10).collect();
    let names = CLASS_NAMES.iter().map(|s| s.to_string()).collect();
    ImageDataset::new(images, labels, names).expect("one label per image")
}

fn normal(r: &mut Rng) -> f32 {
    StandardNormal.sample(r)
}

/// A smooth random displacement field: $d(p) = \sum_k a_k \sin(\omega_k \cdot p + \phi_k)$,
/// separately for x and y.
struct Elastic {
    waves: [([f32; 2], f32, f32, usize); 6], // (ω, φ, amplitude, axis)
}

impl Elastic {
    fn new(amplitude: f32, r: &mut Rng) -> Self {
        let waves = std::array::from_fn(|k| {
            let freq = r.random_range(1.2f32..3.0);
            let dir = r.random_range(0.0f32..std::f32::consts::TAU);
            let phase = r.random_range(0.0f32..std::f32::consts::TAU);
            let amp = amplitude * r.random_range(0.3f32..1.0);
            ([freq * dir.cos(), freq * dir.sin()], phase, amp, k % 2)
        });
        Elastic { waves }
    }

    fn apply(&self, p: P) -> P {
        let mut d = [0.0f32; 2];
        for (w, phase, amp, axis) in &self.waves {
            d[*axis] += amp * (w[0] * p.0 + w[1] * p.1 + phase).sin();
        }
        (p.0 + d[0], p.1 + d[1])
    }
}

// ANCHOR: catmull_rom
/// Points along a centripetal Catmull–Rom spline through `pts`, about `step` apart.
fn spline(pts: &[P], step: f32) -> Vec<P> {
    let n = pts.len();
    let mut out = vec![pts[0]];
    // phantom end points continue the first and last segments straight
    let at = |i: isize| -> P {
        if i < 0 {
            (2.0 * pts[0].0 - pts[1].0, 2.0 * pts[0].1 - pts[1].1)
        } else if i as usize >= n {
            let (a, b) = (pts[n - 1], pts[n - 2]);
            (2.0 * a.0 - b.0, 2.0 * a.1 - b.1)
        } else {
            pts[i as usize]
        }
    };
    // knot spacing $t_{i+1} - t_i = |P_{i+1} - P_i|^{1/2}$ (centripetal: no cusps or loops)
    let knot = |a: P, b: P| ((a.0 - b.0).hypot(a.1 - b.1)).sqrt().max(1e-4);
    let lerp = |a: P, b: P, ta: f32, tb: f32, t: f32| -> P {
        let u = (t - ta) / (tb - ta);
        (a.0 + (b.0 - a.0) * u, a.1 + (b.1 - a.1) * u)
    };
    for i in 0..n as isize - 1 {
        let (p0, p1, p2, p3) = (at(i - 1), at(i), at(i + 1), at(i + 2));
        let t0 = 0.0;
        let t1 = t0 + knot(p0, p1);
        let t2 = t1 + knot(p1, p2);
        let t3 = t2 + knot(p2, p3);
        let len = (p2.0 - p1.0).hypot(p2.1 - p1.1);
        let k = ((len / step).ceil() as usize).max(2);
        for j in 1..=k {
            let t = t1 + (t2 - t1) * j as f32 / k as f32;
            // Barry–Goldman pyramid: three lerps, two lerps, one lerp
            let a1 = lerp(p0, p1, t0, t1, t);
            let a2 = lerp(p1, p2, t1, t2, t);
            let a3 = lerp(p2, p3, t2, t3, t);
            let b1 = lerp(a1, a2, t0, t2, t);
            let b2 = lerp(a2, a3, t1, t3, t);
            out.push(lerp(b1, b2, t1, t2, t));
        }
    }
    out
}
// ANCHOR_END: catmull_rom

/// Draws one digit into a `size × size` coverage map in `[0, 1]` (row-major, 0 = background).
pub fn render_digit(digit: usize, size: usize, r: &mut Rng) -> Vec<f32> {
    let variants = TEMPLATES[digit % 10];
    let template = variants[r.random_range(0..variants.len())];
    let px = size as f32 / 32.0; // one pixel of the 32×32 design, in this canvas

    // per-sample style
    let elastic = Elastic::new(0.07, r);
    let wobble = 0.035;
    let angle = (normal(r) * 0.10).clamp(-0.25, 0.25); // radians
    let slant = r.random_range(-0.15f32..0.45); // x' = x − slant·y: top leans right
    let sy = r.random_range(0.82f32..1.08) * 10.0 * px; // pixels per template unit
    let sx = sy * r.random_range(0.8f32..1.25);
    let cx = size as f32 / 2.0 + normal(r).clamp(-2.0, 2.0) * 0.8 * px;
    let cy = size as f32 / 2.0 + normal(r).clamp(-2.0, 2.0) * 0.8 * px;
    let width = r.random_range(1.5f32..3.3) * px;
    let pressure_wave = r.random_range(18.0f32..40.0) * px;
    let (sin, cos) = angle.sin_cos();

    // ANCHOR: jitter
    let to_pixels = |p: P| -> P {
        let (x, y) = elastic.apply(p);
        let x = x - slant * y; // shear (slant)
        let (x, y) = (x * sx, y * sy); // scale
        (cx + cos * x - sin * y, cy + sin * x + cos * y) // rotate, translate
    };
    // ANCHOR_END: jitter

    let mut ink = vec![0.0f32; size * size];
    for stroke in template.iter() {
        // wobble the inner waypoints; end points stay, so joined strokes stay joined
        let last = stroke.len() - 1;
        let pts: Vec<P> = stroke
            .iter()
            .enumerate()
            .map(|(j, &(x, y))| {
                let (x, y) = if j == 0 || j == last {
                    (x, y)
                } else {
                    (x + wobble * normal(r), y + wobble * normal(r))
                };
                to_pixels((x, y))
            })
            .collect();
        let curve = spline(&pts, 0.6 * px);
        let phase = r.random_range(0.0f32..std::f32::consts::TAU);
        let mut s = 0.0f32; // arc length so far
        let mut prev = (curve[0], width);
        for &q in &curve[1..] {
            s += (q.0 - prev.0 .0).hypot(q.1 - prev.0 .1);
            // pen pressure: $w(s) = w_0 (1 + 0.15 \sin(2\pi s / L + \phi))$
            let w =
                width * (1.0 + 0.15 * (std::f32::consts::TAU * s / pressure_wave + phase).sin());
            capsule(&mut ink, size, prev.0, q, prev.1, w);
            prev = (q, w);
        }
    }
    ink
}

// ANCHOR: capsule
/// Paints the segment `a → b` with widths `wa → wb` into `ink` (max-blend), anti-aliased:
/// coverage $c = \mathrm{clamp}(w/2 - d + \tfrac12, 0, 1)$, `d` the pixel centre's distance to
/// the segment.
fn capsule(ink: &mut [f32], size: usize, a: P, b: P, wa: f32, wb: f32) {
    let r = 0.5 * wa.max(wb) + 1.0;
    let x0 = (a.0.min(b.0) - r).floor().max(0.0) as usize;
    let y0 = (a.1.min(b.1) - r).floor().max(0.0) as usize;
    let x1 = ((a.0.max(b.0) + r).ceil().max(0.0) as usize).min(size);
    let y1 = ((a.1.max(b.1) + r).ceil().max(0.0) as usize).min(size);
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = (dx * dx + dy * dy).max(1e-12);
    for y in y0..y1 {
        for x in x0..x1 {
            let (px, py) = (x as f32 + 0.5 - a.0, y as f32 + 0.5 - a.1);
            let t = ((px * dx + py * dy) / len2).clamp(0.0, 1.0);
            let d = (px - t * dx).hypot(py - t * dy);
            let w = wa + (wb - wa) * t;
            let c = (0.5 * w - d + 0.5).clamp(0.0, 1.0);
            let o = &mut ink[y * size + x];
            *o = o.max(c);
        }
    }
}
// ANCHOR_END: capsule

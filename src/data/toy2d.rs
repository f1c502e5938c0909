//! Built-in 2-D datasets for the first diffusion model a reader trains: swiss roll, two moons,
//! eight Gaussians and a checkerboard. Generated from a seed (no download), scaled so each
//! axis has a spread of about 1, like the N(0, I) noise the diffusion ends in.

use crate::error::{Error, Result};
use crate::tensor::Rng;
use ndarray::Array2;
use ndarray_rand::rand::Rng as _;
use ndarray_rand::rand_distr::{Distribution, StandardNormal};

/// The four toy distributions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Toy2d {
    SwissRoll,
    TwoMoons,
    EightGaussians,
    Checkerboard,
}

impl Toy2d {
    /// All of them, in a fixed order.
    pub const ALL: [Toy2d; 4] = [
        Toy2d::SwissRoll,
        Toy2d::TwoMoons,
        Toy2d::EightGaussians,
        Toy2d::Checkerboard,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Toy2d::SwissRoll => "swiss_roll",
            Toy2d::TwoMoons => "two_moons",
            Toy2d::EightGaussians => "8gaussians",
            Toy2d::Checkerboard => "checkerboard",
        }
    }

    /// Parses a name as printed by [`Toy2d::name`].
    pub fn parse(name: &str) -> Result<Self> {
        Toy2d::ALL
            .into_iter()
            .find(|d| d.name() == name)
            .ok_or_else(|| {
                Error::new(
                    format!("unknown 2-D dataset {name:?}"),
                    "use swiss_roll, two_moons, 8gaussians or checkerboard",
                )
            })
    }

    // ANCHOR: sample
    /// `n` points `(n, 2)`.
    pub fn sample(self, n: usize, rng: &mut Rng) -> Array2<f32> {
        let mut out = Array2::zeros((n, 2));
        let gauss = |rng: &mut Rng| -> f64 { StandardNormal.sample(rng) };
        for i in 0..n {
            let (x, y) = match self {
                Toy2d::SwissRoll => {
                    // scikit-learn's make_swiss_roll in the plane: t = 1.5π(1 + 2u),
                    // (t cos t, t sin t), noise 0.5, scaled by 1/5.
                    let t = 1.5 * std::f64::consts::PI * (1.0 + 2.0 * rng.random::<f64>());
                    let (nx, ny) = (0.5 * gauss(rng), 0.5 * gauss(rng));
                    ((t * t.cos() + nx) / 5.0, (t * t.sin() + ny) / 5.0)
                }
                Toy2d::TwoMoons => {
                    // Two interleaved half circles (make_moons), noise 0.05, centred, ×1.
                    let a = std::f64::consts::PI * rng.random::<f64>();
                    let (px, py) = if rng.random::<bool>() {
                        (a.cos(), a.sin())
                    } else {
                        (1.0 - a.cos(), 0.5 - a.sin())
                    };
                    (
                        (px - 0.5 + 0.05 * gauss(rng)) * 1.2,
                        (py - 0.25 + 0.05 * gauss(rng)) * 1.2,
                    )
                }
                Toy2d::EightGaussians => {
                    // Eight modes on a circle of radius 1.5, std 0.1.
                    let k = rng.random_range(0..8) as f64;
                    let a = k * std::f64::consts::FRAC_PI_4;
                    (
                        1.5 * a.cos() + 0.1 * gauss(rng),
                        1.5 * a.sin() + 0.1 * gauss(rng),
                    )
                }
                Toy2d::Checkerboard => {
                    // The 8 dark squares of a 4×4 board on [−2, 2]², scaled by 0.75.
                    let x1 = rng.random::<f64>() * 4.0 - 2.0;
                    let col = rng.random_range(0..2) as f64 * 2.0;
                    let x2 = rng.random::<f64>() - col + (x1.floor() % 2.0 + 2.0) % 2.0;
                    (x1 * 0.75, x2 * 0.75)
                }
            };
            out[[i, 0]] = x as f32;
            out[[i, 1]] = y as f32;
        }
        out
    }
    // ANCHOR_END: sample
}

// ANCHOR: sliced_wasserstein
/// Sliced Wasserstein-1 distance between two equal-size point sets `(n, d)`: the mean over
/// `projections` random unit directions θ of $W_1$ between the 1-D projections, which for
/// sorted samples is $\frac1n\sum_i |a_{(i)} - b_{(i)}|$.
pub fn sliced_wasserstein(
    a: &Array2<f32>,
    b: &Array2<f32>,
    projections: usize,
    rng: &mut Rng,
) -> f64 {
    assert_eq!(a.dim(), b.dim(), "sliced Wasserstein needs equal-size sets");
    let (n, d) = a.dim();
    let mut total = 0.0;
    for _ in 0..projections {
        let mut theta: Vec<f64> = (0..d).map(|_| StandardNormal.sample(rng)).collect();
        let norm = theta.iter().map(|v| v * v).sum::<f64>().sqrt();
        theta.iter_mut().for_each(|v| *v /= norm);
        let project = |m: &Array2<f32>| {
            let mut p: Vec<f64> = m
                .rows()
                .into_iter()
                .map(|r| r.iter().zip(&theta).map(|(&x, &w)| x as f64 * w).sum())
                .collect();
            p.sort_by(f64::total_cmp);
            p
        };
        let (pa, pb) = (project(a), project(b));
        total += pa.iter().zip(&pb).map(|(x, y)| (x - y).abs()).sum::<f64>() / n as f64;
    }
    total / projections as f64
}
// ANCHOR_END: sliced_wasserstein

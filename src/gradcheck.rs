//! Finite-difference gradient checking: does a backward pass agree with its forward pass?
//!
//! For a layer `y = f(x; θ)` we pick a random `dy` and look at the scalar
//! $L(x, θ) = \sum_i y_i \, dy_i$, whose gradient is exactly what `backward(dy)` returns (for `x`)
//! and accumulates (for `θ`). Each coordinate is nudged both ways and the central difference
//! $\frac{L(u + h) - L(u - h)}{2h}$ is compared with the analytic value by the relative error
//! $|a - n| / \max(|a| + |n|, \text{floor})$.
//!
//! The layers compute in `f32`, so the check is designed for it: the loss is summed in `f64`,
//! the step is large enough (`h = 1e-2` by default) that rounding noise divided by `2h` stays
//! far below the tolerance, and the floor is relative to the largest gradient of the tensor,
//! so coordinates whose gradient is tiny (and so mostly rounding noise) compare absolutely;
//! it is never below what the loss's own rounding, `ε·Σ|y·dy|`, could explain at the tolerance.
//! One coordinate at a time the tolerance is `1e-2`. Besides that, for every tensor a
//! **directional derivative** along one random direction through *all* of its coordinates at
//! once is compared with a tighter tolerance, `1e-3`: it sums many coordinates' signal, so it
//! sees a wrong gradient anywhere in the tensor — in coordinates the sampled check skipped, or
//! a 1 % error in every one.

use crate::param::{Param, Parameters};
use crate::tensor::{init, rng, Rng};
use ndarray::ArrayD;
use ndarray_rand::rand::seq::index::sample;

/// A single coordinate's difference quotient sees the rounding of every operation between it
/// and the outputs, measured at up to a dozen units in the last place; its floor allows 16.
const COORD_NOISE_ULPS: f64 = 16.0;

/// The directional check combines four losses with weights summing to 18/12 in magnitude,
/// each off by a few units in the last place; its floor allows 4.
const DIR_NOISE_ULPS: f64 = 4.0;

/// How to check.
#[derive(Clone, Debug)]
pub struct GradCheck {
    /// Finite-difference step `h`.
    pub step: f32,
    /// Denominator floor of the relative error, as a fraction of the tensor's largest gradient.
    pub floor: f64,
    /// Largest relative error allowed for one coordinate.
    pub tol: f64,
    /// Largest relative error allowed for the directional derivative.
    pub dir_tol: f64,
    /// At most this many coordinates per tensor are checked one by one (sampled at random).
    pub max_coords: usize,
    /// Seed for `dy`, the sampled coordinates and the random direction.
    pub seed: u64,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck {
            step: 1e-2,
            floor: 1e-2,
            tol: 1e-2,
            dir_tol: 1e-3,
            max_coords: 64,
            seed: 0,
        }
    }
}

/// What a check found.
#[derive(Clone, Debug)]
pub struct Report {
    /// Largest relative error over all checked coordinates.
    pub max_rel_err: f64,
    /// Which coordinate that was, with its analytic and numeric values.
    pub worst: String,
    /// Largest relative error of a directional derivative (one per tensor, through all of its
    /// coordinates at once).
    pub directional_rel_err: f64,
    /// The tensor with that largest directional error.
    pub worst_direction: String,
    /// Coordinates checked one by one.
    pub checked: usize,
    /// Both errors within their tolerances.
    pub passed: bool,
}

impl Report {
    /// The larger of the two errors.
    pub fn error(&self) -> f64 {
        self.max_rel_err.max(self.directional_rel_err)
    }
}

// ANCHOR: check
/// Checks `backward` against `forward` for every input and every parameter of `model`.
///
/// * `forward(model, inputs)` returns `y` (use the layer's `forward_infer`).
/// * `backward(model, inputs, dy)` runs the caching forward, then backward, and returns one
///   `dx` per input (parameter gradients accumulate inside `model`).
pub fn check<M: Parameters>(
    model: &mut M,
    inputs: &[ArrayD<f32>],
    forward: impl Fn(&M, &[ArrayD<f32>]) -> ArrayD<f32>,
    backward: impl Fn(&mut M, &[ArrayD<f32>], &ArrayD<f32>) -> Vec<ArrayD<f32>>,
    cfg: &GradCheck,
) -> Report {
    let mut r = rng(cfg.seed);
    let y = forward(model, inputs);
    let dy = init::normal(y.shape(), 1.0, &mut r);
    // The loss's own rounding noise: each f32 output is off by up to about one unit in the last
    // place, so L is uncertain by about ε·Σ|y·dy|. A difference below that is not a signal.
    let noise = f32::EPSILON as f64
        * y.iter()
            .zip(dy.iter())
            .map(|(&a, &b)| (a as f64 * b as f64).abs())
            .sum::<f64>();
    // $L = \sum_i y_i\, dy_i$, summed in f64.
    let loss = |m: &M, xs: &[ArrayD<f32>]| -> f64 {
        let y = forward(m, xs);
        assert_eq!(y.shape(), dy.shape(), "forward changed its output shape");
        y.iter()
            .zip(dy.iter())
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum()
    };

    // Analytic gradients.
    model.zero_grad();
    let dxs = backward(model, inputs, &dy);
    assert_eq!(
        dxs.len(),
        inputs.len(),
        "backward must return one gradient per input"
    );
    let mut grads: Vec<(String, ArrayD<f32>)> = Vec::new();
    for (i, dx) in dxs.into_iter().enumerate() {
        assert_eq!(
            dx.shape(),
            inputs[i].shape(),
            "dx for input {i} has the wrong shape"
        );
        grads.push((format!("input{i}"), dx));
    }
    model.visit("", &mut |name, p| {
        grads.push((name.to_string(), p.grad.clone()))
    });
    let n_inputs = inputs.len();

    let h = cfg.step;
    let mut report = Report {
        max_rel_err: 0.0,
        worst: String::new(),
        directional_rel_err: 0.0,
        worst_direction: String::new(),
        checked: 0,
        passed: false,
    };
    let mut xs: Vec<ArrayD<f32>> = inputs.to_vec();
    for (t, (name, analytic)) in grads.iter().enumerate() {
        let len = analytic.len();
        let floor = (cfg.floor * analytic.iter().fold(0.0f32, |m, g| m.max(g.abs())) as f64)
            .max(COORD_NOISE_ULPS * noise / (2.0 * h as f64) / cfg.tol);
        let coords: Vec<usize> = if len <= cfg.max_coords {
            (0..len).collect()
        } else {
            sample(&mut r, len, cfg.max_coords).into_vec()
        };
        for &j in &coords {
            let numeric = if t < n_inputs {
                let orig = xs[t].as_slice().expect("inputs are contiguous")[j];
                xs[t].as_slice_mut().unwrap()[j] = orig + h;
                let plus = loss(model, &xs);
                xs[t].as_slice_mut().unwrap()[j] = orig - h;
                let minus = loss(model, &xs);
                xs[t].as_slice_mut().unwrap()[j] = orig;
                (plus - minus) / (2.0 * h as f64)
            } else {
                let k = t - n_inputs;
                let orig = param_coord(model, k, j, None);
                param_coord(model, k, j, Some(orig + h));
                let plus = loss(model, &xs);
                param_coord(model, k, j, Some(orig - h));
                let minus = loss(model, &xs);
                param_coord(model, k, j, Some(orig));
                (plus - minus) / (2.0 * h as f64)
            };
            let a = analytic.as_slice().expect("gradients are contiguous")[j] as f64;
            let err = rel_err(a, numeric, floor);
            report.checked += 1;
            if err > report.max_rel_err || report.worst.is_empty() {
                report.max_rel_err = err;
                report.worst = format!("{name}[{j}]: analytic {a:.6e}, numeric {numeric:.6e}");
            }
        }
    }

    // Directional derivative of each tensor along a random direction v through all of its
    // coordinates at once, from five points with step d = h·v:
    // $\frac{-L(u+2d) + 8L(u+d) - 8L(u-d) + L(u-2d)}{12} \approx g \cdot d$, error $O(h^5)$.
    // So the full step h can be used and the signal stands well above the rounding noise. The
    // analytic side combines the displacements actually stored in f32 (`u + k·d − u`, not
    // `k·d`), so rounding the shifted coordinates adds no error; the floor, a tenth of ‖g‖·h
    // (the typical size of g·d is 0.8‖g‖h), keeps a direction nearly orthogonal to g from
    // turning rounding noise into a failure.
    const STENCIL: [(f32, f64); 4] = [(2.0, -1.0), (1.0, 8.0), (-1.0, -8.0), (-2.0, 1.0)];
    for (t, (name, g)) in grads.iter().enumerate() {
        let v = init::normal(g.shape(), 1.0, &mut r);
        let orig: ArrayD<f32> = if t < n_inputs {
            inputs[t].clone()
        } else {
            param_tensor(model, t - n_inputs, None)
        };
        let mut eval = |model: &mut M, value: &ArrayD<f32>| {
            if t < n_inputs {
                xs[t] = value.clone();
            } else {
                param_tensor(model, t - n_inputs, Some(value));
            }
            loss(model, &xs)
        };
        let (mut numeric, mut analytic) = (0.0f64, 0.0f64);
        for (k, w) in STENCIL {
            let shifted = &orig + &(&v * (k * h));
            numeric += w * eval(model, &shifted) / 12.0;
            // The same combination of the points as stored in f32, dotted with g.
            analytic += w / 12.0
                * g.iter()
                    .zip(shifted.iter().zip(orig.iter()))
                    .map(|(&a, (&p, &o))| a as f64 * (p as f64 - o as f64))
                    .sum::<f64>();
        }
        eval(model, &orig);
        let norm = g.iter().map(|&a| (a as f64).powi(2)).sum::<f64>().sqrt() * h as f64;
        let err = rel_err(
            analytic,
            numeric,
            (0.1 * norm).max(DIR_NOISE_ULPS * noise / cfg.dir_tol),
        );
        if err > report.directional_rel_err {
            report.directional_rel_err = err;
            report.worst_direction = name.clone();
        }
    }
    report.passed = report.max_rel_err <= cfg.tol && report.directional_rel_err <= cfg.dir_tol;
    report
}
// ANCHOR_END: check

/// `|a − n| / max(|a| + |n|, floor)`, and 0 when both are exactly 0.
pub fn rel_err(a: f64, n: f64, floor: f64) -> f64 {
    let denom = (a.abs() + n.abs()).max(floor);
    if denom == 0.0 {
        0.0
    } else {
        (a - n).abs() / denom
    }
}

/// Reads the whole `k`-th parameter in visiting order, first setting it if `set`.
fn param_tensor<M: Parameters>(model: &mut M, k: usize, set: Option<&ArrayD<f32>>) -> ArrayD<f32> {
    let (mut i, mut out) = (0, None);
    model.visit("", &mut |_, p: &mut Param| {
        if i == k {
            if let Some(v) = set {
                p.value.assign(v);
            }
            out = Some(p.value.clone());
        }
        i += 1;
    });
    out.expect("parameter index in range")
}

/// Reads coordinate `j` of the `k`-th parameter in visiting order, first setting it if `set`.
fn param_coord<M: Parameters>(model: &mut M, k: usize, j: usize, set: Option<f32>) -> f32 {
    let (mut i, mut out) = (0, 0.0);
    model.visit("", &mut |_, p: &mut Param| {
        if i == k {
            let v = &mut p.value.as_slice_mut().expect("parameters are contiguous")[j];
            if let Some(s) = set {
                *v = s;
            }
            out = *v;
        }
        i += 1;
    });
    out
}

/// A standard-normal input of the given shape, for tests.
pub fn random_input(shape: &[usize], rng: &mut Rng) -> ArrayD<f32> {
    init::normal(shape, 1.0, rng)
}

//! Weight initialisers, all drawn from a caller's seeded generator.
//!
//! The names and bounds follow PyTorch, since the reference models (DiT, improved-diffusion,
//! latent-diffusion) are written against its defaults.

use super::Rng;
use ndarray::{ArrayD, IxDyn};
use ndarray_rand::rand_distr::{Normal, Uniform};
use ndarray_rand::RandomExt;

/// `U(−bound, bound)` of the given shape.
pub fn uniform(shape: &[usize], bound: f32, rng: &mut Rng) -> ArrayD<f32> {
    if bound == 0.0 {
        return ArrayD::zeros(IxDyn(shape));
    }
    let dist = Uniform::new_inclusive(-bound, bound).expect("bound is finite");
    ArrayD::random_using(IxDyn(shape), dist, rng)
}

/// `N(0, std²)` of the given shape.
pub fn normal(shape: &[usize], std: f32, rng: &mut Rng) -> ArrayD<f32> {
    let dist = Normal::new(0.0, std).expect("std is finite and non-negative");
    ArrayD::random_using(IxDyn(shape), dist, rng)
}

/// PyTorch's default for `nn.Linear` and `nn.Conv2d` weights and biases
/// (`kaiming_uniform_(a=√5)`): `U(−1/√fan_in, 1/√fan_in)`.
pub fn torch_default(shape: &[usize], fan_in: usize, rng: &mut Rng) -> ArrayD<f32> {
    uniform(shape, 1.0 / (fan_in.max(1) as f32).sqrt(), rng)
}

/// Xavier/Glorot uniform: `U(−b, b)` with `b = √(6 / (fan_in + fan_out))` (DiT's Linear init).
pub fn xavier_uniform(
    shape: &[usize],
    fan_in: usize,
    fan_out: usize,
    rng: &mut Rng,
) -> ArrayD<f32> {
    uniform(shape, (6.0 / (fan_in + fan_out) as f32).sqrt(), rng)
}

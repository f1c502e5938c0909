//! The feed-forward half of a DiT block: timm's `Mlp` with DiT's tanh-approximate GELU,
//! `fc1 (D → 4D) → GELU → fc2 (4D → D)` on every token.
//!
//! The GELU is fused here in `f32` rather than taken from [`crate::nn::Gelu`], which
//! evaluates in `f64` for exactness: the MLP's hidden layer is the largest activation of the
//! whole model (`B·T × 4D`), and in training this is the one elementwise pass that shows up in
//! the profile. Written through the logistic function, since
//! $\tfrac12(1 + \tanh u) = \sigma(2u)$, it needs one `exp` per element:
//!
//! $$\mathrm{gelu}(x) = x\,\sigma(2u), \qquad u = \sqrt{2/\pi}\,(x + 0.044715\,x^3)$$
//!
//! which is PyTorch's `GELU(approximate="tanh")` up to float rounding.

use crate::nn::{Linear, LinearCache};
use crate::param::{join, Param, Parameters};
use crate::tensor::{init, Rng};
use ndarray::Array2;
use rayon::prelude::*;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

const SQRT_2_OVER_PI: f32 = 0.797_884_6; // $\sqrt{2/\pi}$
const GELU_C: f32 = 0.044_715;

// ANCHOR: gelu_tanh
/// $\mathrm{gelu}(x) = x\,\sigma(2u)$ and its slope
/// $\sigma(2u) + 2x\,\sigma(2u)\,(1 - \sigma(2u))\,\sqrt{2/\pi}\,(1 + 3 \cdot 0.044715\,x^2)$.
#[inline]
fn gelu_and_slope(x: f32) -> (f32, f32) {
    let u = SQRT_2_OVER_PI * (x + GELU_C * x * x * x);
    let s = 1.0 / (1.0 + (-2.0 * u).exp()); // $\sigma(2u)$
    let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * x * x);
    (x * s, s + 2.0 * x * s * (1.0 - s) * du)
}
// ANCHOR_END: gelu_tanh

/// timm's `Mlp`: `fc1`, tanh-GELU, `fc2`.
#[derive(Clone, Debug)]
pub struct Mlp {
    pub fc1: Linear, // D → H
    pub fc2: Linear, // H → D
}

/// What [`Mlp::backward`] needs.
pub struct MlpCache {
    fc1: LinearCache,
    h: Array2<f32>, // (N, H): fc1's output, the GELU's input
    fc2: LinearCache,
}

impl Mlp {
    /// DiT's initialisation: Xavier-uniform weights, zero biases.
    pub fn new(dim: usize, hidden: usize, rng: &mut Rng) -> Self {
        Mlp {
            fc1: xavier_linear(dim, hidden, rng),
            fc2: xavier_linear(hidden, dim, rng),
        }
    }

    // ANCHOR: mlp
    /// $y = W_2\,\mathrm{gelu}(W_1 x + b_1) + b_2$   x: (N, D) → y: (N, D)
    pub fn forward(&self, x: &Array2<f32>) -> (Array2<f32>, MlpCache) {
        let (h, fc1) = self.fc1.forward(x); // (N, H)
        let g = gelu(&h);
        let (y, fc2) = self.fc2.forward(&g);
        (y, MlpCache { fc1, h, fc2 })
    }

    /// The same output without keeping anything (sampling).
    pub fn forward_infer(&self, x: &Array2<f32>) -> Array2<f32> {
        self.fc2.forward_infer(&gelu(&self.fc1.forward_infer(x)))
    }

    /// Given `dy` (N, D), adds into the four parameters' gradients and returns `dx` (N, D).
    pub fn backward(&mut self, cache: &MlpCache, dy: &Array2<f32>) -> Array2<f32> {
        let mut dh = self.fc2.backward(&cache.fc2, dy); // (N, H)
                                                        // $dh = dg \cdot \mathrm{gelu}'(h)$, in place
        dh.as_slice_mut()
            .expect("fresh gradient is row-major")
            .par_chunks_mut(CHUNK)
            .zip(cache.h.as_slice().expect("cached").par_chunks(CHUNK))
            .for_each(|(d, h)| {
                for (d, &x) in d.iter_mut().zip(h) {
                    *d *= gelu_and_slope(x).1;
                }
            });
        self.fc1.backward(&cache.fc1, &dh)
    }
    // ANCHOR_END: mlp
}

/// $\mathrm{gelu}(h)$ elementwise, in parallel chunks.
fn gelu(h: &Array2<f32>) -> Array2<f32> {
    let mut g = Array2::zeros(h.raw_dim());
    g.as_slice_mut()
        .expect("fresh")
        .par_chunks_mut(CHUNK)
        .zip(
            h.as_slice()
                .expect("Linear output is row-major")
                .par_chunks(CHUNK),
        )
        .for_each(|(g, h)| {
            for (g, &x) in g.iter_mut().zip(h) {
                *g = gelu_and_slope(x).0;
            }
        });
    g
}

/// A Linear with Xavier-uniform weight and zero bias (DiT's `_basic_init`).
pub fn xavier_linear(d_in: usize, d_out: usize, rng: &mut Rng) -> Linear {
    Linear {
        weight: Param::new(init::xavier_uniform(&[d_out, d_in], d_in, d_out, rng)),
        bias: Some(Param::zeros(&[d_out])),
    }
}

/// A Linear of zeros (adaLN-Zero's modulation and the final projection).
pub fn zero_linear(d_in: usize, d_out: usize) -> Linear {
    Linear {
        weight: Param::zeros(&[d_out, d_in]),
        bias: Some(Param::zeros(&[d_out])),
    }
}

impl Parameters for Mlp {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.fc1.visit(&join(prefix, "fc1"), f);
        self.fc2.visit(&join(prefix, "fc2"), f);
    }
}

//! The feed-forward half of a DiT block: timm's `Mlp` with DiT's tanh-approximate GELU,
//! `fc1 (D → 4D) → GELU → fc2 (4D → D)` on every token.
//!
//! [`Mlp::forward`] takes its GELU from [`crate::nn::fast_gelu`], in `f32` with one `exp` per
//! element and the slope kept for backward; [`Mlp::forward_clear`] is the same MLP from the
//! clear layers — `Linear`, [`Gelu`] (tanh, in `f64`), `Linear` — and a test checks the two
//! agree on the output and every gradient.

use crate::nn::{fast_gelu, fast_gelu_with_slope, xavier_linear};
use crate::nn::{ActivationCache, Gelu, GeluKind, Linear, LinearCache};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use ndarray::{Array2, Ix2};

/// timm's `Mlp`: `fc1`, tanh-GELU, `fc2`.
#[derive(Clone, Debug)]
pub struct Mlp {
    pub fc1: Linear, // D → H
    pub fc2: Linear, // H → D
}

/// What [`Mlp::backward`] needs.
pub struct MlpCache {
    fc1: LinearCache,
    slope: Array2<f32>, // (N, H): the GELU's slope at fc1's output, taken in the forward pass
    fc2: LinearCache,
}

/// What [`Mlp::backward_clear`] needs.
pub struct MlpClearCache {
    fc1: LinearCache,
    gelu: ActivationCache<Ix2>, // fc1's output (N, H)
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
        let (g, slope) = fast_gelu_with_slope(&h);
        let (y, fc2) = self.fc2.forward_owned(g);
        (y, MlpCache { fc1, slope, fc2 })
    }

    /// The same output without keeping anything (sampling).
    pub fn forward_infer(&self, x: &Array2<f32>) -> Array2<f32> {
        self.fc2
            .forward_infer(&fast_gelu(&self.fc1.forward_infer(x)))
    }

    /// Given `dy` (N, D), adds into the four parameters' gradients and returns `dx` (N, D).
    pub fn backward(&mut self, cache: &MlpCache, dy: &Array2<f32>) -> Array2<f32> {
        let mut dh = self.fc2.backward(&cache.fc2, dy); // (N, H)

        // $dh = dg \cdot \mathrm{gelu}'(h)$
        dh *= &cache.slope;
        self.fc1.backward(&cache.fc1, &dh)
    }
    // ANCHOR_END: mlp

    // ANCHOR: mlp_clear
    /// The same MLP from the clear layers: `fc1`, the tanh [`Gelu`], `fc2`.
    /// x: (N, D) → y: (N, D)
    pub fn forward_clear(&self, x: &Array2<f32>) -> (Array2<f32>, MlpClearCache) {
        let (h, fc1) = self.fc1.forward(x); // (N, H)
        let (g, gelu) = Gelu::new(GeluKind::Tanh).forward(&h);
        let (y, fc2) = self.fc2.forward_owned(g);
        (y, MlpClearCache { fc1, gelu, fc2 })
    }

    /// Backward of [`forward_clear`](Self::forward_clear): each layer's backward in reverse.
    pub fn backward_clear(&mut self, cache: &MlpClearCache, dy: &Array2<f32>) -> Array2<f32> {
        let dg = self.fc2.backward(&cache.fc2, dy); // (N, H)
        let dh = Gelu::new(GeluKind::Tanh).backward(&cache.gelu, &dg);
        self.fc1.backward(&cache.fc1, &dh)
    }
    // ANCHOR_END: mlp_clear
}

impl Parameters for Mlp {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.fc1.visit(&join(prefix, "fc1"), f);
        self.fc2.visit(&join(prefix, "fc2"), f);
    }
}

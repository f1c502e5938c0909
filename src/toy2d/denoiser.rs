//! The toy denoiser of the DDPM chapter's 2-D points: a small MLP on `[x, emb(t)]`.
//!
//! `x` is a batch of points `(B, D)`; `t` is embedded with the same sinusoids DiT uses
//! ([`timestep_embedding`]) and concatenated to `x`; then `depth` blocks of Linear + SiLU and a
//! final Linear produce the prediction `(B, D)` (or `(B, 2D)` with a learned variance).

use crate::diffusion::{Condition, Denoiser};
use crate::nn::timestep_embedding;
use crate::nn::{ActivationCache, Linear, LinearCache, Silu};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use ndarray::{concatenate, Array2, ArrayD, Axis, Ix2, IxDyn};

/// `out = W_L silu(… silu(W_1 [x, e(t)] + b_1) …) + b_L`
#[derive(Clone, Debug)]
pub struct MlpDenoiser {
    /// `depth` hidden layers and the output layer.
    pub layers: Vec<Linear>,
    /// Width of the timestep embedding.
    pub emb_dim: usize,
    act: Silu,
}

/// What backward needs: each layer's input and each activation's input.
pub struct MlpCache {
    linear: Vec<LinearCache>,
    act: Vec<ActivationCache<Ix2>>,
}

impl MlpDenoiser {
    /// `d_in` data dimensions, `d_out` outputs, `hidden` width, `depth` hidden layers.
    pub fn new(
        d_in: usize,
        d_out: usize,
        hidden: usize,
        depth: usize,
        emb_dim: usize,
        rng: &mut Rng,
    ) -> Self {
        let mut layers = Vec::with_capacity(depth + 1);
        let mut width = d_in + emb_dim;
        for _ in 0..depth {
            layers.push(Linear::new(width, hidden, true, rng));
            width = hidden;
        }
        layers.push(Linear::new(width, d_out, true, rng));
        MlpDenoiser {
            layers,
            emb_dim,
            act: Silu,
        }
    }

    /// The network's input `[x, e(t)]`   (B, D + E)
    fn input(&self, x: &ArrayD<f32>, t: &[usize]) -> Array2<f32> {
        let x2 = x
            .view()
            .into_dimensionality::<Ix2>()
            .expect("the MLP takes points (B, D)");
        let tf: Vec<f32> = t.iter().map(|&s| s as f32).collect();
        let e = timestep_embedding(&tf, self.emb_dim, 10000.0);
        let h = concatenate(Axis(1), &[x2, e.view()]).expect("one timestep per point");
        h.as_standard_layout().into_owned()
    }

    // ANCHOR: forward
    /// The prediction and what backward needs.
    pub fn forward(&self, x: &ArrayD<f32>, t: &[usize]) -> (ArrayD<f32>, MlpCache) {
        let mut h = self.input(x, t);
        let mut cache = MlpCache {
            linear: Vec::new(),
            act: Vec::new(),
        };
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            let (z, c) = layer.forward(&h);
            cache.linear.push(c);
            h = if i < last {
                let (a, ac) = self.act.forward(&z);
                cache.act.push(ac);
                a
            } else {
                z
            };
        }
        (h.into_dyn(), cache)
    }

    /// Adds the parameter gradients for `dy = ∂L/∂out`.
    pub fn backward(&mut self, cache: &MlpCache, dy: &ArrayD<f32>) {
        let mut g: Array2<f32> = dy
            .view()
            .into_dimensionality::<Ix2>()
            .expect("dy is (B, out)")
            .to_owned();
        for i in (0..self.layers.len()).rev() {
            if i < self.layers.len() - 1 {
                g = self.act.backward(&cache.act[i], &g);
            }
            g = self.layers[i].backward(&cache.linear[i], &g);
        }
    }
    // ANCHOR_END: forward
}

impl Denoiser for MlpDenoiser {
    fn predict(&self, x_t: &ArrayD<f32>, t: &[usize], _y: &Condition) -> ArrayD<f32> {
        let mut h = self.input(x_t, t);
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward_infer(&h);
            if i < last {
                h = self.act.forward_infer(&h);
            }
        }
        h.into_dimensionality::<IxDyn>().expect("2-D")
    }
}

impl Parameters for MlpDenoiser {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.layers.visit(&join(prefix, "layers"), f);
    }
}

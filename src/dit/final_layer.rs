//! DiT's last layer (`FinalLayer` in facebookresearch/DiT `models.py`): an adaLN-modulated
//! LayerNorm, then a Linear from `D` to the `p·p·C_out` values of each token's patch.
//!
//! $$[\beta, \gamma] = W_m\,\mathrm{silu}(c) + b_m, \qquad
//!   y = \big(\mathrm{LN}(x)(1 + \gamma) + \beta\big) W^\top + b$$
//!
//! Both Linears start at zero, so a fresh DiT outputs zeros. Parameter names: `linear`,
//! `adaLN_modulation.1` (chunks in the order shift, scale). The outputs are read in
//! `(u, v, c)` order by [`unpatchify`](super::patch::unpatchify).

use super::mlp::zero_linear;
use super::modulate::{norm_modulate, norm_modulate_backward, NormCache};
use crate::nn::{ActivationCache, Linear, LinearCache, Silu};
use crate::param::{join, Param, Parameters};
use ndarray::{s, Array2, Ix2};

/// The final adaLN + Linear.
#[derive(Clone, Debug)]
pub struct FinalLayer {
    pub linear: Linear, // D → p·p·C_out, zero-initialised
    pub ada_ln: Linear, // adaLN_modulation.1: D → 2D, zero-initialised
}

/// What [`FinalLayer::backward`] needs.
pub struct FinalLayerCache {
    act: ActivationCache<Ix2>,
    ada_ln: LinearCache,
    m: Array2<f32>, // (B, 2D): β, γ
    norm: NormCache,
    linear: LinearCache,
}

impl FinalLayer {
    /// Both Linears at zero, as the reference.
    pub fn new(dim: usize, patch: usize, out_channels: usize) -> Self {
        FinalLayer {
            linear: zero_linear(dim, patch * patch * out_channels),
            ada_ln: zero_linear(dim, 2 * dim),
        }
    }

    // ANCHOR: final_layer
    /// x: (B·T, D), c: (B, D) → (B·T, p·p·C_out).
    pub fn forward(&self, x: &Array2<f32>, c: &Array2<f32>) -> (Array2<f32>, FinalLayerCache) {
        let d = x.ncols();
        // $[\beta, \gamma] = W_m\,\mathrm{silu}(c) + b_m$   (B, 2D)
        let (sc, act) = Silu.forward(c);
        let (m, ada_ln) = self.ada_ln.forward(&sc);
        // $y = (\mathrm{LN}(x)(1 + \gamma) + \beta) W^\top + b$
        let (a, norm) = norm_modulate(x, m.slice(s![.., ..d]), m.slice(s![.., d..]));
        let (y, linear) = self.linear.forward(&a);
        let cache = FinalLayerCache {
            act,
            ada_ln,
            m,
            norm,
            linear,
        };
        (y, cache)
    }
    // ANCHOR_END: final_layer

    /// The same output without keeping anything (sampling).
    pub fn forward_infer(&self, x: &Array2<f32>, c: &Array2<f32>) -> Array2<f32> {
        let d = x.ncols();
        let m = self.ada_ln.forward_infer(&Silu.forward_infer(c));
        let (a, _) = norm_modulate(x, m.slice(s![.., ..d]), m.slice(s![.., d..]));
        self.linear.forward_infer(&a)
    }

    // ANCHOR: final_layer_backward
    /// Given `dy` (B·T, p·p·C_out), adds into the parameters' gradients and into `dc` (B, D),
    /// and returns `dx` (B·T, D).
    pub fn backward(
        &mut self,
        cache: &FinalLayerCache,
        dy: &Array2<f32>,
        dc: &mut Array2<f32>,
    ) -> Array2<f32> {
        let da = self.linear.backward(&cache.linear, dy); // (B·T, D)
        let d = da.ncols();
        let mut dx = Array2::zeros(da.raw_dim());
        let (d_beta, d_gamma) =
            norm_modulate_backward(&cache.norm, &da, cache.m.slice(s![.., d..]), &mut dx);
        let mut dm = Array2::zeros(cache.m.raw_dim()); // (B, 2D)
        dm.slice_mut(s![.., ..d]).assign(&d_beta);
        dm.slice_mut(s![.., d..]).assign(&d_gamma);
        let dsc = self.ada_ln.backward(&cache.ada_ln, &dm);
        *dc += &Silu.backward(&cache.act, &dsc);
        dx
    }
    // ANCHOR_END: final_layer_backward
}

impl Parameters for FinalLayer {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.linear.visit(&join(prefix, "linear"), f);
        self.ada_ln.visit(&join(prefix, "adaLN_modulation.1"), f);
    }
}

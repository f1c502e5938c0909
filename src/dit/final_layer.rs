//! DiT's last layer (`FinalLayer` in facebookresearch/DiT `models.py`): an adaLN-modulated
//! LayerNorm, then a Linear from `D` to the `p·p·C_out` values of each token's patch.
//!
//! $$[\beta, \gamma] = W_m\,\mathrm{silu}(c) + b_m, \qquad
//!   y = \big(\mathrm{LN}(x)(1 + \gamma) + \beta\big) W^\top + b$$
//!
//! Both Linears start at zero, so a fresh DiT outputs zeros. Parameter names: `linear`,
//! `adaLN_modulation.1` (chunks in the order shift, scale). The outputs are read in
//! `(u, v, c)` order by [`unpatchify`](super::patch::unpatchify).
//!
//! The other conditioning mechanisms of the paper's Figure 5 end differently: adaLN
//! ([`FinalLayer::adaln`]) Xavier-initialises the modulation; in-context and cross-attention,
//! whose blocks never see `c` as a modulation, end in [`PlainFinalLayer`], a LayerNorm with
//! its own affine (`norm_final`) and the same zero-initialised Linear:
//!
//! $$y = \big(\mathrm{LN}(x) \odot w + b_\text{n}\big) W^\top + b$$

use super::block::{gather_rows, scatter_rows};
use super::modulate::{norm_modulate, norm_modulate_backward, NormCache, EPS};
use crate::nn::{xavier_linear, zero_linear};
use crate::nn::{ActivationCache, LayerNorm, LayerNormCache, Linear, LinearCache, Silu};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
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
    m: Array2<f32>, // (B, 2D): β, γ (or (N, 2D) read per token)
    rows: Option<Box<(Vec<usize>, usize)>>, // per token: each token's row of c, and c's rows
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

    /// adaLN's final layer: the modulation Xavier-initialised, the Linear still at zero.
    pub fn adaln(dim: usize, patch: usize, out_channels: usize, rng: &mut Rng) -> Self {
        FinalLayer {
            linear: zero_linear(dim, patch * patch * out_channels),
            ada_ln: xavier_linear(dim, 2 * dim, rng),
        }
    }

    // ANCHOR: final_layer
    /// x: (B·T, D), c: (B, D) → (B·T, p·p·C_out).
    pub fn forward(&self, x: &Array2<f32>, c: &Array2<f32>) -> (Array2<f32>, FinalLayerCache) {
        self.forward_rows(x, c, None)
    }

    /// [`forward`](Self::forward) with token `n` modulated by row `rows[n]` of `c` (R, D).
    pub fn forward_rows(
        &self,
        x: &Array2<f32>,
        c: &Array2<f32>,
        rows: Option<&[usize]>,
    ) -> (Array2<f32>, FinalLayerCache) {
        let d = x.ncols();
        // $[\beta, \gamma] = W_m\,\mathrm{silu}(c) + b_m$   (B, 2D)
        let (sc, act) = Silu.forward(c);
        let (m, ada_ln) = self.ada_ln.forward(&sc);
        let m = match rows {
            Some(r) => gather_rows(&m, r), // (N, 2D): per token
            None => m,
        };
        // $y = (\mathrm{LN}(x)(1 + \gamma) + \beta) W^\top + b$
        let (a, norm) = norm_modulate(x, m.slice(s![.., ..d]), m.slice(s![.., d..]));
        let (y, linear) = self.linear.forward(&a);
        let cache = FinalLayerCache {
            act,
            ada_ln,
            m,
            rows: rows.map(|r| Box::new((r.to_vec(), c.nrows()))),
            norm,
            linear,
        };
        (y, cache)
    }
    // ANCHOR_END: final_layer

    /// The same output without keeping anything (sampling).
    pub fn forward_infer(&self, x: &Array2<f32>, c: &Array2<f32>) -> Array2<f32> {
        self.forward_infer_rows(x, c, None)
    }

    /// [`forward_rows`](Self::forward_rows) without keeping anything.
    pub fn forward_infer_rows(
        &self,
        x: &Array2<f32>,
        c: &Array2<f32>,
        rows: Option<&[usize]>,
    ) -> Array2<f32> {
        let d = x.ncols();
        let m = self.ada_ln.forward_infer(&Silu.forward_infer(c));
        let m = match rows {
            Some(r) => gather_rows(&m, r),
            None => m,
        };
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
        if let Some(rows) = &cache.rows {
            dm = scatter_rows(&dm, &rows.0, rows.1); // (N, 2D) → (R, 2D)
        }
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

/// The final layer of in-context and cross-attention DiTs: LayerNorm (with affine), Linear.
#[derive(Clone, Debug)]
pub struct PlainFinalLayer {
    pub norm_final: LayerNorm, // affine, eps 1e-6
    pub linear: Linear,        // D → p·p·C_out, zero-initialised
}

/// What [`PlainFinalLayer::backward`] needs.
pub struct PlainFinalLayerCache {
    norm: LayerNormCache,
    linear: LinearCache,
}

impl PlainFinalLayer {
    /// The norm at weight 1, bias 0; the Linear at zero, as adaLN-Zero's.
    pub fn new(dim: usize, patch: usize, out_channels: usize) -> Self {
        PlainFinalLayer {
            norm_final: LayerNorm::new(dim, EPS, true),
            linear: zero_linear(dim, patch * patch * out_channels),
        }
    }

    // ANCHOR: plain_final_layer
    /// $y = \mathrm{LN}(x) W^\top + b$ (LN with its own affine)   x: (B·T, D) → (B·T, p·p·C_out).
    pub fn forward(&self, x: &Array2<f32>) -> (Array2<f32>, PlainFinalLayerCache) {
        let (a, norm) = self.norm_final.forward(x);
        let (y, linear) = self.linear.forward(&a);
        (y, PlainFinalLayerCache { norm, linear })
    }
    // ANCHOR_END: plain_final_layer

    /// The same output without keeping anything (sampling).
    pub fn forward_infer(&self, x: &Array2<f32>) -> Array2<f32> {
        self.linear.forward_infer(&self.norm_final.forward_infer(x))
    }

    /// Given `dy` (B·T, p·p·C_out), adds into the four parameters' gradients and returns
    /// `dx` (B·T, D).
    pub fn backward(&mut self, cache: &PlainFinalLayerCache, dy: &Array2<f32>) -> Array2<f32> {
        let da = self.linear.backward(&cache.linear, dy);
        self.norm_final.backward(&cache.norm, &da)
    }
}

impl Parameters for PlainFinalLayer {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.norm_final.visit(&join(prefix, "norm_final"), f);
        self.linear.visit(&join(prefix, "linear"), f);
    }
}

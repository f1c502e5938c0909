//! The U-Net's residual block with timestep injection: ADM's `ResBlock`
//! (openai/improved-diffusion `unet.py`; scale-shift from Nichol & Dhariwal 2021,
//! <https://arxiv.org/abs/2102.09672>), without dropout.
//!
//! $$h = \mathrm{conv}(\mathrm{silu}(\mathrm{GN}(x))),\qquad [s, b] = W_e\,\mathrm{silu}(e) + c_e$$
//! $$y = \mathrm{skip}(x) + \mathrm{conv}_0\big(\mathrm{silu}(\mathrm{GN}(h)\,(1 + s) + b)\big)$$
//!
//! with the scale `s` and shift `b` one value per (sample, channel), broadcast over the
//! positions. Without scale-shift (`scale_shift = false`) the embedding projects to `C_out`
//! values and is simply added: $y = \mathrm{skip}(x) + \mathrm{conv}_0(\mathrm{silu}(\mathrm{GN}(h + W_e\,\mathrm{silu}(e) + c_e)))$.
//! The last conv starts at zero (ADM's `zero_module`), so a fresh block is the identity on
//! its skip path. The skip is the identity, or a 1×1 conv when the channel count changes.
//!
//! Parameter names are ADM's: `in_layers.0` (GroupNorm), `in_layers.2` (conv),
//! `emb_layers.1` (Linear), `out_layers.0` (GroupNorm), `out_layers.3` (zero-init conv; ADM's
//! dropout is `out_layers.2`), `skip_connection`.

use crate::nn::{
    ActivationCache, Conv2d, Conv2dCache, GroupNorm, GroupNormCache, Linear, LinearCache, Silu,
};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use ndarray::{s, Array2, Array4, ArrayView2, Axis, Ix2, Ix4};
use rayon::prelude::*;

/// GroupNorm as ADM's `normalization`: PyTorch's default `eps = 1e-5`.
pub fn normalization(groups: usize, channels: usize) -> GroupNorm {
    GroupNorm::new(groups, channels, 1e-5)
}

/// A conv whose weight and bias start at zero (ADM's `zero_module`).
pub fn zero_conv(c_in: usize, c_out: usize, kernel: usize, rng: &mut Rng) -> Conv2d {
    let mut conv = Conv2d::new(c_in, c_out, kernel, 1, kernel / 2, true, rng);
    conv.weight.value.fill(0.0);
    if let Some(b) = &mut conv.bias {
        b.value.fill(0.0);
    }
    conv
}

/// ADM's `ResBlock`: two 3×3 convs with the timestep embedding injected between them.
#[derive(Clone, Debug)]
pub struct ResBlock {
    pub in_norm: GroupNorm,              // in_layers.0: GroupNorm(groups, C_in)
    pub in_conv: Conv2d,                 // in_layers.2: 3×3, C_in → C_out
    pub emb_linear: Linear,              // emb_layers.1: E → 2·C_out (scale-shift) or C_out
    pub out_norm: GroupNorm,             // out_layers.0: GroupNorm(groups, C_out)
    pub out_conv: Conv2d,                // out_layers.3: 3×3, C_out → C_out, zero-init
    pub skip_connection: Option<Conv2d>, // 1×1, C_in → C_out, only when C_in ≠ C_out
    pub scale_shift: bool,
}

/// What backward needs from forward.
pub struct ResBlockCache {
    in_norm: GroupNormCache,
    in_act: ActivationCache<Ix4>,
    in_conv: Conv2dCache,
    emb_act: ActivationCache<Ix2>,
    emb_linear: LinearCache,
    emb_out: Array2<f32>, // (B, 2·C_out) or (B, C_out)
    out_norm: GroupNormCache,
    /// $\mathrm{GN}(h)$ before the scale-shift (empty when additive)   (B, C_out, H, W)
    normed: Array4<f32>,
    out_act: ActivationCache<Ix4>,
    out_conv: Conv2dCache,
    skip: Option<Conv2dCache>,
}

/// Positions per parallel task of the elementwise loops.
const GRAIN: usize = 1 << 12;

/// $g = h\,(1 + s_{bc}) + b_{bc}$ over every (sample, channel) plane of `h` (B, C, H, W),
/// with `scale` and `shift` (B, C); no shift when `None`.
fn modulate(
    h: &Array4<f32>,
    scale: ArrayView2<f32>,
    shift: Option<ArrayView2<f32>>,
) -> Array4<f32> {
    let (_, c, hh, ww) = h.dim();
    let plane = (hh * ww).max(1);
    let mut g = h.as_standard_layout().into_owned();
    g.as_slice_mut()
        .expect("standard layout")
        .par_chunks_mut(plane)
        .enumerate()
        .with_min_len(GRAIN / plane + 1)
        .for_each(|(i, p)| {
            let (b, ch) = (i / c, i % c);
            let s = 1.0 + scale[[b, ch]];
            let t = shift.map_or(0.0, |t| t[[b, ch]]);
            p.iter_mut().for_each(|v| *v = *v * s + t);
        });
    g
}

/// $h_{bc\cdot} \mathrel{+}= e_{bc}$: one value per (sample, channel) plane.
fn add_per_channel(h: &mut Array4<f32>, e: &Array2<f32>) {
    let plane = (h.shape()[2] * h.shape()[3]).max(1);
    let es = e.as_slice().expect("standard layout");
    h.as_slice_mut()
        .expect("standard layout")
        .par_chunks_mut(plane)
        .zip(es.par_iter())
        .with_min_len(GRAIN / plane + 1)
        .for_each(|(p, &v)| p.iter_mut().for_each(|x| *x += v));
}

/// $\sum_{\text{positions}} a\,b$ per (sample, channel) plane (or $\sum a$ when `b` is `None`),
/// written into `out` (B·C values).
fn plane_sums(a: &Array4<f32>, b: Option<&Array4<f32>>, out: &mut [f32]) {
    let plane = (a.shape()[2] * a.shape()[3]).max(1);
    let a = a.as_slice().expect("standard layout");
    match b {
        Some(b) => {
            let b = b.as_slice().expect("standard layout");
            out.par_iter_mut()
                .zip(a.par_chunks(plane).zip(b.par_chunks(plane)))
                .with_min_len(GRAIN / plane + 1)
                .for_each(|(o, (x, y))| *o = x.iter().zip(y).map(|(p, q)| p * q).sum());
        }
        None => out
            .par_iter_mut()
            .zip(a.par_chunks(plane))
            .with_min_len(GRAIN / plane + 1)
            .for_each(|(o, x)| *o = x.iter().sum()),
    }
}

impl ResBlock {
    /// A block from `c_in` to `c_out` channels reading an `emb_dim` embedding; both norms
    /// use `groups` groups. The last conv starts at zero.
    pub fn new(
        c_in: usize,
        emb_dim: usize,
        c_out: usize,
        groups: usize,
        scale_shift: bool,
        rng: &mut Rng,
    ) -> Self {
        let emb_out = if scale_shift { 2 * c_out } else { c_out };
        ResBlock {
            in_norm: normalization(groups, c_in),
            in_conv: Conv2d::new(c_in, c_out, 3, 1, 1, true, rng),
            emb_linear: Linear::new(emb_dim, emb_out, true, rng),
            out_norm: normalization(groups, c_out),
            out_conv: zero_conv(c_out, c_out, 3, rng),
            skip_connection: (c_in != c_out).then(|| Conv2d::new(c_in, c_out, 1, 1, 0, true, rng)),
            scale_shift,
        }
    }

    /// Input channels.
    pub fn c_in(&self) -> usize {
        self.in_conv.c_in()
    }

    /// Output channels.
    pub fn c_out(&self) -> usize {
        self.out_conv.c_out()
    }

    // ANCHOR: unet_resblock_forward
    /// `y = skip(x) + out_layers(in_layers(x), emb_layers(e))`
    /// x: (B, C_in, H, W), e: (B, E) → y: (B, C_out, H, W), keeping every layer's cache.
    pub fn forward(&self, x: &Array4<f32>, emb: &Array2<f32>) -> (Array4<f32>, ResBlockCache) {
        // in_layers: $h = \mathrm{conv}(\mathrm{silu}(\mathrm{GN}(x)))$   (B, C_out, H, W)
        let (h, in_norm) = self.in_norm.forward(x);
        let (h, in_act) = Silu.forward(&h);
        let (h, in_conv) = self.in_conv.forward(&h);
        // emb_layers: $[s, b] = W_e\,\mathrm{silu}(e) + c_e$   (B, 2·C_out) or (B, C_out)
        let (e, emb_act) = Silu.forward(emb);
        let (emb_out, emb_linear) = self.emb_linear.forward(&e);
        let (g, out_norm, normed) = if self.scale_shift {
            // $g = \mathrm{GN}(h)\,(1 + s) + b$
            let (normed, out_norm) = self.out_norm.forward(&h);
            let (scale, shift) = emb_out.view().split_at(Axis(1), self.c_out());
            (modulate(&normed, scale, Some(shift)), out_norm, normed)
        } else {
            // $g = \mathrm{GN}(h + e)$
            let mut h = h;
            add_per_channel(&mut h, &emb_out);
            let (g, out_norm) = self.out_norm.forward(&h);
            (g, out_norm, Array4::zeros((0, 0, 0, 0)))
        };
        // $y = \mathrm{skip}(x) + \mathrm{conv}_0(\mathrm{silu}(g))$
        let (a, out_act) = Silu.forward(&g);
        let (mut y, out_conv) = self.out_conv.forward(&a);
        let skip = match &self.skip_connection {
            Some(conv) => {
                let (s, cache) = conv.forward(x);
                y += &s;
                Some(cache)
            }
            None => {
                y += x;
                None
            }
        };
        let cache = ResBlockCache {
            in_norm,
            in_act,
            in_conv,
            emb_act,
            emb_linear,
            emb_out,
            out_norm,
            normed,
            out_act,
            out_conv,
            skip,
        };
        (y, cache)
    }
    // ANCHOR_END: unet_resblock_forward

    /// The same output without keeping anything (sampling).
    pub fn forward_infer(&self, x: &Array4<f32>, emb: &Array2<f32>) -> Array4<f32> {
        let h = Silu.forward_infer(&self.in_norm.forward_infer(x));
        let mut h = self.in_conv.forward_infer(&h);
        let emb_out = self.emb_linear.forward_infer(&Silu.forward_infer(emb));
        let g = if self.scale_shift {
            let (scale, shift) = emb_out.view().split_at(Axis(1), self.c_out());
            modulate(&self.out_norm.forward_infer(&h), scale, Some(shift))
        } else {
            add_per_channel(&mut h, &emb_out);
            self.out_norm.forward_infer(&h)
        };
        let mut y = self.out_conv.forward_infer(&Silu.forward_infer(&g));
        match &self.skip_connection {
            Some(conv) => y += &conv.forward_infer(x),
            None => y += x,
        }
        y
    }

    // ANCHOR: unet_resblock_backward
    /// Given `dy = ∂L/∂y` (B, C_out, H, W), adds into every parameter's gradient, adds
    /// `∂L/∂e` into `d_emb` (B, E) — every block reads the same embedding, so their
    /// gradients sum — and returns `dx = ∂L/∂x` (B, C_in, H, W).
    pub fn backward(
        &mut self,
        cache: &ResBlockCache,
        dy: &Array4<f32>,
        d_emb: &mut Array2<f32>,
    ) -> Array4<f32> {
        let (b, c) = (dy.shape()[0], self.c_out());
        let da = self.out_conv.backward(&cache.out_conv, dy);
        let dg = Silu.backward(&cache.out_act, &da); // ∂L/∂g   (B, C_out, H, W)
        let mut d_emb_out = Array2::<f32>::zeros(cache.emb_out.raw_dim());
        let dh = if self.scale_shift {
            // $\partial L/\partial s_{bc} = \sum_{xy} dg\,\mathrm{GN}(h)$,
            // $\partial L/\partial b_{bc} = \sum_{xy} dg$   each (B, C_out)
            let (mut ds, mut db) = (Array2::zeros((b, c)), Array2::zeros((b, c)));
            plane_sums(&dg, Some(&cache.normed), ds.as_slice_mut().unwrap());
            plane_sums(&dg, None, db.as_slice_mut().unwrap());
            d_emb_out.slice_mut(s![.., ..c]).assign(&ds);
            d_emb_out.slice_mut(s![.., c..]).assign(&db);
            // $\partial L/\partial\mathrm{GN}(h) = dg\,(1 + s)$
            let (scale, _) = cache.emb_out.view().split_at(Axis(1), c);
            let dn = modulate(&dg, scale, None);
            self.out_norm.backward(&cache.out_norm, &dn)
        } else {
            // $g = \mathrm{GN}(h + e)$: $\partial L/\partial e_{bc} = \sum_{xy} \partial L/\partial(h + e)$
            let dsum = self.out_norm.backward(&cache.out_norm, &dg);
            plane_sums(&dsum, None, d_emb_out.as_slice_mut().unwrap());
            dsum
        };
        // emb_layers backward, added into the shared embedding's gradient
        let de = self.emb_linear.backward(&cache.emb_linear, &d_emb_out);
        *d_emb += &Silu.backward(&cache.emb_act, &de);
        // in_layers backward
        let dh = self.in_conv.backward(&cache.in_conv, &dh);
        let dh = Silu.backward(&cache.in_act, &dh);
        let mut dx = self.in_norm.backward(&cache.in_norm, &dh);
        // $dx \mathrel{+}= dy$ (identity skip) or $W_{\text{skip}}^\top dy$ (1×1 conv)
        match (&mut self.skip_connection, &cache.skip) {
            (Some(conv), Some(c)) => dx += &conv.backward(c, dy),
            (None, None) => dx += dy,
            _ => unreachable!("ResBlock: the cache does not match this block's skip"),
        }
        dx
    }
    // ANCHOR_END: unet_resblock_backward
}

impl Parameters for ResBlock {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.in_norm.visit(&join(prefix, "in_layers.0"), f);
        self.in_conv.visit(&join(prefix, "in_layers.2"), f);
        self.emb_linear.visit(&join(prefix, "emb_layers.1"), f);
        self.out_norm.visit(&join(prefix, "out_layers.0"), f);
        self.out_conv.visit(&join(prefix, "out_layers.3"), f);
        self.skip_connection
            .visit(&join(prefix, "skip_connection"), f);
    }
}

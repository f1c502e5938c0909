//! ADM's `TimestepEmbedSequential`: a U-Net block is a short list of layers — a conv, a
//! ResBlock, an attention block, a down- or upsampling — applied in order, where the ResBlocks
//! also read the timestep-and-label embedding. [`Block`] runs such a list forward and
//! backward; [`Layer`] is one entry, named by its index as in ADM's state dict
//! (`input_blocks.1.0`, `input_blocks.1.1`, …).

use super::attention::{AttentionBlock, AttentionBlockCache};
use super::resblock::{ResBlock, ResBlockCache};
use crate::nn::{Conv2d, Conv2dCache};
use crate::nn::{Downsample, DownsampleCache, Upsample, UpsampleCache};
use crate::param::{join, Param, Parameters};
use ndarray::{Array2, Array4};

/// One layer of a block (ADM's `TimestepEmbedSequential` children). A model has a few dozen,
/// so the variants' different sizes do not matter and are not boxed.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Layer {
    /// The input conv (`input_blocks.0.0`).
    Conv(Conv2d),
    Res(ResBlock),
    Attn(AttentionBlock),
    /// 3×3 stride-2 conv, named `op` as ADM.
    Down(Downsample),
    /// Nearest ×2 then 3×3 conv, named `conv`.
    Up(Upsample),
}

/// What a [`Layer`]'s backward needs.
#[allow(clippy::large_enum_variant)]
pub enum LayerCache {
    Conv(Conv2dCache),
    Res(ResBlockCache),
    Attn(AttentionBlockCache),
    Down(DownsampleCache),
    Up(UpsampleCache),
}

impl Layer {
    /// `x` (B, C, H, W) and the embedding `e` (B, E) → the layer's output, keeping its cache.
    pub fn forward(&self, x: &Array4<f32>, emb: &Array2<f32>) -> (Array4<f32>, LayerCache) {
        match self {
            Layer::Conv(l) => {
                let (y, c) = l.forward(x);
                (y, LayerCache::Conv(c))
            }
            Layer::Res(l) => {
                let (y, c) = l.forward(x, emb);
                (y, LayerCache::Res(c))
            }
            Layer::Attn(l) => {
                let (y, c) = l.forward(x);
                (y, LayerCache::Attn(c))
            }
            Layer::Down(l) => {
                let (y, c) = l.forward(x);
                (y, LayerCache::Down(c))
            }
            Layer::Up(l) => {
                let (y, c) = l.forward(x);
                (y, LayerCache::Up(c))
            }
        }
    }

    /// The same output without keeping anything.
    pub fn forward_infer(&self, x: &Array4<f32>, emb: &Array2<f32>) -> Array4<f32> {
        match self {
            Layer::Conv(l) => l.forward_infer(x),
            Layer::Res(l) => l.forward_infer(x, emb),
            Layer::Attn(l) => l.forward_infer(x),
            Layer::Down(l) => l.forward_infer(x),
            Layer::Up(l) => l.forward_infer(x),
        }
    }

    /// Adds the parameter gradients (and, for a ResBlock, `∂L/∂e` into `d_emb`); returns `dx`.
    pub fn backward(
        &mut self,
        cache: &LayerCache,
        dy: &Array4<f32>,
        d_emb: &mut Array2<f32>,
    ) -> Array4<f32> {
        match (self, cache) {
            (Layer::Conv(l), LayerCache::Conv(c)) => l.backward(c, dy),
            (Layer::Res(l), LayerCache::Res(c)) => l.backward(c, dy, d_emb),
            (Layer::Attn(l), LayerCache::Attn(c)) => l.backward(c, dy),
            (Layer::Down(l), LayerCache::Down(c)) => l.backward(c, dy),
            (Layer::Up(l), LayerCache::Up(c)) => l.backward(c, dy),
            _ => unreachable!("U-Net layer: the cache does not match the layer"),
        }
    }
}

impl Parameters for Layer {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        match self {
            Layer::Conv(l) => l.visit(prefix, f),
            Layer::Res(l) => l.visit(prefix, f),
            Layer::Attn(l) => l.visit(prefix, f),
            Layer::Down(l) => l.conv.visit(&join(prefix, "op"), f),
            Layer::Up(l) => l.visit(prefix, f),
        }
    }
}

/// ADM's `TimestepEmbedSequential`: layers applied in order, each ResBlock also reading `e`.
#[derive(Clone, Debug)]
pub struct Block {
    pub layers: Vec<Layer>,
}

impl Block {
    pub fn forward(&self, x: &Array4<f32>, emb: &Array2<f32>) -> (Array4<f32>, Vec<LayerCache>) {
        let mut caches = Vec::with_capacity(self.layers.len());
        let (mut h, c) = self.layers[0].forward(x, emb);
        caches.push(c);
        for layer in &self.layers[1..] {
            let (y, c) = layer.forward(&h, emb);
            caches.push(c);
            h = y;
        }
        (h, caches)
    }

    pub fn forward_infer(&self, x: &Array4<f32>, emb: &Array2<f32>) -> Array4<f32> {
        let mut h = self.layers[0].forward_infer(x, emb);
        for layer in &self.layers[1..] {
            h = layer.forward_infer(&h, emb);
        }
        h
    }

    pub fn backward(
        &mut self,
        caches: &[LayerCache],
        dy: &Array4<f32>,
        d_emb: &mut Array2<f32>,
    ) -> Array4<f32> {
        let n = self.layers.len();
        let mut d = self.layers[n - 1].backward(&caches[n - 1], dy, d_emb);
        for i in (0..n - 1).rev() {
            d = self.layers[i].backward(&caches[i], &d, d_emb);
        }
        d
    }
}

impl Parameters for Block {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.layers.visit(prefix, f);
    }
}

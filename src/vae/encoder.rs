//! The VAE encoder: an image `(B, C, H, W)` to the moments of its latent Gaussian
//! `(B, 2z, H/f, W/f)`, `f = 2^(levels − 1)` — latent-diffusion's `Encoder`
//! (`ldm/modules/diffusionmodules/model.py`) with its parameter names.
//!
//! ```text
//! conv_in (3×3) → for each level i: num_res_blocks ResnetBlocks (down.i.block.j)
//!                                   and, except at the last level, a stride-2 Downsample
//!               → mid: block_1, attn_1 (optional), block_2
//!               → norm_out → SiLU → conv_out (3×3, → 2·z_channels)
//! ```
//!
//! The middle stage, [`MidBlock`], is shared with the decoder. LDM also allows attention
//! inside the levels (`attn_resolutions`); the VAE of latent diffusion uses none, nor do we.

use super::attn_block::{AttnBlock, AttnBlockCache};
use super::config::VaeConfig;
use super::resblock::{ResnetBlock, ResnetBlockCache};
use crate::nn::{ActivationCache, Conv2d, Conv2dCache, GroupNorm, GroupNormCache, Silu};
use crate::nn::{Downsample, DownsampleCache};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use ndarray::{Array4, Ix4};

/// LDM's `Normalize`: GroupNorm with `eps = 1e-6`.
pub(crate) fn normalize(groups: usize, channels: usize) -> GroupNorm {
    GroupNorm::new(groups, channels, 1e-6)
}

/// The middle of the encoder and of the decoder, at the lowest resolution:
/// `block_2(attn_1(block_1(x)))`, all at the same width.
#[derive(Clone, Debug)]
pub struct MidBlock {
    pub block_1: ResnetBlock,
    pub attn_1: Option<AttnBlock>,
    pub block_2: ResnetBlock,
}

/// What [`MidBlock::backward`] needs.
pub struct MidBlockCache {
    block_1: ResnetBlockCache,
    attn_1: Option<AttnBlockCache>,
    block_2: ResnetBlockCache,
}

impl MidBlock {
    /// Two ResnetBlocks of width `c` with (if `attention`) an AttnBlock between them.
    pub fn new(c: usize, groups: usize, attention: bool, rng: &mut Rng) -> Self {
        let block_1 = ResnetBlock::new(c, c, groups, rng);
        let attn_1 = attention.then(|| AttnBlock::new(c, groups, rng));
        let block_2 = ResnetBlock::new(c, c, groups, rng);
        MidBlock {
            block_1,
            attn_1,
            block_2,
        }
    }

    /// `(B, C, h, w) → (B, C, h, w)`, keeping the caches.
    pub fn forward(&self, x: &Array4<f32>) -> (Array4<f32>, MidBlockCache) {
        let (mut h, block_1) = self.block_1.forward(x);
        let attn_1 = self.attn_1.as_ref().map(|attn| {
            let (y, cache) = attn.forward(&h);
            h = y;
            cache
        });
        let (h, block_2) = self.block_2.forward(&h);
        let cache = MidBlockCache {
            block_1,
            attn_1,
            block_2,
        };
        (h, cache)
    }

    /// The same output without caches.
    pub fn forward_infer(&self, x: &Array4<f32>) -> Array4<f32> {
        let mut h = self.block_1.forward_infer(x);
        if let Some(attn) = &self.attn_1 {
            h = attn.forward_infer(&h);
        }
        self.block_2.forward_infer(&h)
    }

    /// Given `dy`, adds into the parameter gradients and returns `dx`.
    pub fn backward(&mut self, cache: &MidBlockCache, dy: &Array4<f32>) -> Array4<f32> {
        let mut dh = self.block_2.backward(&cache.block_2, dy);
        match (&mut self.attn_1, &cache.attn_1) {
            (Some(attn), Some(c)) => dh = attn.backward(c, &dh),
            (None, None) => {}
            _ => unreachable!("MidBlock: the cache does not match the attention setting"),
        }
        self.block_1.backward(&cache.block_1, &dh)
    }
}

impl Parameters for MidBlock {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.block_1.visit(&join(prefix, "block_1"), f);
        self.attn_1.visit(&join(prefix, "attn_1"), f);
        self.block_2.visit(&join(prefix, "block_2"), f);
    }
}

/// One resolution level of the encoder: `down.{i}.block.{j}` and `down.{i}.downsample`.
#[derive(Clone, Debug)]
pub struct DownLevel {
    pub block: Vec<ResnetBlock>,
    pub downsample: Option<Downsample>, // absent at the last level
}

impl Parameters for DownLevel {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.block.visit(&join(prefix, "block"), f);
        self.downsample.visit(&join(prefix, "downsample"), f);
    }
}

/// LDM's `Encoder` (with `double_z`: it outputs mean and log-variance).
#[derive(Clone, Debug)]
pub struct Encoder {
    pub conv_in: Conv2d,      // 3×3, in_channels → ch
    pub down: Vec<DownLevel>, // one per channel_mult entry
    pub mid: MidBlock,
    pub norm_out: GroupNorm,
    pub conv_out: Conv2d, // 3×3, → 2·z_channels
}

/// What [`Encoder::backward`] needs: every layer's cache, in forward order.
pub struct EncoderCache {
    conv_in: Conv2dCache,
    down: Vec<(Vec<ResnetBlockCache>, Option<DownsampleCache>)>,
    mid: MidBlockCache,
    norm_out: GroupNormCache,
    act: ActivationCache<Ix4>,
    conv_out: Conv2dCache,
}

impl Encoder {
    /// The encoder of `config` (assumed valid: see [`VaeConfig::validate`]).
    pub fn new(config: &VaeConfig, rng: &mut Rng) -> Self {
        let widths = config.widths();
        let g = config.groups;
        let conv_in = Conv2d::new(config.in_channels, config.base_channels, 3, 1, 1, true, rng);
        let mut c = config.base_channels; // LDM's block_in
        let mut down = Vec::with_capacity(widths.len());
        for (i, &width) in widths.iter().enumerate() {
            let mut block = Vec::with_capacity(config.num_res_blocks);
            for _ in 0..config.num_res_blocks {
                block.push(ResnetBlock::new(c, width, g, rng));
                c = width;
            }
            let last = i + 1 == widths.len();
            let downsample = (!last).then(|| Downsample::new(c, rng));
            down.push(DownLevel { block, downsample });
        }
        let mid = MidBlock::new(c, g, config.mid_attention, rng);
        let norm_out = normalize(g, c);
        let conv_out = Conv2d::new(c, 2 * config.z_channels, 3, 1, 1, true, rng);
        Encoder {
            conv_in,
            down,
            mid,
            norm_out,
            conv_out,
        }
    }

    /// `(B, C, H, W) → (B, 2z, H/f, W/f)`, keeping every cache.
    pub fn forward(&self, x: &Array4<f32>) -> (Array4<f32>, EncoderCache) {
        let (mut h, conv_in) = self.conv_in.forward(x); // (B, ch, H, W)
        let mut down = Vec::with_capacity(self.down.len());
        for level in &self.down {
            let mut blocks = Vec::with_capacity(level.block.len());
            for block in &level.block {
                let (y, cache) = block.forward(&h);
                h = y;
                blocks.push(cache);
            }
            let ds = level.downsample.as_ref().map(|ds| {
                let (y, cache) = ds.forward(&h); // halves H and W
                h = y;
                cache
            });
            down.push((blocks, ds));
        }
        let (h, mid) = self.mid.forward(&h);
        let (h, norm_out) = self.norm_out.forward(&h);
        let (h, act) = Silu.forward(&h);
        let (y, conv_out) = self.conv_out.forward(&h); // (B, 2z, H/f, W/f)
        let cache = EncoderCache {
            conv_in,
            down,
            mid,
            norm_out,
            act,
            conv_out,
        };
        (y, cache)
    }

    /// The same output without caches (inference).
    pub fn forward_infer(&self, x: &Array4<f32>) -> Array4<f32> {
        let mut h = self.conv_in.forward_infer(x);
        for level in &self.down {
            for block in &level.block {
                h = block.forward_infer(&h);
            }
            if let Some(ds) = &level.downsample {
                h = ds.forward_infer(&h);
            }
        }
        let h = self.mid.forward_infer(&h);
        let h = Silu.forward_infer(&self.norm_out.forward_infer(&h));
        self.conv_out.forward_infer(&h)
    }

    /// Given `dy = ∂L/∂moments`, adds into every parameter's gradient and returns `dx`.
    pub fn backward(&mut self, cache: &EncoderCache, dy: &Array4<f32>) -> Array4<f32> {
        let dh = self.conv_out.backward(&cache.conv_out, dy);
        let dh = Silu.backward(&cache.act, &dh);
        let dh = self.norm_out.backward(&cache.norm_out, &dh);
        let mut dh = self.mid.backward(&cache.mid, &dh);
        for (level, (blocks, ds)) in self.down.iter_mut().zip(&cache.down).rev() {
            if let (Some(layer), Some(c)) = (&mut level.downsample, ds) {
                dh = layer.backward(c, &dh);
            }
            for (block, c) in level.block.iter_mut().zip(blocks).rev() {
                dh = block.backward(c, &dh);
            }
        }
        self.conv_in.backward(&cache.conv_in, &dh)
    }
}

impl Parameters for Encoder {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.conv_in.visit(&join(prefix, "conv_in"), f);
        self.down.visit(&join(prefix, "down"), f);
        self.mid.visit(&join(prefix, "mid"), f);
        self.norm_out.visit(&join(prefix, "norm_out"), f);
        self.conv_out.visit(&join(prefix, "conv_out"), f);
    }
}

//! The VAE decoder: a latent `(B, z, h, w)` back to an image `(B, C, h·f, w·f)` —
//! latent-diffusion's `Decoder` (`ldm/modules/diffusionmodules/model.py`) with its names.
//!
//! ```text
//! conv_in (3×3, z → widest) → mid: block_1, attn_1 (optional), block_2
//!   → for each level i from the last to the first: num_res_blocks + 1 ResnetBlocks
//!     (up.i.block.j) and, except at level 0, a nearest ×2 Upsample + 3×3 conv (up.i.upsample)
//!   → norm_out → SiLU → conv_out (3×3, → in_channels)
//! ```
//!
//! As in LDM, `up` is indexed by level (so `up.0` is the full-resolution level, run last),
//! and each level has one more ResnetBlock than the encoder's.

use super::config::VaeConfig;
use super::encoder::{normalize, MidBlock, MidBlockCache};
use super::resblock::{ResnetBlock, ResnetBlockCache};
use crate::nn::{ActivationCache, Conv2d, Conv2dCache, GroupNorm, GroupNormCache, Silu};
use crate::nn::{Upsample, UpsampleCache};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use ndarray::{Array4, Ix4};

/// One resolution level of the decoder: `up.{i}.block.{j}` and `up.{i}.upsample`.
#[derive(Clone, Debug)]
pub struct UpLevel {
    pub block: Vec<ResnetBlock>,
    pub upsample: Option<Upsample>, // absent at level 0
}

impl Parameters for UpLevel {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.block.visit(&join(prefix, "block"), f);
        self.upsample.visit(&join(prefix, "upsample"), f);
    }
}

/// LDM's `Decoder`.
#[derive(Clone, Debug)]
pub struct Decoder {
    pub conv_in: Conv2d, // 3×3, z_channels → widest
    pub mid: MidBlock,
    pub up: Vec<UpLevel>, // indexed by level; run from the last to the first
    pub norm_out: GroupNorm,
    pub conv_out: Conv2d, // 3×3, ch → in_channels
}

/// What [`Decoder::backward`] needs: every layer's cache, in forward order (levels from the
/// last to the first).
pub struct DecoderCache {
    conv_in: Conv2dCache,
    mid: MidBlockCache,
    up: Vec<(Vec<ResnetBlockCache>, Option<UpsampleCache>)>,
    norm_out: GroupNormCache,
    act: ActivationCache<Ix4>,
    conv_out: Conv2dCache,
}

impl Decoder {
    /// The decoder of `config` (assumed valid: see [`VaeConfig::validate`]).
    pub fn new(config: &VaeConfig, rng: &mut Rng) -> Self {
        let widths = config.widths();
        let g = config.groups;
        let mut c = *widths.last().expect("channel_mult is not empty"); // LDM's block_in
        let conv_in = Conv2d::new(config.z_channels, c, 3, 1, 1, true, rng);
        let mid = MidBlock::new(c, g, config.mid_attention, rng);
        // Built from the last level down, as LDM does (which fixes the order of the draws).
        let mut up = Vec::with_capacity(widths.len());
        for (i, &width) in widths.iter().enumerate().rev() {
            let mut block = Vec::with_capacity(config.num_res_blocks + 1);
            for _ in 0..=config.num_res_blocks {
                block.push(ResnetBlock::new(c, width, g, rng));
                c = width;
            }
            let upsample = (i != 0).then(|| Upsample::new(c, rng));
            up.push(UpLevel { block, upsample });
        }
        up.reverse();
        let norm_out = normalize(g, c);
        let conv_out = Conv2d::new(c, config.in_channels, 3, 1, 1, true, rng);
        Decoder {
            conv_in,
            mid,
            up,
            norm_out,
            conv_out,
        }
    }

    /// `(B, z, h, w) → (B, C, h·f, w·f)`, keeping every cache.
    pub fn forward(&self, z: &Array4<f32>) -> (Array4<f32>, DecoderCache) {
        let (h, conv_in) = self.conv_in.forward(z); // (B, widest, h, w)
        let (mut h, mid) = self.mid.forward(&h);
        let mut up = Vec::with_capacity(self.up.len());
        for level in self.up.iter().rev() {
            let mut blocks = Vec::with_capacity(level.block.len());
            for block in &level.block {
                let (y, cache) = block.forward(&h);
                h = y;
                blocks.push(cache);
            }
            let us = level.upsample.as_ref().map(|us| {
                let (y, cache) = us.forward(&h); // doubles H and W
                h = y;
                cache
            });
            up.push((blocks, us));
        }
        let (h, norm_out) = self.norm_out.forward(&h);
        let (h, act) = Silu.forward(&h);
        let (y, conv_out) = self.conv_out.forward(&h); // (B, C, h·f, w·f)
        let cache = DecoderCache {
            conv_in,
            mid,
            up,
            norm_out,
            act,
            conv_out,
        };
        (y, cache)
    }

    /// The same output without caches (inference).
    pub fn forward_infer(&self, z: &Array4<f32>) -> Array4<f32> {
        let mut h = self.mid.forward_infer(&self.conv_in.forward_infer(z));
        for level in self.up.iter().rev() {
            for block in &level.block {
                h = block.forward_infer(&h);
            }
            if let Some(us) = &level.upsample {
                h = us.forward_infer(&h);
            }
        }
        let h = Silu.forward_infer(&self.norm_out.forward_infer(&h));
        self.conv_out.forward_infer(&h)
    }

    /// Given `dy = ∂L/∂x̂`, adds into every parameter's gradient and returns `dz`.
    pub fn backward(&mut self, cache: &DecoderCache, dy: &Array4<f32>) -> Array4<f32> {
        let dh = self.conv_out.backward(&cache.conv_out, dy);
        let dh = Silu.backward(&cache.act, &dh);
        let mut dh = self.norm_out.backward(&cache.norm_out, &dh);
        // The cache holds the levels in run order (last level first): walk both from level 0.
        for (level, (blocks, us)) in self.up.iter_mut().zip(cache.up.iter().rev()) {
            if let (Some(layer), Some(c)) = (&mut level.upsample, us) {
                dh = layer.backward(c, &dh);
            }
            for (block, c) in level.block.iter_mut().zip(blocks).rev() {
                dh = block.backward(c, &dh);
            }
        }
        let dh = self.mid.backward(&cache.mid, &dh);
        self.conv_in.backward(&cache.conv_in, &dh)
    }
}

impl Parameters for Decoder {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.conv_in.visit(&join(prefix, "conv_in"), f);
        self.mid.visit(&join(prefix, "mid"), f);
        self.up.visit(&join(prefix, "up"), f);
        self.norm_out.visit(&join(prefix, "norm_out"), f);
        self.conv_out.visit(&join(prefix, "conv_out"), f);
    }
}

//! The temporal VAE's encoder and decoder, one shape for both (Open-Sora 1.2's
//! `vae_temporal.py`, Open-Sora-Plan's causal VAE, at our scale):
//!
//! ```text
//! conv_in → block₀ → (resample₁ → block₁) → … → (resample_n → block_n) → norm, silu → conv_out
//! ```
//!
//! In the **encoder** each resample is a causal 3×3×3 convolution with time stride 2. With its
//! `kt − 1 = 2` copies of the first frame in front, output frame `j` reads input frames
//! `2j − 2, 2j − 1, 2j`, so
//!
//! $$F_{out} = \lfloor (F - 1)/2 \rfloor + 1: \quad 1 + 4k \to 1 + 2k \to 1 + k,$$
//!
//! and frame 0 comes from frame 0 alone. In the **decoder** each resample first repeats every
//! frame but the first twice ([`time_upsample`]: $1 + k \to 1 + 2k$), then convolves causally.
//! Every convolution is causal and every norm per frame, so output frame `t` of the encoder
//! reads input frames `≤ 4t`; the height and width never change (the image VAE under it does
//! the spatial ×4).

use super::resblock3d::{
    causal_conv, CausalResBlock, CausalResBlockCache, FrameNorm, FrameNormCache,
};
use crate::nn::{ActivationCache, Conv3d, Conv3dCache, Silu};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use ndarray::{Array5, Axis, Ix5};

// ANCHOR: time_upsample
/// `(B, C, F, H, W) → (B, C, 1 + 2(F − 1), H, W)`: frame 0 once, every later frame twice,
/// `out[0] = in[0]`, `out[2i − 1] = out[2i] = in[i]` — the inverse of the encoder's frame count.
pub fn time_upsample(x: &Array5<f32>) -> Array5<f32> {
    let (b, c, f, h, w) = x.dim();
    let mut y = Array5::zeros((b, c, 1 + 2 * (f - 1), h, w));
    for (o, mut frame) in y.axis_iter_mut(Axis(2)).enumerate() {
        frame.assign(&x.index_axis(Axis(2), o.div_ceil(2)));
    }
    y
}

/// Its backward: each input frame gathers the gradients of its copies,
/// `dx[0] = dy[0]`, `dx[i] = dy[2i − 1] + dy[2i]`.
pub fn time_upsample_backward(dy: &Array5<f32>) -> Array5<f32> {
    let (b, c, fo, h, w) = dy.dim();
    let mut dx = Array5::zeros((b, c, fo / 2 + 1, h, w));
    for (o, frame) in dy.axis_iter(Axis(2)).enumerate() {
        let mut d = dx.index_axis_mut(Axis(2), o.div_ceil(2));
        d += &frame;
    }
    dx
}
// ANCHOR_END: time_upsample

/// Which way the coder resamples time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Stride-2 causal convolutions: the encoder.
    Down,
    /// [`time_upsample`] then a causal convolution: the decoder.
    Up,
}

/// The encoder (`Down`) or decoder (`Up`) of the temporal VAE.
#[derive(Clone, Debug)]
pub struct CausalCoder {
    pub direction: Direction,
    pub conv_in: Conv3d,             // 3×3×3 causal, C_in → D
    pub blocks: Vec<CausalResBlock>, // n + 1 blocks, D → D
    pub resample: Vec<Conv3d>,       // n causal convs, D → D (time stride 2 going down)
    pub norm_out: FrameNorm,
    pub conv_out: Conv3d, // 3×3×3 causal, D → C_out
}

/// Every layer's cache, in forward order.
pub struct CausalCoderCache {
    conv_in: Conv3dCache,
    blocks: Vec<CausalResBlockCache>,
    resample: Vec<Conv3dCache>,
    norm_out: FrameNormCache,
    act: ActivationCache<Ix5>,
    conv_out: Conv3dCache,
}

impl CausalCoder {
    /// `c_in → width → c_out` channels, `n` time resamplings of ×2.
    pub fn new(
        direction: Direction,
        c_in: usize,
        width: usize,
        c_out: usize,
        n: usize,
        groups: usize,
        rng: &mut Rng,
    ) -> Self {
        let st = match direction {
            Direction::Down => 2,
            Direction::Up => 1,
        };
        let conv_in = causal_conv(c_in, width, 1, rng);
        let mut blocks = vec![CausalResBlock::new(width, groups, rng)];
        let mut resample = Vec::with_capacity(n);
        for _ in 0..n {
            resample.push(causal_conv(width, width, st, rng));
            blocks.push(CausalResBlock::new(width, groups, rng));
        }
        CausalCoder {
            direction,
            conv_in,
            blocks,
            resample,
            norm_out: FrameNorm::new(groups, width),
            conv_out: causal_conv(width, c_out, 1, rng),
        }
    }

    // ANCHOR: coder_forward
    /// x: (B, C_in, F, H, W) → (B, C_out, F', H, W), `F' = (F − 1)/2ⁿ + 1` going down,
    /// `2ⁿ(F − 1) + 1` going up.
    pub fn forward(&self, x: &Array5<f32>) -> (Array5<f32>, CausalCoderCache) {
        let (mut h, conv_in) = self.conv_in.forward(x); // (B, D, F, H, W)
        let (y, c) = self.blocks[0].forward(&h);
        h = y;
        let mut blocks = vec![c];
        let mut resample = Vec::with_capacity(self.resample.len());
        for (conv, block) in self.resample.iter().zip(&self.blocks[1..]) {
            if self.direction == Direction::Up {
                h = time_upsample(&h); // (B, D, 2F − 1, H, W)
            }
            let (y, c) = conv.forward(&h); // going down: (B, D, (F − 1)/2 + 1, H, W)
            resample.push(c);
            let (y, c) = block.forward(&y);
            blocks.push(c);
            h = y;
        }
        let (h, norm_out) = self.norm_out.forward(&h);
        let (h, act) = Silu.forward(&h);
        let (y, conv_out) = self.conv_out.forward(&h); // (B, C_out, F', H, W)
        let cache = CausalCoderCache {
            conv_in,
            blocks,
            resample,
            norm_out,
            act,
            conv_out,
        };
        (y, cache)
    }
    // ANCHOR_END: coder_forward

    pub fn forward_infer(&self, x: &Array5<f32>) -> Array5<f32> {
        let mut h = self.blocks[0].forward_infer(&self.conv_in.forward_infer(x));
        for (conv, block) in self.resample.iter().zip(&self.blocks[1..]) {
            if self.direction == Direction::Up {
                h = time_upsample(&h);
            }
            h = block.forward_infer(&conv.forward_infer(&h));
        }
        let h = Silu.forward_infer(&self.norm_out.forward_infer(&h));
        self.conv_out.forward_infer(&h)
    }

    /// `dx` for `dy` (B, C_out, F', H, W), adding into every parameter's grad.
    pub fn backward(&mut self, cache: &CausalCoderCache, dy: &Array5<f32>) -> Array5<f32> {
        let dh = self.conv_out.backward(&cache.conv_out, dy);
        let dh = Silu.backward(&cache.act, &dh);
        let mut dh = self.norm_out.backward(&cache.norm_out, &dh);
        for i in (0..self.resample.len()).rev() {
            dh = self.blocks[i + 1].backward(&cache.blocks[i + 1], &dh);
            dh = self.resample[i].backward(&cache.resample[i], &dh);
            if self.direction == Direction::Up {
                dh = time_upsample_backward(&dh);
            }
        }
        let dh = self.blocks[0].backward(&cache.blocks[0], &dh);
        self.conv_in.backward(&cache.conv_in, &dh)
    }

    /// The frames out for `frames` in.
    pub fn frames_out(&self, frames: usize) -> usize {
        let n = self.resample.len() as u32;
        match self.direction {
            Direction::Down => (frames - 1) / 2usize.pow(n) + 1,
            Direction::Up => 2usize.pow(n) * (frames - 1) + 1,
        }
    }
}

impl Parameters for CausalCoder {
    /// `conv_in.…`, `blocks.{i}.…`, `down.{i}.…` or `up.{i}.…`, `norm_out.…`, `conv_out.…`.
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.conv_in.visit(&join(prefix, "conv_in"), f);
        for (i, b) in self.blocks.iter_mut().enumerate() {
            b.visit(&join(prefix, &format!("blocks.{i}")), f);
        }
        let name = match self.direction {
            Direction::Down => "down",
            Direction::Up => "up",
        };
        for (i, c) in self.resample.iter_mut().enumerate() {
            c.visit(&join(prefix, &format!("{name}.{i}")), f);
        }
        self.norm_out.visit(&join(prefix, "norm_out"), f);
        self.conv_out.visit(&join(prefix, "conv_out"), f);
    }
}

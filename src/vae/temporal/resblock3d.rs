//! The temporal VAE's residual block: the image VAE's [`ResnetBlock`](crate::vae::ResnetBlock)
//! with its 3×3 convolutions made causal 3×3×3 ones ([`Conv3d`] with
//! [`Padding3d::causal`]), as Open-Sora-Plan's `ResnetBlock3D` and Open-Sora 1.2's temporal
//! VAE do, and its GroupNorms applied to **each frame on its own** ([`FrameNorm`]).
//!
//! $$h = \mathrm{conv}_2(\mathrm{silu}(\mathrm{norm}_2(\mathrm{conv}_1(\mathrm{silu}(\mathrm{norm}_1(x)))))),
//! \qquad y = x + h$$
//!
//! Why per frame: a GroupNorm over the whole clip would mix the statistics of later frames
//! into frame 0, and the first latent frame would no longer be the encoding of the first frame
//! alone. Normalising each frame keeps the whole network causal — output frame `t` reads input
//! frames `≤ t` only — so an image, a one-frame clip, encodes exactly as the first frame of any
//! clip does (`tests/video_vae.rs` checks it). The width does not change inside the temporal
//! VAE, so the shortcut is always the identity.

use crate::nn::{ActivationCache, Conv3d, Conv3dCache, GroupNorm, GroupNormCache, Padding3d, Silu};
use crate::param::{join, Param, Parameters};
use crate::tensor::{clips_to_frames, frames_to_clips, Rng};
use ndarray::{Array5, Ix5};

/// GroupNorm over each frame of `(B, C, F, H, W)`: the frames moved into the batch,
/// `'b c f h w -> (b f) c h w'`, normalised as images, and moved back.
#[derive(Clone, Debug)]
pub struct FrameNorm {
    pub norm: GroupNorm, // GroupNorm(groups, C, 1e-6)
}

/// The GroupNorm's cache and the frame count to undo the move with.
pub struct FrameNormCache {
    norm: GroupNormCache,
    frames: usize,
}

impl FrameNorm {
    pub fn new(groups: usize, channels: usize) -> Self {
        FrameNorm {
            norm: GroupNorm::new(groups, channels, 1e-6),
        }
    }

    /// x: (B, C, F, H, W) → (B, C, F, H, W), each (b, f, group) slice at zero mean, unit variance.
    pub fn forward(&self, x: &Array5<f32>) -> (Array5<f32>, FrameNormCache) {
        let frames = x.dim().2;
        let (y, norm) = self.norm.forward(&clips_to_frames(x.view())); // (B·F, C, H, W)
        (frames_to_clips(y, frames), FrameNormCache { norm, frames })
    }

    pub fn forward_infer(&self, x: &Array5<f32>) -> Array5<f32> {
        let frames = x.dim().2;
        frames_to_clips(self.norm.forward_infer(&clips_to_frames(x.view())), frames)
    }

    /// `dx` through the per-frame GroupNorm, adding into its γ and β.
    pub fn backward(&mut self, cache: &FrameNormCache, dy: &Array5<f32>) -> Array5<f32> {
        let dx = self.norm.backward(&cache.norm, &clips_to_frames(dy.view()));
        frames_to_clips(dx, cache.frames)
    }
}

impl Parameters for FrameNorm {
    /// `weight`, `bias`: the GroupNorm's own names.
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.norm.visit(prefix, f);
    }
}

/// A 3×3×3 causal convolution from `c_in` to `c_out` channels, time stride `st`.
pub fn causal_conv(c_in: usize, c_out: usize, st: usize, rng: &mut Rng) -> Conv3d {
    Conv3d::new(
        c_in,
        c_out,
        [3, 3, 3],
        [st, 1, 1],
        Padding3d::causal(1, 1),
        true,
        rng,
    )
}

/// The causal residual block, `C → C`.
#[derive(Clone, Debug)]
pub struct CausalResBlock {
    pub norm1: FrameNorm,
    pub conv1: Conv3d, // 3×3×3 causal, C → C
    pub norm2: FrameNorm,
    pub conv2: Conv3d, // 3×3×3 causal, C → C
}

/// Every layer's cache, in forward order.
pub struct CausalResBlockCache {
    norm1: FrameNormCache,
    act1: ActivationCache<Ix5>,
    conv1: Conv3dCache,
    norm2: FrameNormCache,
    act2: ActivationCache<Ix5>,
    conv2: Conv3dCache,
}

impl CausalResBlock {
    pub fn new(channels: usize, groups: usize, rng: &mut Rng) -> Self {
        CausalResBlock {
            norm1: FrameNorm::new(groups, channels),
            conv1: causal_conv(channels, channels, 1, rng),
            norm2: FrameNorm::new(groups, channels),
            conv2: causal_conv(channels, channels, 1, rng),
        }
    }

    // ANCHOR: causal_resblock
    /// `y = x + conv2(silu(norm2(conv1(silu(norm1(x))))))`   x, y: (B, C, F, H, W)
    pub fn forward(&self, x: &Array5<f32>) -> (Array5<f32>, CausalResBlockCache) {
        let (h, norm1) = self.norm1.forward(x);
        let (h, act1) = Silu.forward(&h);
        let (h, conv1) = self.conv1.forward(&h); // frame t reads frames t−2, t−1, t
        let (h, norm2) = self.norm2.forward(&h);
        let (h, act2) = Silu.forward(&h);
        let (mut y, conv2) = self.conv2.forward(&h);
        y += x; // $y = x + h$
        let cache = CausalResBlockCache {
            norm1,
            act1,
            conv1,
            norm2,
            act2,
            conv2,
        };
        (y, cache)
    }
    // ANCHOR_END: causal_resblock

    pub fn forward_infer(&self, x: &Array5<f32>) -> Array5<f32> {
        let h = Silu.forward_infer(&self.norm1.forward_infer(x));
        let h = Silu.forward_infer(&self.norm2.forward_infer(&self.conv1.forward_infer(&h)));
        let mut y = self.conv2.forward_infer(&h);
        y += x;
        y
    }

    /// `dx = dy + (the branch's gradient)`, adding into every parameter's grad.
    pub fn backward(&mut self, cache: &CausalResBlockCache, dy: &Array5<f32>) -> Array5<f32> {
        let dh = self.conv2.backward(&cache.conv2, dy);
        let dh = Silu.backward(&cache.act2, &dh);
        let dh = self.norm2.backward(&cache.norm2, &dh);
        let dh = self.conv1.backward(&cache.conv1, &dh);
        let dh = Silu.backward(&cache.act1, &dh);
        let mut dx = self.norm1.backward(&cache.norm1, &dh);
        dx += dy; // the identity shortcut
        dx
    }
}

impl Parameters for CausalResBlock {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.norm1.visit(&join(prefix, "norm1"), f);
        self.conv1.visit(&join(prefix, "conv1"), f);
        self.norm2.visit(&join(prefix, "norm2"), f);
        self.conv2.visit(&join(prefix, "conv2"), f);
    }
}

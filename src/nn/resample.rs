//! The learned resolution changes of the VAE and the U-Net, latent-diffusion's `Downsample`
//! and `Upsample` (`ldm/modules/diffusionmodules/model.py`, both with `with_conv=True`; ADM's
//! U-Net has the same two with `conv_resample=True`).
//!
//! - [`Downsample`]: a 3×3 conv with stride 2, `(B, C, H, W) → (B, C, ⌈H/2⌉, ⌈W/2⌉)`.
//!   LDM pads asymmetrically, one zero row/column on the bottom/right only, then convolves
//!   with padding 0; we pad one on every side. For even sizes (the VAE's 32 → 16 → 8) both
//!   give `H/2` outputs, but each kernel window sits one pixel up and left of LDM's (so LDM's
//!   trained weights would see shifted inputs here). For odd sizes symmetric padding gives
//!   `(H + 1)/2` outputs where LDM gives `⌊H/2⌋`.
//! - [`Upsample`]: nearest-neighbour ×2 ([`Upsample2x`]) then a 3×3 conv with padding 1,
//!   `(B, C, H, W) → (B, C, 2H, 2W)`.
//!
//! Parameter names are LDM's: `conv.weight`, `conv.bias`.

use super::{Conv2d, Conv2dCache, Upsample2x};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use ndarray::Array4;

/// Halves the resolution with a learned 3×3, stride-2, padding-1 conv.
#[derive(Clone, Debug)]
pub struct Downsample {
    pub conv: Conv2d, // 3×3, C → C, stride 2, padding 1
}

/// What backward needs from [`Downsample::forward`].
pub struct DownsampleCache {
    conv: Conv2dCache,
}

impl Downsample {
    /// A downsampler for `c` channels (PyTorch's default conv initialisation).
    pub fn new(c: usize, rng: &mut Rng) -> Self {
        Downsample {
            conv: Conv2d::new(c, c, 3, 2, 1, true, rng),
        }
    }

    /// `y = conv_{s=2}(x)`   x: (B, C, H, W) → y: (B, C, (H+1)/2, (W+1)/2)
    pub fn forward(&self, x: &Array4<f32>) -> (Array4<f32>, DownsampleCache) {
        let (y, conv) = self.conv.forward(x);
        (y, DownsampleCache { conv })
    }

    /// The same output without keeping anything.
    pub fn forward_infer(&self, x: &Array4<f32>) -> Array4<f32> {
        self.conv.forward_infer(x)
    }

    /// Adds the conv's parameter gradients and returns `dx` (B, C, H, W).
    pub fn backward(&mut self, cache: &DownsampleCache, dy: &Array4<f32>) -> Array4<f32> {
        self.conv.backward(&cache.conv, dy)
    }
}

impl Parameters for Downsample {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.conv.visit(&join(prefix, "conv"), f);
    }
}

/// Doubles the resolution: nearest-neighbour copies, then a learned 3×3 conv that smooths them.
#[derive(Clone, Debug)]
pub struct Upsample {
    pub conv: Conv2d, // 3×3, C → C, stride 1, padding 1
}

/// What backward needs from [`Upsample::forward`] (the nearest ×2 step needs nothing).
pub struct UpsampleCache {
    conv: Conv2dCache,
}

impl Upsample {
    /// An upsampler for `c` channels (PyTorch's default conv initialisation).
    pub fn new(c: usize, rng: &mut Rng) -> Self {
        Upsample {
            conv: Conv2d::new(c, c, 3, 1, 1, true, rng),
        }
    }

    /// `y = conv(nearest₂(x))`   x: (B, C, H, W) → y: (B, C, 2H, 2W)
    pub fn forward(&self, x: &Array4<f32>) -> (Array4<f32>, UpsampleCache) {
        let (y, conv) = self.conv.forward(&Upsample2x.forward(x));
        (y, UpsampleCache { conv })
    }

    /// The same output without keeping anything.
    pub fn forward_infer(&self, x: &Array4<f32>) -> Array4<f32> {
        self.conv.forward_infer(&Upsample2x.forward(x))
    }

    /// Adds the conv's parameter gradients and returns `dx` (B, C, H, W): the conv's input
    /// gradient summed over each 2×2 block of copies.
    pub fn backward(&mut self, cache: &UpsampleCache, dy: &Array4<f32>) -> Array4<f32> {
        Upsample2x.backward(&self.conv.backward(&cache.conv, dy))
    }
}

impl Parameters for Upsample {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.conv.visit(&join(prefix, "conv"), f);
    }
}

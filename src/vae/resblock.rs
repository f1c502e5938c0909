//! The VAE's residual block: latent-diffusion's `ResnetBlock`
//! (`ldm/modules/diffusionmodules/model.py`, after He et al. 2016,
//! <https://arxiv.org/abs/1512.03385>, in the pre-activation order of
//! <https://arxiv.org/abs/1603.05027>), without the dropout (0 in the VAE) and without the
//! time embedding (the VAE has no timestep).
//!
//! $$h = \mathrm{conv}_2(\mathrm{silu}(\mathrm{norm}_2(\mathrm{conv}_1(\mathrm{silu}(\mathrm{norm}_1(x)))))),
//! \qquad y = s(x) + h$$
//!
//! Both convs are 3×3 with padding 1, so the spatial size is kept. The shortcut $s$ is the
//! identity when the channel count does not change, and a 1×1 conv `nin_shortcut`
//! ("network in network") when it does. Parameter names are LDM's: `norm1.weight`,
//! `conv1.weight`, `conv1.bias`, `norm2.…`, `conv2.…`, `nin_shortcut.…`.

use crate::nn::{ActivationCache, Conv2d, Conv2dCache, GroupNorm, GroupNormCache, Silu};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use ndarray::{Array4, Ix4};

/// LDM's `ResnetBlock` without dropout or time embedding.
#[derive(Clone, Debug)]
pub struct ResnetBlock {
    pub norm1: GroupNorm,             // GroupNorm(groups, C_in, 1e-6)
    pub conv1: Conv2d,                // 3×3, C_in → C_out, padding 1
    pub norm2: GroupNorm,             // GroupNorm(groups, C_out, 1e-6)
    pub conv2: Conv2d,                // 3×3, C_out → C_out, padding 1
    pub nin_shortcut: Option<Conv2d>, // 1×1, C_in → C_out, only when C_in ≠ C_out
}

/// What backward needs from forward: each layer's own cache, in forward order.
pub struct ResnetBlockCache {
    norm1: GroupNormCache,
    act1: ActivationCache<Ix4>,
    conv1: Conv2dCache,
    norm2: GroupNormCache,
    act2: ActivationCache<Ix4>,
    conv2: Conv2dCache,
    shortcut: Option<Conv2dCache>,
}

impl ResnetBlock {
    /// A block from `c_in` to `c_out` channels; both GroupNorms use `groups` groups and
    /// `eps = 1e-6` (LDM's `Normalize`), so `groups` must divide `c_in` and `c_out`.
    pub fn new(c_in: usize, c_out: usize, groups: usize, rng: &mut Rng) -> Self {
        ResnetBlock {
            norm1: GroupNorm::new(groups, c_in, 1e-6),
            conv1: Conv2d::new(c_in, c_out, 3, 1, 1, true, rng),
            norm2: GroupNorm::new(groups, c_out, 1e-6),
            conv2: Conv2d::new(c_out, c_out, 3, 1, 1, true, rng),
            nin_shortcut: (c_in != c_out).then(|| Conv2d::new(c_in, c_out, 1, 1, 0, true, rng)),
        }
    }

    /// Input channels.
    pub fn c_in(&self) -> usize {
        self.conv1.c_in()
    }

    /// Output channels.
    pub fn c_out(&self) -> usize {
        self.conv2.c_out()
    }

    // ANCHOR: resblock_forward
    /// `y = shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))))))`
    /// x: (B, C_in, H, W) → y: (B, C_out, H, W), keeping every layer's cache.
    pub fn forward(&self, x: &Array4<f32>) -> (Array4<f32>, ResnetBlockCache) {
        let (h, norm1) = self.norm1.forward(x); // (B, C_in, H, W)
        let (h, act1) = Silu.forward(&h);
        let (h, conv1) = self.conv1.forward(&h); // (B, C_out, H, W)
        let (h, norm2) = self.norm2.forward(&h);
        let (h, act2) = Silu.forward(&h);
        let (mut y, conv2) = self.conv2.forward(&h); // (B, C_out, H, W)

        // $y = s(x) + h$, added in place onto the branch's output
        let shortcut = match &self.nin_shortcut {
            Some(nin) => {
                let (s, cache) = nin.forward(x); // 1×1 conv: (B, C_out, H, W)
                y += &s;
                Some(cache)
            }
            None => {
                y += x;
                None
            }
        };
        let cache = ResnetBlockCache {
            norm1,
            act1,
            conv1,
            norm2,
            act2,
            conv2,
            shortcut,
        };
        (y, cache)
    }
    // ANCHOR_END: resblock_forward

    /// The same output without keeping anything (sampling).
    pub fn forward_infer(&self, x: &Array4<f32>) -> Array4<f32> {
        let h = self.norm1.forward_infer(x);
        let h = self.conv1.forward_infer(&Silu.forward_infer(&h));
        let h = self.norm2.forward_infer(&h);
        let mut y = self.conv2.forward_infer(&Silu.forward_infer(&h));
        match &self.nin_shortcut {
            Some(nin) => y += &nin.forward_infer(x),
            None => y += x,
        }
        y
    }

    // ANCHOR: resblock_backward
    /// Given `dy = ∂L/∂y` (B, C_out, H, W), adds into every parameter's gradient and returns
    /// `dx = ∂L/∂x` (B, C_in, H, W). The sum `y = s(x) + h` sends `dy` unchanged down both
    /// paths, and the two gradients that reach `x` add: $dx = dx_{\text{branch}} + s^\top(dy)$.
    pub fn backward(&mut self, cache: &ResnetBlockCache, dy: &Array4<f32>) -> Array4<f32> {
        // the branch, layer by layer in reverse
        let dh = self.conv2.backward(&cache.conv2, dy);
        let dh = Silu.backward(&cache.act2, &dh);
        let dh = self.norm2.backward(&cache.norm2, &dh);
        let dh = self.conv1.backward(&cache.conv1, &dh);
        let dh = Silu.backward(&cache.act1, &dh);
        let mut dx = self.norm1.backward(&cache.norm1, &dh); // (B, C_in, H, W)

        // $dx \mathrel{+}= dy$ (identity) or $W_{\text{nin}}^\top dy$ (1×1 conv)
        match (&mut self.nin_shortcut, &cache.shortcut) {
            (Some(nin), Some(c)) => dx += &nin.backward(c, dy),
            (None, None) => dx += dy,
            _ => unreachable!("ResnetBlock: the cache does not match this block's shortcut"),
        }
        dx
    }
    // ANCHOR_END: resblock_backward
}

impl Parameters for ResnetBlock {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.norm1.visit(&join(prefix, "norm1"), f);
        self.conv1.visit(&join(prefix, "conv1"), f);
        self.norm2.visit(&join(prefix, "norm2"), f);
        self.conv2.visit(&join(prefix, "conv2"), f);
        self.nin_shortcut.visit(&join(prefix, "nin_shortcut"), f);
    }
}

//! The whole U-Net: ADM's `UNetModel` (openai/improved-diffusion `unet.py`; Ronneberger et al.
//! 2015, <https://arxiv.org/abs/1505.04597>, as used for diffusion by Ho et al. 2020 and
//! Nichol & Dhariwal 2021), without dropout.
//!
//! ```text
//! e = time_embed(t) + label_emb(y)                           (B, 4·model_channels)
//! input_blocks:  conv 3×3 (in → C₀), then per level i: num_res_blocks × [ResBlock (+ Attn)]
//!                and, except at the last level, a Downsample — every output kept as a skip
//! middle_block:  ResBlock, AttentionBlock, ResBlock
//! output_blocks: per level, from the last: num_res_blocks + 1 × [concat(h, skip) → ResBlock
//!                (+ Attn)], and, except at level 0, an Upsample after the last one
//! out:           GroupNorm → SiLU → zero-init conv 3×3 (C₀ → out_channels)
//! ```
//!
//! Every ResBlock reads the same embedding `e`, so in the backward pass their embedding
//! gradients are summed before flowing into `time_embed` and `label_emb`. The skip
//! connections are the U-Net's defining feature: the decoder concatenates the encoder's
//! outputs to its own features along the channels, so in the backward pass the gradient of
//! each concatenation splits in two, one part continuing up the decoder, the other jumping to
//! the encoder block whose output was stored.
//!
//! Parameter names are ADM's state-dict names: `input_blocks.K.N.…`, `middle_block.N.…`,
//! `output_blocks.K.N.…`, `out.0.…` (GroupNorm), `out.2.…` (conv), with the Downsample's conv
//! named `op` and the Upsample's `conv`.

use super::attention::AttentionBlock;
use super::config::UNetConfig;
use super::embed::{TimestepEmbedder, TimestepEmbedderCache};
use super::resblock::{normalization, zero_conv, ResBlock};
use super::sequential::{Block, Layer, LayerCache};
use crate::diffusion::{Condition, Denoiser, TrainableDenoiser};
use crate::error::Result;
use crate::nn::{ActivationCache, Conv2d, Conv2dCache, GroupNorm, GroupNormCache, Silu};
use crate::nn::{Downsample, Upsample};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use ndarray::{s, Array2, Array4, ArrayD, Ix4};

/// ADM's U-Net: a denoiser `(x_t, t, y) → output` over `(B, C, H, W)` images or latents.
#[derive(Clone, Debug)]
pub struct UNet {
    pub config: UNetConfig,
    /// `time_embed.0`, `time_embed.2` and `label_emb`.
    pub embed: TimestepEmbedder,
    pub input_blocks: Vec<Block>,
    pub middle_block: Block,
    pub output_blocks: Vec<Block>,
    pub out_norm: GroupNorm, // out.0
    pub out_conv: Conv2d,    // out.2, zero-init
}

/// What [`UNet::backward`] needs from [`UNet::forward`].
pub struct UNetCache {
    embed: TimestepEmbedderCache,
    emb_shape: (usize, usize),
    input: Vec<Vec<LayerCache>>,
    middle: Vec<LayerCache>,
    output: Vec<Vec<LayerCache>>,
    /// Channels of the decoder's own features in each concatenation (the rest are the skip's).
    split: Vec<usize>,
    out_norm: GroupNormCache,
    out_act: ActivationCache<Ix4>,
    out_conv: Conv2dCache,
}

/// `[a, b]` along the channels: (B, C₁, H, W), (B, C₂, H, W) → (B, C₁ + C₂, H, W).
fn concat_channels(a: &Array4<f32>, b: &Array4<f32>) -> Array4<f32> {
    let (n, c1, h, w) = a.dim();
    let c2 = b.shape()[1];
    assert_eq!(
        (b.shape()[0], b.shape()[2], b.shape()[3]),
        (n, h, w),
        "U-Net: a skip connection of shape {:?} does not meet features of shape {:?}",
        b.shape(),
        a.shape()
    );
    let mut y = Array4::zeros((n, c1 + c2, h, w));
    y.slice_mut(s![.., ..c1, .., ..]).assign(a);
    y.slice_mut(s![.., c1.., .., ..]).assign(b);
    y
}

impl UNet {
    /// A U-Net for `config` (validated first), ADM's initialisation: PyTorch's defaults, with
    /// every ResBlock's last conv, every attention `proj_out` and the output conv at zero.
    pub fn new(config: UNetConfig, rng: &mut Rng) -> Result<Self> {
        config.validate()?;
        let c = &config;
        let (mc, e, g, ss) = (c.model_channels, c.emb_dim(), c.groups, c.scale_shift);
        let embed = TimestepEmbedder::new(mc, e, c.num_classes, rng);
        let block = |layers: Vec<Layer>| Block { layers };

        let mut input_blocks = vec![block(vec![Layer::Conv(Conv2d::new(
            c.in_channels,
            mc,
            3,
            1,
            1,
            true,
            rng,
        ))])];
        let mut chans = vec![mc]; // the channels of every stored skip
        let (mut ch, mut ds) = (mc, 1);
        let last = c.channel_mult.len() - 1;
        for (level, &mult) in c.channel_mult.iter().enumerate() {
            for _ in 0..c.num_res_blocks {
                let mut layers = vec![Layer::Res(ResBlock::new(ch, e, mult * mc, g, ss, rng))];
                ch = mult * mc;
                if c.attends_at(ds) {
                    layers.push(Layer::Attn(AttentionBlock::new(ch, c.num_heads, g, rng)));
                }
                input_blocks.push(block(layers));
                chans.push(ch);
            }
            if level != last {
                input_blocks.push(block(vec![Layer::Down(Downsample::new(ch, rng))]));
                chans.push(ch);
                ds *= 2;
            }
        }

        let middle_block = block(vec![
            Layer::Res(ResBlock::new(ch, e, ch, g, ss, rng)),
            Layer::Attn(AttentionBlock::new(ch, c.num_heads, g, rng)),
            Layer::Res(ResBlock::new(ch, e, ch, g, ss, rng)),
        ]);

        let mut output_blocks = Vec::new();
        for (level, &mult) in c.channel_mult.iter().enumerate().rev() {
            for i in 0..=c.num_res_blocks {
                let skip = chans.pop().expect("one skip per input block");
                let mut layers = vec![Layer::Res(ResBlock::new(
                    ch + skip,
                    e,
                    mult * mc,
                    g,
                    ss,
                    rng,
                ))];
                ch = mult * mc;
                if c.attends_at(ds) {
                    layers.push(Layer::Attn(AttentionBlock::new(ch, c.num_heads, g, rng)));
                }
                if level > 0 && i == c.num_res_blocks {
                    layers.push(Layer::Up(Upsample::new(ch, rng)));
                    ds /= 2;
                }
                output_blocks.push(block(layers));
            }
        }
        let out_norm = normalization(g, ch);
        let out_conv = zero_conv(ch, c.out_channels, 3, rng);
        Ok(UNet {
            config,
            embed,
            input_blocks,
            middle_block,
            output_blocks,
            out_norm,
            out_conv,
        })
    }

    /// The label that means "no class" (for classifier-free guidance): `Some(num_classes)`
    /// for a class-conditional model.
    pub fn null_label(&self) -> Option<usize> {
        self.embed.null_label()
    }

    /// Panics with a clear message unless `x` is `(B, in_channels, H, W)` with sides that
    /// halve cleanly, and `t` has one timestep per sample.
    fn check_input(&self, x: &Array4<f32>, t: &[usize]) {
        let (b, c, h, w) = x.dim();
        assert_eq!(
            c, self.config.in_channels,
            "U-Net: the input has {c} channels, the model takes {}",
            self.config.in_channels
        );
        assert_eq!(t.len(), b, "U-Net: {} timesteps for {b} samples", t.len());
        if let Err(e) = self.config.check_size(h, w) {
            panic!("{e}");
        }
    }

    // ANCHOR: unet_forward
    /// The output `(B, out_channels, H, W)` for `x` (B, in_channels, H, W), timesteps `t` and
    /// labels `y` (`None`: the null label of a conditional model), keeping every cache.
    pub fn forward(
        &self,
        x: &Array4<f32>,
        t: &[usize],
        y: Option<&[usize]>,
    ) -> (Array4<f32>, UNetCache) {
        self.check_input(x, t);
        let (emb, embed) = self.embed.forward(t, y); // (B, E)

        // Encoder: every block's output is kept as a skip.
        let mut hs: Vec<Array4<f32>> = Vec::with_capacity(self.input_blocks.len());
        let mut input = Vec::with_capacity(self.input_blocks.len());
        for block in &self.input_blocks {
            let (h, c) = block.forward(hs.last().unwrap_or(x), &emb);
            input.push(c);
            hs.push(h);
        }
        // Middle, at the lowest resolution.
        let (mut h, middle) = self.middle_block.forward(hs.last().unwrap(), &emb);
        // Decoder: $h \leftarrow \mathrm{block}([h, \text{skip}])$, the skips in reverse order.
        let mut output = Vec::with_capacity(self.output_blocks.len());
        let mut split = Vec::with_capacity(self.output_blocks.len());
        for block in &self.output_blocks {
            let skip = hs.pop().expect("one skip per output block");
            split.push(h.shape()[1]);
            let (y, c) = block.forward(&concat_channels(&h, &skip), &emb);
            output.push(c);
            h = y;
        }
        // out: $\mathrm{conv}_0(\mathrm{silu}(\mathrm{GN}(h)))$
        let (h, out_norm) = self.out_norm.forward(&h);
        let (h, out_act) = Silu.forward(&h);
        let (out, out_conv) = self.out_conv.forward(&h);
        let cache = UNetCache {
            embed,
            emb_shape: emb.dim(),
            input,
            middle,
            output,
            split,
            out_norm,
            out_act,
            out_conv,
        };
        (out, cache)
    }
    // ANCHOR_END: unet_forward

    /// The same output without keeping anything (sampling).
    pub fn forward_infer(&self, x: &Array4<f32>, t: &[usize], y: Option<&[usize]>) -> Array4<f32> {
        self.check_input(x, t);
        self.forward_infer_embedded(x, &self.embed.forward_infer(t, y))
    }

    /// [`UNet::forward_infer`] with the embedding `e = time_embed(t) + label_emb(y)`
    /// `(B, emb_dim)` given: that of any [`Condition`], a blend of two classes included
    /// ([`TimestepEmbedder::forward_infer_condition`]).
    pub fn forward_infer_embedded(&self, x: &Array4<f32>, emb: &Array2<f32>) -> Array4<f32> {
        let (b, e) = (x.shape()[0], self.config.emb_dim());
        assert_eq!(
            emb.dim(),
            (b, e),
            "U-Net: e must be (B, emb_dim) = ({b}, {e})"
        );
        let mut hs: Vec<Array4<f32>> = Vec::with_capacity(self.input_blocks.len());
        for block in &self.input_blocks {
            let h = block.forward_infer(hs.last().unwrap_or(x), emb);
            hs.push(h);
        }
        let mut h = self.middle_block.forward_infer(hs.last().unwrap(), emb);
        for block in &self.output_blocks {
            let skip = hs.pop().expect("one skip per output block");
            h = block.forward_infer(&concat_channels(&h, &skip), emb);
        }
        let h = Silu.forward_infer(&self.out_norm.forward_infer(&h));
        self.out_conv.forward_infer(&h)
    }

    // ANCHOR: unet_backward
    /// Given `d_out = ∂L/∂output`, adds `∂L/∂θ` into every parameter's gradient and returns
    /// `∂L/∂x` (B, in_channels, H, W).
    pub fn backward(&mut self, cache: &UNetCache, d_out: &Array4<f32>) -> Array4<f32> {
        let dh = self.out_conv.backward(&cache.out_conv, d_out);
        let dh = Silu.backward(&cache.out_act, &dh);
        let mut dh = self.out_norm.backward(&cache.out_norm, &dh);
        // Every ResBlock adds its share of ∂L/∂e here.
        let mut d_emb = Array2::zeros(cache.emb_shape);
        // Decoder, last block first. Output block k read [h, skip of input block n − 1 − k]:
        // the concatenation's gradient splits into the two.
        let n = self.input_blocks.len();
        let mut d_skips: Vec<Option<Array4<f32>>> = vec![None; n];
        for (k, block) in self.output_blocks.iter_mut().enumerate().rev() {
            let d_cat = block.backward(&cache.output[k], &dh, &mut d_emb);
            let c1 = cache.split[k];
            dh = d_cat.slice(s![.., ..c1, .., ..]).to_owned();
            d_skips[n - 1 - k] = Some(d_cat.slice(s![.., c1.., .., ..]).to_owned());
        }
        let mut dh = self.middle_block.backward(&cache.middle, &dh, &mut d_emb);
        // Encoder, last block first: each block's output fed the next block and a skip, so
        // its gradient is the sum of the two.
        for (i, block) in self.input_blocks.iter_mut().enumerate().rev() {
            dh += d_skips[i].as_ref().expect("every skip was used");
            dh = block.backward(&cache.input[i], &dh, &mut d_emb);
        }
        self.embed.backward(&cache.embed, &d_emb);
        dh
    }
    // ANCHOR_END: unet_backward
}

/// `(B, C, H, W)` from the trait's dynamic-rank array (one copy into a row-major array).
fn as_images(x: &ArrayD<f32>) -> Array4<f32> {
    x.view()
        .into_dimensionality::<Ix4>()
        .unwrap_or_else(|_| panic!("U-Net: the input must be (B, C, H, W), got {:?}", x.shape()))
        .as_standard_layout()
        .into_owned()
}

impl Denoiser for UNet {
    /// The label term of `e` is each entry's row of the label table — a class's, the null
    /// one, or a blend of two classes' ([`Condition::rows`]).
    fn predict(&self, x_t: &ArrayD<f32>, t: &[usize], y: &Condition) -> ArrayD<f32> {
        let x = as_images(x_t);
        self.check_input(&x, t);
        let emb = self.embed.forward_infer_condition(t, y); // (B, emb_dim)
        self.forward_infer_embedded(&x, &emb).into_dyn()
    }
}

impl TrainableDenoiser for UNet {
    type Cache = UNetCache;

    fn forward_train(
        &self,
        x_t: &ArrayD<f32>,
        t: &[usize],
        y: &Condition,
    ) -> (ArrayD<f32>, UNetCache) {
        let (out, cache) = self.forward(
            &as_images(x_t),
            t,
            y.label_ids(self.null_label().unwrap_or(0)).as_deref(),
        );
        (out.into_dyn(), cache)
    }

    fn backward_train(&mut self, cache: &UNetCache, d_out: &ArrayD<f32>) {
        self.backward(cache, &as_images(d_out));
    }
}

impl Parameters for UNet {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.embed.visit(prefix, f);
        self.input_blocks.visit(&join(prefix, "input_blocks"), f);
        self.middle_block.visit(&join(prefix, "middle_block"), f);
        self.output_blocks.visit(&join(prefix, "output_blocks"), f);
        self.out_norm.visit(&join(prefix, "out.0"), f);
        self.out_conv.visit(&join(prefix, "out.2"), f);
    }
}

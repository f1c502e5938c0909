//! A tiny CLIP ([Radford et al. 2021](https://arxiv.org/abs/2103.00020)) for captioned clips:
//! the text tower ([`TextEncoder`], mean over the valid tokens, `text_projection: E → P`), the
//! video tower ([`ClipVideoEncoder`]) and the learned temperature, trained with the symmetric
//! InfoNCE loss of [`crate::text::contrastive`]. Only the text encoder is kept afterwards.
//!
//! CLIP takes the end-of-text token's feature; with a bidirectional encoder the mean over the
//! valid tokens is the simpler choice and sees every token. `text_projection` has no bias, as
//! CLIP's, and PyTorch's default Linear init.

use crate::error::{Error, Result};
use crate::nn::{Linear, LinearCache};
use crate::param::{join, Param, Parameters};
use crate::tensor::Rng;
use crate::text::contrastive::{info_nce, info_nce_backward, InfoNceCache, LOGIT_SCALE_INIT};
use crate::text::encoder::{
    pooled, pooled_backward, TextEncoder, TextEncoderCache, TextEncoderConfig,
};
use crate::text::video_tower::{ClipVideoCache, ClipVideoConfig, ClipVideoEncoder};
use ndarray::{Array2, Array5, ArrayD, IxDyn};

/// Both towers' sizes and the joint embedding width `P`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClipConfig {
    pub text: TextEncoderConfig,
    pub video: ClipVideoConfig,
    /// Joint embedding width `P` (64 by default).
    pub embed: usize,
}

impl ClipConfig {
    /// Checks both towers and `P`.
    pub fn validate(&self) -> Result<()> {
        self.text.validate()?;
        self.video.validate()?;
        if self.embed == 0 {
            return Err(Error::new(
                "CLIP embedding width is 0",
                "give an embedding width of at least 1",
            ));
        }
        Ok(())
    }
}

/// The two towers and the temperature.
#[derive(Clone, Debug)]
pub struct Clip {
    pub text: TextEncoder,
    pub text_projection: Linear, // E → P, no bias
    pub video: ClipVideoEncoder,
    /// $s$, the log of the logits' scale, initialised to $\ln(1/0.07)$.
    pub logit_scale: Param, // (1)
}

/// What [`Clip::backward`] needs.
pub struct ClipCache {
    mask: Array2<bool>, // (B, L)
    text: TextEncoderCache,
    text_projection: LinearCache,
    video: ClipVideoCache,
    loss: InfoNceCache,
}

impl Clip {
    /// A fresh model. Panics on an invalid config (see [`ClipConfig::validate`]).
    pub fn new(config: ClipConfig, rng: &mut Rng) -> Self {
        if let Err(e) = config.validate() {
            panic!("{e}");
        }
        let text = TextEncoder::new(config.text, rng);
        let text_projection = Linear::new(config.text.width, config.embed, false, rng);
        let video = ClipVideoEncoder::new(config.video, config.embed, rng);
        let logit_scale = Param::new(ArrayD::from_elem(IxDyn(&[1]), LOGIT_SCALE_INIT));
        Clip {
            text,
            text_projection,
            video,
            logit_scale,
        }
    }

    /// $s$ as a number.
    pub fn scale(&self) -> f32 {
        self.logit_scale.value[0]
    }

    /// Caption features (not normalised): ids, mask (B, L) → (B, P).
    pub fn encode_text(&self, ids: &Array2<usize>, mask: &Array2<bool>) -> Array2<f32> {
        let h = self.text.forward_infer(ids, mask); // (B, L, E)
        self.text_projection.forward_infer(&pooled(&h, mask))
    }

    /// Clip features (not normalised): (B, C, F, H, W) → (B, P).
    pub fn encode_video(&self, clips: &Array5<f32>) -> Array2<f32> {
        self.video.forward_infer(clips)
    }

    /// The contrastive loss of a batch of matching pairs (row `i` of each).
    pub fn forward(
        &self,
        ids: &Array2<usize>,
        mask: &Array2<bool>,
        clips: &Array5<f32>,
    ) -> (f32, ClipCache) {
        assert_eq!(
            ids.nrows(),
            clips.shape()[0],
            "CLIP: as many captions as clips"
        );
        let (h, text) = self.text.forward(ids, mask); // (B, L, E)
        let (t, text_projection) = self.text_projection.forward_owned(pooled(&h, mask)); // (B, P)
        let (v, video) = self.video.forward(clips); // (B, P)
        let (loss_value, loss) = info_nce(&t, &v, self.scale());
        let cache = ClipCache {
            mask: mask.clone(),
            text,
            text_projection,
            video,
            loss,
        };
        (loss_value, cache)
    }

    /// The loss without keeping anything.
    pub fn forward_infer(
        &self,
        ids: &Array2<usize>,
        mask: &Array2<bool>,
        clips: &Array5<f32>,
    ) -> f32 {
        let t = self.encode_text(ids, mask);
        let v = self.encode_video(clips);
        info_nce(&t, &v, self.scale()).0
    }

    /// Given `dloss`, adds into every parameter's gradient and returns `d_clips`
    /// (B, C, F, H, W).
    pub fn backward(&mut self, cache: &ClipCache, dloss: f32) -> Array5<f32> {
        let (dt, dv, ds) = info_nce_backward(&cache.loss, dloss);
        self.logit_scale.grad[0] += ds;
        let dp = self.text_projection.backward(&cache.text_projection, &dt); // (B, E)
        let dh = pooled_backward(&dp, &cache.mask); // (B, L, E)
        self.text.backward(&cache.text, &dh);
        self.video.backward(&cache.video, &dv)
    }
}

impl Parameters for Clip {
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.text.visit(&join(prefix, "text"), f);
        self.text_projection
            .visit(&join(prefix, "text_projection"), f);
        self.video.visit(&join(prefix, "video"), f);
        self.logit_scale.visit(&join(prefix, "logit_scale"), f);
    }
}

//! The caption path of a text-conditioned video DiT: tokenized captions → the text encoder
//! → the caption embedder → the blocks' context (and, optionally, a term of adaLN's $c$).
//!
//! ```text
//! Condition::Captions ─ ids, mask (B, L) ─ text_encoder ─ e (B, L, E)
//!   ─ y_embedder (null caption where dropped; y_proj) ─ context (B, L, D) → every block
//! ```
//!
//! The text encoder is pre-trained (CLIP) and **frozen**, as Open-Sora, PixArt, Latte-T2V and
//! Stable Diffusion freeze theirs: its weights are not the model's parameters (the optimizer,
//! the EMA and the gradient checks never see them) and travel in the checkpoint as fixed
//! tensors. With `train_encoder` the same encoder is trained jointly with the DiT instead —
//! the comparison of the Sora chapter — and its parameters are the model's, `text_encoder.*`.

use super::caption_embed::{CaptionEmbedder, CaptionEmbedderCache};
use crate::diffusion::Condition;
use crate::dit::Context;
use crate::error::{Error, Result};
use crate::io::checkpoint::Tensors;
use crate::param::{join, Param, Parameters};
use crate::text::encoder::{TextEncoder, TextEncoderCache};
use crate::text::tokenizer::{batch, Tokens, PAD};
use ndarray::{Array2, Array3};
use std::path::Path;

/// The text encoder and the caption embedder.
#[derive(Clone, Debug)]
pub struct TextPath {
    pub text_encoder: TextEncoder,
    /// Train the encoder with the DiT (joint) instead of keeping it frozen.
    pub train_encoder: bool,
    pub y_embedder: CaptionEmbedder,
}

/// What [`TextPath::backward`] needs.
pub struct TextPathCache {
    encoder: Option<TextEncoderCache>,
    y_embedder: CaptionEmbedderCache,
}

/// The padded ids and masks of a batch's captions, and which are null. A null entry reads a
/// placeholder of one `PAD` token, whose encoding the null caption replaces.
fn caption_batch(y: &Condition, b: usize) -> (Array2<usize>, Array2<bool>, Vec<bool>) {
    let captions: Vec<Option<Tokens>> = match y {
        Condition::Captions(c) => c.clone(),
        Condition::None => vec![None; b],
        other => panic!("a text-conditioned video DiT takes captions, not {other:?}"),
    };
    assert_eq!(
        captions.len(),
        b,
        "video DiT: {} captions for {b} clips",
        captions.len()
    );
    let len = captions.iter().flatten().map(|t| t.ids.len()).next();
    let placeholder = Tokens {
        ids: vec![PAD; len.unwrap_or(crate::text::tokenizer::MAX_LEN)],
        len: 1,
    };
    let null: Vec<bool> = captions.iter().map(Option::is_none).collect();
    let tokens: Vec<Tokens> = captions
        .into_iter()
        .map(|t| t.unwrap_or_else(|| placeholder.clone()))
        .collect();
    let (ids, mask) = batch(&tokens);
    (ids, mask, null)
}

impl TextPath {
    // ANCHOR: text_path
    /// The context (B, L, D) and the pooled adaLN term (B, D) of the captions in `y`
    /// ([`Condition::None`]: every caption null), keeping what backward needs.
    pub fn forward(
        &self,
        y: &Condition,
        b: usize,
    ) -> (Context, Option<Array2<f32>>, TextPathCache) {
        let (ids, mask, null) = caption_batch(y, b);
        // $e = \mathrm{TextEncoder}(\text{ids})$   (B, L, E); frozen: nothing kept
        let (e, encoder) = if self.train_encoder {
            let (e, cache) = self.text_encoder.forward(&ids, &mask);
            (e, Some(cache))
        } else {
            (self.text_encoder.forward_infer(&ids, &mask), None)
        };
        let (ctx, pooled, y_embedder) = self.y_embedder.forward(&e, &mask, &null);
        (
            ctx,
            pooled,
            TextPathCache {
                encoder,
                y_embedder,
            },
        )
    }
    // ANCHOR_END: text_path

    /// The same without keeping anything (sampling).
    pub fn forward_infer(&self, y: &Condition, b: usize) -> (Context, Option<Array2<f32>>) {
        let (ids, mask, null) = caption_batch(y, b);
        let e = self.text_encoder.forward_infer(&ids, &mask);
        self.y_embedder.forward_infer(&e, &mask, &null)
    }

    /// Given the context's gradient `dctx` (B, L, D) and `dc` (B, D) (the pooled term's),
    /// adds into the caption embedder's gradients and, when trained jointly, the encoder's.
    pub fn backward(&mut self, cache: &TextPathCache, dctx: &Array3<f32>, dc: &Array2<f32>) {
        let de = self.y_embedder.backward(&cache.y_embedder, dctx, Some(dc));
        if let Some(enc) = &cache.encoder {
            self.text_encoder.backward(enc, &de);
        }
    }

    /// The frozen encoder's tensors, `text_encoder.*`, for a checkpoint (empty when it is
    /// trained, and so among the parameters).
    pub fn frozen_tensors(&self) -> Vec<(String, ndarray::ArrayD<f32>)> {
        if self.train_encoder {
            return Vec::new();
        }
        let mut encoder = self.text_encoder.clone();
        let mut out = Vec::new();
        encoder.visit("text_encoder", &mut |name, p| {
            out.push((name.to_string(), p.value.clone()))
        });
        out
    }
}

impl TextPath {
    /// The names of [`frozen_tensors`](Self::frozen_tensors).
    pub fn frozen_names(&mut self) -> Vec<String> {
        if self.train_encoder {
            return Vec::new();
        }
        self.text_encoder
            .param_shapes()
            .into_iter()
            .map(|(name, _)| format!("text_encoder.{name}"))
            .collect()
    }

    /// Loads the frozen encoder's tensors from `tensors` (a checkpoint's); a missing or
    /// misshapen one is an error naming it.
    pub fn load_frozen(&mut self, path: &Path, tensors: &Tensors) -> Result<()> {
        if self.train_encoder {
            return Ok(());
        }
        let mut problem = None;
        self.text_encoder
            .visit("text_encoder", &mut |name, p| match tensors.get(name) {
                Some(t) if t.shape() == p.value.shape() => p.value.assign(t),
                _ => problem = problem.take().or(Some(name.to_string())),
            });
        match problem {
            None => Ok(()),
            Some(name) => Err(Error::new(
                format!(
                    "{} lacks the frozen text encoder's `{name}` (or its shape differs)",
                    path.display()
                ),
                "save the text-conditioned model again with this version of minisora",
            )),
        }
    }
}

impl Parameters for TextPath {
    /// `y_embedder.*` and, only when trained jointly, `text_encoder.*`.
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.y_embedder.visit(&join(prefix, "y_embedder"), f);
        if self.train_encoder {
            self.text_encoder.visit(&join(prefix, "text_encoder"), f);
        }
    }
}

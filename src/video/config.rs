//! The shape of a space-time DiT: an image DiT's config ([`DiTConfig`]: latent side, patch,
//! channels, width, heads, classes, learned σ) plus what time adds — the clip's length, the
//! temporal patch and the attention layout.
//!
//! A clip of $F$ latent frames, $I \times I$ each, cut into $p_t \times p \times p$ patches
//! gives $F' = F / p_t$ token frames of $S = (I/p)^2$ tokens, $T = F' S$ tokens per clip
//! (Sora's "spacetime patches"; $p_t = 1$ is Latte's per-frame patch, $p_t > 1$ a tubelet,
//! Open-Sora's `PatchEmbed3D`). `depth` counts blocks as Latte does: with the `alternating`
//! layout half of them are spatial and half temporal, so `video-tiny/2` has twice the blocks
//! of `DiT-tiny/2` — one spatial block per image block, which is what inflation needs.

use crate::dit::{Conditioning, DiTConfig};
use crate::error::{Error, Result};
use crate::text::encoder::TextEncoderConfig;
use crate::text::tokenizer::vocab_fingerprint;
use std::collections::BTreeMap;

/// The longest clip any table is made for (frames), the moving digits' limit.
pub const MAX_FRAMES: usize = 32;

// ANCHOR: layout
/// How the blocks attend across space and time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Layout {
    /// One attention over all $F' S$ tokens of a clip (Sora's report): cost $\propto (F'S)^2$.
    Full,
    /// Spatial blocks over each frame's $S$ tokens and temporal blocks over each position's
    /// $F'$ tokens, alternating (Latte's variant 1).
    #[default]
    Alternating,
    /// In every block a spatial attention, then a temporal attention, then the MLP
    /// (Open-Sora 1.0's STDiT); the temporal projection starts at zero.
    Factorized,
}
// ANCHOR_END: layout

impl Layout {
    pub const ALL: [Layout; 3] = [Layout::Full, Layout::Alternating, Layout::Factorized];

    pub fn name(self) -> &'static str {
        match self {
            Layout::Full => "full",
            Layout::Alternating => "alternating",
            Layout::Factorized => "factorized",
        }
    }

    /// `full`, `alternating` or `factorized`.
    pub fn parse(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        Layout::ALL
            .into_iter()
            .find(|l| l.name() == lower)
            .ok_or_else(|| {
                Error::new(
                    format!("unknown attention layout {s:?}"),
                    "use --layout full, alternating or factorized",
                )
            })
    }
}

/// The architecture of a [`VideoDiT`](super::VideoDiT).
#[derive(Clone, Debug, PartialEq)]
pub struct VideoDiTConfig {
    /// The per-frame part: `input_size` is the latent side, `patch_size` the spatial patch,
    /// `depth` every block (spatial and temporal); `conditioning` is adaLN-Zero.
    pub dit: DiTConfig,
    /// Latent frames $F$ the model is trained on (and its `temp_embed` has $F / p_t$ rows).
    pub frames: usize,
    /// Frames per patch $p_t$: 1 (per-frame patches) or more (tubelets).
    pub temporal_patch: usize,
    pub layout: Layout,
    /// Captions instead of class labels: every block cross-attends to the caption.
    pub text: Option<CaptionConfig>,
}

// ANCHOR: caption_config
/// How a text-conditioned video DiT reads a caption: its text encoder's shape (width $E$ is
/// Open-Sora's `caption_channels`, `max_len` $L$ the null caption's length) and two choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptionConfig {
    pub encoder: TextEncoderConfig,
    /// Whether the caption, mean-pooled over its words, is also added to adaLN's
    /// conditioning vector $c = e_t + W \bar e$ (PixArt and STDiT use cross-attention only).
    pub pooled: bool,
    /// Train the text encoder with the DiT instead of keeping it frozen.
    pub train_encoder: bool,
}
// ANCHOR_END: caption_config

const TEXT_KEYS: [&str; 5] = [
    "text.vocab",
    "text.max_len",
    "text.width",
    "text.depth",
    "text.heads",
];
const TEXT_POOLED: &str = "text.pooled";
/// The metadata key of a text-conditioned model's vocabulary (its words, in id order).
pub const VOCAB_KEY: &str = "text.vocabulary";
const TEXT_TRAINED: &str = "text.train_encoder";
const FRAMES: &str = "video.frames";
const TEMPORAL_PATCH: &str = "video.temporal_patch";
const LAYOUT: &str = "video.layout";

impl VideoDiTConfig {
    /// `video-<size>/<p>` (or `DiT-<size>/<p>`) for a clip of `frames` latent frames of
    /// `input_size`² × `in_channels`: the image size's width and heads, and its depth doubled
    /// for `alternating` (one temporal block per spatial one).
    pub fn named(
        name: &str,
        layout: Layout,
        frames: usize,
        temporal_patch: usize,
        input_size: usize,
        in_channels: usize,
        num_classes: usize,
    ) -> Result<Self> {
        let lower = name.trim().to_ascii_lowercase();
        let bare = lower.strip_prefix("video-").unwrap_or(&lower);
        let mut dit =
            DiTConfig::named(bare, input_size, in_channels, num_classes).map_err(|_| {
                Error::new(
                format!("unknown video DiT config \"{name}\""),
                "use video-<size>/<patch> with a DiT size (mini, tiny, small, S, B, L, XL) and \
                 patch 2, 4 or 8, e.g. video-tiny/2",
            )
            })?;
        if layout == Layout::Alternating {
            dit.depth *= 2;
        }
        let config = VideoDiTConfig {
            dit,
            frames,
            temporal_patch,
            layout,
            text: None,
        };
        config.validate()?;
        Ok(config)
    }

    /// Token frames $F' = F / p_t$.
    pub fn token_frames(&self) -> usize {
        self.frames / self.temporal_patch
    }

    /// Tokens per frame $S = (I/p)^2$.
    pub fn tokens_per_frame(&self) -> usize {
        self.dit.num_patches()
    }

    /// Checks the image part and the temporal fields; the error names the field and the fix.
    pub fn validate(&self) -> Result<()> {
        self.dit.validate()?;
        if self.dit.conditioning != Conditioning::AdaLnZero {
            return Err(Error::new(
                "video DiT: only adaLN-Zero conditioning is built",
                "drop --conditioning for a video model",
            ));
        }
        check_frames(self.frames, self.temporal_patch)?;
        if self.layout == Layout::Alternating && self.dit.depth % 2 != 0 {
            return Err(Error::new(
                format!(
                    "video DiT: the alternating layout needs an even depth, got {}",
                    self.dit.depth
                ),
                "use an even depth: a spatial and a temporal block per pair",
            ));
        }
        if let Some(t) = &self.text {
            // the text path reads every caption padded to the tokenizer's length, and the null
            // caption and the context's gradient have `max_len` rows: they must agree
            if t.encoder.max_len != crate::text::tokenizer::MAX_LEN {
                return Err(Error::new(
                    format!(
                        "video DiT: the text encoder's max_len is {}, but captions are {} tokens",
                        t.encoder.max_len,
                        crate::text::tokenizer::MAX_LEN
                    ),
                    format!(
                        "use a text encoder with max_len {}",
                        crate::text::tokenizer::MAX_LEN
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The config as checkpoint metadata: the image part's `dit.*` keys and `video.*`.
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let mut meta = self.dit.to_metadata();
        meta.insert(FRAMES.into(), self.frames.to_string());
        meta.insert(TEMPORAL_PATCH.into(), self.temporal_patch.to_string());
        meta.insert(LAYOUT.into(), self.layout.name().into());
        if let Some(t) = &self.text {
            let e = &t.encoder;
            for (key, v) in TEXT_KEYS
                .iter()
                .zip([e.vocab, e.max_len, e.width, e.depth, e.heads])
            {
                meta.insert(key.to_string(), v.to_string());
            }
            meta.insert(TEXT_POOLED.into(), t.pooled.to_string());
            meta.insert(TEXT_TRAINED.into(), t.train_encoder.to_string());
            meta.insert(VOCAB_KEY.into(), vocab_fingerprint());
        }
        meta
    }

    /// Rebuilds a config from [`to_metadata`](Self::to_metadata)'s map; a checkpoint without
    /// `video.*` keys is an image DiT, and the error says so.
    pub fn from_metadata(m: &BTreeMap<String, String>) -> Result<Self> {
        let Some(frames) = m.get(FRAMES) else {
            return Err(Error::new(
                "the checkpoint holds an image DiT, not a video DiT (no video.frames)",
                "pass a checkpoint written by `minisora train --model video-…`, or turn the \
                 image DiT into one with `minisora inflate`",
            ));
        };
        let number = |key: &str, v: &str| -> Result<usize> {
            v.parse().map_err(|_| {
                Error::new(
                    format!("video DiT metadata: {key} = {v:?} is not a number"),
                    "the checkpoint's metadata is damaged; save the model again",
                )
            })
        };
        let config = VideoDiTConfig {
            dit: DiTConfig::from_metadata(m)?,
            frames: number(FRAMES, frames)?,
            temporal_patch: number(TEMPORAL_PATCH, m.get(TEMPORAL_PATCH).map_or("1", |s| s))?,
            layout: Layout::parse(m.get(LAYOUT).map_or("alternating", |s| s))?,
            text: match m.contains_key(TEXT_KEYS[0]) {
                false => None,
                true => {
                    let mut v = [0; 5];
                    for (v, key) in v.iter_mut().zip(TEXT_KEYS) {
                        *v = number(key, m.get(key).map_or("", |s| s))?;
                    }
                    let [vocab, max_len, width, depth, heads] = v;
                    let encoder = TextEncoderConfig {
                        vocab,
                        max_len,
                        width,
                        depth,
                        heads,
                    };
                    encoder.validate()?;
                    Some(CaptionConfig {
                        encoder,
                        pooled: m.get(TEXT_POOLED).is_some_and(|s| s == "true"),
                        train_encoder: m.get(TEXT_TRAINED).is_some_and(|s| s == "true"),
                    })
                }
            },
        };
        config.validate()?;
        Ok(config)
    }
}

/// A clip length a model can take: 1 to [`MAX_FRAMES`], whole temporal patches.
pub fn check_frames(frames: usize, temporal_patch: usize) -> Result<()> {
    if frames == 0 || frames > MAX_FRAMES {
        return Err(Error::new(
            format!("{frames} frames: a clip has 1 to {MAX_FRAMES} frames"),
            format!("use --frames between 1 and {MAX_FRAMES} (the position tables' length)"),
        ));
    }
    if temporal_patch == 0 || frames % temporal_patch != 0 {
        return Err(Error::new(
            format!("{frames} frames do not cut into temporal patches of {temporal_patch}"),
            "use a frame count that is a multiple of the temporal patch (or --temporal-patch 1)",
        ));
    }
    Ok(())
}

/// A latent frame size `h × w` a model with spatial patch `patch` can take: whole patches,
/// at least one (any grid: the spatial sin-cos table is computed for it).
pub fn check_size(h: usize, w: usize, patch: usize) -> Result<()> {
    if h == 0 || w == 0 || patch == 0 || h % patch != 0 || w % patch != 0 {
        return Err(Error::new(
            format!("{h}×{w} latent frames do not cut into {patch}×{patch} patches"),
            format!("use a height and a width that are positive multiples of {patch}"),
        ));
    }
    Ok(())
}

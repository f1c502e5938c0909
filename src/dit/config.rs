//! The shape of a DiT: the constructor arguments of `DiT` in facebookresearch/DiT `models.py`
//! (Peebles & Xie 2023, <https://arxiv.org/abs/2212.09748>), and the named configs.
//!
//! A name such as `DiT-XL/2` is a model size (depth, width, heads) and a patch size. The
//! paper's four sizes are S, B, L and XL; three smaller ones, `mini`, `tiny` and `small`, are
//! sized for a CPU. Every size comes with patch 2, 4 or 8: a smaller patch means more tokens,
//! $T = (I/p)^2$ for an $I \times I$ latent, so more compute at the same parameter count.
//! A config travels with every checkpoint as string metadata (`dit.hidden_size`, …).

use super::conditioning::Conditioning;
use crate::error::{Error, Result};
use crate::io::metadata::{key_values, MetaReader};
use std::collections::BTreeMap;

// ANCHOR: dit_config
/// The architecture of a [`DiT`](super::DiT).
#[derive(Clone, Debug, PartialEq)]
pub struct DiTConfig {
    /// Side of the (square) input: 32 for a 256² image through SD's 8× VAE, 8 for our 32²
    /// digits through the 4× VAE.
    pub input_size: usize,
    /// Side of a patch: 2, 4 or 8. The input is cut into $(I/p)^2$ tokens.
    pub patch_size: usize,
    /// Input channels: 4 for latents.
    pub in_channels: usize,
    /// Token width `D`.
    pub hidden_size: usize,
    /// Number of DiT blocks.
    pub depth: usize,
    /// Attention heads; they split `D`.
    pub num_heads: usize,
    /// MLP width as a multiple of `D` (4 in every DiT).
    pub mlp_ratio: f32,
    /// The probability of replacing a label with the null label during training, for
    /// classifier-free guidance (stored here; the trainer drops the labels).
    pub class_dropout_prob: f32,
    /// Number of classes; the label table has one more row, the null label `num_classes`.
    pub num_classes: usize,
    /// Predict the variance too: `2 · in_channels` outputs (DiT's default).
    pub learn_sigma: bool,
    /// How the blocks read the timestep and class (adaLN-Zero in the reference). Stored as
    /// `dit.conditioning`; a checkpoint without the key is adaLN-Zero.
    pub conditioning: Conditioning,
}
// ANCHOR_END: dit_config

/// Model sizes by name: (name, depth, hidden size, heads). The first four are the paper's
/// (`models.py`'s `DiT_S_2` … `DiT_XL_8`); the last three are for the CPU.
pub const SIZES: [(&str, usize, usize, usize); 7] = [
    ("S", 12, 384, 6),
    ("B", 12, 768, 12),
    ("L", 24, 1024, 16),
    ("XL", 28, 1152, 16),
    ("mini", 4, 64, 4),
    ("tiny", 6, 128, 4),
    ("small", 8, 192, 6),
];

/// The patch sizes of the named configs.
pub const PATCHES: [usize; 3] = [2, 4, 8];

/// The metadata keys, in the order of the fields.
const KEYS: [&str; 10] = [
    "dit.input_size",
    "dit.patch_size",
    "dit.in_channels",
    "dit.hidden_size",
    "dit.depth",
    "dit.num_heads",
    "dit.mlp_ratio",
    "dit.class_dropout_prob",
    "dit.num_classes",
    "dit.learn_sigma",
];

/// The conditioning mechanism's key, optional (checkpoints written before it existed, and
/// PyTorch's, are adaLN-Zero).
const CONDITIONING_KEY: &str = "dit.conditioning";

impl DiTConfig {
    /// Every valid name, `DiT-S/2` … `DiT-small/8`.
    pub fn names() -> Vec<String> {
        SIZES
            .iter()
            .flat_map(|(size, ..)| PATCHES.iter().map(move |p| format!("DiT-{size}/{p}")))
            .collect()
    }

    /// The named config (`DiT-XL/2`, `dit-tiny/4`, …; case-insensitive, the `DiT-` prefix
    /// optional) for an `input_size`² input of `in_channels`, with `num_classes` classes and
    /// the reference's defaults: MLP ratio 4, label dropout 0.1, learned variance.
    pub fn named(
        name: &str,
        input_size: usize,
        in_channels: usize,
        num_classes: usize,
    ) -> Result<Self> {
        let lower = name.trim().to_ascii_lowercase();
        let bare = lower.strip_prefix("dit-").unwrap_or(&lower);
        let found = bare.split_once('/').and_then(|(size, patch)| {
            let (_, depth, hidden, heads) =
                SIZES.iter().find(|s| s.0.eq_ignore_ascii_case(size))?;
            let patch: usize = patch.parse().ok().filter(|p| PATCHES.contains(p))?;
            Some((*depth, *hidden, *heads, patch))
        });
        let Some((depth, hidden_size, num_heads, patch_size)) = found else {
            return Err(Error::new(
                format!("unknown DiT config \"{name}\""),
                format!("use one of {}", Self::names().join(", ")),
            ));
        };
        let config = DiTConfig {
            input_size,
            patch_size,
            in_channels,
            hidden_size,
            depth,
            num_heads,
            mlp_ratio: 4.0,
            class_dropout_prob: 0.1,
            num_classes,
            learn_sigma: true,
            conditioning: Conditioning::AdaLnZero,
        };
        config.validate()?;
        Ok(config)
    }

    /// Output channels: `2 · in_channels` with a learned variance (ε, then the variance
    /// interpolation `v`), else `in_channels`.
    pub fn out_channels(&self) -> usize {
        if self.learn_sigma {
            2 * self.in_channels
        } else {
            self.in_channels
        }
    }

    /// Patches per side, $I / p$.
    pub fn grid_size(&self) -> usize {
        self.input_size / self.patch_size
    }

    /// Tokens, $T = (I/p)^2$.
    pub fn num_patches(&self) -> usize {
        self.grid_size() * self.grid_size()
    }

    /// Width of the MLP's hidden layer, `int(D · mlp_ratio)` as in the reference.
    pub fn mlp_hidden(&self) -> usize {
        (self.hidden_size as f32 * self.mlp_ratio) as usize
    }

    /// Checks that the config describes a buildable model; the error names the bad field.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("input_size", self.input_size, "e.g. 8 for 8×8 latents"),
            ("patch_size", self.patch_size, "2, 4 or 8"),
            ("in_channels", self.in_channels, "4 for latents"),
            ("hidden_size", self.hidden_size, "e.g. 128"),
            ("depth", self.depth, "e.g. 6"),
            ("num_heads", self.num_heads, "e.g. 4"),
            ("num_classes", self.num_classes, "the dataset's classes"),
        ];
        for (field, value, example) in positive {
            if value == 0 {
                return Err(Error::new(
                    format!("DiT config: {field} is 0"),
                    format!("set {field} to a positive number ({example})"),
                ));
            }
        }
        if self.input_size % self.patch_size != 0 {
            return Err(Error::new(
                format!(
                    "DiT config: patch_size {} does not divide input_size {}",
                    self.patch_size, self.input_size
                ),
                "choose a patch size that divides the input side (e.g. 2 or 4 for 8×8)",
            ));
        }
        if self.hidden_size % self.num_heads != 0 {
            return Err(Error::new(
                format!(
                    "DiT config: {} heads do not split hidden_size {}",
                    self.num_heads, self.hidden_size
                ),
                "choose num_heads dividing hidden_size",
            ));
        }
        if self.hidden_size % 4 != 0 {
            return Err(Error::new(
                format!(
                    "DiT config: hidden_size {} is not a multiple of 4",
                    self.hidden_size
                ),
                "the 2-D sin-cos position embedding needs sin and cos for each of two axes: \
                 use a multiple of 4",
            ));
        }
        if !(self.mlp_ratio.is_finite() && self.mlp_hidden() >= 1) {
            return Err(Error::new(
                format!(
                    "DiT config: mlp_ratio {} gives no MLP width for hidden_size {}",
                    self.mlp_ratio, self.hidden_size
                ),
                "use a positive ratio (DiT uses 4)",
            ));
        }
        if !(0.0..1.0).contains(&self.class_dropout_prob) {
            return Err(Error::new(
                format!(
                    "DiT config: class_dropout_prob {} is not in [0, 1)",
                    self.class_dropout_prob
                ),
                "use a probability below 1 (DiT uses 0.1)",
            ));
        }
        Ok(())
    }

    /// The config as checkpoint metadata: `dit.<field>` → value.
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let values = [
            self.input_size.to_string(),
            self.patch_size.to_string(),
            self.in_channels.to_string(),
            self.hidden_size.to_string(),
            self.depth.to_string(),
            self.num_heads.to_string(),
            self.mlp_ratio.to_string(),
            self.class_dropout_prob.to_string(),
            self.num_classes.to_string(),
            self.learn_sigma.to_string(),
        ];
        let mut meta = key_values(&KEYS, values);
        meta.insert(CONDITIONING_KEY.into(), self.conditioning.name().into());
        meta
    }

    /// Rebuilds a config from [`to_metadata`](Self::to_metadata)'s map, and validates it.
    pub fn from_metadata(m: &BTreeMap<String, String>) -> Result<Self> {
        let m = MetaReader::new(
            m,
            "DiT",
            "load a checkpoint saved with a DiT (its metadata holds the config)",
        );
        let float = |key: &str| -> Result<f32> {
            let v = m.text(key)?;
            v.parse().map_err(|_| {
                Error::new(
                    format!("DiT metadata: {key} = {v:?} is not a number"),
                    "the checkpoint's metadata is damaged; save the model again",
                )
            })
        };
        let config = DiTConfig {
            input_size: m.usize(KEYS[0])?,
            patch_size: m.usize(KEYS[1])?,
            in_channels: m.usize(KEYS[2])?,
            hidden_size: m.usize(KEYS[3])?,
            depth: m.usize(KEYS[4])?,
            num_heads: m.usize(KEYS[5])?,
            mlp_ratio: float(KEYS[6])?,
            class_dropout_prob: float(KEYS[7])?,
            num_classes: m.usize(KEYS[8])?,
            learn_sigma: m.bool(KEYS[9])?,
            conditioning: match m.text(CONDITIONING_KEY).ok() {
                Some(name) => Conditioning::parse(name)?,
                None => Conditioning::AdaLnZero,
            },
        };
        config.validate()?;
        Ok(config)
    }
}

//! The shape of a U-Net: ADM's `UNetModel` arguments (openai/improved-diffusion `unet.py`),
//! scaled down for the CPU. The default maps an 8×8×4 latent through two levels (8×8 and 4×4)
//! with attention at the lower one. A config travels with every checkpoint as string metadata
//! (`unet.in_channels`, …) so a saved model can be rebuilt.

use crate::error::{Error, Result};
use crate::io::metadata::{key_values, list_text, MetaReader};
use std::collections::BTreeMap;

// ANCHOR: unet_config
/// The architecture of a [`UNet`](super::UNet).
#[derive(Clone, Debug, PartialEq)]
pub struct UNetConfig {
    /// Input channels: 4 for VAE latents, 1 for grey pixels.
    pub in_channels: usize,
    /// Output channels: `in_channels`, or `2 · in_channels` when the variance is learned.
    pub out_channels: usize,
    /// Width of the first level (ADM `model_channels`); level `i` has
    /// `model_channels · channel_mult[i]` channels.
    pub model_channels: usize,
    /// One multiplier per resolution level; every level but the last halves the image.
    pub channel_mult: Vec<usize>,
    /// ResBlocks per level on the way down (the way up has one more per level).
    pub num_res_blocks: usize,
    /// Downsampling rates `ds` (1, 2, 4, …) whose levels get self-attention after each
    /// ResBlock (ADM's `attention_resolutions`). The middle block always has attention.
    pub attention_ds: Vec<usize>,
    /// Attention heads; they split the channels, so they must divide every attended width.
    pub num_heads: usize,
    /// GroupNorm groups (ADM uses 32); must divide every width.
    pub groups: usize,
    /// `Some(n)` for a class-conditional model: the label table has `n + 1` rows, the last
    /// being the null label of classifier-free guidance.
    pub num_classes: Option<usize>,
    /// ADM's `use_scale_shift_norm`: the timestep enters as $\mathrm{GN}(h)(1 + s) + b$;
    /// `false` adds it to `h` before the norm instead.
    pub scale_shift: bool,
}

impl Default for UNetConfig {
    /// 4 → 4 channels, widths 64/128, two ResBlocks per level, attention at ds 2 with 4 heads,
    /// 8 groups, unconditional, scale-shift.
    fn default() -> Self {
        UNetConfig {
            in_channels: 4,
            out_channels: 4,
            model_channels: 64,
            channel_mult: vec![1, 2],
            num_res_blocks: 2,
            attention_ds: vec![2],
            num_heads: 4,
            groups: 8,
            num_classes: None,
            scale_shift: true,
        }
    }
}
// ANCHOR_END: unet_config

/// The metadata keys, in the order of the fields.
const KEYS: [&str; 10] = [
    "unet.in_channels",
    "unet.out_channels",
    "unet.model_channels",
    "unet.channel_mult",
    "unet.num_res_blocks",
    "unet.attention_ds",
    "unet.num_heads",
    "unet.groups",
    "unet.num_classes",
    "unet.scale_shift",
];

impl UNetConfig {
    /// Width of the timestep (and label) embedding: `4 · model_channels`, as ADM.
    pub fn emb_dim(&self) -> usize {
        4 * self.model_channels
    }

    /// How much smaller the lowest level is than the input along each side: `2^(levels − 1)`.
    /// Inputs must have sides divisible by it.
    pub fn downsample_factor(&self) -> usize {
        1 << self.channel_mult.len().saturating_sub(1)
    }

    /// The width of every level, `model_channels · channel_mult[i]`.
    pub fn widths(&self) -> Vec<usize> {
        self.channel_mult
            .iter()
            .map(|m| self.model_channels * m)
            .collect()
    }

    /// Whether the level with downsampling rate `ds` has attention.
    pub fn attends_at(&self, ds: usize) -> bool {
        self.attention_ds.contains(&ds)
    }

    /// Checks that the config describes a buildable model; the error names the bad field.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            (
                "in_channels",
                self.in_channels,
                "4 for latents, 1 for grey pixels",
            ),
            (
                "out_channels",
                self.out_channels,
                "in_channels, or 2·in_channels",
            ),
            ("model_channels", self.model_channels, "e.g. 64"),
            ("num_heads", self.num_heads, "e.g. 4"),
            ("groups", self.groups, "e.g. 8"),
        ];
        for (field, value, example) in positive {
            if value == 0 {
                return Err(Error::new(
                    format!("U-Net config: {field} is 0"),
                    format!("set {field} to a positive number ({example})"),
                ));
            }
        }
        if self.out_channels != self.in_channels && self.out_channels != 2 * self.in_channels {
            return Err(Error::new(
                format!(
                    "U-Net config: out_channels = {} is neither in_channels = {} nor twice it",
                    self.out_channels, self.in_channels
                ),
                "set out_channels to in_channels (fixed variance) or 2·in_channels \
                 (learned variance)",
            ));
        }
        if self.channel_mult.is_empty() {
            return Err(Error::new(
                "U-Net config: channel_mult is empty (the model needs at least one level)",
                "give one multiplier per level, e.g. channel_mult = [1, 2]",
            ));
        }
        if let Some(i) = self.channel_mult.iter().position(|&m| m == 0) {
            return Err(Error::new(
                format!("U-Net config: channel_mult[{i}] is 0"),
                "every multiplier must be at least 1",
            ));
        }
        let levels = self.channel_mult.len();
        for &ds in &self.attention_ds {
            if !(0..levels).any(|l| 1 << l == ds) {
                return Err(Error::new(
                    format!(
                        "U-Net config: attention_ds contains {ds}, but the {levels} levels \
                         have downsampling rates {:?}",
                        (0..levels).map(|l| 1usize << l).collect::<Vec<_>>()
                    ),
                    "list only rates 1, 2, 4, … up to 2^(levels − 1)",
                ));
            }
        }
        if self.num_classes == Some(0) {
            return Err(Error::new(
                "U-Net config: num_classes is Some(0)",
                "use None for an unconditional model, or the number of classes",
            ));
        }
        for (i, width) in self.widths().into_iter().enumerate() {
            if width % self.groups != 0 {
                return Err(Error::new(
                    format!(
                        "U-Net config: groups = {} does not divide the width of level {i}, \
                         model_channels · channel_mult[{i}] = {width}",
                        self.groups
                    ),
                    "choose groups dividing every model_channels · channel_mult[i]",
                ));
            }
            // The middle block (at the last level) always attends.
            if (self.attends_at(1 << i) || i == levels - 1) && width % self.num_heads != 0 {
                return Err(Error::new(
                    format!(
                        "U-Net config: num_heads = {} does not divide the width {width} of \
                         level {i}, which has attention",
                        self.num_heads
                    ),
                    "choose num_heads dividing every attended width",
                ));
            }
        }
        Ok(())
    }

    /// Checks that an input of `h × w` fits: both sides divisible by the downsampling factor,
    /// so every skip connection meets a feature map of its own size on the way up.
    pub fn check_size(&self, h: usize, w: usize) -> Result<()> {
        let f = self.downsample_factor();
        if h == 0 || w == 0 || h % f != 0 || w % f != 0 {
            return Err(Error::new(
                format!("U-Net: an input of {h}×{w} does not halve cleanly {f} times"),
                format!("use sides that are positive multiples of {f}"),
            ));
        }
        Ok(())
    }

    /// The config as checkpoint metadata: `unet.<field>` → value (lists as `1,2`,
    /// `num_classes` as a number or `none`).
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let values = [
            self.in_channels.to_string(),
            self.out_channels.to_string(),
            self.model_channels.to_string(),
            list_text(&self.channel_mult),
            self.num_res_blocks.to_string(),
            list_text(&self.attention_ds),
            self.num_heads.to_string(),
            self.groups.to_string(),
            self.num_classes
                .map_or_else(|| "none".to_string(), |n| n.to_string()),
            self.scale_shift.to_string(),
        ];
        key_values(&KEYS, values)
    }

    /// Rebuilds a config from [`to_metadata`](Self::to_metadata)'s map, and validates it.
    pub fn from_metadata(m: &BTreeMap<String, String>) -> Result<Self> {
        let m = MetaReader::new(
            m,
            "U-Net",
            "load a checkpoint saved with a U-Net (its metadata holds the config)",
        );
        let config = UNetConfig {
            in_channels: m.usize(KEYS[0])?,
            out_channels: m.usize(KEYS[1])?,
            model_channels: m.usize(KEYS[2])?,
            channel_mult: m.list(KEYS[3])?,
            num_res_blocks: m.usize(KEYS[4])?,
            attention_ds: m.list(KEYS[5])?,
            num_heads: m.usize(KEYS[6])?,
            groups: m.usize(KEYS[7])?,
            num_classes: m.optional_usize(KEYS[8])?,
            scale_shift: m.bool(KEYS[9])?,
        };
        config.validate()?;
        Ok(config)
    }
}

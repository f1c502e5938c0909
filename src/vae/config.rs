//! The shape of a KL-VAE: how many levels, how wide, how many latent channels.
//!
//! The fields follow latent-diffusion's `ddconfig` (`ch`, `ch_mult`, `num_res_blocks`,
//! `z_channels`, …, see `ldm/modules/diffusionmodules/model.py`), scaled down for the CPU:
//! the default turns a 32×32 image into an 8×8×4 latent. A config travels with every
//! checkpoint as string metadata (`vae.in_channels`, …) so a saved model can be rebuilt.

use crate::error::{Error, Result};
use crate::io::metadata::{key_values, list_text, MetaReader};
use std::collections::BTreeMap;

// ANCHOR: vae_config
/// The architecture of an [`AutoencoderKL`](super::AutoencoderKL).
#[derive(Clone, Debug, PartialEq)]
pub struct VaeConfig {
    /// Image channels: 1 (digits) or 3 (RGB).
    pub in_channels: usize,
    /// Width of the first level (LDM `ch`); level `i` has `base_channels · channel_mult[i]`.
    pub base_channels: usize,
    /// One multiplier per resolution level; every level but the last halves the image, so the
    /// downsampling factor is `2^(len − 1)`.
    pub channel_mult: Vec<usize>,
    /// ResnetBlocks per level in the encoder (the decoder has one more per level, as in LDM).
    pub num_res_blocks: usize,
    /// Latent channels; the encoder outputs twice as many (mean and log-variance).
    pub z_channels: usize,
    /// Self-attention between the two middle ResnetBlocks.
    pub mid_attention: bool,
    /// GroupNorm groups; must divide every width `base_channels · channel_mult[i]`.
    pub groups: usize,
}

impl Default for VaeConfig {
    /// 1 channel, widths 32/64/64, one ResnetBlock per level, 4 latent channels, mid
    /// attention, 8 groups: 32×32 → 8×8×4.
    fn default() -> Self {
        VaeConfig {
            in_channels: 1,
            base_channels: 32,
            channel_mult: vec![1, 2, 2],
            num_res_blocks: 1,
            z_channels: 4,
            mid_attention: true,
            groups: 8,
        }
    }
}
// ANCHOR_END: vae_config

/// The metadata keys, in the order of the fields.
const KEYS: [&str; 7] = [
    "vae.in_channels",
    "vae.base_channels",
    "vae.channel_mult",
    "vae.num_res_blocks",
    "vae.z_channels",
    "vae.mid_attention",
    "vae.groups",
];

impl VaeConfig {
    /// How much smaller the latent is than the image along each side: `2^(levels − 1)`.
    pub fn downsample_factor(&self) -> usize {
        1 << self.channel_mult.len().saturating_sub(1)
    }

    /// The width of every level, `base_channels · channel_mult[i]`.
    pub fn widths(&self) -> Vec<usize> {
        self.channel_mult
            .iter()
            .map(|m| self.base_channels * m)
            .collect()
    }

    /// Checks that the config describes a buildable model; the error names the bad field.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("in_channels", self.in_channels, "1 (grey) or 3 (RGB)"),
            ("base_channels", self.base_channels, "e.g. 32"),
            ("z_channels", self.z_channels, "e.g. 4"),
            ("groups", self.groups, "e.g. 8"),
        ];
        for (field, value, example) in positive {
            if value == 0 {
                return Err(Error::new(
                    format!("VAE config: {field} is 0"),
                    format!("set {field} to a positive number ({example})"),
                ));
            }
        }
        if self.channel_mult.is_empty() {
            return Err(Error::new(
                "VAE config: channel_mult is empty (the model needs at least one level)",
                "give one multiplier per level, e.g. channel_mult = [1, 2, 2]",
            ));
        }
        if let Some(i) = self.channel_mult.iter().position(|&m| m == 0) {
            return Err(Error::new(
                format!("VAE config: channel_mult[{i}] is 0"),
                "every multiplier must be at least 1",
            ));
        }
        for (i, width) in self.widths().into_iter().enumerate() {
            if width % self.groups != 0 {
                return Err(Error::new(
                    format!(
                        "VAE config: groups = {} does not divide the width of level {i}, \
                         base_channels · channel_mult[{i}] = {width}",
                        self.groups
                    ),
                    "choose groups dividing every base_channels · channel_mult[i], \
                     or change base_channels",
                ));
            }
        }
        Ok(())
    }

    /// The config as checkpoint metadata: `vae.<field>` → value (`channel_mult` as `1,2,2`).
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let values = [
            self.in_channels.to_string(),
            self.base_channels.to_string(),
            list_text(&self.channel_mult),
            self.num_res_blocks.to_string(),
            self.z_channels.to_string(),
            self.mid_attention.to_string(),
            self.groups.to_string(),
        ];
        key_values(&KEYS, values)
    }

    /// Rebuilds a config from [`to_metadata`](Self::to_metadata)'s map, and validates it.
    pub fn from_metadata(m: &BTreeMap<String, String>) -> Result<Self> {
        let m = MetaReader::new(
            m,
            "VAE",
            "load a checkpoint saved by the VAE trainer (its metadata holds the config)",
        );
        let config = VaeConfig {
            in_channels: m.usize(KEYS[0])?,
            base_channels: m.usize(KEYS[1])?,
            channel_mult: m.list(KEYS[2])?,
            num_res_blocks: m.usize(KEYS[3])?,
            z_channels: m.usize(KEYS[4])?,
            mid_attention: m.bool(KEYS[5])?,
            groups: m.usize(KEYS[6])?,
        };
        config.validate()?;
        Ok(config)
    }
}

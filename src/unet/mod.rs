//! The U-Net baseline of improved DDPM / ADM (Nichol & Dhariwal 2021,
//! <https://arxiv.org/abs/2102.09672>; `unet.py` of openai/improved-diffusion), scaled down:
//! the architecture DiT replaces, built so the two can be compared at equal compute.
//!
//! - blocks: [`embed`] (timestep MLP and label table), [`resblock`] (timestep injection by
//!   scale-shift or addition), [`attention`] (multi-head self-attention over positions)
//! - the model: [`config`], [`sequential`] (a block: layers in order), [`model`] (encoder with stored skips, middle, decoder that
//!   concatenates them), [`flops`] (multiply-accumulates per forward, DiT's convention)

pub mod attention;
pub mod config;
pub mod embed;
pub mod flops;
pub mod model;
pub mod resblock;
pub mod sequential;

pub use attention::{AttentionBlock, AttentionBlockCache};
pub use config::UNetConfig;
pub use embed::{TimestepEmbedder, TimestepEmbedderCache};
pub use model::{UNet, UNetCache};
pub use resblock::{ResBlock, ResBlockCache};
pub use sequential::{Block, Layer, LayerCache};

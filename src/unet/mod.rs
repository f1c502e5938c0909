//! The U-Net baseline of improved DDPM / ADM (Nichol & Dhariwal 2021,
//! <https://arxiv.org/abs/2102.09672>; `unet.py` of openai/improved-diffusion), scaled down:
//! the architecture DiT replaces, built so the two can be compared at equal compute.

pub mod attention;
pub mod config;
pub mod embed;
pub mod flops;
pub mod model;
pub mod resblock;
pub mod train;

pub use attention::{AttentionBlock, AttentionBlockCache};
pub use config::UNetConfig;
pub use embed::{TimestepEmbedder, TimestepEmbedderCache};
pub use model::{Block, Layer, LayerCache, UNet, UNetCache};
pub use resblock::{ResBlock, ResBlockCache};

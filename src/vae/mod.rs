//! The KL-regularised autoencoder of latent diffusion (Rombach et al. 2022,
//! <https://arxiv.org/abs/2112.10752>), scaled down: images in, a small grid of Gaussian
//! latents out, and back. Every later model (latent diffusion, the U-Net, DiT; the video DiT
//! once it is written) works in its latent space.
//!
//! - blocks: [`resblock`], [`attn_block`], and from [`crate::nn`] the
//!   [`Downsample`](crate::nn::Downsample) and [`Upsample`](crate::nn::Upsample)
//! - the model: [`config`], [`distribution`], [`encoder`], [`decoder`], [`autoencoder`]
//! - using it: [`train`] (training and the latent scale), [`encode`] (a dataset to a latent file)

pub mod attn_block;
pub mod autoencoder;
pub mod codec;
pub mod config;
pub mod decoder;
pub mod distribution;
pub mod encode;
pub mod encoder;
pub mod resblock;
pub mod temporal;
pub mod train;

pub use attn_block::{AttnBlock, AttnBlockCache};
pub use autoencoder::{AutoencoderKL, LossParts, Recon, VaeLoss};
pub use codec::Codec;
pub use config::VaeConfig;
pub use decoder::{Decoder, DecoderCache, UpLevel};
pub use distribution::DiagonalGaussian;
pub use encoder::{DownLevel, Encoder, EncoderCache, MidBlock, MidBlockCache};
pub use resblock::{ResnetBlock, ResnetBlockCache};

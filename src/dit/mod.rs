//! DiT, the Diffusion Transformer (Peebles & Xie 2023, "Scalable Diffusion Models with
//! Transformers", <https://arxiv.org/abs/2212.09748>; reference code facebookresearch/DiT
//! `models.py`): a Vision Transformer over latent patches, conditioned on the timestep and
//! the class by adaLN-Zero, replacing the U-Net as the denoiser.
//!
//! - the shape: [`config`] (named configs DiT-S/B/L/XL and CPU sizes × patch 2/4/8),
//!   [`flops`] (the paper's Gflops)
//! - tokens: [`patch`] (patch embedding, unpatchify), [`pos_embed`] (fixed 2-D sin-cos)
//! - conditioning: [`conditioning`] (the four mechanisms the paper compares), [`embed`] (timestep and label embedders), [`modulate`] (adaLN's
//!   scale-shift and gate)
//! - layers: [`mlp`], [`block`] (the adaLN-Zero and adaLN block; [`caption_branch`], its
//!   attention to a caption in a text-conditioned DiT), [`vit_block`] (the plain
//!   block of in-context and cross-attention conditioning), [`final_layer`]
//! - the model: [`trunk`] (the blocks and final layer of each conditioning mechanism),
//!   [`model`], [`checkpoint`] (the reference `state_dict` layout)

pub mod attention_branch;
pub mod block;
pub mod caption_branch;
pub mod checkpoint;
pub mod conditioning;
pub mod config;
pub mod embed;
pub mod final_layer;
pub mod flops;
pub mod mlp;
pub mod model;
pub mod modulate;
pub mod patch;
pub mod pos_embed;
pub mod trunk;
pub mod vit_block;

pub use block::{DiTBlock, DiTBlockCache};
pub use caption_branch::Context;
pub use checkpoint::{load_dit, save_dit};
pub use conditioning::Conditioning;
pub use config::DiTConfig;
pub use embed::{LabelEmbedder, TimestepEmbedder};
pub use final_layer::{FinalLayer, FinalLayerCache, PlainFinalLayer, PlainFinalLayerCache};
pub use flops::dit_flops;
pub use mlp::Mlp;
pub use model::{DiT, DiTCache};
pub use patch::{patchify, unpatchify, ChannelOrder, PatchEmbed};
pub use pos_embed::pos_embed_2d;
pub use trunk::{Trunk, TrunkCache};
pub use vit_block::{CrossBranch, ViTBlock, ViTBlockCache};

//! Sora's step: time added to DiT. A latent clip `(B, C, F, H, W)` is cut into spacetime
//! patches, and the Transformer attends across frames as well as within them, so it learns
//! motion (the OpenAI Sora report; Latte, Open-Sora).
//!
//! - the shape: [`config`] (sizes, frames, temporal patch, the attention [`Layout`]),
//!   [`flops`]
//! - tokens: [`patch`] (spacetime patches, the `(b f s)` ↔ `(b s f)` rearranges)
//! - layers: [`factorized`] (STDiT's block), [`stack`] (the blocks of each layout)
//! - the model: [`model`], [`checkpoint`] (Latte's `state_dict` layout), [`inflate`] (a video
//!   model from a trained image DiT)

pub mod checkpoint;
pub mod config;
pub mod factorized;
pub mod flops;
pub mod inflate;
pub mod model;
pub mod patch;
pub mod stack;

pub use config::{Layout, VideoDiTConfig, MAX_FRAMES};
pub use model::{VideoDiT, VideoDiTCache};

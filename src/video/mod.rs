//! Sora's step: time added to DiT. A latent clip `(B, C, F, H, W)` is cut into spacetime
//! patches, and the Transformer attends across frames as well as within them, so it learns
//! motion (the OpenAI Sora report; Latte, Open-Sora).
//!
//! The data and the measures:
//! - [`moving_digits`]: Moving-MNIST-style clips drawn from a seed, labelled by (digit, motion);
//!   [`clip_set`]: a labelled set of clips in memory, and its frames as an image dataset;
//!   [`encode`]: clips encoded frame by frame with the image VAE, into a latent file.
//! - [`colour_digits`]: RGB clips of one or two coloured moving digits with captions;
//!   [`captions`]: what a clip shows ([`captions::ClipSpec`]), the caption grammar and its
//!   parser; [`held_out`]: the compositions kept out of training.
//! - the measures of generated clips live in [`crate::metrics::video`] (they build on the
//!   image classifier and the Fréchet distance).
//!
//! The model:
//! - the shape: [`config`] (sizes, frames, temporal patch, the attention [`Layout`]),
//!   [`flops`]
//! - tokens: [`patch`] (spacetime patches, the `(b f s)` ↔ `(b s f)` rearranges)
//! - layers: [`factorized`] (STDiT's block), [`stack`] (the blocks of each layout),
//!   [`caption_embed`] (a caption into the blocks' context, the null caption)
//! - the model: [`model`], [`frame_mask`] (given frames' tokens at t = 0), [`checkpoint`] (Latte's `state_dict` layout), [`inflate`] (a video
//!   model from a trained image DiT)

pub mod caption_embed;
pub mod captions;
pub mod checkpoint;
pub mod clip_set;
pub mod colour_digits;
pub mod compression;
pub mod config;
pub mod encode;
pub mod factorized;
pub mod flops;
pub mod frame_mask;
pub mod held_out;
pub mod inflate;
pub mod model;
pub mod moving_digits;
pub mod patch;
pub mod stack;
pub mod text_path;

pub use config::{Layout, VideoDiTConfig, MAX_FRAMES};
pub use model::{VideoDiT, VideoDiTCache};

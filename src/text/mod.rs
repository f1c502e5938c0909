//! Text for text-to-video: captions of moving digits turned into what a network reads.
//!
//! - [`tokenizer`]: a word-level tokenizer over a fixed vocabulary of 32 words — the caption
//!   grammar of [`crate::video`]'s colour digits — into `MAX_LEN` token ids with a padding mask.
//! - [`encoder`]: a Transformer text encoder (the 2017 encoder half, pre-LayerNorm as CLIP's
//!   text tower), pre-trained and then frozen for the video DiT.
//! - CLIP pre-training: [`video_tower`] (a small clip encoder: frames → features + a temporal
//!   embedding → mean over frames), [`contrastive`] (symmetric InfoNCE with a learned
//!   temperature), [`clip`] (the two towers), [`pretrain`] (the training loop, caption→clip
//!   retrieval, the encoder's checkpoint).
//!
//! The encoder takes token ids `(B, L)` and a validity mask `(B, L)` (true = a real token, a
//! prefix of every row) as plain arrays. This folder is the bottom of the text stack: it
//! imports no video, model or metrics module, so the video data and the video DiT can both
//! build on it.

pub mod clip;
pub mod contrastive;
pub mod encoder;
pub mod pretrain;
pub mod tokenizer;
pub mod video_tower;

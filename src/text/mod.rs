//! Text for text-to-video: captions of moving digits turned into what a network reads.
//!
//! - [`tokenizer`]: a word-level tokenizer over a fixed vocabulary of 32 words — the caption
//!   grammar of [`crate::video`]'s colour digits — into `MAX_LEN` token ids with a padding mask.
//!
//! This folder is the bottom of the text stack: it imports no video, model or metrics module,
//! so the video data and the text encoder can both build on it.

pub mod tokenizer;

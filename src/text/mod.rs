//! Text conditioning: a Transformer text encoder ([`encoder`]), pre-trained against a small
//! video tower with CLIP's contrastive loss ([`clip`], [`contrastive`], [`video_tower`],
//! [`pretrain`]) and then frozen for the video DiT.
//!
//! Everything here takes token ids `(B, L)` and a validity mask `(B, L)` (true = a real token,
//! a prefix of every row) as plain arrays, so it does not depend on the tokenizer.

pub mod clip;
pub mod contrastive;
pub mod encoder;
pub mod pretrain;
pub mod video_tower;

//! The video compression network: a causal temporal VAE over the image VAE's latent clips,
//! Open-Sora 1.2's design (a temporal VAE on a 2-D VAE) with the causality of Open-Sora-Plan's
//! `CausalVideoVAE`: `1 + 4k` frames become `1 + k` latent frames, the first frame alone.
//!
//! - layers: [`resblock3d`] (the causal residual block, GroupNorm per frame), [`coder`] (the
//!   encoder and decoder, and the time upsampling)
//! - the model: [`model`] (the temporal VAE and its loss), [`video_vae`] (the image VAE and the
//!   temporal VAE together: pixels of a clip to its latent and back, and their checkpoint)
//! - using it: [`train`] (training, per-frame PSNR and flicker)

pub mod coder;
pub mod model;
pub mod resblock3d;
pub mod train;
pub mod video_vae;

pub use coder::{time_upsample, time_upsample_backward, CausalCoder, Direction};
pub use model::{TemporalLoss, TemporalVae, TemporalVaeConfig};
pub use resblock3d::{CausalResBlock, FrameNorm};
pub use video_vae::{is_video_vae, load_video_vae, VideoVae};

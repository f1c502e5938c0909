//! The video VAE: the image VAE compresses each frame in space (×4), the temporal VAE
//! compresses the latent frames in time (×4, causally) — Open-Sora 1.2's stack of a 2-D VAE
//! and a temporal VAE:
//!
//! ```text
//! (B, C, 1 + 4k, H, W) ─ image VAE per frame, × s ─→ (B, z, 1 + 4k, H/4, W/4)
//!                      ─ temporal encoder ────────→ (B, z', 1 + k, H/4, W/4)
//! ```
//!
//! and back through the temporal decoder, `÷ s`, and the image decoder frame by frame. `s` is
//! the image VAE's scale factor, so the temporal VAE reads latents of unit variance. The
//! checkpoint holds both: the image VAE's tensors under `spatial.`, the temporal VAE's under
//! `temporal.`, and both configs in the metadata.

use super::model::{TemporalVae, TemporalVaeConfig};
use crate::error::{Error, Result};
use crate::io::checkpoint::{load_checkpoint, read_metadata};
use crate::param::{join, Param, Parameters};
use crate::tensor::{clips_to_frames, frames_to_clips, map_chunks, rng};
use crate::vae::{AutoencoderKL, VaeConfig};
use ndarray::{concatenate, Array4, Array5, ArrayView5, Axis};
use std::collections::BTreeMap;
use std::path::Path;

/// Frames through the image VAE per call, clips through the temporal VAE per call.
const FRAME_CHUNK: usize = 256;
const CLIP_CHUNK: usize = 32;

/// The metadata key that marks a video VAE checkpoint.
pub const KIND_KEY: &str = "video_vae.kind";

/// The image VAE and the temporal VAE over its latents.
#[derive(Clone, Debug)]
pub struct VideoVae {
    pub spatial: AutoencoderKL,
    /// The image VAE's scale factor $s$: its latents × `s` are the temporal VAE's clips.
    pub spatial_scale: f32,
    pub temporal: TemporalVae,
}

impl VideoVae {
    /// Latent channels of the whole stack (the temporal VAE's).
    pub fn latent_channels(&self) -> usize {
        self.temporal.config.z_channels
    }

    /// Clips `(B, C, F, H, W)` it can take: the image VAE's channels and sides, `1 + 4k`
    /// frames. The error names what is wrong and how to fix it.
    pub fn check_clips(&self, shape: &[usize]) -> Result<()> {
        let (c, f, h, w) = (shape[1], shape[2], shape[3], shape[4]);
        let factor = self.spatial.config.downsample_factor();
        if c != self.spatial.config.in_channels || h % factor != 0 || w % factor != 0 {
            return Err(Error::new(
                format!(
                    "clips of ({c}, {h}, {w}) frames, but the video VAE reads {} channels and \
                     sides that are multiples of {factor}",
                    self.spatial.config.in_channels
                ),
                "encode clips of the kind of frames the VAE was trained on",
            ));
        }
        self.temporal.config.check_frames(f)
    }

    /// The image VAE's latent means × s, frame by frame: `(B, z, F, H/4, W/4)`.
    pub fn spatial_latents(&self, clips: ArrayView5<f32>) -> Array5<f32> {
        let f = clips.dim().2;
        let frames = clips_to_frames(clips); // (B·F, C, H, W)
        let s = self.spatial_scale;
        let z = map_chunks(frames.view(), FRAME_CHUNK, |x: Array4<f32>| {
            self.spatial.encode(&x).mean * s
        });
        frames_to_clips(z, f)
    }

    /// Pixels `(B, C, F, H, W)` of image-VAE latent clips (× s), frame by frame.
    pub fn spatial_pixels(&self, z: ArrayView5<f32>) -> Array5<f32> {
        let f = z.dim().2;
        let frames = clips_to_frames(z);
        let inv = 1.0 / self.spatial_scale;
        let px = map_chunks(frames.view(), FRAME_CHUNK, |z: Array4<f32>| {
            self.spatial.decode(&(z * inv))
        });
        frames_to_clips(px, f)
    }

    // ANCHOR: video_vae_encode
    /// The posterior `(mean, logvar)`, each `(B, z', 1 + k, H/4, W/4)`, of pixel clips
    /// `(B, C, 1 + 4k, H, W)`; check them first with [`check_clips`](Self::check_clips).
    pub fn encode(&self, clips: ArrayView5<f32>) -> (Array5<f32>, Array5<f32>) {
        let z = self.spatial_latents(clips); // (B, z, 1 + 4k, h, w)
        let (means, logvars): (Vec<_>, Vec<_>) = z
            .axis_chunks_iter(Axis(0), CLIP_CHUNK)
            .map(|c| self.temporal.encode(&c.to_owned()))
            .unzip();
        let join = |parts: &[Array5<f32>]| {
            let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
            concatenate(Axis(0), &views).expect("chunks share their shape")
        };
        (join(&means), join(&logvars))
    }

    /// Pixel clips `(B, C, 1 + 4k, H, W)` of latents `(B, z', 1 + k, H/4, W/4)`.
    pub fn decode(&self, z: ArrayView5<f32>) -> Array5<f32> {
        let lat = map_chunks(z, CLIP_CHUNK, |c: Array5<f32>| self.temporal.decode(&c));
        self.spatial_pixels(lat.view())
    }
    // ANCHOR_END: video_vae_encode

    /// The pixel frames of `frames` latent frames.
    pub fn pixel_frames(&self, latent_frames: usize) -> usize {
        (latent_frames - 1) * self.temporal.config.time_factor() + 1
    }

    /// Both configs and the scale, as checkpoint metadata.
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let mut meta = self.spatial.config.to_metadata();
        meta.extend(self.temporal.config.to_metadata());
        meta.insert(KIND_KEY.into(), "causal-temporal".into());
        meta.insert(
            "video_vae.spatial_scale".into(),
            format!("{}", self.spatial_scale),
        );
        meta
    }
}

/// Whether the checkpoint metadata `meta` is a video VAE's.
pub fn is_video_vae(meta: &BTreeMap<String, String>) -> bool {
    meta.contains_key(KIND_KEY)
}

/// Loads a checkpoint written by `minisora train-video-vae`.
pub fn load_video_vae(path: &Path) -> Result<VideoVae> {
    let meta = read_metadata(path)?;
    if !is_video_vae(&meta) {
        return Err(Error::new(
            format!("{} is not a video VAE checkpoint", path.display()),
            "pass the video_vae.safetensors that `minisora train-video-vae` writes",
        ));
    }
    let spatial_scale = meta
        .get("video_vae.spatial_scale")
        .and_then(|s| s.parse::<f32>().ok())
        .ok_or_else(|| {
            Error::new(
                format!("{} has no video_vae.spatial_scale", path.display()),
                "use a checkpoint written by `minisora train-video-vae`",
            )
        })?;
    let mut r = rng(0);
    let mut vae = VideoVae {
        spatial: AutoencoderKL::new(VaeConfig::from_metadata(&meta)?, &mut r)?,
        spatial_scale,
        temporal: TemporalVae::new(TemporalVaeConfig::from_metadata(&meta)?, &mut r)?,
    };
    load_checkpoint(path, &mut vae)?;
    Ok(vae)
}

impl Parameters for VideoVae {
    /// `spatial.…` (the image VAE's LDM names), `temporal.…`.
    fn visit(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.spatial.visit(&join(prefix, "spatial"), f);
        self.temporal.visit(&join(prefix, "temporal"), f);
    }
}

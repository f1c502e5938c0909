//! What turns a model's latents back into pixels, chosen by the checkpoint: the image VAE
//! (images, and clips frame by frame) or the video VAE (clips, compressed in time as well).
//! The trainer's figures, `sample`, `sample-video`, `evaluate-video` and `generate` decode
//! through it, so a model trained on either latent space is drawn and scored the same way.

use super::temporal::video_vae::{is_video_vae, load_video_vae, VideoVae};
use super::train::load_vae;
use super::AutoencoderKL;
use crate::error::{Error, Result};
use crate::io::checkpoint::read_metadata;
use crate::tensor::{clips_to_frames, frames_to_clips, map_chunks};
use ndarray::{Array4, Array5, ArrayView4, ArrayView5, Axis};
use std::path::Path;

/// A latent space's decoder.
#[derive(Clone, Debug)]
pub enum Codec {
    /// The image VAE: `(N, z, h, w) → (N, C, 4h, 4w)`, clips frame by frame.
    Image(Box<AutoencoderKL>),
    /// The video VAE: `(N, z, 1 + k, h, w) → (N, C, 1 + 4k, 4h, 4w)`.
    Video(Box<VideoVae>),
}

impl Codec {
    /// The VAE in `path`, image or video by its metadata.
    pub fn load(path: &Path) -> Result<Codec> {
        if !path.exists() {
            return Err(Error::new(
                format!(
                    "no VAE checkpoint at {} to decode the latents",
                    path.display()
                ),
                "train one with `minisora train-vae` (it writes out/vae/vae.safetensors) or \
                 `minisora train-video-vae`, or pass the checkpoint the latents were encoded with",
            ));
        }
        if is_video_vae(&read_metadata(path)?) {
            Ok(Codec::Video(Box::new(load_video_vae(path)?)))
        } else {
            Ok(Codec::Image(Box::new(load_vae(path)?.0)))
        }
    }

    /// Channels of the latents it decodes.
    pub fn latent_channels(&self) -> usize {
        match self {
            Codec::Image(vae) => vae.config.z_channels,
            Codec::Video(vae) => vae.latent_channels(),
        }
    }

    /// How much smaller a latent frame is than a pixel frame, along each side.
    pub fn spatial_factor(&self) -> usize {
        match self {
            Codec::Image(vae) => vae.config.downsample_factor(),
            Codec::Video(vae) => vae.spatial.config.downsample_factor(),
        }
    }

    /// Pixels of latent images `(N, z, h, w)`; the video VAE reads each as a one-frame clip.
    pub fn decode_images(&self, z: ArrayView4<f32>) -> Array4<f32> {
        match self {
            Codec::Image(vae) => map_chunks(z, 64, |c| vae.decode(&c)),
            Codec::Video(vae) => {
                let clips = z.insert_axis(Axis(2)); // (N, z, 1, h, w)
                vae.decode(clips).index_axis_move(Axis(2), 0)
            }
        }
    }

    /// Pixel clips `(N, C, F, H, W)` of latent clips `(N, z, F', h, w)`: frame by frame
    /// (`F = F'`) or through the temporal decoder (`F = 4(F' − 1) + 1`).
    pub fn decode_clips(&self, z: ArrayView5<f32>) -> Array5<f32> {
        match self {
            Codec::Image(_) => {
                let f = z.dim().2;
                frames_to_clips(self.decode_images(clips_to_frames(z).view()), f)
            }
            Codec::Video(vae) => vae.decode(z),
        }
    }
}

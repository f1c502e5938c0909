//! Clips into latents with the *image* VAE, one frame at a time (as Latte and early latent
//! video models do; a video VAE would also compress time). The frames of clip `n` are encoded
//! as images and put back in order:
//!
//! ```text
//! (N, 1, F, H, W) → (N·F, 1, H, W)   '(n c f h w -> (n f) c h w'
//! encode           → (N·F, z, h, w)
//! → (N, F, z, h, w) → (N, z, F, h, w)   '(n f) z h w -> n z f h w'
//! ```
//!
//! The file is the image latent file ([`crate::vae::encode`]) with 5-D `mean` and `logvar`,
//! the 40 (digit, motion) class names, and `frames` and `captions` (one per line) in its
//! metadata; [`load_latents`](crate::vae::encode::load_latents) reads both kinds.

use super::clip_set::ClipSet;
use super::colour_digits::CaptionedClips;
use super::patch::{clips_to_frames, frames_to_clips};
use crate::error::{Error, Result};
use crate::io::checkpoint::read_metadata;
use crate::io::progress::Progress;
use crate::vae::encode::{latent_metadata, write_latents};
use crate::vae::temporal::{is_video_vae, load_video_vae};
use crate::vae::train::load_vae;
use ndarray::{concatenate, Array4, Array5, ArrayView5, Axis};
use std::path::Path;
use std::time::Instant;

/// Frames encoded per call of the VAE.
const CHUNK: usize = 256;

/// Encodes every clip of `clips` with the VAE in `vae_checkpoint`, frame by frame, and writes
/// the latent file `out`, naming the data `data_name`. Returns the clip count and the seconds.
pub fn encode_clips(
    vae_checkpoint: &Path,
    clips: &ClipSet,
    out: &Path,
    data_name: &str,
) -> Result<(usize, f64)> {
    let what = Described {
        labels: &clips.labels,
        class_names: &clips.class_names,
        captions: &clips.captions,
    };
    encode(vae_checkpoint, clips.clips.view(), what, out, data_name)
}

/// [`encode_clips`] for captioned RGB clips: one class, `"captioned"`, and their captions.
pub fn encode_captioned(
    vae_checkpoint: &Path,
    clips: &CaptionedClips,
    out: &Path,
    data_name: &str,
) -> Result<(usize, f64)> {
    let what = Described {
        labels: &vec![0; clips.len()],
        class_names: &["captioned".to_string()],
        captions: &clips.captions,
    };
    encode(vae_checkpoint, clips.clips.view(), what, out, data_name)
}

/// What a latent clip file records beside the latents, one entry per clip.
struct Described<'a> {
    labels: &'a [usize],
    class_names: &'a [String],
    captions: &'a [String],
}

fn encode(
    vae_checkpoint: &Path,
    clips: ArrayView5<f32>,
    what: Described,
    out: &Path,
    data_name: &str,
) -> Result<(usize, f64)> {
    let start = Instant::now();
    if is_video_vae(&read_metadata(vae_checkpoint)?) {
        return encode_in_time(vae_checkpoint, clips, what, out, data_name);
    }
    let (model, scale) = load_vae(vae_checkpoint)?;
    let (n, c, f, h, w) = clips.dim();
    let factor = model.config.downsample_factor();
    if c != model.config.in_channels || h % factor != 0 || w % factor != 0 {
        return Err(Error::new(
            format!(
                "the clips' frames are ({c}, {h}, {w}) but the VAE in {} reads {} channels \
                 and sides that are multiples of {factor}",
                vae_checkpoint.display(),
                model.config.in_channels
            ),
            "encode clips of the kind of frames the VAE was trained on",
        ));
    }
    if n == 0 {
        return Err(Error::new(
            "no clips to encode",
            "generate at least one clip",
        ));
    }
    let frames = clips_to_frames(clips); // (N·F, C, H, W), frames of a clip consecutive
    let chunks: Vec<_> = frames.axis_chunks_iter(Axis(0), CHUNK).collect();
    let bar = Progress::new(chunks.len() as u64, "encode clips");
    let (mut means, mut logvars) = (Vec::new(), Vec::new());
    for chunk in chunks {
        let post = model.encode(&chunk.to_owned()); // (b, z, h', w') each
        means.push(post.mean);
        logvars.push(post.logvar);
        bar.step(0.0);
    }
    bar.finish();
    // (N·F, z, h', w') → (N, F, z, h', w') → (N, z, F, h', w')
    let to_clips = |parts: &[Array4<f32>]| {
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        let all = concatenate(Axis(0), &views).expect("chunks share their shape");
        frames_to_clips(all, f)
    };
    let (mean, logvar) = (to_clips(&means), to_clips(&logvars));
    let meta = latent_metadata(scale, data_name, what.class_names);
    write_clips(out, (&mean, &logvar), meta, f, &what)?;
    Ok((n, start.elapsed().as_secs_f64()))
}

// ANCHOR: encode_in_time
/// [`encode`] with the video VAE: `(N, C, 1 + 4k, H, W)` clips into `(N, z, 1 + k, h, w)`
/// latents, in one pass of space and time. The latent file's scale factor is measured on
/// these latents ($1/\sigma$ with $\sigma^2 = \operatorname{Var}(\mu) + \mathbb E[\sigma^2_q]$);
/// `minisora train --latent-norm channel` measures a shift and a scale per channel instead.
fn encode_in_time(
    vae_checkpoint: &Path,
    clips: ArrayView5<f32>,
    what: Described,
    out: &Path,
    data_name: &str,
) -> Result<(usize, f64)> {
    let start = Instant::now();
    let vae = load_video_vae(vae_checkpoint)?;
    vae.check_clips(clips.shape())?;
    let (n, _, f, _, _) = clips.dim();
    if n == 0 {
        return Err(Error::new(
            "no clips to encode",
            "generate at least one clip",
        ));
    }
    let bar = Progress::new(n.div_ceil(CHUNK) as u64, "encode clips in time");
    let (mut means, mut logvars) = (Vec::new(), Vec::new());
    for chunk in clips.axis_chunks_iter(Axis(0), CHUNK) {
        let (m, lv) = vae.encode(chunk); // (b, z, 1 + k, h, w)
        means.push(m);
        logvars.push(lv);
        bar.step(0.0);
    }
    bar.finish();
    let join = |parts: &[Array5<f32>]| {
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        concatenate(Axis(0), &views).expect("chunks share their shape")
    };
    let (mean, logvar) = (join(&means), join(&logvars));
    let count = mean.len() as f64;
    let mu = mean.iter().map(|&v| v as f64).sum::<f64>() / count;
    let var_mu = mean.iter().map(|&v| (v as f64 - mu).powi(2)).sum::<f64>() / count;
    let var_q = logvar.iter().map(|&v| (v as f64).exp()).sum::<f64>() / count;
    let scale = 1.0 / (var_mu + var_q).sqrt().max(1e-6);
    let mut meta = latent_metadata(scale, data_name, what.class_names);
    meta.insert("video_vae".to_string(), "causal-temporal".to_string());
    write_clips(out, (&mean, &logvar), meta, f, &what)?;
    Ok((n, start.elapsed().as_secs_f64()))
}

/// Writes the latent clip file: the posterior, the labels, and `frames` (pixel frames per
/// clip) and `captions` beside `meta`.
fn write_clips(
    out: &Path,
    (mean, logvar): (&Array5<f32>, &Array5<f32>),
    mut meta: std::collections::BTreeMap<String, String>,
    frames: usize,
    what: &Described,
) -> Result<()> {
    meta.insert("frames".to_string(), frames.to_string());
    meta.insert("captions".to_string(), what.captions.join("\n"));
    write_latents(
        out,
        mean.view().into_dyn(),
        logvar.view().into_dyn(),
        what.labels,
        &meta,
    )
}
// ANCHOR_END: encode_in_time

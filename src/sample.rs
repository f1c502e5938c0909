//! `minisora sample`: class-conditional samples from any checkpoint `minisora train` wrote,
//! with DDIM or DDPM over a respaced schedule and classifier-free guidance on all prediction
//! channels, decoded by the VAE (for latent models) into one PNG grid — one row per class, or
//! a GIF for clip models — and optionally the denoising as an animated GIF. It draws through
//! [`draw`], the sampler every other part of minisora uses.
//!
//! Every user error (missing or wrong checkpoint, class out of range, zero steps, a missing
//! VAE) is checked before any sampling, and names the problem and the fix.

use crate::diffusion::{draw, Condition, Draw, DrawStep, SamplerKind};
use crate::error::{Error, Result};
use crate::io::image::{save_gif, save_grid, GridLayout};
use crate::models::{load_model, Loaded};
use crate::train::preview::{load_decoder, save_samples, to_pixels};
use crate::vae::Codec;
use crate::video::config::{check_frames, check_size};
use ndarray::{concatenate, Array4, ArrayD, Axis, Ix4, Ix5, IxDyn};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Frames of the trajectory GIF at most (steps are subsampled evenly beyond that).
const MAX_FRAMES: usize = 40;
/// Extra copies of the last frame, so the GIF pauses on the result before looping.
const HOLD: usize = 15;

/// What `minisora sample` was asked for.
#[derive(Clone, Debug)]
pub struct SampleRequest {
    /// The checkpoint to sample.
    pub ckpt: PathBuf,
    /// Only this class (default: every class, one row each).
    pub class: Option<usize>,
    /// Classifier-free guidance scale (1 = none).
    pub cfg_scale: f32,
    /// Sampling steps (respaced from the training steps).
    pub steps: usize,
    /// `ddim` or `ddpm`.
    pub sampler: String,
    /// DDIM's η (0: deterministic; 1: as noisy as DDPM).
    pub eta: f32,
    /// Seed of the starting noise (and of the sampler's noise).
    pub seed: u64,
    /// Samples per class.
    pub n: usize,
    /// The picture to write (a PNG grid; a GIF for clip models).
    pub out: PathBuf,
    /// Also write the denoising as an animated GIF here.
    pub trajectory: Option<PathBuf>,
    /// The VAE that decodes a latent model's samples.
    pub vae: PathBuf,
    /// Clip models: sample clips of this many frames instead of the trained length.
    pub frames: Option<usize>,
    /// Clip models: frames of this many pixels `(H, W)` instead of the trained size.
    pub size: Option<(usize, usize)>,
}

/// The sampler named `name`.
pub fn parse_sampler(name: &str, eta: f32) -> Result<SamplerKind> {
    match name.to_ascii_lowercase().as_str() {
        "ddim" => Ok(SamplerKind::Ddim { eta }),
        "ddpm" => Ok(SamplerKind::Ddpm),
        _ => Err(Error::new(
            format!("unknown sampler {name:?}"),
            "use --sampler ddim (deterministic, few steps) or --sampler ddpm (ancestral)",
        )),
    }
}

/// The VAE at `vae` that decodes the latents of `loaded` (the checkpoint `ckpt`), checked
/// against its channels; `None` in pixel space.
pub fn decoder(vae: &Path, ckpt: &Path, loaded: &Loaded) -> Result<Option<Codec>> {
    if !loaded.latent {
        return Ok(None);
    }
    if !vae.is_file() {
        return Err(Error::new(
            format!(
                "no VAE checkpoint at {} to decode the latent samples of {}",
                vae.display(),
                ckpt.display()
            ),
            "pass --vae with the checkpoint the training latents were encoded with \
             (`minisora train-vae` writes out/vae/vae.safetensors)",
        ));
    }
    load_decoder(vae, loaded.shape[0]).map(Some)
}

/// Checks the request against the checkpoint; returns the condition of every sample.
pub fn conditions(req: &SampleRequest, loaded: &Loaded) -> Result<(usize, Condition)> {
    if req.n == 0 {
        return Err(Error::new(
            "--n 0: no samples asked for",
            "pass a positive number of samples per class, e.g. --n 8",
        ));
    }
    if !req.cfg_scale.is_finite() || req.cfg_scale < 0.0 {
        return Err(Error::new(
            format!("--cfg-scale {}", req.cfg_scale),
            "pass a guidance scale ≥ 0 (1 = no guidance, 4 = DiT's)",
        ));
    }
    let rows: Vec<usize> = match (loaded.null_label, req.class) {
        (None, Some(c)) => {
            return Err(Error::new(
                format!("--class {c}: {} is unconditional", req.ckpt.display()),
                "leave out --class",
            ))
        }
        (None, None) => return Ok((req.n, Condition::None)),
        (Some(_), Some(c)) if c >= loaded.num_classes => {
            return Err(Error::new(
                format!(
                    "--class {c} is out of range: the model knows {} classes",
                    loaded.num_classes
                ),
                format!(
                    "pass --class between 0 and {}, or leave it out for every class",
                    loaded.num_classes - 1
                ),
            ))
        }
        (Some(_), Some(c)) => vec![c],
        (Some(_), None) => (0..loaded.num_classes).collect(),
    };
    let ids: Vec<usize> = rows.iter().flat_map(|&c| vec![c; req.n]).collect();
    Ok((ids.len(), Condition::labels(&ids)))
}

/// What a sampling run did.
#[derive(Clone, Debug)]
pub struct SampleReport {
    pub images: usize,
    pub seconds: f64,
    pub frames: usize,
}

/// Loads, checks, samples, decodes and writes `req.out` (and `req.trajectory`).
pub fn sample(req: &SampleRequest) -> Result<SampleReport> {
    let start = Instant::now();
    let how = Draw {
        kind: parse_sampler(&req.sampler, req.eta)?,
        steps: req.steps,
        guidance: req.cfg_scale,
        clip_x0: false,
        seed: req.seed,
    };
    let mut loaded = load_model(&req.ckpt)?;
    let (count, y) = conditions(req, &loaded)?;
    if let Some(f) = req.frames {
        set_frames(&mut loaded, f, &req.ckpt)?;
    }
    let k = how.respace(&loaded.diffusion)?.num_timesteps(); // a bad --steps fails early
    let vae = decoder(&req.vae, &req.ckpt, &loaded)?;
    if let Some((h, w)) = req.size {
        let factor = vae.as_ref().map_or(1, |v| v.spatial_factor());
        set_size(&mut loaded, (h, w), factor, &req.ckpt)?;
    }
    let how = Draw {
        clip_x0: !loaded.latent,
        ..how
    };
    // The trajectory GIF: x_T, then up to MAX_FRAMES evenly spaced steps and the last one —
    // these step indices, in sampling order — each frame gathered chunk by chunk.
    let m = MAX_FRAMES.min(k);
    let kept: Vec<usize> = (0..k)
        .rev()
        .filter(|&i| i == 0 || (0..m).any(|j| j * k / m == k - 1 - i))
        .collect();
    let mut frames: Vec<Vec<ArrayD<f32>>> = vec![Vec::new(); kept.len() + 1];
    let mut on_step = |s: &DrawStep| {
        if req.trajectory.is_none() {
            return;
        }
        if s.index == k - 1 {
            frames[0].push(s.noise.clone());
        }
        if let Some(p) = kept.iter().position(|&i| i == s.index) {
            frames[p + 1].push(s.x.clone());
        }
    };
    let x = draw(
        &*loaded.model,
        &loaded.diffusion,
        &loaded.shape,
        count,
        &y,
        &how,
        &mut on_step,
    )?;
    let pixels = to_pixels(&x, vae.as_ref(), &loaded.norm);
    let written = save_samples(&req.out, &pixels, req.n)?;
    if pixels.ndim() == 5 {
        // the clips as a PNG too: one row per clip, its frames left to right
        let strip = req.out.with_extension("png");
        let f = pixels.shape()[2];
        save_grid(&strip, strips(&pixels).view(), layout(f, pixels.shape()[3]))?;
        println!(
            "wrote {} (one clip per row, frames left to right)",
            strip.display()
        );
    }
    let rows = count / req.n;
    println!(
        "sampled {count} {} ({} × {}) from {} with {} {} steps, guidance {}: wrote {}",
        if loaded.shape.len() == 4 {
            "clips"
        } else {
            "images"
        },
        if rows == 1 {
            "1 row".to_string()
        } else {
            format!("{rows} rows")
        },
        req.n,
        req.ckpt.display(),
        req.steps,
        req.sampler,
        req.cfg_scale,
        written.display()
    );
    let n_frames = if req.trajectory.is_some() {
        frames.len()
    } else {
        0
    };
    if let Some(gif) = &req.trajectory {
        let mut decoded: Vec<Array4<f32>> = frames
            .iter()
            .map(|parts| {
                let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
                let whole = concatenate(Axis(0), &views).expect("chunks share their shape");
                strips(&to_pixels(&whole, vae.as_ref(), &loaded.norm))
            })
            .collect();
        let last = decoded.last().cloned().expect("x_T is a frame");
        decoded.extend(std::iter::repeat_n(last, HOLD));
        let views: Vec<_> = decoded.iter().map(|f| f.view()).collect();
        // images: a grid of --n columns; clips: one clip per row, its frames side by side
        let cols = if loaded.shape.len() == 4 {
            loaded.shape[1]
        } else {
            req.n
        };
        save_gif(gif, &views, layout(cols, decoded[0].dim().2), 80)?;
        println!(
            "wrote {} ({n_frames} frames of the denoising)",
            gif.display()
        );
    }
    let seconds = start.elapsed().as_secs_f64();
    println!("{{\"images\":{count},\"frames\":{n_frames},\"seconds\":{seconds:.2}}}");
    Ok(SampleReport {
        images: count,
        seconds,
        frames: n_frames,
    })
}

/// A grid of `cols` columns, enlarged for small pictures.
fn layout(cols: usize, h: usize) -> GridLayout {
    GridLayout::new(cols)
        .pad(2)
        .upscale(if h <= 16 { 4 } else { 2 })
}

/// Images as they are; clips `(N, C, F, H, W)` as their frames in order `(N·F, C, H, W)`, so
/// a grid of `F` columns shows one clip per row.
pub fn strips(pixels: &ArrayD<f32>) -> Array4<f32> {
    if pixels.ndim() == 4 {
        return pixels
            .clone()
            .into_dimensionality::<Ix4>()
            .expect("(N, C, H, W)");
    }
    let (n, c, f, h, w) = pixels
        .view()
        .into_dimensionality::<Ix5>()
        .expect("clips")
        .dim();
    pixels
        .view()
        .permuted_axes(IxDyn(&[0, 2, 1, 3, 4])) // (N, F, C, H, W)
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((n * f, c, h, w))
        .expect("contiguous")
}

/// Samples clips of `frames` frames from a clip model (the checkpoint `ckpt`): its position
/// tables cover 1 to `MAX_FRAMES` frames in whole temporal patches.
pub fn set_frames(loaded: &mut Loaded, frames: usize, ckpt: &Path) -> Result<()> {
    if loaded.shape.len() != 4 {
        return Err(Error::new(
            format!("--frames {frames}: {} holds an image model", ckpt.display()),
            "leave out --frames, or pass a video checkpoint (`minisora train --model video-…`)",
        ));
    }
    let patch = loaded
        .metadata
        .get("video.temporal_patch")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    check_frames(frames, patch)?;
    loaded.shape[1] = frames;
    Ok(())
}

/// `WxH` in pixels (`48x32`: 48 wide, 32 high, as screen sizes are written) → `(H, W)`.
pub fn parse_size(s: &str) -> Result<(usize, usize)> {
    let parsed = s
        .trim()
        .to_ascii_lowercase()
        .split_once(['x', '×'])
        .and_then(|(w, h)| Some((h.trim().parse().ok()?, w.trim().parse().ok()?)));
    match parsed {
        Some((h, w)) if h > 0 && w > 0 => Ok((h, w)),
        _ => Err(Error::new(
            format!("--size {s:?} is not WIDTHxHEIGHT"),
            "write the frame size in pixels as width x height, e.g. --size 48x32",
        )),
    }
}

// ANCHOR: set_size
/// Samples clips of `(h, w)`-pixel frames from a clip model (the checkpoint `ckpt`) whose
/// latents are `factor` times smaller: each side must be a whole number of the model's
/// patches of latent pixels, `factor · patch` pixels.
pub fn set_size(
    loaded: &mut Loaded,
    (h, w): (usize, usize),
    factor: usize,
    ckpt: &Path,
) -> Result<()> {
    if loaded.shape.len() != 4 {
        return Err(Error::new(
            format!("--size {w}x{h}: {} holds an image model", ckpt.display()),
            "leave out --size, or pass a video checkpoint (`minisora train --model video-…`)",
        ));
    }
    let patch: usize = loaded
        .metadata
        .get("dit.patch_size")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    let step = factor * patch;
    if h == 0 || w == 0 || h % step != 0 || w % step != 0 {
        return Err(Error::new(
            format!(
                "--size {w}x{h}: each side must be a multiple of {step} pixels (the VAE's \
                 factor {factor} × the model's patch {patch})"
            ),
            format!(
                "use multiples of {step}, e.g. --size {}x{}",
                (w / step).max(1) * step,
                (h / step).max(1) * step
            ),
        ));
    }
    check_size(h / factor, w / factor, patch)?;
    loaded.shape[2] = h / factor;
    loaded.shape[3] = w / factor;
    Ok(())
}
// ANCHOR_END: set_size

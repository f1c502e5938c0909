//! `minisora sample`: class-conditional samples from any checkpoint `minisora train` wrote,
//! with DDIM or DDPM over a respaced schedule and classifier-free guidance on all prediction
//! channels, decoded by the VAE (for latent models) into one PNG grid — one row per class —
//! and optionally the denoising as an animated GIF.
//!
//! Every user error (missing or wrong checkpoint, class out of range, zero steps, a missing
//! VAE) is checked before any sampling, and names the problem and the fix.

use crate::diffusion::sample_images::to_pixels;
use crate::diffusion::{Denoiser, Guided, SampleOptions, SamplerKind};
use crate::error::{Error, Result};
use crate::io::image::{save_gif, save_grid, GridLayout};
use crate::models::{load_model, Loaded};
use crate::tensor::{init, rng};
use crate::vae::train::load_vae;
use crate::vae::AutoencoderKL;
use clap::Args;
use ndarray::{Array4, ArrayD};
use std::path::PathBuf;
use std::time::Instant;

/// Frames of the trajectory GIF at most (steps are subsampled evenly beyond that).
const MAX_FRAMES: usize = 40;
/// Extra copies of the last frame, so the GIF pauses on the result before looping.
const HOLD: usize = 15;

/// The long help of `minisora sample`.
pub const SAMPLE_HELP: &str = "Sample a checkpoint written by `minisora train` (the final
<model>.safetensors, or a train_<step>.safetensors, whose EMA weights are used).

One row per class (or only --class), --n samples each, drawn with DDIM (deterministic) or DDPM
over --steps steps respaced from the training schedule, with classifier-free guidance of scale
--cfg-scale on all prediction channels (1 = none). Latent models are decoded by --vae, with the
latent scale factor stored in the checkpoint. Writes --out (a PNG grid) and, with
--trajectory, an animated GIF of the whole grid being denoised. Example:
    minisora sample --ckpt out/dit/dit.safetensors --class 3 --cfg-scale 4 --steps 50 \\
        --out grid.png --trajectory denoise.gif";

/// What `minisora sample` was asked for (its command-line arguments).
#[derive(Args, Clone, Debug)]
pub struct SampleRequest {
    /// The checkpoint to sample.
    #[arg(long)]
    pub ckpt: PathBuf,
    /// Only this class (default: every class, one row each).
    #[arg(long)]
    pub class: Option<usize>,
    /// Classifier-free guidance scale (1 = none; DiT samples with 4).
    #[arg(long, default_value_t = 4.0)]
    pub cfg_scale: f32,
    /// Sampling steps (respaced from the 1000 training steps).
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// ddim or ddpm.
    #[arg(long, default_value = "ddim")]
    pub sampler: String,
    /// DDIM's η (0: deterministic; 1: as noisy as DDPM).
    #[arg(long, default_value_t = 0.0)]
    pub eta: f32,
    /// Seed of the starting noise (and DDPM's noise).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Samples per class.
    #[arg(long, default_value_t = 8)]
    pub n: usize,
    /// The PNG grid to write.
    #[arg(long, default_value = "samples.png")]
    pub out: PathBuf,
    /// Also write the denoising as an animated GIF here.
    #[arg(long)]
    pub trajectory: Option<PathBuf>,
    /// The VAE that decodes a latent model's samples.
    #[arg(long, default_value = "out/vae/vae.safetensors")]
    pub vae: PathBuf,
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

/// The VAE that decodes `loaded`'s latents (checked against its channels), or `None` in
/// pixel space.
fn decoder(req: &SampleRequest, loaded: &Loaded) -> Result<Option<AutoencoderKL>> {
    if !loaded.latent {
        return Ok(None);
    }
    if !req.vae.is_file() {
        return Err(Error::new(
            format!(
                "no VAE checkpoint at {} to decode the latent samples of {}",
                req.vae.display(),
                req.ckpt.display()
            ),
            "pass --vae with the checkpoint the training latents were encoded with \
             (`minisora train-vae` writes out/vae/vae.safetensors)",
        ));
    }
    let (vae, _) = load_vae(&req.vae)?;
    if vae.config.z_channels != loaded.shape.0 {
        return Err(Error::new(
            format!(
                "the VAE in {} has {} latent channels but the model makes {}",
                req.vae.display(),
                vae.config.z_channels,
                loaded.shape.0
            ),
            "pass --vae with the checkpoint the training latents were encoded with",
        ));
    }
    Ok(Some(vae))
}

/// Checks the request against the checkpoint; returns the class of each row.
fn rows(req: &SampleRequest, loaded: &Loaded) -> Result<Vec<Option<usize>>> {
    if req.steps == 0 {
        return Err(Error::new(
            "--steps 0: sampling needs at least one step",
            "pass a positive number of steps, e.g. --steps 50",
        ));
    }
    if req.n == 0 {
        return Err(Error::new(
            "--n 0: no samples asked for",
            "pass a positive number of samples per class, e.g. --n 8",
        ));
    }
    let t = loaded.diffusion.num_timesteps();
    if req.steps > t {
        return Err(Error::new(
            format!(
                "--steps {}: the model was trained with {t} steps",
                req.steps
            ),
            format!("pass --steps between 1 and {t}"),
        ));
    }
    if !req.cfg_scale.is_finite() || req.cfg_scale < 0.0 {
        return Err(Error::new(
            format!("--cfg-scale {}", req.cfg_scale),
            "pass a guidance scale ≥ 0 (1 = no guidance, 4 = DiT's)",
        ));
    }
    match (loaded.null_label, req.class) {
        (None, Some(c)) => Err(Error::new(
            format!("--class {c}: {} is unconditional", req.ckpt.display()),
            "leave out --class",
        )),
        (None, None) => Ok(vec![None]),
        (Some(_), Some(c)) if c >= loaded.num_classes => Err(Error::new(
            format!(
                "--class {c} is out of range: the model knows {} classes",
                loaded.num_classes
            ),
            format!(
                "pass --class between 0 and {}, or leave it out for every class",
                loaded.num_classes - 1
            ),
        )),
        (Some(_), Some(c)) => Ok(vec![Some(c)]),
        (Some(_), None) => Ok((0..loaded.num_classes).map(Some).collect()),
    }
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
    let kind = parse_sampler(&req.sampler, req.eta)?;
    let loaded = load_model(&req.ckpt)?;
    let rows = rows(req, &loaded)?;
    let vae = decoder(req, &loaded)?;
    let diffusion = &loaded.diffusion;
    let spaced = match kind {
        SamplerKind::Ddim { .. } => diffusion
            .respace_spec(&format!("ddim{}", req.steps))
            .or_else(|_| diffusion.respace_spec(&req.steps.to_string()))?,
        SamplerKind::Ddpm => diffusion.respace_spec(&req.steps.to_string())?,
    };
    let (c, h, w) = loaded.shape;
    let count = rows.len() * req.n;
    let labels: Option<Vec<usize>> = loaded.null_label.map(|_| {
        rows.iter()
            .flat_map(|r| vec![r.unwrap_or(0); req.n])
            .collect()
    });
    let guided;
    let model: &dyn Denoiser = match loaded.null_label {
        Some(null) if req.cfg_scale != 1.0 => {
            guided = Guided {
                model: &loaded.model,
                scale: req.cfg_scale,
                null_label: null,
                channels: c,
            };
            &guided
        }
        _ => &loaded.model,
    };
    let mut r = rng(req.seed);
    let noise = init::normal(&[count, c, h, w], 1.0, &mut r); // x_T
    let k = spaced.num_timesteps();
    let keep: Vec<usize> = (0..MAX_FRAMES.min(k))
        .map(|j| (j * k) / MAX_FRAMES.min(k))
        .collect();
    let mut frames: Vec<ArrayD<f32>> = Vec::new();
    if req.trajectory.is_some() {
        frames.push(noise.clone());
    }
    let opts = SampleOptions {
        kind,
        clip_x0: !loaded.latent,
    };
    let shape = noise.shape().to_vec();
    let x = spaced.sample(
        model,
        &shape,
        Some(noise),
        labels.as_deref(),
        opts,
        &mut r,
        &mut |t, x, _| {
            if req.trajectory.is_some() && (keep.contains(&(k - 1 - t)) || t == 0) {
                frames.push(x.clone());
            }
        },
    );
    let pixels = to_pixels(&x, vae.as_ref(), loaded.scale);
    let up = if pixels.dim().2 <= 16 { 4 } else { 2 };
    let layout = GridLayout::new(req.n).pad(2).upscale(up);
    save_grid(&req.out, pixels.view(), layout)?;
    println!(
        "sampled {count} images ({} × {}) from {} with {} {} steps, guidance {}: wrote {}",
        if rows.len() == 1 {
            "1 row".to_string()
        } else {
            format!("{} rows", rows.len())
        },
        req.n,
        req.ckpt.display(),
        req.steps,
        req.sampler,
        req.cfg_scale,
        req.out.display()
    );
    let n_frames = frames.len();
    if let Some(gif) = &req.trajectory {
        let last = frames.last().cloned();
        frames.extend(std::iter::repeat_n(last.expect("x_T is a frame"), HOLD));
        let decoded: Vec<Array4<f32>> = frames
            .iter()
            .map(|f| to_pixels(f, vae.as_ref(), loaded.scale))
            .collect();
        let views: Vec<_> = decoded.iter().map(|f| f.view()).collect();
        save_gif(gif, &views, layout, 80)?;
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

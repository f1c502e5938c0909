//! The figures of an image diffusion run: class-conditional samples drawn with DDIM and
//! classifier-free guidance (decoded by the VAE when the model lives in latent space), one
//! sample's denoising trajectory, and the loss curve.
//!
//! * `samples.png`: one row per class (the first ten), `per_class` samples each.
//! * `denoise.png`: for one sample, $x_t$ (top) and the model's $\hat x_0$ (bottom) at ten
//!   points of the DDIM trajectory, from pure noise on the left to the sample on the right.
//! * `loss.png`: the loss of every step and its moving average.

use super::{Denoiser, Diffusion, Guided, SampleOptions, SamplerKind};
use crate::error::Result;
use crate::io::image::{save_grid, GridLayout};
use crate::io::plot::loss_curve;
use crate::tensor::{init, rng};
use crate::vae::AutoencoderKL;
use ndarray::{concatenate, s, Array4, ArrayD, Axis, Ix4};
use std::path::PathBuf;

/// Rows of `samples.png` at most (one per class).
pub const MAX_ROWS: usize = 10;
/// Points of the trajectory in `denoise.png`.
pub const STRIP: usize = 10;
/// Samples per sampler call (guidance doubles it): bounds the memory of pixel-space models.
const CHUNK: usize = 40;

/// What to draw and where.
#[derive(Clone, Debug)]
pub struct FigureOptions {
    /// `(C, H, W)` of one sample.
    pub shape: (usize, usize, usize),
    pub classes: usize,
    /// `None`: an unconditional model (an 8-row grid, no guidance).
    pub null_label: Option<usize>,
    pub guidance: f32,
    /// DDIM steps.
    pub sample_steps: usize,
    pub per_class: usize,
    /// Latents were multiplied by this before diffusion; decoding divides by it.
    pub scale: f32,
    pub seed: u64,
    pub out: PathBuf,
}

/// Samples drawn by [`sample_grid`] and the trajectory of one of them.
pub struct Samples {
    /// `(N, C, H, W)` in the model's space, row by row.
    pub x: ArrayD<f32>,
    /// The class of each sample (empty for an unconditional model).
    pub labels: Vec<usize>,
    /// `(t, x_t, x̂_0)` of the traced sample at [`STRIP`] points, noisiest first.
    pub trajectory: Vec<(usize, ArrayD<f32>, ArrayD<f32>)>,
}

// ANCHOR: sample_grid
/// `per_class` samples of each class (the first [`MAX_ROWS`]) with deterministic DDIM over
/// `sample_steps` respaced steps, guided with scale `guidance` by the null label; traces the
/// first sample of row `trace_row`.
pub fn sample_grid(
    model: &dyn Denoiser,
    diffusion: &Diffusion,
    fig: &FigureOptions,
    clip_x0: bool,
    trace_row: usize,
) -> Result<Samples> {
    let n_steps = fig.sample_steps;
    // DDIM's even stride when it exists ("ddim50" of 1000), else improved-diffusion's spacing.
    let ddim = diffusion
        .respace_spec(&format!("ddim{n_steps}"))
        .or_else(|_| diffusion.respace_spec(&n_steps.to_string()))?;
    let rows = match fig.null_label {
        Some(_) => fig.classes.clamp(1, MAX_ROWS),
        None => 8,
    };
    let n = rows * fig.per_class;
    let labels: Vec<usize> = match fig.null_label {
        Some(_) => (0..n).map(|i| i / fig.per_class).collect(),
        None => Vec::new(),
    };
    let (c, h, w) = fig.shape;
    let noise = init::normal(&[n, c, h, w], 1.0, &mut rng(fig.seed ^ 0x5a3e)); // x_T
    let guided;
    let sampler: &dyn Denoiser = match fig.null_label {
        Some(null) if fig.guidance != 1.0 => {
            guided = Guided {
                model,
                scale: fig.guidance,
                null_label: null,
                channels: c,
            };
            &guided
        }
        _ => model,
    };
    let opts = SampleOptions {
        kind: SamplerKind::Ddim { eta: 0.0 },
        clip_x0,
    };
    let k = ddim.num_timesteps();
    // Step indices to trace: K−1 (the first, noisiest) down to 0 (the sample).
    let snap: Vec<usize> = (0..STRIP)
        .map(|j| ((k - 1) as f64 * (1.0 - j as f64 / (STRIP - 1) as f64)).round() as usize)
        .collect();
    let trace = (trace_row.min(rows - 1)) * fig.per_class;
    let mut trajectory = Vec::new();
    let mut parts = Vec::new();
    let mut r = rng(fig.seed ^ 0xd0d1);
    for start in (0..n).step_by(CHUNK) {
        let end = (start + CHUNK).min(n);
        let x_t = noise.slice_axis(Axis(0), (start..end).into()).to_owned();
        let y = (!labels.is_empty()).then(|| &labels[start..end]);
        let local = (start..end).contains(&trace).then(|| trace - start);
        let shape = x_t.shape().to_vec();
        let x = ddim.sample(
            sampler,
            &shape,
            Some(x_t),
            y,
            opts,
            &mut r,
            &mut |t, x, x0| {
                if let Some(i) = local {
                    if snap.contains(&t) && trajectory.len() < STRIP {
                        let one =
                            |a: &ArrayD<f32>| a.slice_axis(Axis(0), (i..i + 1).into()).to_owned();
                        trajectory.push((ddim.timestep_map[t], one(x), one(x0)));
                    }
                }
            },
        );
        parts.push(x);
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    let x = concatenate(Axis(0), &views).expect("chunks share their shape");
    Ok(Samples {
        x,
        labels,
        trajectory,
    })
}
// ANCHOR_END: sample_grid

/// Model-space samples as pixels: decoded by the VAE (after dividing by the scale), or
/// clamped to [−1, 1] in pixel space.
pub fn to_pixels(x: &ArrayD<f32>, vae: Option<&AutoencoderKL>, scale: f32) -> Array4<f32> {
    let x = x
        .view()
        .into_dimensionality::<Ix4>()
        .expect("images are (N, C, H, W)");
    match vae {
        Some(vae) => {
            let parts: Vec<Array4<f32>> = x
                .axis_chunks_iter(Axis(0), 64)
                .map(|z| vae.decode(&(&z / scale)))
                .collect();
            let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
            concatenate(Axis(0), &views).expect("chunks share their shape")
        }
        None => x.mapv(|v| v.clamp(-1.0, 1.0)),
    }
}

/// Samples, draws and saves `samples.png`, `denoise.png` and `loss.png` into `fig.out`.
pub fn write_figures(
    model: &dyn Denoiser,
    diffusion: &Diffusion,
    vae: Option<&AutoencoderKL>,
    fig: &FigureOptions,
    losses: &[f32],
) -> Result<Samples> {
    // A "3" is a more telling trajectory than a "0"; clamped to the classes there are.
    let samples = sample_grid(model, diffusion, fig, vae.is_none(), 3)?;
    let pixels = to_pixels(&samples.x, vae, fig.scale);
    let big = |h: usize| if h <= 16 { 4 } else { 2 };
    let up = big(pixels.dim().2);
    save_grid(
        &fig.out.join("samples.png"),
        pixels.view(),
        GridLayout::new(fig.per_class).pad(2).upscale(up),
    )?;

    let xs: Vec<_> = samples
        .trajectory
        .iter()
        .map(|(_, x, _)| x.view())
        .collect();
    let x0s: Vec<_> = samples
        .trajectory
        .iter()
        .map(|(_, _, x0)| x0.view())
        .collect();
    if !xs.is_empty() {
        let strip = concatenate(Axis(0), &[xs, x0s].concat()).expect("one sample each");
        let strip = to_pixels(&strip, vae, fig.scale); // (2·STRIP, C, H, W)
        save_grid(
            &fig.out.join("denoise.png"),
            strip.slice(s![.., .., .., ..]),
            GridLayout::new(samples.trajectory.len()).pad(2).upscale(up),
        )?;
    }

    loss_curve(
        &fig.out.join("loss.png"),
        "diffusion training loss",
        "loss (MSE on the target)",
        losses,
    )?;
    Ok(samples)
}

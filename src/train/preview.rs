//! The pictures of a diffusion run, for data of any rank: class-conditional samples drawn
//! through [`sample_grid`] (decoded by the VAE when the model lives in latent space), one
//! sample's denoising trajectory, and the loss curve.
//!
//! * `samples.png` (images) or `samples.gif` (clips, one GIF frame per clip frame): one row
//!   per class (the first ten), `per_row` samples each.
//! * `denoise.png`: for one sample (its first frame, for clips), $x_t$ (top) and the model's
//!   $\hat x_0$ (bottom) at ten points of the DDIM trajectory, noise on the left.
//! * `loss.png`: the loss of every step and its moving average.
//!
//! The trainer also draws a small grid of the EMA model now and then ([`sample_with_ema`]).

use super::data::TrainData;
use super::latent_norm::LatentNorm;
use super::options::TrainOptions;
use crate::diffusion::{sample_grid, Condition, Denoiser, Diffusion, Draw, Grid, Samples};
use crate::error::{Error, Result};
use crate::io::image::{save_gif, save_grid, GridLayout};
use crate::io::plot::loss_curve;
use crate::optim::Ema;
use crate::param::Parameters;
use crate::vae::Codec;
use ndarray::{concatenate, Array4, ArrayD, Axis, Ix4, Ix5};
use std::path::{Path, PathBuf};

/// Rows of a sample grid at most (one per class).
pub const MAX_ROWS: usize = 10;
/// Milliseconds per frame of a clip GIF.
pub const FRAME_MS: u32 = 120;

/// What the run's figures draw and where.
#[derive(Clone, Debug)]
pub struct FigureOptions {
    /// The samples: one row per class, DDIM with the run's guidance and seed.
    pub grid: Grid,
    /// How latents were normalised before diffusion; decoding undoes it.
    pub norm: LatentNorm,
    pub out: PathBuf,
}

/// The rows of a class grid: the first [`MAX_ROWS`] classes with the model's null label, or
/// [`Condition::None`] for an unconditional model.
pub fn class_rows(classes: usize, null_label: Option<usize>) -> Condition {
    match null_label {
        Some(_) => Condition::labels(&(0..classes.clamp(1, MAX_ROWS)).collect::<Vec<_>>()),
        None => Condition::None,
    }
}

impl FigureOptions {
    /// The figures of a run of `opts` on `data` with a model whose null label is `null_label`.
    pub fn new(opts: &TrainOptions, data: &TrainData, null_label: Option<usize>) -> Self {
        FigureOptions {
            grid: Grid {
                shape: data.sample_shape().to_vec(),
                rows: class_rows(data.num_classes(), null_label),
                per_row: opts.samples_per_class,
                draw: Draw {
                    clip_x0: !data.is_latent(),
                    ..Draw::ddim(opts.sample_steps, opts.guidance, opts.seed)
                },
            },
            norm: data.norm.clone(),
            out: opts.out.clone(),
        }
    }
}

/// The VAE in `vae` (image or video, see [`Codec`]) that decodes latents of `channels`
/// channels.
pub fn load_decoder(vae: &Path, channels: usize) -> Result<Codec> {
    let codec = Codec::load(vae)?;
    if codec.latent_channels() != channels {
        return Err(Error::new(
            format!(
                "the VAE in {} has {} latent channels but the latents have {channels}",
                vae.display(),
                codec.latent_channels()
            ),
            "pass the VAE checkpoint the latents were encoded with",
        ));
    }
    Ok(codec)
}

/// Model-space images `(N, C, H, W)` as pixels: decoded by the VAE (after undoing the
/// latents' normalisation), or clamped to [−1, 1] in pixel space.
pub fn to_images(x: &ArrayD<f32>, vae: Option<&Codec>, norm: &LatentNorm) -> Array4<f32> {
    to_pixels(x, vae, norm)
        .into_dimensionality::<Ix4>()
        .expect("images are (N, C, H, W)")
}

/// Model-space samples as pixels: images `(N, C, H, W)`, or clips `(N, C, F, h, w)` decoded
/// frame by frame by the image VAE or in time and space by the video VAE, after undoing the
/// latents' normalisation; in pixel space, clamped to [−1, 1].
pub fn to_pixels(x: &ArrayD<f32>, vae: Option<&Codec>, norm: &LatentNorm) -> ArrayD<f32> {
    let Some(vae) = vae else {
        return x.mapv(|v| v.clamp(-1.0, 1.0));
    };
    let z = norm.denormalise(x.view());
    match z.ndim() {
        4 => vae
            .decode_images(z.view().into_dimensionality::<Ix4>().expect("4-D"))
            .into_dyn(),
        5 => vae
            .decode_clips(z.view().into_dimensionality::<Ix5>().expect("5-D"))
            .into_dyn(),
        d => panic!("samples are (N, C, H, W) or (N, C, F, H, W), got {d} axes"),
    }
}

/// Frame `f` of clips `(N, C, F, H, W)`, or the images themselves.
fn frame(x: &ArrayD<f32>, f: usize) -> Array4<f32> {
    let x = if x.ndim() == 5 {
        x.index_axis(Axis(2), f).to_owned()
    } else {
        x.clone()
    };
    x.into_dimensionality::<Ix4>().expect("(N, C, H, W)")
}

/// Enlargement of small pictures.
fn upscale(h: usize) -> usize {
    if h <= 16 {
        4
    } else {
        2
    }
}

/// Saves pixels as a grid of `per_row` columns: a PNG at `path` for images, a GIF beside it
/// (`path` with the extension `gif`, one GIF frame per clip frame) for clips. Returns the path
/// written.
pub fn save_samples(path: &Path, pixels: &ArrayD<f32>, per_row: usize) -> Result<PathBuf> {
    let h = pixels.shape()[pixels.ndim() - 2];
    let layout = GridLayout::new(per_row).pad(2).upscale(upscale(h));
    if pixels.ndim() == 5 {
        let path = path.with_extension("gif");
        let frames: Vec<Array4<f32>> = (0..pixels.shape()[2]).map(|f| frame(pixels, f)).collect();
        let views: Vec<_> = frames.iter().map(|f| f.view()).collect();
        save_gif(&path, &views, layout, FRAME_MS)?;
        Ok(path)
    } else {
        save_grid(path, frame(pixels, 0).view(), layout)?;
        Ok(path.to_path_buf())
    }
}

/// Samples, draws and saves the samples grid, `denoise.png` and `loss.png` into `fig.out`.
pub fn write_figures(
    model: &dyn Denoiser,
    diffusion: &Diffusion,
    vae: Option<&Codec>,
    fig: &FigureOptions,
    losses: &[f32],
) -> Result<Samples> {
    // A "3" is a more telling trajectory than a "0"; clamped to the classes there are.
    let samples = sample_grid(model, diffusion, &fig.grid, 3, &mut |_| {})?;
    let pixels = to_pixels(&samples.x, vae, &fig.norm);
    save_samples(&fig.out.join("samples.png"), &pixels, fig.grid.per_row)?;

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
        let strip = frame(&to_pixels(&strip, vae, &fig.norm), 0); // (2·STRIP, C, H, W)
        let up = upscale(strip.dim().2);
        save_grid(
            &fig.out.join("denoise.png"),
            strip.view(),
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

/// The preview hook of the training loop: a small grid of the EMA model's samples
/// (`samples_<step>.png`, or `.gif` for clips; 2 per class, at most 20 DDIM steps) in
/// `fig.out`. The model's own weights are put back afterwards, and no training randomness
/// is used.
pub fn sample_with_ema<M: Denoiser + Parameters>(
    model: &mut M,
    ema: &mut Ema,
    diffusion: &Diffusion,
    vae: Option<&Codec>,
    fig: &FigureOptions,
    step: u64,
) -> Result<PathBuf> {
    let mut own = Vec::new();
    model.visit("", &mut |_, p| own.push(p.value.clone()));
    ema.copy_to(model);
    let small = Grid {
        per_row: 2,
        draw: Draw {
            steps: fig.grid.draw.steps.min(20),
            ..fig.grid.draw
        },
        ..fig.grid.clone()
    };
    let samples = sample_grid(&*model, diffusion, &small, 0, &mut |_| {});
    let mut own = own.into_iter();
    model.visit("", &mut |_, p| {
        p.value = own.next().expect("the same parameters")
    });
    let pixels = to_pixels(&samples?.x, vae, &fig.norm);
    save_samples(&fig.out.join(format!("samples_{step}.png")), &pixels, 2)
}

//! `minisora interpolate`: what a class-conditional model draws *between* two classes. The
//! class reaches the network only as a row of its label table — DiT's `y_embedder`, whose
//! $e_y$ joins the timestep in $c = e_t + e_y$, or the U-Net's `label_emb`, added to its
//! embedding $e$ — so we can hand it a vector between two rows, $e_a$ of `--from` and $e_b$
//! of `--to`, and watch one picture turn into the other.
//!
//! Every sample starts from the same noise $x_T$ (the first sample of `minisora sample` at
//! that seed) and is drawn with deterministic DDIM (η = 0), so the condition is the only
//! thing that changes along a row. The weights are $s = 0, \frac{1}{n-1}, \dots, 1$ for `n` =
//! `--steps` columns; the first row walks the straight line between the two rows, the second
//! the sphere ([`Blend`], [`crate::diffusion::slerp`]). With guidance, each blend is
//! contrasted with the null label as usual.
//!
//! Writes the grid (2 rows × `n`, decoded by the VAE for a latent model) as a PNG and, beside
//! it, a GIF of the spherical row there and back.
//!
//! Every user error (missing checkpoint or VAE, an unconditional model, a class out of range,
//! fewer than two steps) is checked before any sampling, and names the problem and the fix.

use crate::diffusion::{draw_from, Blend, Condition, Draw};
use crate::error::{Error, Result};
use crate::io::image::{save_gif, GridLayout};
use crate::io::json::Json;
use crate::models::{load_model, Loaded};
use crate::sample::decoder;
use crate::train::preview::{save_samples, to_images};
use ndarray::{Array4, Axis};
use std::path::PathBuf;

/// Milliseconds per frame of the morph GIF.
const FRAME_MS: u32 = 150;

/// What `minisora interpolate` was asked for.
#[derive(Clone, Debug)]
pub struct InterpolateRequest {
    /// The checkpoint to sample (class-conditional).
    pub ckpt: PathBuf,
    /// The class at weight 0.
    pub from: usize,
    /// The class at weight 1.
    pub to: usize,
    /// Columns: weights $0, \frac{1}{n-1}, \dots, 1$ (at least 2).
    pub steps: usize,
    /// The PNG grid to write; the GIF goes beside it (`.gif`).
    pub out: PathBuf,
    /// The VAE that decodes a latent model's samples.
    pub vae: PathBuf,
    /// Seed of the shared noise $x_T$.
    pub seed: u64,
    /// DDIM steps (respaced from the training steps).
    pub sample_steps: usize,
    /// Classifier-free guidance scale (1 = none).
    pub cfg_scale: f32,
}

/// What [`interpolate`] wrote.
#[derive(Clone, Debug)]
pub struct Interpolation {
    /// The model family (`dit`, `unet`).
    pub model: &'static str,
    pub png: PathBuf,
    pub gif: PathBuf,
    /// The grid's pixels in [−1, 1], `(2·steps, C, H, W)`: the linear row, then the spherical.
    pub pixels: Array4<f32>,
}

/// The condition of the grid, row by row: `steps` blends from `from` to `to` along the line,
/// then the same weights along the sphere.
pub fn blend_rows(from: usize, to: usize, steps: usize) -> Condition {
    let weight = |j: usize| j as f32 / (steps.max(2) - 1) as f32; // s = j / (n − 1)
    let row = |spherical| {
        (0..steps).map(move |j| Blend {
            from,
            to,
            weight: weight(j),
            spherical,
        })
    };
    Condition::blends(&row(false).chain(row(true)).collect::<Vec<_>>())
}

/// Checks what can be checked before loading anything.
fn check_request(req: &InterpolateRequest) -> Result<()> {
    if req.steps < 2 {
        return Err(Error::new(
            format!(
                "--steps {}: an interpolation needs both ends, weight 0 and weight 1",
                req.steps
            ),
            "pass --steps 2 or more, e.g. --steps 9",
        ));
    }
    if !req.cfg_scale.is_finite() || req.cfg_scale < 0.0 {
        return Err(Error::new(
            format!("--cfg-scale {}", req.cfg_scale),
            "pass a guidance scale ≥ 0 (1 = no guidance, 4 = DiT's)",
        ));
    }
    let png = req.out.extension().and_then(|e| e.to_str());
    if !png.is_some_and(|e| e.eq_ignore_ascii_case("png")) {
        return Err(Error::new(
            format!("--out {}: the grid is written as a PNG", req.out.display()),
            "pass an --out ending in .png (the GIF is written beside it, ending in .gif)",
        ));
    }
    Ok(())
}

/// Checks the request against the checkpoint.
fn check_model(req: &InterpolateRequest, loaded: &Loaded) -> Result<()> {
    let ckpt = req.ckpt.display();
    if loaded.null_label.is_none() || loaded.num_classes == 0 {
        return Err(Error::new(
            format!("{ckpt} is unconditional: it has no classes to interpolate between"),
            "pass a class-conditional checkpoint (`minisora train` trains one on labelled data)",
        ));
    }
    let n = loaded.num_classes;
    for (flag, class) in [("--from", req.from), ("--to", req.to)] {
        if class >= n {
            return Err(Error::new(
                format!("{flag} {class} is out of range: the model knows {n} classes"),
                format!("pass {flag} between 0 and {}", n - 1),
            ));
        }
    }
    if loaded.shape.len() != 3 {
        return Err(Error::new(
            format!(
                "{ckpt} draws clips {:?}; interpolate draws images",
                loaded.shape
            ),
            "pass the checkpoint of an image model (C, H, W)",
        ));
    }
    let t = loaded.diffusion.num_timesteps();
    if !(1..=t).contains(&req.sample_steps) {
        return Err(Error::new(
            format!(
                "--sample-steps {}: the model was trained with {t} steps",
                req.sample_steps
            ),
            format!("pass --sample-steps between 1 and {t}, e.g. 50"),
        ));
    }
    Ok(())
}

/// Loads, checks, samples the two rows from one $x_T$, decodes them and writes the PNG grid
/// and the GIF (both atomically).
pub fn interpolate(req: &InterpolateRequest) -> Result<Interpolation> {
    check_request(req)?;
    let loaded = load_model(&req.ckpt)?;
    check_model(req, &loaded)?;
    let vae = decoder(&req.vae, &req.ckpt, &loaded)?;
    let how = Draw {
        clip_x0: !loaded.latent,
        ..Draw::ddim(req.sample_steps, req.cfg_scale, req.seed)
    };
    let n = 2 * req.steps;
    let y = blend_rows(req.from, req.to, req.steps);
    // One $x_T$ (1, C, H, W), repeated for all 2n samples: only the condition differs.
    let one = how.noise(1, &loaded.shape);
    let full: Vec<usize> = std::iter::once(n)
        .chain(loaded.shape.iter().copied())
        .collect();
    let noise = one.broadcast(full).expect("(1, …) broadcasts").to_owned();
    let x = draw_from(
        &*loaded.model,
        &loaded.diffusion,
        noise,
        &y,
        &how,
        &mut |_| {},
    )?;
    let pixels = to_images(&x, vae.as_ref(), &loaded.norm); // (2n, C, H, W)
    let png = save_samples(&req.out, &pixels.clone().into_dyn(), req.steps)?;

    // The morph: the spherical row's columns, then back (without repeating either end).
    let sphere = pixels.slice_axis(Axis(0), (req.steps..n).into());
    let order = (0..req.steps).chain((1..req.steps - 1).rev());
    let frames: Vec<_> = order
        .map(|j| sphere.slice_axis(Axis(0), (j..j + 1).into()))
        .collect();
    let h = pixels.dim().2;
    let layout = GridLayout::new(1)
        .pad(2)
        .upscale(if h <= 16 { 4 } else { 2 });
    let gif = req.out.with_extension("gif");
    save_gif(&gif, &frames, layout, FRAME_MS)?;

    println!(
        "interpolated class {} → {} of {} at {} weights (rows: linear, spherical; {} DDIM \
         steps, guidance {}): wrote {} and {}",
        req.from,
        req.to,
        req.ckpt.display(),
        req.steps,
        req.sample_steps,
        req.cfg_scale,
        png.display(),
        gif.display()
    );
    let line = Json::obj([
        ("from", Json::Num(req.from as f64)),
        ("to", Json::Num(req.to as f64)),
        ("steps", Json::Num(req.steps as f64)),
        ("model", Json::str(loaded.family)),
        ("png", Json::str(png.display().to_string())),
        ("gif", Json::str(gif.display().to_string())),
    ]);
    println!("{}", line.to_line());
    Ok(Interpolation {
        model: loaded.family,
        png,
        gif,
        pixels,
    })
}

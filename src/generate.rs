//! `minisora generate "a red 3 moving left and a blue 7 moving up"`: clips from a sentence.
//!
//! The prompts (one, or a file of one per line) are tokenized first — an unknown word, an
//! empty prompt or a bad line of the file is an error before anything is computed or
//! written — then a text-conditioned video DiT draws `n` clips per prompt with classifier-free
//! guidance on the text. It writes a GIF (a row per prompt, a clip per column) and, per
//! prompt, a PNG strip (a clip per row, a frame per column) with the caption printed above.

use crate::error::{Error, Result};
use crate::evaluate_text::generate_clips;
use crate::io::image::{grid, GridLayout};
use crate::io::json::Json;
use crate::io::plot::{plot_err, render};
use crate::models::load_model;
use crate::sample::{decoder, set_frames, strips};
use crate::text::tokenizer::{tokenize, Tokens};
use crate::train::preview::save_samples;
use crate::video::captions::parse_caption;
use ndarray::{s, ArrayView5};
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What `minisora generate` was asked for.
#[derive(Clone, Debug)]
pub struct GenerateRequest {
    pub prompts: Vec<String>,
    pub ckpt: PathBuf,
    pub vae: PathBuf,
    /// Frames per clip (`None`: the trained length).
    pub frames: Option<usize>,
    pub guidance: f32,
    pub steps: usize,
    pub seed: u64,
    /// Clips per prompt.
    pub n: usize,
    /// The GIF; the strips go beside it.
    pub out: PathBuf,
}

/// The prompts of a file, one per non-empty line, each tokenized; a line that does not
/// tokenize is an error that names its number.
pub fn read_prompts(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(
            format!("cannot read the prompts file {}: {e}", path.display()),
            "pass a text file with one prompt per line",
        )
    })?;
    let mut prompts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        check_prompt(line).map_err(|e| {
            Error::new(
                format!("{} line {}: {}", path.display(), i + 1, e.problem),
                e.fix.clone(),
            )
        })?;
        prompts.push(line.trim().to_string());
    }
    if prompts.is_empty() {
        return Err(Error::new(
            format!("{} has no prompts", path.display()),
            "write one prompt per line, e.g. `a red 3 moving left`",
        ));
    }
    Ok(prompts)
}

/// A prompt the model can be asked for: it reads as one or two digits of the caption grammar
/// ([`parse_caption`], which tokenizes first: a colour, a digit and a direction each).
pub fn check_prompt(prompt: &str) -> Result<()> {
    parse_caption(prompt).map(|_| ())
}

/// Draws the clips, writes the GIF and the strips; returns the GIF's path. The last stdout
/// line is one JSON object.
pub fn generate(req: &GenerateRequest) -> Result<PathBuf> {
    let start = Instant::now();
    if req.n == 0 || req.steps == 0 || req.prompts.is_empty() {
        return Err(Error::new(
            "nothing to generate: --n, --steps and the prompts must not be empty",
            "e.g. minisora generate \"a red 3 moving left\" --n 4",
        ));
    }
    req.prompts.iter().try_for_each(|p| check_prompt(p))?;
    let tokens: Vec<Tokens> = req
        .prompts
        .iter()
        .map(|p| tokenize(p))
        .collect::<Result<_>>()?;
    let mut loaded = load_model(&req.ckpt)?;
    if let Some(f) = req.frames {
        set_frames(&mut loaded, f, &req.ckpt)?;
    }
    let vae = decoder(&req.vae, &req.ckpt, &loaded)?;
    let each: Vec<Tokens> = tokens
        .iter()
        .flat_map(|t| std::iter::repeat_n(t.clone(), req.n))
        .collect();
    let pixels = generate_clips(
        &loaded,
        vae.as_ref(),
        &each,
        req.guidance,
        req.steps,
        req.seed,
    )?;
    let gif = save_samples(&req.out, &pixels.clone().into_dyn(), req.n)?;
    println!(
        "wrote {} (a row per prompt, {} clips each)",
        gif.display(),
        req.n
    );
    let mut written = vec![Json::str(gif.display().to_string())];
    for (i, prompt) in req.prompts.iter().enumerate() {
        let path = match req.prompts.len() {
            1 => req.out.with_extension("png"),
            _ => req
                .out
                .with_file_name(format!("{}-{}.png", stem(&req.out), i + 1)),
        };
        let clips = pixels.slice(s![i * req.n..(i + 1) * req.n, .., .., .., ..]);
        save_strip(&path, clips, prompt)?;
        println!("wrote {}: {prompt}", path.display());
        written.push(Json::str(path.display().to_string()));
    }
    let json = Json::obj([
        ("prompts", Json::num(req.prompts.len() as f64, 0)),
        ("clips", Json::num(pixels.shape()[0] as f64, 0)),
        ("frames", Json::num(pixels.shape()[2] as f64, 0)),
        ("guidance", Json::num(req.guidance as f64, 2)),
        ("seconds", Json::num(start.elapsed().as_secs_f64(), 1)),
        ("files", Json::Arr(written)),
    ]);
    println!("{}", json.to_line());
    Ok(gif)
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map_or("clip".into(), |s| s.to_string_lossy().into_owned())
}

/// Clips `(n, 3, F, H, W)` as a strip, a clip per row and a frame per column, under the
/// caption.
fn save_strip(path: &Path, clips: ArrayView5<f32>, caption: &str) -> Result<()> {
    let frames = clips.shape()[2];
    let image = grid(
        strips(&clips.to_owned().into_dyn()).view(),
        GridLayout::new(frames).pad(2).upscale(3),
    )?;
    let (w, h) = image.dimensions();
    let title = 28;
    render(path, (w.max(360), h + title), |root| {
        root.draw(&Text::new(
            caption.to_string(),
            (6, 6),
            ("sans-serif", 18).into_font().color(&BLACK),
        ))
        .map_err(plot_err)?;
        for (x, y, p) in image.enumerate_pixels() {
            let [r, g, b] = p.0;
            root.draw_pixel((x as i32, (y + title) as i32), &RGBColor(r, g, b))
                .map_err(plot_err)?;
        }
        Ok(())
    })
}

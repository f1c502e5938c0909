//! `minisora train-video-vae`: the video compression network on moving digits, measured
//! against the image VAE applied frame by frame on the same held-out clips.
//!
//! 1. draw clips of `1 + 4k` frames (17 by default) and a held-out set;
//! 2. train the image VAE on their frames (or load one with `--vae`);
//! 3. train the causal temporal VAE on the image VAE's latent clips;
//! 4. reconstruct the held-out clips both ways and report, per frame, the PSNR; the flicker
//!    (mean |Δ| between consecutive reconstructed frames minus the originals'); the latent
//!    tokens per clip; and the seconds to encode and decode a clip.
//!
//! Figures in `--out`: `recon.gif` (originals, per-frame VAE, video VAE, a row each),
//! `psnr.png`, `flicker.png` and `loss.png`. The last stdout line is one JSON object.

use super::moving_digits::MovingDigits;
use crate::error::{Error, Result};
use crate::io::image::{save_gif, GridLayout};
use crate::io::json::Json;
use crate::io::plot::{line_plot, Series};
use crate::vae::temporal::train::{
    frame_change, mean, per_frame_psnr, train_temporal, TrainTemporalOptions,
};
use crate::vae::temporal::VideoVae;
use crate::vae::train::{load_vae, train_vae_on, TrainVaeOptions};
use crate::vae::Recon;
use ndarray::{concatenate, s, Array5, ArrayView5, Axis};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What `train-video-vae` runs; the defaults are the Sora chapter's.
#[derive(Clone, Debug)]
pub struct VideoVaeRun {
    /// Frames per clip, `1 + 4k`.
    pub frames: usize,
    pub clips: usize,
    pub held_out: usize,
    /// An image VAE to build on; without one, it is trained first.
    pub vae: Option<PathBuf>,
    pub vae_steps: u64,
    pub temporal: TrainTemporalOptions,
    pub seed: u64,
    pub out: PathBuf,
}

impl Default for VideoVaeRun {
    fn default() -> Self {
        VideoVaeRun {
            frames: 17,
            clips: 2000,
            held_out: 64,
            vae: None,
            vae_steps: 600,
            temporal: TrainTemporalOptions::default(),
            seed: 0,
            out: PathBuf::from("out/video-vae"),
        }
    }
}

/// Both codecs' reconstructions of the held-out clips and the seconds each took.
struct Recons {
    per_frame: Array5<f32>,
    per_frame_secs: f64,
    video: Array5<f32>,
    video_secs: f64,
}

fn reconstruct(vae: &VideoVae, clips: ArrayView5<f32>) -> Recons {
    let t = Instant::now();
    let per_frame = vae.spatial_pixels(vae.spatial_latents(clips).view());
    let per_frame_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (mean, _) = vae.encode(clips);
    let video = vae.decode(mean.view());
    Recons {
        per_frame,
        per_frame_secs,
        video,
        video_secs: t.elapsed().as_secs_f64(),
    }
}

/// Runs the four stages; returns the JSON it prints last.
pub fn run_train_video_vae(opts: &VideoVaeRun) -> Result<Json> {
    let gen = MovingDigits {
        frames: opts.frames,
        ..MovingDigits::default()
    };
    opts.temporal.config.check_frames(opts.frames)?;
    if opts.held_out == 0 {
        return Err(Error::new(
            "no held-out clips",
            "hold out at least one clip (--held-out)",
        ));
    }
    println!(
        "minisora train-video-vae: {} clips of {} frames → image VAE → causal temporal VAE \
         (×{} in time); writing {}/",
        opts.clips,
        opts.frames,
        opts.temporal.config.time_factor(),
        opts.out.display()
    );
    let clips = gen.generate(opts.clips, opts.seed)?;
    let held = gen.generate(opts.held_out, opts.seed ^ 0x4e1d)?;

    let vae_path = match &opts.vae {
        Some(path) => path.clone(),
        None => {
            let mut vae_opts = TrainVaeOptions {
                steps: opts.vae_steps,
                seed: opts.seed,
                out: opts.out.join("image-vae"),
                ..TrainVaeOptions::default()
            };
            vae_opts.loss.recon = Recon::Mse; // as demo-video: a frame is mostly background
            let frames = held.frames().images;
            let name = format!("{}-frames", gen.dataset_name());
            train_vae_on(&vae_opts, &name, clips.frames(), frames)?.checkpoint
        }
    };
    let (spatial, scale) = load_vae(&vae_path)?;
    if spatial.config.in_channels != 1 {
        return Err(Error::new(
            format!(
                "the image VAE in {} reads {} channels; moving digits have 1",
                vae_path.display(),
                spatial.config.in_channels
            ),
            "pass an image VAE trained on grey frames (demo-video's), or leave out --vae",
        ));
    }
    let temporal = TrainTemporalOptions {
        out: opts.out.clone(),
        seed: opts.seed,
        ..opts.temporal.clone()
    };
    let trained = train_temporal(&temporal, spatial, scale as f32, clips.clips.view())?;
    let vae = trained.vae;

    let x = held.clips.view();
    let rec = reconstruct(&vae, x);
    let psnr_frame = per_frame_psnr(x, rec.per_frame.view());
    let psnr_video = per_frame_psnr(x, rec.video.view());
    let change = [x, rec.per_frame.view(), rec.video.view()].map(frame_change);
    let flicker_frame = mean(&change[1]) - mean(&change[0]);
    let flicker_video = mean(&change[2]) - mean(&change[0]);
    let (h, w) = (x.dim().3 / 4, x.dim().4 / 4);
    let tokens_frame = opts.frames * h * w;
    let tokens_video = vae.temporal.config.latent_frames(opts.frames) * h * w;
    let n = opts.held_out as f64;
    write_figures(
        &opts.out,
        x,
        &rec,
        &[&psnr_frame, &psnr_video],
        &change,
        &trained.curve,
    )?;

    println!(
        "held-out PSNR per frame: image VAE {:.2} dB, video VAE {:.2} dB (worst frame {:.2}); \
         flicker (mean |Δ| minus the originals'): {:+.4} vs {:+.4}; latent positions per clip \
         {tokens_frame} vs {tokens_video} ({:.2}× fewer); encode + decode {:.1} vs {:.1} ms a \
         clip; temporal VAE trained in {:.1} s",
        mean(&psnr_frame),
        mean(&psnr_video),
        psnr_video.iter().cloned().fold(f64::INFINITY, f64::min),
        flicker_frame,
        flicker_video,
        tokens_frame as f64 / tokens_video as f64,
        1e3 * rec.per_frame_secs / n,
        1e3 * rec.video_secs / n,
        trained.seconds
    );
    let list = |v: &[f64]| Json::Arr(v.iter().map(|&p| Json::num(p, 3)).collect());
    let json = Json::obj([
        ("frames", Json::num(opts.frames as f64, 0)),
        ("psnr_image_vae_db", Json::num(mean(&psnr_frame), 3)),
        ("psnr_video_vae_db", Json::num(mean(&psnr_video), 3)),
        (
            "psnr_gap_db",
            Json::num(mean(&psnr_frame) - mean(&psnr_video), 3),
        ),
        ("psnr_per_frame_image_vae", list(&psnr_frame)),
        ("psnr_per_frame_video_vae", list(&psnr_video)),
        ("flicker_image_vae", Json::num(flicker_frame, 5)),
        ("flicker_video_vae", Json::num(flicker_video, 5)),
        ("tokens_image_vae", Json::num(tokens_frame as f64, 0)),
        ("tokens_video_vae", Json::num(tokens_video as f64, 0)),
        (
            "token_ratio",
            Json::num(tokens_frame as f64 / tokens_video as f64, 3),
        ),
        (
            "ms_per_clip_image_vae",
            Json::num(1e3 * rec.per_frame_secs / n, 2),
        ),
        (
            "ms_per_clip_video_vae",
            Json::num(1e3 * rec.video_secs / n, 2),
        ),
        ("train_seconds", Json::num(trained.seconds, 1)),
        ("steps", Json::num(temporal.steps as f64, 0)),
        (
            "checkpoint",
            Json::str(opts.out.join("video_vae.safetensors").display().to_string()),
        ),
    ]);
    println!("{}", json.to_line());
    Ok(json)
}

/// `recon.gif`, `psnr.png`, `flicker.png`, `loss.png`.
fn write_figures(
    out: &Path,
    x: ArrayView5<f32>,
    rec: &Recons,
    psnr: &[&Vec<f64>; 2],
    change: &[Vec<f64>; 3],
    curve: &[(f64, f64)],
) -> Result<()> {
    let k = x.dim().0.min(8);
    let rows = [
        x.slice(s![..k, .., .., .., ..]),
        rec.per_frame.slice(s![..k, .., .., .., ..]),
        rec.video.slice(s![..k, .., .., .., ..]),
    ];
    let stacked = concatenate(Axis(0), &rows).expect("same shapes"); // (3k, C, F, H, W)
    let frames: Vec<_> = stacked.axis_iter(Axis(2)).collect();
    save_gif(
        &out.join("recon.gif"),
        &frames,
        GridLayout::new(k).pad(2).upscale(2),
        150,
    )?;
    let series = |name: &str, v: &[f64]| Series {
        name: name.to_string(),
        points: v.iter().enumerate().map(|(t, &p)| (t as f64, p)).collect(),
    };
    line_plot(
        &out.join("psnr.png"),
        "held-out PSNR of each frame",
        "frame",
        "PSNR (dB)",
        &[
            series("image VAE, frame by frame", psnr[0]),
            series("causal video VAE (4× in time)", psnr[1]),
        ],
        false,
    )?;
    line_plot(
        &out.join("flicker.png"),
        "change between consecutive frames",
        "frames t → t + 1",
        "mean |x(t+1) − x(t)|",
        &[
            series("originals", &change[0]),
            series("image VAE, frame by frame", &change[1]),
            series("causal video VAE", &change[2]),
        ],
        false,
    )?;
    line_plot(
        &out.join("loss.png"),
        "temporal VAE: reconstruction of the image latents",
        "step",
        "summed squared error per clip",
        &[Series {
            name: "reconstruction".into(),
            points: curve.to_vec(),
        }],
        true,
    )
}

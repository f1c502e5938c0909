//! Training the temporal VAE on the image VAE's latent clips, and the measures the Sora
//! chapter compares against the image VAE applied frame by frame: per-frame PSNR, temporal
//! flicker, latent tokens per clip, and the time to encode and decode a clip.
//!
//! The loss is in latent space (the image VAE is frozen): the temporal VAE learns to give back
//! the image latents, and the image decoder turns them into pixels. Each step trains on a
//! random window of `1 + 4k` frames from each clip (the window's first frame is encoded alone,
//! as an image would be), so one model serves every length.

use super::model::{TemporalVae, TemporalVaeConfig};
use super::video_vae::VideoVae;
use crate::error::{Error, Result};
use crate::io::checkpoint::save_checkpoint;
use crate::io::progress::Progress;
use crate::optim::{AdamW, AdamWConfig, CosineSchedule};
use crate::tensor::{init, rng};
use crate::vae::train::psnr_db;
use crate::vae::{AutoencoderKL, Recon, VaeLoss};
use crate::Parameters;
use ndarray::{s, Array5, ArrayView5, Axis, Ix5};
use ndarray_rand::rand::Rng as _;
use std::path::PathBuf;
use std::time::Instant;

/// A temporal VAE training run.
#[derive(Clone, Debug)]
pub struct TrainTemporalOptions {
    pub config: TemporalVaeConfig,
    pub steps: u64,
    /// Clips per step.
    pub batch: usize,
    /// Frames of each training window (`1 + 4k`).
    pub window: usize,
    pub lr: f32,
    pub kl_weight: f32,
    pub seed: u64,
    pub out: PathBuf,
}

impl Default for TrainTemporalOptions {
    /// Width 32, 3000 steps of 8 windows of 9 frames, AdamW 2e-3 with cosine decay, β = 1e-3
    /// (the image VAE's).
    fn default() -> Self {
        TrainTemporalOptions {
            config: TemporalVaeConfig {
                width: 32,
                ..TemporalVaeConfig::default()
            },
            steps: 3000,
            batch: 8,
            window: 9,
            lr: 2e-3,
            kl_weight: 1e-3,
            seed: 0,
            out: PathBuf::from("out/video-vae"),
        }
    }
}

/// The trained temporal VAE on top of `spatial`, and its loss curve.
pub struct Trained {
    pub vae: VideoVae,
    pub curve: Vec<(f64, f64)>,
    pub seconds: f64,
}

/// Trains the temporal VAE on `clips` (pixels, `(N, C, F, H, W)`) encoded by the frozen image
/// VAE `spatial`, whose latents × `spatial_scale` have unit variance.
pub fn train_temporal(
    opts: &TrainTemporalOptions,
    spatial: AutoencoderKL,
    spatial_scale: f32,
    clips: ArrayView5<f32>,
) -> Result<Trained> {
    let mut config = opts.config.clone();
    config.in_channels = spatial.config.z_channels;
    config.check_frames(opts.window)?;
    let (n, _, f, _, _) = clips.dim();
    if n == 0 || f < opts.window {
        return Err(Error::new(
            format!(
                "{n} clips of {f} frames to train on, windows of {}",
                opts.window
            ),
            "train on at least one clip at least as long as the window",
        ));
    }
    let mut r = rng(opts.seed);
    let temporal = TemporalVae::new(config, &mut r)?;
    let mut vae = VideoVae {
        spatial,
        spatial_scale,
        temporal,
    };
    let start = Instant::now();
    let latents = vae.spatial_latents(clips); // (N, z, F, h, w), unit variance
    let (_, z, _, h, w) = latents.dim();
    let zt = vae.temporal.config.z_channels;
    let loss = VaeLoss {
        recon: Recon::Mse,
        kl_weight: opts.kl_weight,
    };
    let mut opt = AdamW::new(AdamWConfig {
        lr: opts.lr,
        weight_decay: 0.0,
        ..AdamWConfig::default()
    });
    let sched = CosineSchedule {
        base_lr: opts.lr,
        min_lr: opts.lr * 0.05,
        warmup_steps: 50,
        total_steps: opts.steps,
    };
    let lat_frames = vae.temporal.config.latent_frames(opts.window);
    let mut curve = Vec::with_capacity(opts.steps as usize);
    let bar = Progress::new(opts.steps, "train-video-vae");
    for step in 0..opts.steps {
        // ANCHOR: temporal_train_step
        // a random window of `window` frames from each of `batch` random clips
        let mut x = Array5::zeros((opts.batch, z, opts.window, h, w));
        for mut clip in x.outer_iter_mut() {
            let (i, t0) = (r.random_range(0..n), r.random_range(0..=f - opts.window));
            clip.assign(&latents.slice(s![i, .., t0..t0 + opts.window, .., ..]));
        }
        let eps = init::normal(&[opts.batch, zt, lat_frames, h, w], 1.0, &mut r)
            .into_dimensionality::<Ix5>()
            .expect("5-D"); // ε ~ N(0, I)
        vae.temporal.zero_grad();
        let (parts, _) = vae.temporal.loss_and_input_grad(&x, &eps, &loss);
        opt.lr = sched.lr_at(step);
        opt.step(&mut vae.temporal);
        // ANCHOR_END: temporal_train_step
        curve.push((step as f64, parts.recon));
        bar.step(parts.total as f32);
    }
    bar.finish();
    let seconds = start.elapsed().as_secs_f64();
    let checkpoint = opts.out.join("video_vae.safetensors");
    let mut meta = vae.to_metadata();
    meta.insert("video_vae.steps".into(), opts.steps.to_string());
    save_checkpoint(&checkpoint, &mut vae, &meta)?;
    Ok(Trained {
        vae,
        curve,
        seconds,
    })
}

// ANCHOR: clip_measures
/// PSNR of each frame index over the clips: entry `t` compares frame `t` of `x` and `y`
/// (both `(N, C, F, H, W)`).
pub fn per_frame_psnr(x: ArrayView5<f32>, y: ArrayView5<f32>) -> Vec<f64> {
    (0..x.dim().2)
        .map(|t| psnr_db(x.index_axis(Axis(2), t), y.index_axis(Axis(2), t)))
        .collect()
}

/// Mean $|x_{t+1} - x_t|$ over every pixel of every clip, for each pair of consecutive
/// frames `t = 0 … F − 2` (pixels in [−1, 1]). A reconstruction's flicker is this minus the
/// originals': what the codec adds to the motion that is there.
pub fn frame_change(x: ArrayView5<f32>) -> Vec<f64> {
    let f = x.dim().2;
    (0..f.saturating_sub(1))
        .map(|t| {
            let (a, b) = (x.index_axis(Axis(2), t), x.index_axis(Axis(2), t + 1));
            let sum: f64 = a
                .iter()
                .zip(b.iter())
                .map(|(&p, &q)| (q.clamp(-1.0, 1.0) - p.clamp(-1.0, 1.0)).abs() as f64)
                .sum();
            sum / a.len() as f64
        })
        .collect()
}
// ANCHOR_END: clip_measures

/// The mean of a list (0 when empty).
pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

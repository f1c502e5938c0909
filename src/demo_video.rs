//! The video demo, `cargo run --release -- demo-video`: Sora's recipe at the scale of a
//! laptop, on moving digits made from a seed.
//!
//! 1. draw the clips and train the image VAE on their single frames;
//! 2. encode every clip frame by frame into latent clips `(N, 4, F, 8, 8)`;
//! 3. train an image DiT on the latent frames, labelled by digit;
//! 4. inflate it into the `alternating` video DiT (Latte's layout: its blocks become the spatial
//!    blocks, the temporal blocks start silent) and train that on the latent clips, labelled by
//!    (digit, motion);
//! 5. sample clips of every class, decode them and score them — digit, motion, consistency,
//!    FVD — and draw the grid as a GIF (a row per digit, a column per motion).
//!
//! Everything goes to `out/demo-video/`; the last stdout line is one JSON object.

use crate::dit::{load_dit, DiT, DiTConfig};
use crate::error::Result;
use crate::evaluate_video::{evaluate_video, load_or_train_scorer, VideoEvalRequest};
use crate::io::json::Json;
use crate::metrics::video::clips::{score_clips, VideoReport};
use crate::models::dit::{dit_diffusion, dit_info, dit_options};
use crate::models::video::{train_video, video_options};
use crate::models::Recipe;
use crate::tensor::rng;
use crate::train::preview::{load_decoder, save_samples, to_pixels};
use crate::train::{train, Source, TrainData, TrainOptions};
use crate::vae::train::{train_vae_on, TrainVaeOptions};
use crate::vae::Recon;
use crate::video::encode::encode_clips;
use crate::video::inflate::inflate;
use crate::video::moving_digits::{unlabel, MovingDigits, Sprites, MOTIONS, NUM_CLASSES};
use crate::video::Layout;
use ndarray::{Axis, Ix5};
use std::path::PathBuf;
use std::time::Instant;

/// What the video demo runs; the defaults are the README's.
#[derive(Clone, Debug)]
pub struct VideoDemoOptions {
    pub out: PathBuf,
    pub seed: u64,
    /// Where the glyphs come from: the procedural digits, or a real set (`uci-digits`).
    pub sprites: Sprites,
    /// Frames per clip.
    pub frames: usize,
    /// Frames per spacetime patch (1: per-frame patches; 2: tubelets).
    pub temporal_patch: usize,
    /// Speeds, pixels per frame.
    pub min_speed: usize,
    pub max_speed: usize,
    /// Training clips.
    pub clips: usize,
    pub vae_steps: u64,
    /// The image DiT's config and steps (stage 3).
    pub image_dit: String,
    pub image_steps: u64,
    /// The video DiT's steps and clips per step (stage 4).
    pub video_steps: u64,
    pub video_batch: usize,
    /// Clips sampled per class for the scores, and how.
    pub per_class: usize,
    pub guidance: f32,
    pub sample_steps: usize,
    pub scorer_cache: PathBuf,
}

// ANCHOR: video_demo_options
impl Default for VideoDemoOptions {
    /// Each choice measured on two cores (the Sora chapter's tables): the VAE at 600 steps
    /// (29 dB; at 300 steps, 24 dB, a quarter of real clips' digits were lost in the round
    /// trip), DiT-mini/2 inflated into 2×2×2 tubelets (the only patches that learned motion at
    /// this budget), 3000 steps of 32 clips, and guidance 3 (at 1.5: 34 % digits, 90 % motion,
    /// FVD 377; at 3: 45 %, 100 %, FVD 454; at 5: 50 %, 100 %, FVD 889).
    fn default() -> Self {
        VideoDemoOptions {
            out: PathBuf::from("out/demo-video"),
            seed: 0,
            sprites: Sprites::Procedural,
            frames: 8,
            temporal_patch: 2,
            min_speed: MovingDigits::default().min_speed,
            max_speed: MovingDigits::default().max_speed,
            clips: 2000,
            vae_steps: 600,
            image_dit: "DiT-mini/2".into(),
            image_steps: 2000,
            video_steps: 3000,
            video_batch: 32,
            per_class: 2,
            guidance: 3.0,
            sample_steps: 25,
            scorer_cache: PathBuf::from("out/scorer"),
        }
    }
}
// ANCHOR_END: video_demo_options

fn stage(i: usize, what: &str) {
    println!();
    println!("[{i}/5] {what}");
}

/// Runs the five stages; the last stdout line is one JSON object of the figures.
pub fn run_video_demo(opts: &VideoDemoOptions) -> Result<Json> {
    let start = Instant::now();
    let gen = MovingDigits {
        frames: opts.frames,
        sprites: opts.sprites.clone(),
        min_speed: opts.min_speed,
        max_speed: opts.max_speed,
        ..MovingDigits::default()
    };
    let name = gen.dataset_name();
    println!(
        "minisora demo-video: {name} → VAE on frames → latent clips → {} → inflated video DiT \
         (alternating) → clips of every (digit, motion) → scores; writing {}/",
        opts.image_dit,
        opts.out.display()
    );

    stage(1, "draw the clips and train the VAE on their frames");
    let clips = gen.generate(opts.clips, opts.seed)?;
    let held_out = gen.generate(64, opts.seed ^ 0x4e1d)?.frames().images;
    let frames = clips.frames();
    let mut vae_opts = TrainVaeOptions {
        steps: opts.vae_steps,
        seed: opts.seed,
        out: opts.out.join("vae"),
        ..TrainVaeOptions::default()
    };
    // A frame is mostly background: the L1 loss's best constant guess is the median, black,
    // and 300 steps of it decode every frame as black (17.9 dB measured); the squared error's
    // is the mean, which keeps the faint digit in the gradient (24.1 dB at 300 steps, 29.2 dB
    // at 600).
    vae_opts.loss.recon = Recon::Mse;
    let vae = train_vae_on(&vae_opts, &format!("{name}-frames"), frames, held_out)?;

    stage(2, "encode every clip frame by frame into latent clips");
    let latents = opts.out.join("latents.safetensors");
    let (n, secs) = encode_clips(&vae.checkpoint, &clips, &latents, &name)?;
    println!("encoded {n} clips of {} frames in {secs:.1} s", opts.frames);
    let base = TrainOptions {
        data: Source::Latents(latents),
        vae: vae.checkpoint.clone(),
        seed: opts.seed,
        guidance: opts.guidance,
        ..video_options(Recipe::Cpu)
    };
    let clip_data = TrainData::load(&base)?;

    stage(
        3,
        &format!(
            "train {} on the latent frames, labelled by digit",
            opts.image_dit
        ),
    );
    let frame_data = frames_of(&clip_data);
    let config = DiTConfig::named(&opts.image_dit, 8, clip_data.channels(), 10)?;
    let mut image = DiT::new(config, &mut rng(opts.seed))?;
    let image_opts = TrainOptions {
        data: base.data.clone(),
        vae: base.vae.clone(),
        seed: opts.seed,
        steps: opts.image_steps,
        out: opts.out.join("image-dit"),
        ..dit_options(Recipe::Cpu)
    };
    let info = dit_info(&image);
    let image_report = train(
        &mut image,
        &info,
        &dit_diffusion(true),
        &frame_data,
        &image_opts,
    )?;
    let image = load_dit(&image_report.checkpoint)?; // the EMA weights

    stage(
        4,
        "inflate it into the alternating video DiT and train that on the clips",
    );
    let class_of: Vec<usize> = (0..NUM_CLASSES).map(|l| unlabel(l).0).collect();
    let mut video = inflate(
        &image,
        Layout::Alternating,
        opts.frames,
        opts.temporal_patch,
        &class_of,
        &mut rng(opts.seed),
    )?;
    let video_opts = TrainOptions {
        steps: opts.video_steps,
        batch: opts.video_batch,
        out: opts.out.join("video-dit"),
        ..base
    };
    let video_report = train_video(&mut video, &clip_data, &video_opts)?;

    stage(
        5,
        &format!(
            "sample {} clips of each of the {NUM_CLASSES} classes and score them",
            opts.per_class
        ),
    );
    let eval = evaluate_video(&VideoEvalRequest {
        ckpt: video_report.checkpoint.clone(),
        vae: vae.checkpoint.clone(),
        per_class: opts.per_class,
        guidance: Some(opts.guidance),
        steps: opts.sample_steps,
        seed: opts.seed,
        data: None,
        scorer_cache: opts.scorer_cache.clone(),
    })?;
    // the first clip of every class: a row per digit, a column per motion
    let first: Vec<usize> = (0..NUM_CLASSES).map(|c| c * opts.per_class).collect();
    let grid = eval.pixels.select(Axis(0), &first);
    let gif = save_samples(&opts.out.join("clips.png"), &grid, MOTIONS.len())?;
    println!(
        "wrote {} (rows: digits 0–9; columns: left, right, up, down)",
        gif.display()
    );

    let ceiling = vae_ceiling(&clip_data, &vae.checkpoint, &gen, opts)?;
    println!("the same measures on real clips through the VAE (the ceiling): {ceiling}");
    let r = &eval.report;
    let json = Json::obj([
        ("digit_accuracy", Json::num(r.digit_accuracy, 4)),
        ("motion_accuracy", Json::num(r.motion_accuracy, 4)),
        ("consistency", Json::num(r.consistency, 4)),
        ("speed_error", Json::num(r.speed_error, 3)),
        ("fvd", Json::num(r.fvd, 3)),
        ("fvd_floor", Json::num(r.fvd_floor, 3)),
        (
            "vae_ceiling_digit_accuracy",
            Json::num(ceiling.digit_accuracy, 4),
        ),
        (
            "vae_ceiling_motion_accuracy",
            Json::num(ceiling.motion_accuracy, 4),
        ),
        ("vae_ceiling_consistency", Json::num(ceiling.consistency, 4)),
        ("vae_ceiling_fvd", Json::num(ceiling.fvd, 3)),
        ("clips", Json::num(r.clips as f64, 0)),
        ("data", Json::str(name)),
        ("vae_psnr_db", Json::num(vae.psnr_db, 2)),
        (
            "image_dit_seconds",
            Json::num(image_report.train_seconds, 1),
        ),
        ("video_params", Json::num(video_report.params as f64, 0)),
        ("video_gflops", Json::num(video.flops() as f64 / 1e9, 4)),
        (
            "video_final_loss",
            Json::num(video_report.final_loss as f64, 5),
        ),
        (
            "video_train_seconds",
            Json::num(video_report.train_seconds, 1),
        ),
        ("guidance", Json::num(eval.guidance as f64, 2)),
        ("wall_seconds", Json::num(start.elapsed().as_secs_f64(), 1)),
    ]);
    println!("{}", json.to_line());
    Ok(json)
}

/// The measures on real training clips encoded and decoded by the VAE, `per_class` of every
/// class: what a perfect video model could score through this VAE.
fn vae_ceiling(
    clips: &TrainData,
    vae: &std::path::Path,
    gen: &MovingDigits,
    opts: &VideoDemoOptions,
) -> Result<VideoReport> {
    let mut idx = Vec::new();
    for c in 0..NUM_CLASSES {
        let of_c = clips.labels.iter().enumerate().filter(|(_, &l)| l == c);
        idx.extend(of_c.map(|(i, _)| i).take(opts.per_class));
    }
    let labels: Vec<usize> = idx.iter().map(|&i| clips.labels[i]).collect();
    let decoder = load_decoder(vae, clips.channels())?;
    let x = clips.batch(&idx, &mut rng(opts.seed));
    let pixels = to_pixels(&x, Some(&decoder), &clips.norm);
    let scorer = load_or_train_scorer(gen, &opts.scorer_cache)?;
    let real = gen.generate(2 * opts.per_class * NUM_CLASSES, opts.seed ^ 0x4ea1)?;
    let view = pixels
        .view()
        .into_dimensionality()
        .expect("(N, 1, F, H, W)");
    score_clips(&scorer, view, &labels, &real, opts.seed)
}

/// Every frame of the latent clips as an image, labelled by its digit: `(N, C, F, h, w)` →
/// `(N·F, C, h, w)` (posterior means and log-variances alike).
fn frames_of(clips: &TrainData) -> TrainData {
    let flat = |a: &ndarray::ArrayD<f32>| {
        let (n, c, f, h, w) = a.view().into_dimensionality::<Ix5>().expect("clips").dim();
        a.view()
            .permuted_axes(ndarray::IxDyn(&[0, 2, 1, 3, 4]))
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order(ndarray::IxDyn(&[n * f, c, h, w]))
            .expect("contiguous")
    };
    let f = clips.sample_shape()[1];
    TrainData {
        mean: flat(&clips.mean),
        logvar: clips.logvar.as_ref().map(flat),
        norm: clips.norm.clone(),
        labels: clips
            .labels
            .iter()
            .flat_map(|&l| std::iter::repeat_n(unlabel(l).0, f))
            .collect(),
        class_names: (0..10).map(|d| d.to_string()).collect(),
        dataset: clips.dataset.clone(),
        captions: Vec::new(),
    }
}

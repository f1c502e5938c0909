//! Native sizes and durations (the Sora chapter's last section), on the video demo's VAE and
//! video DiT:
//!
//! 1. **buckets**: moving digits on 32×32, 48×32 and 32×48 canvases (W×H) with 4, 8 and 16
//!    frames, nine buckets, each encoded by the demo's VAE;
//! 2. **tokens/s**: the same batches (same buckets, clips, timesteps) trained two ways — each
//!    batch at its own shape (buckets), and every clip zero-padded to the largest shape
//!    (16 frames, 48×48). The padded run has no key-padding mask: it is only timed, to count
//!    the compute padding wastes; its useful tokens are the real clips' tokens;
//! 3. **training**: the demo's video DiT (trained on 8 frames of 32×32 only) fine-tuned on the
//!    buckets;
//! 4. **generalisation**: both models sample every class at trained and untrained shapes and
//!    are scored per frame (digit: a 32×32 window on each frame's ink; motion: tracked on the
//!    whole canvas, [`score_any_size`]), beside real clips of the same shape; the figures show
//!    each model's "3 moving right" at every shape.
//!
//! ```text
//! cargo run --release -- demo-video     # first
//! cargo run --release --example native_shapes -- [--demo out/demo-video] [--steps 1000]
//! ```
//! Writes `out/native-shapes/{table.md,table.json,shapes_demo.png,shapes_buckets.png,loss.png}`; the last stdout line
//! is one JSON object.

use clap::Parser;
use minisora::diffusion::{draw, sample_uniform, Condition, Draw, SamplerKind};
use minisora::error::{write_atomic, Error, Result};
use minisora::evaluate_video::load_or_train_scorer;
use minisora::io::image::{save_grid, GridLayout};
use minisora::io::json::Json;
use minisora::io::plot::loss_curve;
use minisora::io::progress::Progress;
use minisora::metrics::video::window::score_any_size;
use minisora::models::dit::dit_diffusion;
use minisora::models::load_model;
use minisora::models::video::{video_info, video_options};
use minisora::models::Recipe;
use minisora::optim::{AdamW, AdamWConfig, Ema};
use minisora::sample::{decoder, set_frames, set_size};
use minisora::tensor::{init, rng};
use minisora::train::preview::to_pixels;
use minisora::train::state::seed_for;
use minisora::train::{
    train_buckets, train_step, Buckets, Source, StepBatch, StepOptimizer, TrainData, TrainOptions,
};
use minisora::video::checkpoint::load_video_dit;
use minisora::video::encode::encode_clips;
use minisora::video::moving_digits::{label, Motion, MovingDigits, NUM_CLASSES};
use ndarray::{concatenate, s, Array4, ArrayD, Axis, Ix5, IxDyn};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Parser, Debug)]
struct Args {
    /// The video demo's folder (its VAE and video DiT).
    #[arg(long, default_value = "out/demo-video")]
    demo: PathBuf,
    #[arg(long, default_value = "out/native-shapes")]
    out: PathBuf,
    /// Clips per bucket.
    #[arg(long, default_value_t = 320)]
    clips: usize,
    /// Fine-tuning steps on the buckets.
    #[arg(long, default_value_t = 1000)]
    steps: u64,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Peak learning rate of the fine-tuning (warm-up 50 steps, cosine to a tenth).
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Timed steps of each of the two ways (after one untimed step).
    #[arg(long, default_value_t = 20)]
    bench_steps: u64,
    /// Clips sampled per class at each shape.
    #[arg(long, default_value_t = 2)]
    per_class: usize,
    #[arg(long, default_value_t = 3.0)]
    guidance: f32,
    #[arg(long, default_value_t = 25)]
    sample_steps: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Only score real clips of every shape (what the scorers can read; seconds, no model).
    #[arg(long)]
    real_only: bool,
}

/// Canvases `(H, W)` in pixels and lengths of the buckets.
const CANVASES: [(usize, usize); 3] = [(32, 32), (32, 48), (48, 32)];
const LENGTHS: [usize; 3] = [4, 8, 16];

/// A shape sampled and scored: `(frames, H, W)` in pixels.
struct Shape {
    frames: usize,
    h: usize,
    w: usize,
}

/// The shapes scored: the demo's, bucket shapes, and shapes neither model trained on.
const SHAPES: [(usize, usize, usize); 8] = [
    (8, 32, 32),
    (8, 32, 48),
    (16, 48, 32),
    (12, 32, 48),
    (12, 40, 40),
    (12, 48, 48),
    (8, 32, 64),
    (24, 32, 32),
];

fn in_buckets(s: &Shape) -> bool {
    LENGTHS.contains(&s.frames) && CANVASES.contains(&(s.h, s.w))
}

fn main() {
    if let Err(e) = run(&Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<()> {
    if args.real_only {
        return score_real(args);
    }
    let start = Instant::now();
    let vae = args.demo.join("vae/vae.safetensors");
    let demo_ckpt = args.demo.join("video-dit/video.safetensors");
    for f in [&vae, &demo_ckpt] {
        if !f.is_file() {
            return Err(Error::new(
                format!("no {}", f.display()),
                "run `cargo run --release -- demo-video` first (or pass --demo DIR)",
            ));
        }
    }
    std::fs::create_dir_all(args.out.join("latents")).map_err(|e| {
        Error::new(
            format!("{}: {e}", args.out.display()),
            "pass a writable --out",
        )
    })?;

    println!("[1/4] draw and encode the buckets");
    let mut buckets = Vec::new();
    let mut first_path = None;
    for (i, &(h, w)) in CANVASES.iter().enumerate() {
        for (j, &f) in LENGTHS.iter().enumerate() {
            let gen = MovingDigits {
                frames: f,
                canvas: h,
                width: Some(w),
                ..MovingDigits::default()
            };
            let path = args.out.join(format!("latents/{f}f_{w}x{h}.safetensors"));
            if !path.is_file() {
                let clips =
                    gen.generate(args.clips, args.seed ^ (0x5a9e + 16 * i as u64 + j as u64))?;
                let (n, secs) = encode_clips(&vae, &clips, &path, &gen.dataset_name())?;
                println!("  {f} frames of {w}x{h}: encoded {n} clips in {secs:.1} s");
            }
            first_path.get_or_insert(path.clone());
            let opts = TrainOptions {
                data: Source::Latents(path),
                ..video_options(Recipe::Cpu)
            };
            buckets.push(TrainData::load(&opts)?);
        }
    }
    let data = Buckets::new(buckets)?;
    let model = load_video_dit(&demo_ckpt)?;
    let (p, pt) = (model.config.dit.patch_size, model.config.temporal_patch);
    let tokens = |shape: &[usize]| (shape[1] / pt) * (shape[2] / p) * (shape[3] / p);
    let max_shape: Vec<usize> = (0..4)
        .map(|d| {
            data.buckets
                .iter()
                .map(|b| b.sample_shape()[d])
                .max()
                .unwrap_or(0)
        })
        .collect();

    println!("[2/4] tokens/s: buckets vs padding every clip to {max_shape:?}");
    let diffusion = dit_diffusion(model.config.dit.learn_sigma);
    let (mut m_b, mut m_p) = (model.clone(), model.clone());
    let new_opt = || {
        AdamW::new(AdamWConfig {
            lr: 1e-4,
            ..AdamWConfig::default()
        })
    };
    let (mut opt_b, mut opt_p) = (new_opt(), new_opt());
    let (mut ema_b, mut ema_p) = (Ema::new(&mut m_b, 0.999), Ema::new(&mut m_p, 0.999));
    let (mut copy_b, mut copy_p) = (None, None);
    let mut batchers = data.batchers(args.batch, args.seed)?;
    let (mut secs_b, mut secs_p, mut real, mut padded) = (0.0, 0.0, 0usize, 0usize);
    let bar = Progress::new(args.bench_steps + 1, "time both ways");
    for step in 0..=args.bench_steps {
        let mut r = rng(seed_for(args.seed ^ 0xbe7c, step));
        let (k, idx, x0) = data.next_batch(&mut batchers, &mut r);
        let t = sample_uniform(args.batch, diffusion.num_timesteps(), &mut r);
        let noise = init::normal(x0.shape(), 1.0, &mut r);
        let y = Condition::labels(
            &idx.iter()
                .map(|&i| data.buckets[k].labels[i])
                .collect::<Vec<_>>(),
        );
        // the padded batch: the clip in the corner of the largest shape, zeros elsewhere
        let mut full = vec![args.batch];
        full.extend_from_slice(&max_shape);
        let mut x0p = ArrayD::<f32>::zeros(IxDyn(&full));
        let sh = x0.shape().to_vec();
        x0p.slice_each_axis_mut(|ax| ndarray::Slice::from(0..sh[ax.axis.index()]))
            .assign(&x0);
        let noise_p = init::normal(&full, 1.0, &mut r);
        let timed = |m: &mut minisora::video::VideoDiT,
                     opt: &mut AdamW,
                     ema: &mut Ema,
                     copy: &mut Option<minisora::video::VideoDiT>,
                     x: &ArrayD<f32>,
                     n: &ArrayD<f32>|
         -> Result<f64> {
            let s0 = Instant::now();
            let batch = StepBatch {
                x0: x,
                t: &t,
                noise: n,
                y: &y,
                given: None,
            };
            let mut optim = StepOptimizer {
                opt,
                ema,
                copy,
                grad_clip: Some(1.0),
            };
            train_step(m, &diffusion, &batch, &mut optim, "video")?;
            Ok(s0.elapsed().as_secs_f64())
        };
        let sb = timed(&mut m_b, &mut opt_b, &mut ema_b, &mut copy_b, &x0, &noise)?;
        let sp = timed(
            &mut m_p,
            &mut opt_p,
            &mut ema_p,
            &mut copy_p,
            &x0p,
            &noise_p,
        )?;
        if step > 0 {
            (secs_b, secs_p) = (secs_b + sb, secs_p + sp);
            real += args.batch * tokens(&sh[1..]);
            padded += args.batch * tokens(&max_shape);
        }
        bar.step(0.0);
    }
    bar.finish();
    let (tps_b, tps_p) = (real as f64 / secs_b, real as f64 / secs_p);
    println!(
        "  buckets: {tps_b:.0} tokens/s; padded: {tps_p:.0} useful tokens/s ({:.0} computed); \
         padding computes {:.2}× the tokens and runs {:.2}× slower",
        padded as f64 / secs_p,
        padded as f64 / real as f64,
        secs_p / secs_b
    );

    println!("[3/4] fine-tune the demo's video DiT on the buckets");
    let mut tuned = model.clone();
    let opts = TrainOptions {
        data: Source::Latents(first_path.expect("nine buckets")),
        vae: vae.clone(),
        steps: args.steps,
        batch: args.batch,
        lr: args.lr,
        warmup_steps: 50,
        seed: args.seed,
        guidance: args.guidance,
        out: args.out.join("bucket-dit"),
        ..video_options(Recipe::Cpu)
    };
    let info = video_info(&tuned);
    let report = train_buckets(&mut tuned, &info, &diffusion, &data, &opts)?;
    loss_curve(
        &args.out.join("loss.png"),
        "bucketed fine-tuning",
        "loss",
        &report.losses,
    )?;
    println!(
        "  {} steps in {:.1} s, mean loss of the last 100 {:.4}",
        args.steps, report.train_seconds, report.final_loss
    );

    println!("[4/4] sample and score every class at each shape");
    let scorer = load_or_train_scorer(&MovingDigits::default(), Path::new("out/scorer"))?;
    let shapes: Vec<Shape> = SHAPES
        .iter()
        .map(|&(frames, h, w)| Shape { frames, h, w })
        .collect();
    let mut rows = Vec::new();
    let mut table = String::from(
        "| shape (frames, W×H) | demo trained on it | buckets trained on it | real: digit | real: motion | demo: digit | demo: motion | buckets: digit | buckets: motion | buckets: consistency |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    // the figures: "3 moving right" at every shape, one per model
    let (mut figure, mut figure_demo): (Vec<Array4<f32>>, Vec<Array4<f32>>) = (vec![], vec![]);
    let cell = (48, 64); // the figure's frame cell (H, W)
    let show = label(3, Motion::Right);
    for s in &shapes {
        let mut scores = Vec::new();
        for ckpt in [&demo_ckpt, &report.checkpoint] {
            let (pixels, asked) = sample_shape(ckpt, &vae, s, args)?;
            scores.push(score_any_size(&scorer, pixels.view(), &asked));
            let clip = pixels.slice(s![show * args.per_class, .., .., .., ..]);
            match ckpt == &report.checkpoint {
                true => figure.push(strip(clip, cell, 8)),
                false => figure_demo.push(strip(clip, cell, 8)),
            }
        }
        // the same measures on real clips of this shape: what the scorer can read at all
        let gen = MovingDigits {
            frames: s.frames,
            canvas: s.h,
            width: Some(s.w),
            ..MovingDigits::default()
        };
        let real = gen.generate(NUM_CLASSES * args.per_class, args.seed ^ 0x4ea1)?;
        let real_score = score_any_size(&scorer, real.clips.view(), &real.labels);
        let trained_demo = (s.frames, s.h, s.w) == (8, 32, 32);
        let yes = |b: bool| if b { "yes" } else { "no" };
        let pct = |v: f64| format!("{:.1} %", 100.0 * v);
        table.push_str(&format!(
            "| {}, {}×{} | {} | {} | {} | {} | {} | {} | {} | {} | {:.3} |\n",
            s.frames,
            s.w,
            s.h,
            yes(trained_demo),
            yes(in_buckets(s)),
            pct(real_score.digit_accuracy),
            pct(real_score.motion_accuracy),
            pct(scores[0].digit_accuracy),
            pct(scores[0].motion_accuracy),
            pct(scores[1].digit_accuracy),
            pct(scores[1].motion_accuracy),
            scores[1].consistency
        ));
        println!(
            "  {} frames of {}x{}: demo digit {:.3} motion {:.3}; buckets digit {:.3} motion {:.3}",
            s.frames,
            s.w,
            s.h,
            scores[0].digit_accuracy,
            scores[0].motion_accuracy,
            scores[1].digit_accuracy,
            scores[1].motion_accuracy
        );
        rows.push(Json::obj([
            ("frames", Json::num(s.frames as f64, 0)),
            ("width", Json::num(s.w as f64, 0)),
            ("height", Json::num(s.h as f64, 0)),
            ("in_buckets", Json::str(yes(in_buckets(s)))),
            ("real_digit", Json::num(real_score.digit_accuracy, 4)),
            ("real_motion", Json::num(real_score.motion_accuracy, 4)),
            ("demo_digit", Json::num(scores[0].digit_accuracy, 4)),
            ("demo_motion", Json::num(scores[0].motion_accuracy, 4)),
            ("demo_consistency", Json::num(scores[0].consistency, 4)),
            ("buckets_digit", Json::num(scores[1].digit_accuracy, 4)),
            ("buckets_motion", Json::num(scores[1].motion_accuracy, 4)),
            ("buckets_consistency", Json::num(scores[1].consistency, 4)),
        ]));
    }
    for (rows, name) in [
        (&figure_demo, "shapes_demo.png"),
        (&figure, "shapes_buckets.png"),
    ] {
        let views: Vec<_> = rows.iter().map(|f| f.view()).collect();
        let all = concatenate(Axis(0), &views).expect("cells share their shape");
        let fig = args.out.join(name);
        save_grid(&fig, all.view(), GridLayout::new(8).pad(2).upscale(2))?;
        println!(
            "wrote {} (a row per shape, its first 8 frames)",
            fig.display()
        );
    }
    write_atomic(&args.out.join("table.md"), table.as_bytes())?;
    print!("{table}");
    let json = Json::obj([
        ("buckets_tokens_per_second", Json::num(tps_b, 1)),
        ("padded_useful_tokens_per_second", Json::num(tps_p, 1)),
        (
            "padded_computed_tokens_per_second",
            Json::num(padded as f64 / secs_p, 1),
        ),
        (
            "padded_token_ratio",
            Json::num(padded as f64 / real as f64, 3),
        ),
        ("bench_steps", Json::num(args.bench_steps as f64, 0)),
        ("bench_seconds_buckets", Json::num(secs_b, 2)),
        ("bench_seconds_padded", Json::num(secs_p, 2)),
        ("finetune_steps", Json::num(args.steps as f64, 0)),
        ("finetune_lr", Json::num(args.lr as f64, 5)),
        ("finetune_batch", Json::num(args.batch as f64, 0)),
        ("finetune_seconds", Json::num(report.train_seconds, 1)),
        (
            "finetune_final_loss",
            Json::num(report.final_loss as f64, 5),
        ),
        ("clips_per_bucket", Json::num(args.clips as f64, 0)),
        ("per_class", Json::num(args.per_class as f64, 0)),
        ("guidance", Json::num(args.guidance as f64, 2)),
        ("shapes", Json::Arr(rows)),
        ("wall_seconds", Json::num(start.elapsed().as_secs_f64(), 1)),
    ]);
    write_atomic(&args.out.join("table.json"), json.to_line().as_bytes())?;
    println!("{}", json.to_line());
    Ok(())
}

/// Every class's clips from `ckpt` at shape `s`, `per_class` each: pixels `(N, 1, F, H, W)`
/// and the asked classes.
fn sample_shape(
    ckpt: &Path,
    vae: &Path,
    s: &Shape,
    args: &Args,
) -> Result<(ndarray::Array5<f32>, Vec<usize>)> {
    let mut loaded = load_model(ckpt)?;
    set_frames(&mut loaded, s.frames, ckpt)?;
    let dec = decoder(vae, ckpt, &loaded)?;
    let factor = dec.as_ref().map_or(1, |d| d.spatial_factor());
    set_size(&mut loaded, (s.h, s.w), factor, ckpt)?;
    let asked: Vec<usize> = (0..NUM_CLASSES)
        .flat_map(|c| std::iter::repeat_n(c, args.per_class))
        .collect();
    let how = Draw {
        kind: SamplerKind::Ddim { eta: 0.0 },
        steps: args.sample_steps,
        guidance: args.guidance,
        clip_x0: false,
        seed: args.seed,
    };
    let mut parts = Vec::new();
    for (i, ids) in asked.chunks(20).enumerate() {
        let how = Draw {
            seed: args.seed.wrapping_add(i as u64),
            ..how
        };
        let x = draw(
            &*loaded.model,
            &loaded.diffusion,
            &loaded.shape,
            ids.len(),
            &Condition::labels(ids),
            &how,
            &mut |_| {},
        )?;
        parts.push(to_pixels(&x, dec.as_ref(), &loaded.norm));
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    let pixels = concatenate(Axis(0), &views)
        .expect("chunks share their shape")
        .into_dimensionality::<Ix5>()
        .expect("clips");
    Ok((pixels, asked))
}

/// The first `cols` frames of a clip `(1, F, H, W)`, each in the top-left corner of a
/// `cell` of mid-grey (so the canvas's edge shows), missing frames all grey: `(cols, 1, h, w)`.
fn strip(clip: ndarray::ArrayView4<f32>, cell: (usize, usize), cols: usize) -> Array4<f32> {
    let (_, f, h, w) = clip.dim();
    let mut out = Array4::from_elem((cols, 1, cell.0, cell.1), 0.0f32);
    for t in 0..f.min(cols) {
        let (hh, ww) = (h.min(cell.0), w.min(cell.1));
        out.slice_mut(s![t, 0, ..hh, ..ww])
            .assign(&clip.slice(s![0, t, ..hh, ..ww]));
    }
    out
}

/// Real clips of every shape, scored as the samples are; the last stdout line is one JSON object.
fn score_real(args: &Args) -> Result<()> {
    let scorer = load_or_train_scorer(&MovingDigits::default(), Path::new("out/scorer"))?;
    let mut rows = Vec::new();
    for &(frames, h, w) in &SHAPES {
        let gen = MovingDigits {
            frames,
            canvas: h,
            width: Some(w),
            ..MovingDigits::default()
        };
        let real = gen.generate(NUM_CLASSES * args.per_class, args.seed ^ 0x4ea1)?;
        let r = score_any_size(&scorer, real.clips.view(), &real.labels);
        println!(
            "  real clips, {frames} frames of {w}x{h}: digit {:.3} motion {:.3}",
            r.digit_accuracy, r.motion_accuracy
        );
        rows.push(Json::obj([
            ("frames", Json::num(frames as f64, 0)),
            ("width", Json::num(w as f64, 0)),
            ("height", Json::num(h as f64, 0)),
            ("real_digit", Json::num(r.digit_accuracy, 4)),
            ("real_motion", Json::num(r.motion_accuracy, 4)),
        ]));
    }
    println!("{}", Json::obj([("shapes", Json::Arr(rows))]).to_line());
    Ok(())
}

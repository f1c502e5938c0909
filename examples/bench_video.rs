//! How fast does a video DiT train and sample on this machine, and how do time and memory grow
//! with the clip's length?
//!
//! The model is the demos' width, `video-mini/2` (width 64, 4 heads, patch 2; depth 4, or 4
//! spatial + 4 temporal blocks for `alternating`), on latent clips of 4 × F × 8 × 8 with
//! per-frame patches (16 tokens a frame), 40 classes, a learned variance. In one run:
//!
//! 1. **Attention crossover**: one attention layer (width 64, 4 heads) forward + backward on
//!    8192 tokens cut into sequences of T = 16 … 1024, on the clear core and on the tiled
//!    one; where the tiled one starts winning is where [`Kernel::Auto`] switches.
//! 2. **Training**: each layout at 8 and 16 frames, batch 16 —
//!    `minisora::train::train_step`, the trainer's own step (forward, hybrid loss, backward,
//!    AdamW, EMA) — in rounds that interleave them with the 1024³ sgemm ceiling, medians;
//!    clips/s, the phase split, effective GFLOP/s (2 FLOPs per multiply-add, 3 forward passes'
//!    worth per step, `video_flops`) and the fraction of the ceiling.
//! 3. **Sampling**: 50 DDIM steps with classifier-free guidance (scale 4) for 16 clips of 8
//!    frames, per layout.
//! 4. **Scaling sweep**: frames 4, 8, 16, 32 per layout (and `full` with the clear attention
//!    forced): time per step and peak memory, each point in a fresh process (a process keeps
//!    the heap its largest step needed), with the log-log slopes, plotted into
//!    `out/bench_video/scaling.png`.
//!
//! Peak memory is the process's peak resident set (`VmHWM`, Linux). The last stdout line is one
//! JSON object with every figure, keyed as `tests/reference/bench_video_torch.py` keys
//! PyTorch's.
//!
//! Run: `cargo run --release --example bench_video` (`-- --rounds 3 --no-sweep` for a quick look).

#[path = "common/bench.rs"]
mod bench;

use bench::{guided_ddim_seconds, median, sgemm_seconds, status_mib};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use minisora::diffusion::{sample_uniform, Condition};
use minisora::experiments::plot::{draw, Line, Lines, Panel};
use minisora::io::json::Json;
use minisora::models::dit::dit_diffusion;
use minisora::nn::{Attention, Kernel};
use minisora::optim::{AdamW, AdamWConfig, Ema};
use minisora::param::Parameters;
use minisora::tensor::{init, rng};
use minisora::train::{train_step, StepBatch, StepOptimizer};
use minisora::video::flops::video_flops;
use minisora::video::{Layout, VideoDiT, VideoDiTConfig};
use ndarray::{Array2, Array3, ArrayD, Ix2, Ix3};
use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

const BATCH: usize = 16;
const CLASSES: usize = 40;
const SAMPLE_STEPS: usize = 50;
const GUIDANCE: f32 = 4.0;
const LAYOUTS: [Layout; 3] = [Layout::Full, Layout::Alternating, Layout::Factorized];
const TRAIN_FRAMES: [usize; 2] = [8, 16];
const SWEEP_FRAMES: [usize; 4] = [4, 8, 16, 32];
const CROSSOVER_T: [usize; 7] = [16, 32, 64, 128, 256, 512, 1024];

#[derive(Parser)]
#[command(about = "Training, sampling and scaling of the video DiT in each attention layout")]
struct Cli {
    /// Timed rounds (medians are reported).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Measure only this layout (full, alternating or factorized).
    #[arg(long)]
    only: Option<String>,
    #[arg(long)]
    no_sampling: bool,
    #[arg(long)]
    no_sweep: bool,
    #[arg(long)]
    no_crossover: bool,
    /// Timed steps per sweep point (after one warm-up step).
    #[arg(long, default_value_t = 3)]
    sweep_steps: usize,
    /// Internal: time `LAYOUT:FRAMES` alone and print "step_ms peak_mib baseline_mib".
    #[arg(long, hide = true)]
    one: Option<String>,
    #[arg(long, default_value = "out/bench_video")]
    out: PathBuf,
}

/// One model with its optimiser and a fixed batch.
struct Run {
    layout: Layout,
    frames: usize,
    model: VideoDiT,
    opt: AdamW,
    ema: Ema,
    x0: ArrayD<f32>,
    noise: ArrayD<f32>,
    t: Vec<usize>,
    y: Vec<usize>,
    copy: Option<VideoDiT>,
}

impl Run {
    fn new(layout: Layout, frames: usize) -> Run {
        let config = VideoDiTConfig::named("video-mini/2", layout, frames, 1, 8, 4, CLASSES)
            .expect("a valid config");
        let mut model = VideoDiT::new(config, &mut rng(0)).expect("a valid config");
        let mut r = rng(1);
        let shape = [BATCH, 4, frames, 8, 8];
        let mut run = Run {
            layout,
            frames,
            opt: AdamW::new(AdamWConfig {
                lr: 1e-4,
                weight_decay: 0.0,
                ..AdamWConfig::default()
            }),
            ema: Ema::new(&mut model, 0.9999),
            model,
            x0: init::normal(&shape, 1.0, &mut r),
            noise: init::normal(&shape, 1.0, &mut r),
            t: sample_uniform(BATCH, 1000, &mut r),
            y: (0..BATCH).map(|i| i % (CLASSES + 1)).collect(),
            copy: None,
        };
        run.step(); // the first step allocates the optimiser's moments
        run
    }

    fn name(&self) -> String {
        format!("{}@{}", self.layout.name(), self.frames)
    }

    /// One training step: its (forward, backward, optimizer) seconds.
    fn step(&mut self) -> [f64; 3] {
        let diffusion = dit_diffusion(true);
        let name = self.name();
        let y = Condition::labels(&self.y);
        let batch = StepBatch {
            x0: &self.x0,
            t: &self.t,
            noise: &self.noise,
            y: &y,
            given: None,
        };
        let mut optim = StepOptimizer {
            opt: &mut self.opt,
            ema: &mut self.ema,
            grad_clip: None,
            copy: &mut self.copy,
        };
        let (loss, times) = train_step(&mut self.model, &diffusion, &batch, &mut optim, &name)
            .expect("the model fits the diffusion");
        assert!(loss.is_finite(), "{name}: the loss is {loss}");
        [times.forward, times.backward, times.optimizer]
    }

    /// Seconds of 50-step DDIM with guidance for the batch's clips.
    fn sample(&self) -> f64 {
        guided_ddim_seconds(&self.model, &self.noise, &self.y, GUIDANCE, SAMPLE_STEPS)
    }
}

/// The child side of the sweep: build, warm up, time `steps` steps, print one line.
fn one(spec: &str, steps: usize) {
    let (layout, frames) = spec.split_once(':').expect("LAYOUT:FRAMES");
    let layout = Layout::parse(layout).expect("a layout");
    let frames: usize = frames.parse().expect("a frame count");
    let baseline = status_mib("VmRSS:").unwrap_or(f64::NAN);
    let mut run = Run::new(layout, frames); // includes the warm-up step
    let times: Vec<f64> = (0..steps.max(1)).map(|_| run.step().iter().sum()).collect();
    let peak = status_mib("VmHWM:").unwrap_or(f64::NAN);
    println!("{:.3} {peak:.1} {baseline:.1}", median(times) * 1e3);
}

/// Runs `--one` in a fresh process (with the attention kernel `env`, if any).
fn child(spec: &str, steps: usize, env: Option<&str>) -> [f64; 3] {
    let exe = std::env::current_exe().expect("this example's path");
    let mut cmd = Command::new(exe);
    cmd.args(["--one", spec, "--sweep-steps", &steps.to_string()]);
    if let Some(kernel) = env {
        cmd.env("MINISORA_ATTENTION", kernel);
    }
    let out = cmd.output().expect("the benchmark can run itself");
    assert!(
        out.status.success(),
        "{spec}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<f64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    [v[0], v[1], v[2]]
}

/// Forward + backward seconds of one attention layer on `tokens` tokens in sequences of `t`.
fn attention_seconds(layer: &mut Attention, x: &Array3<f32>) -> f64 {
    let start = Instant::now();
    let (y, cache) = layer.forward(x);
    black_box(layer.backward(&cache, &y));
    start.elapsed().as_secs_f64()
}

/// Least-squares slope of log y against log x.
fn log_slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (lx, ly): (Vec<f64>, Vec<f64>) = points.iter().map(|&(x, y)| (x.ln(), y.ln())).unzip();
    let (mx, my) = (lx.iter().sum::<f64>() / n, ly.iter().sum::<f64>() / n);
    let cov: f64 = lx.iter().zip(&ly).map(|(x, y)| (x - mx) * (y - my)).sum();
    let var: f64 = lx.iter().map(|x| (x - mx).powi(2)).sum();
    cov / var
}

/// A line of output above the progress bar (also when the bar is hidden, off a terminal).
fn say(pb: &ProgressBar, line: String) {
    pb.suspend(|| println!("{line}"));
}

fn bar(len: usize, what: &str) -> ProgressBar {
    let style = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").expect("template");
    ProgressBar::new(len as u64)
        .with_style(style)
        .with_message(what.to_string())
}

fn main() {
    let cli = Cli::parse();
    // As the trainer does: reuse each step's freed activations instead of fresh zeroed pages.
    minisora::tensor::heap::retain_freed_memory();
    if let Some(spec) = &cli.one {
        return one(spec, cli.sweep_steps);
    }
    let rounds = cli.rounds.max(1);
    let threads = rayon::current_num_threads();
    let layouts: Vec<Layout> = LAYOUTS
        .into_iter()
        .filter(|l| {
            cli.only
                .as_deref()
                .is_none_or(|o| o.eq_ignore_ascii_case(l.name()))
        })
        .collect();
    assert!(
        !layouts.is_empty(),
        "--only takes full, alternating or factorized"
    );
    println!("bench_video: {threads} threads, video-mini/2, batch {BATCH} clips of 4×F×8×8");
    let mut report = Json::obj([
        ("impl", Json::str("minisora")),
        ("threads", Json::Num(threads as f64)),
        ("batch", Json::Num(BATCH as f64)),
        ("rounds", Json::Num(rounds as f64)),
    ]);
    let n = 1024;
    let a = init::normal(&[n, n], 1.0, &mut rng(3))
        .into_dimensionality::<Ix2>()
        .expect("2-D");
    let mut c = Array2::<f32>::zeros((n, n));

    // 1. Where the tiled attention starts to pay.
    if !cli.no_crossover {
        let pb = bar(rounds, "attention crossover");
        let mut times = vec![[Vec::new(), Vec::new()]; CROSSOVER_T.len()];
        let mut r = rng(4);
        let mut layers = Vec::new();
        for kernel in [Kernel::Clear, Kernel::Tiled] {
            let mut layer = Attention::new(64, 4, &mut r);
            layer.kernel = kernel;
            layers.push(layer);
        }
        for _ in 0..rounds {
            for (i, &t) in CROSSOVER_T.iter().enumerate() {
                let x = init::normal(&[8192 / t, t, 64], 1.0, &mut r);
                let x = x.into_dimensionality::<Ix3>().expect("3-D");
                for (k, layer) in layers.iter_mut().enumerate() {
                    times[i][k].push(attention_seconds(layer, &x));
                }
            }
            pb.inc(1);
        }
        pb.finish_and_clear();
        println!("attention layer fwd+bwd, 8192 tokens, width 64, 4 heads: clear vs tiled");
        let mut rows = Vec::new();
        for (i, &t) in CROSSOVER_T.iter().enumerate() {
            let [clear, tiled] = [median(times[i][0].clone()), median(times[i][1].clone())];
            println!(
                "  T = {t:>4}: clear {:7.2} ms, tiled {:7.2} ms",
                clear * 1e3,
                tiled * 1e3
            );
            rows.push(Json::obj([
                ("tokens", Json::Num(t as f64)),
                ("clear_ms", Json::num(clear * 1e3, 3)),
                ("tiled_ms", Json::num(tiled * 1e3, 3)),
            ]));
        }
        report.push("crossover", Json::Arr(rows));
    }

    // 2. and 3. Training and sampling, interleaved with the ceiling.
    let mut runs: Vec<Run> = Vec::new();
    for &layout in &layouts {
        for frames in TRAIN_FRAMES {
            runs.push(Run::new(layout, frames));
        }
    }
    let pb = bar(rounds, "training rounds");
    let mut gemm_times = Vec::new();
    let mut steps: Vec<Vec<[f64; 3]>> = vec![Vec::new(); runs.len()];
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); runs.len()];
    for round in 0..rounds {
        gemm_times.push(sgemm_seconds(&a, &mut c));
        for (i, run) in runs.iter_mut().enumerate() {
            // about as much time per run: shorter clips take more steps
            for _ in 0..(16 / run.frames).max(1) {
                steps[i].push(run.step());
            }
            if round % 2 == 0 && !cli.no_sampling && run.frames == TRAIN_FRAMES[0] {
                samples[i].push(run.sample());
            }
        }
        gemm_times.push(sgemm_seconds(&a, &mut c));
        pb.inc(1);
    }
    pb.finish_and_clear();
    let ceiling = 2.0 * (n * n * n) as f64 / median(gemm_times) / 1e9;
    println!("sgemm ceiling (1024³): {ceiling:.1} GFLOP/s");
    report.push("sgemm_gflop_s", Json::num(ceiling, 1));
    let pb = bar(runs.len(), "peak memory, one process per run");
    let mut train = Vec::new();
    let mut sample = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let spec = format!("{}:{}", run.layout.name(), run.frames);
        let [_, peak, baseline] = child(&spec, 1, None);
        pb.inc(1);
        let gflops = video_flops(&run.model.config) as f64 / 1e9;
        let phase = |k: usize| median(steps[i].iter().map(|s| s[k]).collect()) * 1e3;
        let total = median(steps[i].iter().map(|s| s.iter().sum()).collect());
        let clips_s = BATCH as f64 / total;
        let gflop_s = 6.0 * gflops * clips_s;
        say(
            &pb,
            format!(
            "{}: {:.3} M params, {clips_s:.1} clips/s ({:.1} ms: forward {:.1}, backward {:.1}, \
             AdamW+EMA {:.1}), {gflop_s:.1} GFLOP/s = {:.0} % of the ceiling, peak {peak:.0} MiB",
            run.name(),
            run.model.clone().num_params() as f64 / 1e6,
            total * 1e3,
            phase(0),
            phase(1),
            phase(2),
            100.0 * gflop_s / ceiling
        ),
        );
        train.push(Json::obj([
            ("layout", Json::str(run.layout.name())),
            ("frames", Json::Num(run.frames as f64)),
            ("params", Json::Num(run.model.clone().num_params() as f64)),
            ("gflops_forward", Json::num(gflops, 5)),
            ("clips_per_s", Json::num(clips_s, 2)),
            ("step_ms", Json::num(total * 1e3, 2)),
            ("forward_ms", Json::num(phase(0), 2)),
            ("backward_ms", Json::num(phase(1), 2)),
            ("optimizer_ms", Json::num(phase(2), 2)),
            ("gflop_s", Json::num(gflop_s, 1)),
            ("fraction_of_sgemm", Json::num(gflop_s / ceiling, 3)),
            ("peak_rss_mib", Json::num(peak, 1)),
            ("baseline_rss_mib", Json::num(baseline, 1)),
        ]));
        if !samples[i].is_empty() {
            let secs = median(samples[i].clone());
            say(
                &pb,
                format!("  guided DDIM-{SAMPLE_STEPS} for {BATCH} clips: {secs:.2} s"),
            );
            sample.push(Json::obj([
                ("layout", Json::str(run.layout.name())),
                ("frames", Json::Num(run.frames as f64)),
                ("clips", Json::Num(BATCH as f64)),
                ("steps", Json::Num(SAMPLE_STEPS as f64)),
                ("seconds", Json::num(secs, 3)),
            ]));
        }
    }
    pb.finish_and_clear();
    report.push("train", Json::Arr(train));
    report.push("sample", Json::Arr(sample));
    drop(runs);

    // 4. The scaling sweep, each point in its own process.
    if !cli.no_sweep {
        sweep(&cli, &layouts, &mut report);
    }
    println!("{}", report.to_line());
}

/// Frames 4 … 32 per layout (and `full` on the clear core): time and peak memory per step.
fn sweep(cli: &Cli, layouts: &[Layout], report: &mut Json) {
    let mut variants: Vec<(String, Layout, Option<&str>)> = layouts
        .iter()
        .map(|&l| (l.name().to_string(), l, None))
        .collect();
    if layouts.contains(&Layout::Full) {
        variants.push(("full, clear attention".into(), Layout::Full, Some("clear")));
    }
    let pb = bar(variants.len() * SWEEP_FRAMES.len(), "scaling sweep");
    let (mut rows, mut slopes) = (Vec::new(), Vec::new());
    let (mut time_lines, mut mem_lines) = (Vec::new(), Vec::new());
    for (name, layout, env) in &variants {
        let mut time = Vec::new();
        let mut mem = Vec::new();
        for frames in SWEEP_FRAMES {
            let spec = format!("{}:{frames}", layout.name());
            let [ms, peak, baseline] = child(&spec, cli.sweep_steps, *env);
            say(
                &pb,
                format!(
                    "  {name} F = {frames:>2}: {ms:8.1} ms per step, peak {peak:6.0} MiB \
                 ({baseline:.0} before the model)"
                ),
            );
            pb.inc(1);
            time.push((frames as f64, ms));
            mem.push((frames as f64, peak));
            rows.push(Json::obj([
                ("layout", Json::str(name.as_str())),
                ("frames", Json::Num(frames as f64)),
                ("step_ms", Json::num(ms, 2)),
                ("peak_rss_mib", Json::num(peak, 1)),
                ("baseline_rss_mib", Json::num(baseline, 1)),
            ]));
        }
        let (st, sm) = (log_slope(&time), log_slope(&mem));
        say(
            &pb,
            format!("  {name}: slope of time {st:.2}, of memory {sm:.2} (log-log)"),
        );
        slopes.push((
            name.clone(),
            Json::obj([("time", Json::num(st, 2)), ("memory", Json::num(sm, 2))]),
        ));
        let line = |points| Line {
            name: name.clone(),
            points,
            markers: true,
            ..Line::default()
        };
        time_lines.push(line(time));
        mem_lines.push(line(mem));
    }
    pb.finish_and_clear();
    report.push("sweep", Json::Arr(rows));
    report.push("slopes", Json::Obj(slopes));
    let panel = |title: &str, y: &str, series| {
        Panel::Lines(Lines {
            title: title.into(),
            x_label: "frames F (batch 16, 16 tokens a frame)".into(),
            y_label: y.into(),
            log_x: true,
            log_y: true,
            series,
            ..Lines::default()
        })
    };
    let path = cli.out.join("scaling.png");
    let panels = [
        panel("time per training step", "ms", time_lines),
        panel(
            "peak memory of a training step",
            "MiB (process peak RSS)",
            mem_lines,
        ),
    ];
    match draw(&path, &panels) {
        Ok(()) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("{e}"),
    }
}

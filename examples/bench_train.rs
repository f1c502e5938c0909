//! How fast does a DiT train and sample on this machine, against what its GEMM can do?
//!
//! In one run: the sgemm ceiling (1024³ through `minisora::tensor::gemm`), then the training
//! step of DiT-tiny/2 and DiT-S/2 on batches of 64 latents of 4 × 8 × 8 with a learned
//! variance — `minisora::diffusion::train_step`, the trainer's own step: forward, the hybrid
//! loss, backward, AdamW and the EMA update, all counted — then 50-step DDIM with
//! classifier-free guidance for 64 latents. Rounds interleave the ceiling and the two models,
//! so load from other processes slows them alike; each figure is the median of its rounds.
//!
//! Effective GFLOP/s use the usual convention: 2 FLOPs per multiply-add, a training step is
//! 3 forward passes' worth (backward does two products per forward product), and a guided
//! sampling step runs the model on 2 × 64 latents. The Gflops per forward are `dit_flops`.
//! Peak memory is the process's peak resident set while stepping that model alone (read
//! from `/proc/self/status` after resetting it through `/proc/self/clear_refs`; Linux only).
//! The last line of stdout is one JSON object with every figure.
//!
//! Run: `cargo run --release --example bench_train` (`-- --rounds 3` for a quicker look).

#[path = "common/bench.rs"]
mod bench;

use bench::{guided_ddim_seconds, median, reset_peak_rss, sgemm_seconds, status_mib};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use minisora::diffusion::{sample_uniform, Condition};
use minisora::dit::{DiT, DiTConfig};
use minisora::models::dit::dit_diffusion;
use minisora::optim::{AdamW, AdamWConfig, Ema};
use minisora::param::Parameters;
use minisora::tensor::{init, rng};
use minisora::train::{train_step, StepBatch, StepOptimizer};
use ndarray::{Array2, ArrayD, Ix2};

const BATCH: usize = 64;
const SAMPLE_STEPS: usize = 50;
const GUIDANCE: f32 = 4.0;
const CONFIGS: [&str; 2] = ["DiT-tiny/2", "DiT-S/2"];

#[derive(Parser)]
#[command(about = "Training-step and sampling throughput of DiT-tiny/2 and DiT-S/2")]
struct Cli {
    /// Timed rounds (the median is reported); each round steps every model.
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// Measure only this config (DiT-tiny/2 or DiT-S/2), e.g. under a profiler.
    #[arg(long)]
    only: Option<String>,
    /// Time training steps only (e.g. to profile them).
    #[arg(long)]
    no_sampling: bool,
}

/// One model with its optimiser and a fixed batch of the demo's shapes.
struct Run {
    name: &'static str,
    model: DiT,
    opt: AdamW,
    ema: Ema,
    x0: ArrayD<f32>,
    noise: ArrayD<f32>,
    t: Vec<usize>,
    y: Vec<usize>,
    /// Training steps per round: enough to make a round of each model take similar time.
    steps: usize,
    /// The trainer's model copy for the second micro-batch, kept between steps.
    copy: Option<DiT>,
}

impl Run {
    fn new(name: &'static str, steps: usize) -> Run {
        let config = DiTConfig::named(name, 8, 4, 10).expect("a valid name");
        let mut model = DiT::new(config, &mut rng(0)).expect("a valid config");
        let mut r = rng(1);
        let mut run = Run {
            name,
            opt: AdamW::new(AdamWConfig {
                lr: 1e-4,
                weight_decay: 0.0,
                ..AdamWConfig::default()
            }),
            ema: Ema::new(&mut model, 0.9999),
            model,
            x0: init::normal(&[BATCH, 4, 8, 8], 1.0, &mut r),
            noise: init::normal(&[BATCH, 4, 8, 8], 1.0, &mut r),
            t: sample_uniform(BATCH, 1000, &mut r),
            y: (0..BATCH).map(|i| i % 11).collect(),
            steps,
            copy: None,
        };
        run.step(); // the first step allocates the optimiser's moments
        run
    }

    /// One training step; returns its (forward, backward, optimizer) seconds.
    fn step(&mut self) -> [f64; 3] {
        let diffusion = dit_diffusion(true);
        let batch = StepBatch {
            x0: &self.x0,
            t: &self.t,
            noise: &self.noise,
            y: &Condition::labels(&self.y),
            given: None,
        };
        let mut optim = StepOptimizer {
            opt: &mut self.opt,
            ema: &mut self.ema,
            grad_clip: None,
            copy: &mut self.copy,
        };
        let (loss, times) = train_step(&mut self.model, &diffusion, &batch, &mut optim, self.name)
            .expect("the model fits the diffusion");
        assert!(loss.is_finite(), "{}: the loss is {loss}", self.name);
        [times.forward, times.backward, times.optimizer]
    }

    /// Seconds of 50-step DDIM with guidance for 64 latents.
    fn sample(&self) -> f64 {
        guided_ddim_seconds(&self.model, &self.noise, &self.y, GUIDANCE, SAMPLE_STEPS)
    }
}

fn main() {
    let cli = Cli::parse();
    let rounds = cli.rounds.max(1);
    // As the trainer does: reuse each step's freed activations instead of fresh zeroed pages.
    minisora::tensor::heap::retain_freed_memory();
    let threads = rayon::current_num_threads();
    println!(
        "bench_train: {threads} threads, batch {BATCH} of 4×8×8 latents, learn_sigma, AdamW + EMA"
    );

    // Peak memory, each model alone (the smaller first, so the larger reuses its heap).
    let names: Vec<&'static str> = CONFIGS
        .into_iter()
        .filter(|n| {
            cli.only
                .as_deref()
                .is_none_or(|o| o.eq_ignore_ascii_case(n))
        })
        .collect();
    assert!(!names.is_empty(), "--only takes one of {CONFIGS:?}");
    let mut peaks = Vec::new();
    for &name in &names {
        reset_peak_rss();
        let mut run = Run::new(name, 1);
        run.step();
        peaks.push(status_mib("VmHWM:"));
    }

    let n = 1024;
    let a: Array2<f32> = init::normal(&[n, n], 1.0, &mut rng(3))
        .into_dimensionality::<Ix2>()
        .expect("2-D");
    let mut c = Array2::<f32>::zeros((n, n));
    // Steps per round: a round of each model takes about as long as the other's.
    let mut runs: Vec<Run> = names
        .iter()
        .map(|&name| Run::new(name, if name == CONFIGS[0] { 8 } else { 1 }))
        .collect();
    let bar = ProgressBar::new(rounds as u64).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} rounds {msg}").expect("template"),
    );
    let mut gemm_times = Vec::new();
    let mut step_times: Vec<Vec<[f64; 3]>> = vec![Vec::new(); runs.len()];
    let mut sample_times: Vec<Vec<f64>> = vec![Vec::new(); runs.len()];
    for round in 0..rounds {
        bar.set_message(format!("round {}", round + 1));
        gemm_times.push(sgemm_seconds(&a, &mut c));
        for (i, run) in runs.iter_mut().enumerate() {
            for _ in 0..run.steps {
                step_times[i].push(run.step());
            }
            if round % 2 == 0 && !cli.no_sampling {
                sample_times[i].push(run.sample());
            }
        }
        gemm_times.push(sgemm_seconds(&a, &mut c));
        bar.inc(1);
    }
    bar.finish_and_clear();

    let ceiling = 2.0 * (n * n * n) as f64 / median(gemm_times) / 1e9;
    println!("sgemm ceiling (1024³): {ceiling:.1} GFLOP/s");
    let mut fields = vec![format!("\"sgemm_gflop_s\": {ceiling:.1}")];
    for (i, run) in runs.iter_mut().enumerate() {
        let gflops = run.model.flops() as f64 / 1e9;
        let phase = |k: usize| median(step_times[i].iter().map(|s| s[k]).collect());
        let total = median(step_times[i].iter().map(|s| s.iter().sum()).collect());
        let img_s = BATCH as f64 / total;
        let train_gflop_s = 6.0 * gflops * img_s;
        let peak = peaks[i].map_or("null".to_string(), |p| format!("{p:.0}"));
        println!(
            "{}: {:.2} M params, {gflops:.4} Gflops per forward\n  train: {img_s:.0} img/s \
             ({:.1} ms per step: forward+loss {:.1}, backward {:.1}, AdamW+EMA {:.1}), \
             {train_gflop_s:.1} GFLOP/s = {:.0} % of the sgemm ceiling, peak memory {peak} MiB",
            run.name,
            run.model.num_params() as f64 / 1e6,
            total * 1e3,
            phase(0) * 1e3,
            phase(1) * 1e3,
            phase(2) * 1e3,
            100.0 * train_gflop_s / ceiling,
        );
        let mut field = format!(
            "\"{}\": {{\"img_per_s\": {img_s:.1}, \"step_ms\": {:.2}, \"forward_ms\": {:.2}, \
             \"backward_ms\": {:.2}, \"optimizer_ms\": {:.2}, \"gflops_per_forward\": {gflops:.5}, \
             \"train_gflop_s\": {train_gflop_s:.1}, \"train_fraction_of_sgemm\": {:.3}, \
             \"peak_rss_mib\": {peak}",
            run.name,
            total * 1e3,
            phase(0) * 1e3,
            phase(1) * 1e3,
            phase(2) * 1e3,
            train_gflop_s / ceiling,
        );
        if !sample_times[i].is_empty() {
            let sample_s = median(sample_times[i].clone());
            let sample_gflop_s = 2.0 * gflops * (2 * BATCH * SAMPLE_STEPS) as f64 / sample_s;
            println!(
                "  sample: {SAMPLE_STEPS}-step DDIM with guidance for {BATCH} latents in \
                 {sample_s:.2} s = {:.1} latents/s, {sample_gflop_s:.1} GFLOP/s = {:.0} % of the \
                 ceiling",
                BATCH as f64 / sample_s,
                100.0 * sample_gflop_s / ceiling,
            );
            field += &format!(
                ", \"sample_seconds\": {sample_s:.3}, \"sample_latents_per_s\": {:.1}, \
                 \"sample_gflop_s\": {sample_gflop_s:.1}, \"sample_fraction_of_sgemm\": {:.3}",
                BATCH as f64 / sample_s,
                sample_gflop_s / ceiling,
            );
        }
        fields.push(field + "}");
    }
    println!(
        "{{\"threads\": {threads}, \"batch\": {BATCH}, \"latent\": [4, 8, 8], \"rounds\": {rounds}, {}}}",
        fields.join(", ")
    );
}

//! One trained model and one score: the demo's training recipe at an experiment's steps and
//! batch, and the scoring of `minisora evaluate` (class accuracy and Fréchet distance with its
//! floor) against the setup's classifier and real images — by DDIM through the same
//! [`sample_grid`] as `evaluate`, or by any sampler with its wall time measured.

use super::report::{percent, Json, Table};
use super::setup::Setup;
use super::Context;
use crate::demo::{DemoOptions, DEMO_DIT, DEMO_GUIDANCE};
use crate::diffusion::draw::CHUNK;
use crate::diffusion::{sample_grid, Draw, DrawStep, Grid, SamplerKind};
use crate::dit::DiTConfig;
use crate::error::{Error, Result};
use crate::io::checkpoint::read_metadata;
use crate::metrics::{evaluate, EvalReport};
use crate::models::dit::train_dit;
use crate::models::unet::train_unet;
use crate::models::{load_model, Loaded, Recipe};
use crate::train::preview::to_images;
use crate::train::{TrainOptions, TrainReport};
use crate::unet::UNetConfig;
use indicatif::ProgressBar;
use std::path::PathBuf;
use std::time::Instant;

/// DDIM steps of the small sample grid each training run draws for its own figures.
const FIGURE_STEPS: usize = 25;
/// Samples per class of that grid.
const FIGURE_PER_CLASS: usize = 2;

/// A model to train.
#[derive(Clone, Debug)]
pub enum Model {
    DiT(DiTConfig),
    UNet(UNetConfig),
}

/// One run of an experiment: a label for the table, the model, its peak learning rate and
/// the recipe around it.
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub label: String,
    pub model: Model,
    pub lr: f32,
    /// `Cpu`: the demo's warm-up, cosine decay and clipping; `Paper`: a constant rate, no
    /// warm-up, no clipping (DiT's `train.py`).
    pub recipe: Recipe,
}

/// A score: the evaluation and how long the sampling took (model and sampler only).
#[derive(Clone, Debug)]
pub struct Score {
    pub eval: EvalReport,
    pub sample_seconds: f64,
}

/// A trained and scored run.
pub struct Run {
    pub spec: RunSpec,
    pub report: TrainReport,
    /// Mean loss of the last 10 % of the steps.
    pub final_loss: f64,
    pub score: Score,
}

/// Trains and scores every spec in turn, announcing each as `[i/n] <prefix><label>`.
pub fn train_all(
    ctx: &Context,
    setup: &Setup,
    specs: &[RunSpec],
    prefix: &str,
) -> Result<Vec<Run>> {
    let mut runs = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        println!("\n[{}/{}] {prefix}{}", i + 1, specs.len(), spec.label);
        runs.push(train_and_score(ctx, setup, spec)?);
    }
    Ok(runs)
}

/// The table of trained runs: `first` (the label's column), params, Gflops, final loss,
/// accuracy, Fréchet distance, training img/s.
pub fn runs_table(first: &str, runs: &[Run]) -> Table {
    let mut table = Table::new(&[
        first,
        "params",
        "Gflops",
        "final loss",
        "accuracy",
        "Fréchet",
        "train img/s",
    ]);
    for r in runs {
        table.push(vec![
            r.spec.label.clone(),
            r.report.params.to_string(),
            format!("{:.4}", r.report.gflops),
            format!("{:.4}", r.final_loss),
            percent(r.score.eval.accuracy),
            format!("{:.1}", r.score.eval.frechet),
            format!("{:.0}", r.report.images_per_second),
        ]);
    }
    table
}

/// A run's JSON fields: its label under `key`, then params, Gflops, final loss, accuracy,
/// Fréchet distance with its floor and training img/s (an experiment may append more).
pub fn run_fields(key: &'static str, r: &Run) -> Vec<(&'static str, Json)> {
    vec![
        (key, Json::str(r.spec.label.as_str())),
        ("params", Json::Num(r.report.params as f64)),
        ("gflops", Json::num(r.report.gflops, 6)),
        ("final_loss", Json::num(r.final_loss, 5)),
        ("accuracy", Json::num(r.score.eval.accuracy, 6)),
        ("frechet", Json::num(r.score.eval.frechet, 6)),
        ("frechet_floor", Json::num(r.score.eval.frechet_floor, 6)),
        (
            "train_images_per_second",
            Json::num(r.report.images_per_second, 1),
        ),
    ]
}

/// The mean of the last `frac` of `losses` (at least one).
pub fn tail_mean(losses: &[f32], frac: f64) -> f64 {
    let k = ((losses.len() as f64 * frac).ceil() as usize).clamp(1, losses.len().max(1));
    let tail = &losses[losses.len().saturating_sub(k)..];
    tail.iter().map(|&l| l as f64).sum::<f64>() / tail.len().max(1) as f64
}

/// `DiT-tiny/2` → `DiT-tiny-2`: a label as a folder name.
pub fn slug(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The demo's recipe (warm-up, cosine decay, clipping, lr 3e-3, batch 64) at the context's
/// steps, batch and seed, on the setup's latents, writing into `out`.
pub fn train_options(ctx: &Context, setup: &Setup, out: PathBuf) -> TrainOptions {
    let demo = DemoOptions {
        seed: ctx.seed,
        dit_steps: ctx.steps,
        batch: ctx.batch,
        guidance: ctx.guidance,
        sample_steps: FIGURE_STEPS.min(ctx.sample_steps),
        ..DemoOptions::default()
    };
    TrainOptions {
        out,
        samples_per_class: FIGURE_PER_CLASS.min(ctx.per_class),
        ..demo.dit_train_options(setup.latents.clone(), setup.vae_path.clone())
    }
}

/// Trains `spec` with the demo's recipe at its own learning rate, then scores it with DDIM at
/// the context's guidance.
pub fn train_and_score(ctx: &Context, setup: &Setup, spec: &RunSpec) -> Result<Run> {
    let out = ctx.dir.join("runs").join(slug(&spec.label));
    let cpu = TrainOptions {
        lr: spec.lr,
        ..train_options(ctx, setup, out)
    };
    let opts = match spec.recipe {
        Recipe::Cpu => cpu,
        Recipe::Paper => TrainOptions {
            warmup_steps: 0,
            lr_decay: false,
            grad_clip: None,
            ..cpu
        },
    };
    println!(
        "\n{}: {} ({} steps of batch {}, lr {})",
        ctx.name, spec.label, opts.steps, opts.batch, opts.lr
    );
    let report = match &spec.model {
        Model::DiT(c) => train_dit(c, &opts)?,
        Model::UNet(c) => train_unet(c, &opts)?,
    };
    let loaded = load_model(&report.checkpoint)?;
    let score = score_ddim(ctx, setup, &loaded, ctx.guidance)?;
    println!("{}: {}", spec.label, score.eval);
    Ok(Run {
        spec: spec.clone(),
        final_loss: tail_mean(&report.losses, 0.1),
        report,
        score,
    })
}

/// Scores `loaded` as `minisora evaluate` does: `ctx.per_class` samples of every class with
/// DDIM over `ctx.sample_steps` steps at `guidance`, decoded, against the real images.
pub fn score_ddim(ctx: &Context, setup: &Setup, loaded: &Loaded, guidance: f32) -> Result<Score> {
    let how = Draw::ddim(ctx.sample_steps, guidance, ctx.seed);
    score_with(ctx, setup, loaded, &how, &mut |_| {})
}

/// `ctx.per_class` samples of every class with `kind` over `steps` respaced steps at
/// `guidance` (the samples `minisora evaluate` draws when `kind` is its DDIM), timed (model
/// and sampler, not the decoding), ticking `bar` once per step.
pub fn score_sampler(
    ctx: &Context,
    setup: &Setup,
    loaded: &Loaded,
    kind: SamplerKind,
    steps: usize,
    guidance: f32,
    bar: &ProgressBar,
) -> Result<Score> {
    let how = Draw {
        kind,
        ..Draw::ddim(steps, guidance, ctx.seed)
    };
    score_with(ctx, setup, loaded, &how, &mut |_| bar.inc(1))
}

/// Draws the class grid of `loaded` with `how`, times it and judges it.
fn score_with(
    ctx: &Context,
    setup: &Setup,
    loaded: &Loaded,
    how: &Draw,
    on_step: &mut dyn FnMut(&DrawStep),
) -> Result<Score> {
    null_label(loaded)?;
    let grid = Grid {
        shape: loaded.shape.clone(),
        rows: loaded.class_rows(),
        per_row: ctx.per_class,
        draw: *how,
    };
    let start = Instant::now();
    let samples = sample_grid(&*loaded.model, &loaded.diffusion, &grid, 0, on_step)?;
    let sample_seconds = start.elapsed().as_secs_f64();
    judge(setup, loaded, &samples.x, &samples.labels(), sample_seconds)
}

/// Decodes model-space samples and evaluates them against the first `2N` real images.
fn judge(
    setup: &Setup,
    loaded: &Loaded,
    x: &ndarray::ArrayD<f32>,
    labels: &[usize],
    sample_seconds: f64,
) -> Result<Score> {
    let pixels = to_images(x, loaded.latent.then_some(&setup.vae), &loaded.norm);
    let real = setup.real_for(labels.len())?;
    let eval = evaluate(&setup.classifier, pixels.view(), labels, real)?;
    Ok(Score {
        eval,
        sample_seconds,
    })
}

fn null_label(loaded: &Loaded) -> Result<usize> {
    loaded.null_label.ok_or_else(|| {
        Error::new(
            "an unconditional checkpoint",
            "the experiments score class-conditional models",
        )
    })
}

/// Sampler calls per chunk of [`score_sampler`], for sizing its progress bar.
pub fn sampler_calls(ctx: &Context, setup: &Setup, steps: usize) -> u64 {
    (setup.classes * ctx.per_class).div_ceil(CHUNK) as u64 * steps as u64
}

/// The DiT the guidance and sampler experiments share: the demo's DiT-tiny/2 when the setup
/// is the demo's and it is there; else `<out>/reference/dit.safetensors` if it was trained
/// with these steps, batch, seed and latents; else trained there now with the demo's recipe.
/// Returns the checkpoint and a sentence on where it came from.
pub fn reference_dit(ctx: &Context, setup: &Setup) -> Result<(PathBuf, String)> {
    let demo = DemoOptions {
        out: ctx.demo_dir.clone(),
        ..DemoOptions::default()
    };
    let demo_ckpt = demo.dit_checkpoint();
    if setup.from_demo && demo_ckpt.is_file() {
        let steps = read_metadata(&demo_ckpt)?
            .get("train.steps")
            .cloned()
            .unwrap_or_else(|| "?".into());
        return Ok((
            demo_ckpt.clone(),
            format!(
                "the demo's {DEMO_DIT} ({}, {steps} steps)",
                demo_ckpt.display()
            ),
        ));
    }
    let out = ctx.out.join("reference");
    let ckpt = out.join("dit.safetensors");
    let opts = TrainOptions {
        guidance: DEMO_GUIDANCE,
        ..train_options(ctx, setup, out)
    };
    if ckpt.is_file() {
        let m = read_metadata(&ckpt)?;
        let same = |k: &str, v: String| m.get(k) == Some(&v);
        if same("train.steps", opts.steps.to_string())
            && same("train.batch", opts.batch.to_string())
            && same("train.seed", opts.seed.to_string())
            && same("train.data", opts.data.name())
        {
            return Ok((
                ckpt.clone(),
                format!(
                    "{DEMO_DIT} reused from {} ({} steps)",
                    ckpt.display(),
                    opts.steps
                ),
            ));
        }
    }
    println!(
        "\n{}: training the reference {DEMO_DIT} ({} steps)",
        ctx.name, opts.steps
    );
    let config = DiTConfig::named(DEMO_DIT, 8, 4, 10)?;
    let report = train_dit(&config, &opts)?;
    Ok((
        report.checkpoint.clone(),
        format!(
            "{DEMO_DIT} trained into {} with the demo's recipe ({} steps)",
            report.checkpoint.display(),
            opts.steps
        ),
    ))
}

//! The DiT paper's experiments at our scale (`examples/dit_experiments.rs`), each writing a
//! plot, a markdown table and a JSON file under `out/experiments/<name>/` (on a dataset other
//! than the demo's digits, `out/experiments/<data>/<name>/`) and printing one JSON line of
//! headline figures last:
//!
//! - [`scaling`]: DiT-mini/tiny/small × patch 2/4/8 at equal steps — loss and Fréchet
//!   distance against forward Gflops (Peebles & Xie 2023, Figures 2, 6 and 8);
//! - [`conditioning`]: adaLN-Zero, adaLN, cross-attention and in-context (Figure 5);
//! - [`unet_vs_dit`]: the U-Net against DiT-tiny/2 at matched Gflops;
//! - [`guidance`]: classifier-free guidance 1…8, accuracy against Fréchet distance;
//! - [`samplers`]: DDPM and DDIM at 10/25/50/250 steps, quality against wall time.
//!
//! Shared: [`catalog`] (names, settings, help), [`setup`] (VAE, latents, classifier, real
//! images of `--data` — the demo's when it is the digits and present), [`runs`] (train with
//! the demo's recipe, score as `minisora evaluate`), [`report`] (tables and JSON), [`plot`].

pub mod catalog;
pub mod conditioning;
pub mod guidance;
pub mod plot;
pub mod report;
pub mod runs;
pub mod samplers;
pub mod scaling;
pub mod setup;
pub mod unet_vs_dit;

pub use catalog::{long_help, Budget, Experiment};

use crate::data::DataSource;
use crate::error::Result;
use crate::metrics::ClassifierTrainOptions;
use crate::vae::train::TrainVaeOptions;
use report::{write_outputs, Json};
use setup::{Setup, SetupOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What `dit_experiments` runs (its command line is [`crate::cli::experiments`]).
#[derive(Clone, Debug)]
pub struct ExperimentOptions {
    /// scaling, conditioning, unet-vs-dit, guidance, samplers or all.
    pub experiment: String,
    /// The short setting: ≤ 10 minutes per experiment on two cores.
    pub quick: bool,
    /// Folder of the results (one subfolder per experiment; see [`results_root`]).
    pub out: PathBuf,
    /// The dataset, as [`DataSource::parse`] reads it (`digits`: the demo's).
    pub data: String,
    /// Seed of the data order, the initialisations and the samples.
    pub seed: u64,
    /// The demo's folder, whose VAE, latents and DiT are reused when present.
    pub demo_dir: PathBuf,
    /// The evaluation classifier's cache.
    pub classifier_cache: PathBuf,
    /// Override the training steps (tests).
    pub steps: Option<u64>,
    /// Override the batch (tests).
    pub batch: Option<usize>,
    /// Override the samples per class (tests).
    pub per_class: Option<usize>,
    /// Override the DDIM steps of the scores (tests).
    pub sample_steps: Option<usize>,
    /// Override the VAE's steps (tests).
    pub vae_steps: Option<u64>,
    /// Digits for the VAE, the latents and the classifier, and the classifier's steps
    /// (tests: a tiny setup).
    pub tiny_setup: Option<usize>,
}

/// What one experiment runs with.
#[derive(Clone, Debug)]
pub struct Context {
    pub name: &'static str,
    /// `<root>/<name>`
    pub dir: PathBuf,
    /// The results of this dataset: [`results_root`] of `--out` and `--data`.
    pub out: PathBuf,
    /// What every model trains on and every score is judged against.
    pub data: DataSource,
    pub demo_dir: PathBuf,
    pub quick: bool,
    pub seed: u64,
    pub steps: u64,
    pub batch: usize,
    /// Samples per class of every score (after the setup: at most what the data's real images
    /// can be compared with).
    pub per_class: usize,
    /// DDIM steps of the scores.
    pub sample_steps: usize,
    /// Guidance of the scores.
    pub guidance: f32,
    /// The command that reproduces the run.
    pub command: String,
}

/// What an experiment hands back to be written.
pub struct Outcome {
    pub title: String,
    /// Markdown after the settings: the table(s) and notes.
    pub body: String,
    /// Every number, for `<name>.json`.
    pub full: Json,
    /// The headline figures (the last stdout line, with the wall time added).
    pub headline: Vec<(String, Json)>,
}

/// Where the results on `data` go: `out` itself for the demo's digits (so their paths are as
/// they always were), else `<out>/<data slug>/`, so another dataset's setup, reference model
/// and experiments never overwrite the digits' ones.
pub fn results_root(out: &Path, data: &DataSource) -> PathBuf {
    match data {
        DataSource::Digits => out.to_path_buf(),
        _ => out.join(data_slug(data)),
    }
}

/// A dataset's name as one folder name: `uci-digits` stays, `mnist:/data/mnist` becomes
/// `mnist-data-mnist` (every run of other characters one `-`, none at either end).
pub fn data_slug(data: &DataSource) -> String {
    let name: String = data
        .name()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let slug = name
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if slug.is_empty() {
        "data".into()
    } else {
        slug
    }
}

impl ExperimentOptions {
    fn context(&self, e: Experiment, data: &DataSource) -> Context {
        let b = e.budget(self.quick);
        let mut command = format!(
            "cargo run --release --example dit_experiments -- {}",
            e.name()
        );
        if self.quick {
            command.push_str(" --quick");
        }
        let flags = [
            ("data", (*data != DataSource::Digits).then(|| data.name())),
            ("seed", (self.seed != 0).then(|| self.seed.to_string())),
            ("steps", self.steps.map(|v| v.to_string())),
            ("batch", self.batch.map(|v| v.to_string())),
            ("per-class", self.per_class.map(|v| v.to_string())),
            ("sample-steps", self.sample_steps.map(|v| v.to_string())),
            ("vae-steps", self.vae_steps.map(|v| v.to_string())),
            ("tiny-setup", self.tiny_setup.map(|v| v.to_string())),
        ];
        for (flag, value) in flags {
            if let Some(v) = value {
                command.push_str(&format!(" --{flag} {v}"));
            }
        }
        let root = results_root(&self.out, data);
        Context {
            name: e.name(),
            dir: root.join(e.name()),
            out: root,
            data: data.clone(),
            demo_dir: self.demo_dir.clone(),
            quick: self.quick,
            seed: self.seed,
            steps: self.steps.unwrap_or(b.steps),
            batch: self.batch.unwrap_or(64),
            per_class: self.per_class.unwrap_or(b.per_class),
            sample_steps: self.sample_steps.unwrap_or(50),
            guidance: e.guidance(),
            command,
        }
    }

    fn setup_options(&self, ctx: &Context) -> SetupOptions {
        let mut classifier = ClassifierTrainOptions::default();
        if let Some(n) = self.tiny_setup {
            classifier.n_train = n;
            classifier.n_held_out = (n / 5).max(10);
            classifier.steps = 5;
        }
        SetupOptions {
            data: ctx.data.clone(),
            demo_dir: self.demo_dir.clone(),
            dir: ctx.out.join("setup"),
            classifier_cache: self.classifier_cache.clone(),
            seed: self.seed,
            vae_steps: self.vae_steps.unwrap_or(TrainVaeOptions::default().steps),
            images: self.tiny_setup,
            classifier,
            per_class: ctx.per_class,
        }
    }
}

/// Runs the experiment(s) `args` names, writes their files, prints their headline lines (for
/// `all`, one more line gathering them); returns the headlines.
pub fn run(args: &ExperimentOptions) -> Result<Vec<Json>> {
    let experiments = Experiment::parse(&args.experiment)?;
    let data = DataSource::parse(&args.data)?;
    let start = Instant::now();
    let mut headlines = Vec::new();
    for e in &experiments {
        headlines.push(run_one(args, *e, &data)?);
    }
    if experiments.len() > 1 {
        let all = Json::obj([
            ("experiment", Json::str("all")),
            ("data", Json::str(data.name())),
            ("quick", Json::Bool(args.quick)),
            ("wall_seconds", Json::num(start.elapsed().as_secs_f64(), 1)),
            (
                "results",
                Json::obj(
                    experiments
                        .iter()
                        .zip(&headlines)
                        .map(|(e, h)| (e.name(), h.clone())),
                ),
            ),
        ]);
        println!("{}", all.to_line());
    }
    Ok(headlines)
}

fn run_one(args: &ExperimentOptions, e: Experiment, data: &DataSource) -> Result<Json> {
    let start = Instant::now();
    let mut ctx = args.context(e, data);
    println!(
        "\n=== experiment {} ({}) on {}: {} steps of batch {}, {} samples per class, seed {} ===",
        ctx.name,
        if ctx.quick { "quick" } else { "full" },
        data.name(),
        ctx.steps,
        ctx.batch,
        ctx.per_class,
        ctx.seed
    );
    let setup = Setup::prepare(&args.setup_options(&ctx))?;
    // A read dataset may hold too few real images for the samples asked for: the setup says so.
    ctx.per_class = setup.per_class;
    let outcome = match e {
        Experiment::Scaling => scaling::run(&ctx, &setup)?,
        Experiment::Conditioning => conditioning::run(&ctx, &setup)?,
        Experiment::UnetVsDit => unet_vs_dit::run(&ctx, &setup)?,
        Experiment::Guidance => guidance::run(&ctx, &setup)?,
        Experiment::Samplers => samplers::run(&ctx, &setup)?,
    };
    let wall = start.elapsed().as_secs_f64();
    let scored = match e {
        Experiment::Guidance => format!("DDIM {} steps at every scale", ctx.sample_steps),
        Experiment::Samplers => format!("each sampler at guidance {}", ctx.guidance),
        _ => format!(
            "DDIM {} steps at guidance {}",
            ctx.sample_steps, ctx.guidance
        ),
    };
    let settings = format!(
        "Command: `{}` ({} setting on {}: {} training steps of batch {}, {} samples per class \
         scored with {scored}, seed {}). Setup: {}. Wall time {:.0} s (setup {:.0} s).\n\n",
        ctx.command,
        if ctx.quick { "quick" } else { "full" },
        data.name(),
        ctx.steps,
        ctx.batch,
        ctx.per_class,
        ctx.seed,
        setup.provenance.join("; "),
        wall,
        setup.seconds
    );
    let mut head = vec![
        ("experiment".to_string(), Json::str(ctx.name)),
        ("data".to_string(), Json::str(data.name())),
        ("quick".to_string(), Json::Bool(ctx.quick)),
        ("steps".to_string(), Json::Num(ctx.steps as f64)),
        ("per_class".to_string(), Json::Num(ctx.per_class as f64)),
        ("seed".to_string(), Json::Num(ctx.seed as f64)),
    ];
    head.extend(outcome.headline);
    head.push(("wall_seconds".into(), Json::num(wall, 1)));
    let headline = Json::Obj(head);
    let full = Json::obj([
        ("command", Json::str(ctx.command.as_str())),
        ("headline", headline.clone()),
        (
            "setup",
            Json::Arr(
                setup
                    .provenance
                    .iter()
                    .map(|p| Json::str(p.as_str()))
                    .collect(),
            ),
        ),
        ("results", outcome.full),
    ]);
    let title = match data {
        DataSource::Digits => outcome.title,
        _ => format!("{} (on {})", outcome.title, data.name()),
    };
    let w = write_outputs(
        &ctx.dir,
        ctx.name,
        &title,
        &(settings + &outcome.body),
        &full,
    )?;
    println!(
        "\nwrote {}, {} and {} in {wall:.0} s",
        w.png.display(),
        w.md.display(),
        w.json.display()
    );
    println!("{}", headline.to_line());
    Ok(headline)
}

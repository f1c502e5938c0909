//! The DiT chapter's recipe study on real data: why DiT with its paper's recipe fails on the
//! UCI handwritten digits in a laptop's budget while the U-Net succeeds, one change at a time.
//!
//! ```text
//! cargo run --release --example recipe_study -- [--rows all|NAME,NAME…] [--cfg-scale 1,1.5,2,3]
//! ```
//! Every row is a `minisora train` command line on `--data uci-digits` (its 1,437 training
//! images, encoded by a VAE trained on them first, reused on the next run), scored as
//! `minisora evaluate` scores it: 50 samples of every class with DDIM (50 steps) at guidance
//! 1, 1.5, 2 and 3, judged by a classifier trained on the real training split, against real
//! training images (Fréchet distance, beside the real-vs-real floor). A row is about four
//! minutes on two cores (training, then 500 samples per guidance scale); all of them take
//! about 70 minutes. `--rows cpu` checks the default recipe alone.
//!
//! Writes `out/recipe_study/<row>/` (each run's figures and checkpoint), `table.md` (the
//! table the DiT chapter shows) and `table.json`. The last stdout line is one JSON object:
//! for one row its figures at its recipe's guidance if scored (`class_accuracy`, `frechet`,
//! `frechet_floor`, `train_seconds`, …, and every scale's report), for several `{"rows":[…]}`.

use clap::Parser;
use minisora::cli::train::TrainArgs;
use minisora::data::DataSource;
use minisora::error::{write_atomic, Error, Result};
use minisora::metrics::{score_checkpoint, EvalReport, EvaluateRequest};
use minisora::vae::train::{train_vae, TrainVaeOptions};
use std::path::{Path, PathBuf};

/// One row: a name, what it changes, and its flags after
/// `minisora train --data uci-digits --vae VAE --out DIR`.
struct Row {
    name: &'static str,
    change: &'static str,
    flags: &'static str,
}

/// From the paper's recipe to the CPU one, one change at a time; the ablations of the CPU
/// recipe at lr 3e-3 (measured before its peak was raised to 6e-3); the U-Net; pixel space.
const ROWS: &[Row] = &[
    Row {
        name: "paper",
        change: "DiT's paper recipe: lr 1e-4 constant, no warm-up, no clipping, 1800 × 32",
        flags: "--model dit-tiny/2 --recipe paper",
    },
    Row {
        name: "paper-adaln",
        change: "… with adaLN instead of adaLN-Zero (no zero start)",
        flags: "--model dit-tiny/2 --recipe paper --conditioning adaln",
    },
    Row {
        name: "paper-lr1e-3",
        change: "… at lr 1e-3, 100 warm-up steps, clip 1",
        flags: "--model dit-tiny/2 --recipe paper --lr 1e-3 --warmup 100 --grad-clip 1",
    },
    Row {
        name: "paper-lr3e-3",
        change: "… at lr 3e-3, 100 warm-up steps, clip 1",
        flags: "--model dit-tiny/2 --recipe paper --lr 3e-3 --warmup 100 --grad-clip 1",
    },
    Row {
        name: "paper-lr3e-3-ema0.999",
        change: "… and EMA 0.999",
        flags: "--model dit-tiny/2 --recipe paper --lr 3e-3 --warmup 100 --grad-clip 1 --ema 0.999",
    },
    Row {
        name: "paper-lr3e-3-fixed-sigma",
        change: "… and ε only (fixed σ, no variational term)",
        flags: "--model dit-tiny/2 --recipe paper --lr 3e-3 --warmup 100 --grad-clip 1 --no-learn-sigma",
    },
    Row {
        name: "paper-lr3e-3-patch4",
        change: "… and patch 4 (4 tokens, not 16)",
        flags: "--model dit-tiny/4 --recipe paper --lr 3e-3 --warmup 100 --grad-clip 1",
    },
    Row {
        name: "paper-lr3e-3-64x2000",
        change: "lr 3e-3 (constant), batch 64 × 2000",
        flags: "--model dit-tiny/2 --recipe paper --lr 3e-3 --warmup 100 --grad-clip 1 --batch 64 --steps 2000",
    },
    Row {
        name: "cpu-lr3e-3",
        change: "… with cosine decay to lr/10: the CPU recipe at lr 3e-3",
        flags: "--model dit-tiny/2 --lr 3e-3",
    },
    Row {
        name: "cpu-lr3e-3-fixed-sigma",
        change: "… ε only (fixed σ)",
        flags: "--model dit-tiny/2 --lr 3e-3 --no-learn-sigma",
    },
    Row {
        name: "cpu-lr3e-3-dropout0.2",
        change: "… label dropout 0.2",
        flags: "--model dit-tiny/2 --lr 3e-3 --label-dropout 0.2",
    },
    Row {
        name: "cpu-lr3e-3-channel-norm",
        change: "… latents normalised per channel",
        flags: "--model dit-tiny/2 --lr 3e-3 --latent-norm channel",
    },
    Row {
        name: "cpu-lr3e-3-32x4500",
        change: "… batch 32 × 4500 (more steps, fewer images)",
        flags: "--model dit-tiny/2 --lr 3e-3 --batch 32 --steps 4500",
    },
    Row {
        name: "cpu-lr3e-3-3000",
        change: "… 3000 steps (134 epochs, over the time budget)",
        flags: "--model dit-tiny/2 --lr 3e-3 --steps 3000",
    },
    Row {
        name: "cpu",
        change: "the CPU recipe (default): lr 6e-3",
        flags: "--model dit-tiny/2",
    },
    Row {
        name: "cpu-channel-norm",
        change: "… latents normalised per channel",
        flags: "--model dit-tiny/2 --latent-norm channel",
    },
    Row {
        name: "cpu-lr1e-2",
        change: "… at lr 1e-2",
        flags: "--model dit-tiny/2 --lr 1e-2",
    },
    Row {
        name: "unet-paper",
        change: "the U-Net at the paper recipe (lr 1e-4 constant), 1800 × 32",
        flags: "--model unet --recipe paper",
    },
    Row {
        name: "unet",
        change: "the U-Net, its CPU recipe (lr 1e-3, warm-up, decay, clip), 1800 × 32",
        flags: "--model unet",
    },
    Row {
        name: "pixels-patch4",
        change: "pixels 16×16, DiT-tiny/4 (16 tokens), CPU recipe at lr 3e-3",
        flags: "--model dit-tiny/4 --lr 3e-3 --pixels --pixel-size 16",
    },
    Row {
        name: "pixels-patch4-cpu",
        change: "pixels 16×16, DiT-tiny/4, the CPU recipe (lr 6e-3)",
        flags: "--model dit-tiny/4 --pixels --pixel-size 16",
    },
];

#[derive(Parser)]
#[command(about = "DiT's recipe on the real UCI digits, one change at a time")]
struct Args {
    /// Rows to run, comma-separated, or `all`.
    #[arg(long, default_value = "all")]
    rows: String,
    /// Guidance scales to score every row at.
    #[arg(long, value_delimiter = ',', default_value = "1,1.5,2,3")]
    cfg_scale: Vec<f32>,
    /// Samples per class of every score.
    #[arg(long, default_value_t = 50)]
    per_class: usize,
    #[arg(long, default_value = "out/recipe_study")]
    out: PathBuf,
}

/// `minisora train`'s flags, parsed as the command parses them.
#[derive(Parser)]
struct Train {
    #[command(flatten)]
    args: TrainArgs,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args = Args::parse();
    let rows: Vec<&Row> = match args.rows.as_str() {
        "all" => ROWS.iter().collect(),
        list => list
            .split(',')
            .map(|n| {
                ROWS.iter().find(|r| r.name == n.trim()).ok_or_else(|| {
                    let names: Vec<_> = ROWS.iter().map(|r| r.name).collect();
                    Error::new(
                        format!("no row {n:?}"),
                        format!("use --rows all or some of {}", names.join(",")),
                    )
                })
            })
            .collect::<Result<_>>()?,
    };
    let vae = args.out.join("vae").join("vae.safetensors");
    if !vae.is_file() {
        println!("training the VAE on uci-digits first (about a minute and a half)");
        train_vae(&TrainVaeOptions {
            data: DataSource::UciDigits,
            out: args.out.join("vae"),
            ..TrainVaeOptions::default()
        })?;
    }
    let mut results = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        println!("\n[{}/{}] {}: {}", i + 1, rows.len(), row.name, row.change);
        results.push(run_row(row, &vae, &args)?);
    }
    let table = table(&results);
    println!("\n{table}");
    write_atomic(&args.out.join("table.md"), table.as_bytes())?;
    let json: Vec<String> = results.iter().map(Measured::to_json).collect();
    write_atomic(
        &args.out.join("table.json"),
        format!("[{}]\n", json.join(",\n")).as_bytes(),
    )?;
    match &json[..] {
        [one] => println!("{one}"),
        all => println!("{{\"rows\":[{}]}}", all.join(",")),
    }
    Ok(())
}

/// What one row measured.
struct Measured {
    row: &'static Row,
    /// The recipe's own guidance scale, the headline's if it was scored.
    guidance: f32,
    train_seconds: f64,
    final_loss: f32,
    /// `(guidance, report)` per scale scored.
    scores: Vec<(f32, EvalReport)>,
}

/// Trains the row's command line, then scores the checkpoint.
fn run_row(row: &'static Row, vae: &Path, args: &Args) -> Result<Measured> {
    let dir = args.out.join(row.name);
    let line = format!(
        "train --data uci-digits --vae {} --out {} {}",
        vae.display(),
        dir.display(),
        row.flags
    );
    println!("minisora {line}");
    let train = Train::try_parse_from(line.split_whitespace())
        .map_err(|e| Error::new(format!("row {}: {e}", row.name), "fix the row's flags"))?;
    let report = train.args.run()?;
    let reports = score_checkpoint(&EvaluateRequest {
        ckpt: report.checkpoint.clone(),
        vae: vae.to_path_buf(),
        data: None,
        cfg_scale: args.cfg_scale.clone(),
        steps: 50,
        per_class: args.per_class,
        seed: 0,
        classifier_cache: PathBuf::from("out/classifier"),
    })?;
    Ok(Measured {
        row,
        guidance: train.args.options()?.0.guidance,
        train_seconds: report.train_seconds,
        final_loss: report.final_loss,
        scores: args.cfg_scale.iter().copied().zip(reports).collect(),
    })
}

/// The markdown table: one line per row and guidance scale.
fn table(results: &[Measured]) -> String {
    let mut s = String::from(
        "| row | change | guidance | class accuracy | Fréchet (floor) | final loss | train s |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in results {
        for (g, e) in &r.scores {
            s += &format!(
                "| `{}` | {} | {g} | {:.1} % | {:.1} ({:.1}) | {:.4} | {:.0} |\n",
                r.row.name,
                r.row.change,
                100.0 * e.accuracy,
                e.frechet,
                e.frechet_floor,
                r.final_loss,
                r.train_seconds
            );
        }
    }
    s
}

impl Measured {
    /// The row's figures at its recipe's guidance (else the first scored), and every scale's.
    fn to_json(&self) -> String {
        let (g, e) = self
            .scores
            .iter()
            .find(|(g, _)| *g == self.guidance)
            .unwrap_or(&self.scores[0]);
        let all: Vec<String> = self
            .scores
            .iter()
            .map(|(g, e)| format!("{{\"guidance\":{g},\"report\":{}}}", e.to_json()))
            .collect();
        format!(
            "{{\"row\":\"{}\",\"flags\":\"{}\",\"guidance\":{g},\"class_accuracy\":{:.4},\"frechet\":{:.3},\"frechet_floor\":{:.3},\"train_seconds\":{:.1},\"final_loss\":{:.5},\"scores\":[{}]}}",
            self.row.name,
            self.row.flags,
            e.accuracy,
            e.frechet,
            e.frechet_floor,
            self.train_seconds,
            self.final_loss,
            all.join(",")
        )
    }
}

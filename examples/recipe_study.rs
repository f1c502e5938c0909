//! The DiT chapter's recipe study on real data: why DiT with its paper's recipe fails on the
//! UCI handwritten digits in a laptop's budget while the U-Net succeeds, one change at a time.
//!
//! ```text
//! cargo run --release --example recipe_study -- [--rows all|NAME,NAME…] [--cfg-scale 1,2]
//! ```
//! Every row is a `minisora train` command line on `--data uci-digits` (its 1,437 training
//! images, encoded by a VAE trained on them first, reused on the next run), scored as
//! `minisora evaluate` scores it: 50 samples of every class with DDIM (50 steps) at each
//! guidance scale, judged by a classifier trained on the real training split, against real
//! training images (Fréchet distance, beside the real-vs-real floor). A row is about four
//! minutes on two cores (training, then 500 samples per guidance scale); all of them take
//! about an hour. `--rows cpu` checks the default recipe alone.
//!
//! Writes `out/recipe_study/<row>/` (each run's figures and checkpoint), `table.md` (the
//! table the DiT chapter shows) and `table.json`. The last stdout line is one JSON object:
//! for one row its figures at its recipe's guidance (`class_accuracy`, `frechet`,
//! `frechet_floor`, `train_seconds`, …), for several `{"rows":[…]}`.

use clap::Parser;
use minisora::cli::train::TrainArgs;
use minisora::data::DataSource;
use minisora::error::{Error, Result};
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

// ANCHOR: rows
/// From the paper's recipe to the CPU one, then each part of the CPU one taken away or
/// changed, then the same in pixel space.
const ROWS: &[Row] = &[
    Row {
        name: "paper",
        change: "DiT's paper recipe: lr 1e-4 constant, EMA 0.9999, 1800 × 32",
        flags: "--model dit-tiny/2 --recipe paper",
    },
    Row {
        name: "paper-adaln",
        change: "paper recipe, adaLN without the zero init",
        flags: "--model dit-tiny/2 --recipe paper --conditioning adaln",
    },
    Row {
        name: "paper-lr",
        change: "+ lr 3e-3, 100 warm-up steps, clip 1",
        flags: "--model dit-tiny/2 --recipe paper --lr 3e-3 --warmup 100 --grad-clip 1",
    },
    Row {
        name: "paper-lr-decay",
        change: "+ cosine decay to lr/10",
        flags: "--model dit-tiny/2 --steps 1800 --batch 32",
    },
    Row {
        name: "cpu",
        change: "+ batch 64 × 2000 steps: the CPU recipe (default)",
        flags: "--model dit-tiny/2",
    },
    Row {
        name: "cpu-lr6e-3",
        change: "CPU recipe at lr 6e-3",
        flags: "--model dit-tiny/2 --lr 6e-3",
    },
    Row {
        name: "cpu-lr1e-3",
        change: "CPU recipe at lr 1e-3",
        flags: "--model dit-tiny/2 --lr 1e-3",
    },
    Row {
        name: "cpu-no-warmup",
        change: "CPU recipe without warm-up",
        flags: "--model dit-tiny/2 --warmup 0",
    },
    Row {
        name: "cpu-no-ema",
        change: "CPU recipe, no EMA (the raw weights)",
        flags: "--model dit-tiny/2 --ema 0",
    },
    Row {
        name: "cpu-fixed-sigma",
        change: "CPU recipe, ε only (fixed σ, no variational term)",
        flags: "--model dit-tiny/2 --no-learn-sigma",
    },
    Row {
        name: "cpu-patch4",
        change: "CPU recipe, patch 4 (4 tokens)",
        flags: "--model dit-tiny/4",
    },
    Row {
        name: "cpu-dropout0.2",
        change: "CPU recipe, label dropout 0.2",
        flags: "--model dit-tiny/2 --label-dropout 0.2",
    },
    Row {
        name: "cpu-32x4000",
        change: "CPU recipe, batch 32 × 4000 (same images)",
        flags: "--model dit-tiny/2 --batch 32 --steps 4000",
    },
    Row {
        name: "cpu-1000",
        change: "CPU recipe, 1000 steps (45 epochs, not 89)",
        flags: "--model dit-tiny/2 --steps 1000",
    },
    Row {
        name: "unet",
        change: "the U-Net, its own recipe (lr 1e-3, 1800 × 32)",
        flags: "--model unet",
    },
    Row {
        name: "pixels-patch2",
        change: "pixels 16×16, DiT-tiny/2 (64 tokens), CPU recipe",
        flags: "--model dit-tiny/2 --pixels --pixel-size 16",
    },
    Row {
        name: "pixels-patch4",
        change: "pixels 16×16, DiT-tiny/4 (16 tokens), CPU recipe",
        flags: "--model dit-tiny/4 --pixels --pixel-size 16",
    },
];
// ANCHOR_END: rows

#[derive(Parser)]
#[command(about = "DiT's recipe on the real UCI digits, one change at a time")]
struct Args {
    /// Rows to run, comma-separated, or `all`.
    #[arg(long, default_value = "all")]
    rows: String,
    /// Guidance scales to score (the first is the table's); default: the recipe's.
    #[arg(long, value_delimiter = ',')]
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
    write(&args.out.join("table.md"), &table)?;
    let json: Vec<String> = results.iter().map(Measured::to_json).collect();
    write(
        &args.out.join("table.json"),
        &format!("[{}]\n", json.join(",\n")),
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
    let scales = if args.cfg_scale.is_empty() {
        Vec::new() // the checkpoint's own guidance
    } else {
        args.cfg_scale.clone()
    };
    let reports = score_checkpoint(&EvaluateRequest {
        ckpt: report.checkpoint.clone(),
        vae: vae.to_path_buf(),
        data: None,
        cfg_scale: scales.clone(),
        steps: 50,
        per_class: args.per_class,
        seed: 0,
        classifier_cache: PathBuf::from("out/classifier"),
    })?;
    let used = if scales.is_empty() {
        vec![train.args.options()?.0.guidance]
    } else {
        scales
    };
    Ok(Measured {
        row,
        train_seconds: report.train_seconds,
        final_loss: report.final_loss,
        scores: used.into_iter().zip(reports).collect(),
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
    /// The row's figures at its first guidance scale, and every scale's report.
    fn to_json(&self) -> String {
        let (g, e) = &self.scores[0];
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

/// Writes `text` to `path` through a temporary file.
fn write(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| {
            Error::new(
                format!("cannot write {}: {e}", path.display()),
                "check that the folder is writable",
            )
        })
}

//! The Sora chapter's experiments, on the latent clips of the video demo:
//!
//! - **layouts**: `full`, `alternating` and `factorized`, each from scratch, at equal steps;
//! - **inflation**: `alternating` inflated from the demo's image DiT vs from scratch;
//! - **patches**: `full` with per-frame 1×2×2 patches vs 2×2×2 tubelets.
//!
//! ```text
//! cargo run --release -- demo-video        # first: the VAE, the latent clips, the image DiT
//! cargo run --release --example video_experiments -- [--quick] [--rows NAME,NAME…] [--demo DIR]
//! ```
//! Every row is a `minisora train` command line on the demo's latent clips, scored as
//! `minisora evaluate-video` scores it (clips of every class, DDIM 25 steps at guidance 1.5):
//! digit and motion accuracy, consistency, FVD beside its floor, Gflops per clip and the
//! training time. `--quick` trains each row for 300 steps (about three minutes a row on two
//! cores), else 1200. Writes `out/video_experiments/<row>/`, `table.md` and `table.json`; the
//! last stdout line is one JSON object with every row.

use clap::Parser;
use minisora::cli::train::TrainArgs;
use minisora::cli::video::InflateArgs;
use minisora::error::{write_atomic, Error, Result};
use minisora::evaluate_video::{evaluate_video, VideoEvalRequest};
use minisora::io::json::Json;
use std::path::PathBuf;

/// One row: its name, what it tests, and its flags after `minisora train --model <model>`.
struct Row {
    name: &'static str,
    what: &'static str,
    flags: &'static str,
}

const ROWS: &[Row] = &[
    Row {
        name: "full",
        what: "one attention over all F·S tokens, from scratch",
        flags: "--layout full",
    },
    Row {
        name: "alternating",
        what: "Latte: spatial and temporal blocks alternating, from scratch",
        flags: "--layout alternating",
    },
    Row {
        name: "factorized",
        what: "STDiT: spatial then temporal attention in each block, from scratch",
        flags: "--layout factorized",
    },
    Row {
        name: "alternating-inflated",
        what: "alternating, inflated from the demo's image DiT",
        flags: "--layout alternating --init INFLATED",
    },
    Row {
        name: "full-tubelet",
        what: "full, 2×2×2 tubelets instead of per-frame 1×2×2 patches",
        flags: "--layout full --temporal-patch 2",
    },
];

/// `minisora train`'s flags, parsed from a row's command line.
#[derive(Parser)]
struct Train {
    #[command(flatten)]
    args: TrainArgs,
}

#[derive(Parser)]
struct Args {
    /// 300 training steps a row instead of 1200.
    #[arg(long)]
    quick: bool,
    /// Training steps a row (overrides --quick).
    #[arg(long)]
    steps: Option<u64>,
    /// Clips per step.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// The video DiT (the same size as the demo's image DiT, for the inflated row).
    #[arg(long, default_value = "video-tiny/2")]
    model: String,
    /// Comma-separated row names (default: all).
    #[arg(long, default_value = "all")]
    rows: String,
    /// The video demo's output folder (its VAE, latent clips and image DiT).
    #[arg(long, default_value = "out/demo-video")]
    demo: PathBuf,
    /// Where the rows write.
    #[arg(long, default_value = "out/video_experiments")]
    out: PathBuf,
}

fn main() {
    if let Err(e) = run(&Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<()> {
    let (vae, latents) = (
        args.demo.join("vae/vae.safetensors"),
        args.demo.join("latents.safetensors"),
    );
    let image = args.demo.join("image-dit/dit.safetensors");
    for f in [&vae, &latents, &image] {
        if !f.is_file() {
            return Err(Error::new(
                format!("no {}", f.display()),
                "run `cargo run --release -- demo-video` first (or pass --demo DIR)",
            ));
        }
    }
    let rows: Vec<&Row> = if args.rows == "all" {
        ROWS.iter().collect()
    } else {
        let names: Vec<&str> = args.rows.split(',').map(str::trim).collect();
        let known: Vec<&str> = ROWS.iter().map(|r| r.name).collect();
        if let Some(bad) = names.iter().find(|n| !known.contains(n)) {
            return Err(Error::new(
                format!("unknown row {bad:?}"),
                format!("use --rows with any of {}", known.join(", ")),
            ));
        }
        ROWS.iter().filter(|r| names.contains(&r.name)).collect()
    };
    let steps = args.steps.unwrap_or(if args.quick { 300 } else { 1200 });
    let inflated = args.out.join("inflated.safetensors");
    let mut results = Vec::new();
    let mut table = String::from(
        "| row | what | Gflops/clip | train s | digit | motion | consistency | FVD (floor) |\n|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        if row.flags.contains("INFLATED") && !inflated.is_file() {
            InflateArgs {
                ckpt: image.clone(),
                layout: "alternating".into(),
                frames: 8,
                temporal_patch: 1,
                motions: 4,
                out: inflated.clone(),
            }
            .run()?;
        }
        let out = args.out.join(row.name);
        let line = format!(
            "minisora train --model {} --data latents:{} --vae {} --steps {steps} --batch {} --out {} {}",
            args.model,
            latents.display(),
            vae.display(),
            args.batch,
            out.display(),
            row.flags.replace("INFLATED", &inflated.display().to_string())
        );
        println!("\n== {}: {}\n$ {line}", row.name, row.what);
        let train = Train::try_parse_from(
            std::iter::once("minisora").chain(line.split_whitespace().skip(2)),
        )
        .map_err(|e| Error::new(format!("row {}: {e}", row.name), "fix the row's flags"))?;
        let report = train.args.run()?;
        let eval = evaluate_video(&VideoEvalRequest {
            ckpt: report.checkpoint.clone(),
            vae: vae.clone(),
            per_class: 2,
            guidance: None,
            steps: 25,
            seed: 0,
            data: None,
            scorer_cache: PathBuf::from("out/scorer"),
        })?;
        let r = &eval.report;
        table.push_str(&format!(
            "| {} | {} | {:.3} | {:.0} | {:.1} % | {:.1} % | {:.3} | {:.1} ({:.1}) |\n",
            row.name,
            row.what,
            report.gflops,
            report.train_seconds,
            100.0 * r.digit_accuracy,
            100.0 * r.motion_accuracy,
            r.consistency,
            r.fvd,
            r.fvd_floor
        ));
        results.push(Json::obj([
            ("row", Json::str(row.name)),
            ("gflops", Json::num(report.gflops, 4)),
            ("train_seconds", Json::num(report.train_seconds, 1)),
            ("final_loss", Json::num(report.final_loss as f64, 5)),
            ("digit_accuracy", Json::num(r.digit_accuracy, 4)),
            ("motion_accuracy", Json::num(r.motion_accuracy, 4)),
            ("consistency", Json::num(r.consistency, 4)),
            ("fvd", Json::num(r.fvd, 2)),
            ("fvd_floor", Json::num(r.fvd_floor, 2)),
        ]));
    }
    let json = Json::obj([
        ("steps", Json::num(steps as f64, 0)),
        ("rows", Json::Arr(results)),
    ]);
    write_atomic(&args.out.join("table.md"), table.as_bytes())?;
    write_atomic(&args.out.join("table.json"), json.to_line().as_bytes())?;
    println!("\n{table}");
    println!("{}", json.to_line());
    Ok(())
}

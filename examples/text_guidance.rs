//! Classifier-free guidance on text, swept: for each scale, clips of the same seen and held-out
//! captions from the text demo's model, scored as `minisora evaluate-video --captions` scores
//! them — caption accuracy (seen, held out) against FVD.
//!
//! ```text
//! cargo run --release -- demo-text                 # first: the model and its VAE
//! cargo run --release --example text_guidance -- [--demo out/demo-text] [--scales 1,2,4,7]
//! ```
//! Writes `out/text_guidance/guidance.png` (caption accuracy and FVD against the scale) and
//! prints a table; the last stdout line is one JSON object with every row. About a minute a
//! scale on two cores at the default 64 captions per split.

use clap::Parser;
use minisora::error::Result;
use minisora::evaluate_text::{evaluate_captions, CaptionEvalRequest};
use minisora::io::json::Json;
use minisora::io::plot::{line_plot, Series};
use std::path::PathBuf;

#[derive(Parser)]
struct Args {
    /// The text demo's output folder.
    #[arg(long, default_value = "out/demo-text")]
    demo: PathBuf,
    /// Guidance scales, comma-separated.
    #[arg(long, default_value = "1,2,4,7", value_delimiter = ',')]
    scales: Vec<f32>,
    /// Captions per split.
    #[arg(long, default_value_t = 64)]
    clips: usize,
    /// DDIM steps.
    #[arg(long, default_value_t = 25)]
    steps: usize,
    #[arg(long, default_value = "out/text_guidance")]
    out: PathBuf,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let mut rows = Vec::new();
    let (mut seen, mut held, mut fvd) = (Vec::new(), Vec::new(), Vec::new());
    for &g in &args.scales {
        println!("guidance {g}:");
        let eval = evaluate_captions(&CaptionEvalRequest {
            ckpt: args.demo.join("video-dit/video.safetensors"),
            vae: args.demo.join("vae/vae.safetensors"),
            clips: args.clips,
            guidance: g,
            steps: args.steps,
            seed: 0,
            scorer_cache: PathBuf::from("out/scorer"),
        })?;
        seen.push((g as f64, 100.0 * eval.seen.accuracy));
        held.push((g as f64, 100.0 * eval.held_out.accuracy));
        fvd.push((g as f64, eval.fvd));
        rows.push(eval.to_json(g));
    }
    println!("\n| guidance | caption acc. seen | held out | FVD |\n|---:|---:|---:|---:|");
    for ((s, h), f) in seen.iter().zip(&held).zip(&fvd) {
        println!("| {} | {:.1} % | {:.1} % | {:.1} |", s.0, s.1, h.1, f.1);
    }
    let plot = args.out.join("guidance.png");
    std::fs::create_dir_all(&args.out).map_err(|e| {
        minisora::error::Error::new(
            format!("cannot create {}: {e}", args.out.display()),
            "pass a writable --out",
        )
    })?;
    let acc = [
        Series {
            name: "caption accuracy, seen (%)".into(),
            points: seen,
        },
        Series {
            name: "caption accuracy, held out (%)".into(),
            points: held,
        },
    ];
    line_plot(
        &plot,
        "Guidance on text",
        "guidance scale",
        "%",
        &acc,
        false,
    )?;
    let fvd_plot = args.out.join("fvd.png");
    let f = [Series {
        name: "FVD".into(),
        points: fvd,
    }];
    line_plot(
        &fvd_plot,
        "FVD against guidance",
        "guidance scale",
        "FVD",
        &f,
        false,
    )?;
    println!("wrote {} and {}", plot.display(), fvd_plot.display());
    println!("{}", Json::obj([("rows", Json::Arr(rows))]).to_line());
    Ok(())
}

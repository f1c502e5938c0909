//! How a caption reaches the video DiT, measured where the answer is known: the video demo's
//! grayscale moving digits, whose captions ("a 3 moving left") say exactly what their class
//! label says. Each row trains the same text-conditioned model — `full` layout, 2×2×2
//! tubelets, the text encoder trained jointly — and scores its clips by class as
//! `minisora evaluate-video` scores a class model (2 clips per class, DDIM 25, guidance 3):
//!
//! - `cross-attention`: the caption reaches the blocks only through cross-attention (PixArt,
//!   STDiT), its projection starting at zero;
//! - `cross-attention + pooled`: the mean of the caption's tokens also feeds adaLN's $c$.
//!
//! ```text
//! cargo run --release -- demo-video        # first: out/demo-video/latents.safetensors, its VAE
//! cargo run --release --example text_conditioning -- [--steps 1500]
//! ```
//! About two minutes a row on two cores. The last stdout line is one JSON object.

use clap::Parser;
use minisora::error::Result;
use minisora::evaluate_text::generate_clips;
use minisora::evaluate_video::load_or_train_scorer;
use minisora::io::json::Json;
use minisora::metrics::video::clips::score_clips;
use minisora::models::load_model;
use minisora::models::video::{train_video, video_options};
use minisora::models::Recipe;
use minisora::sample::decoder;
use minisora::tensor::rng;
use minisora::text::encoder::TextEncoderConfig;
use minisora::text::tokenizer::{tokenize, vocab_size, Tokens};
use minisora::train::{Source, TrainData, TrainOptions};
use minisora::video::config::CaptionConfig;
use minisora::video::moving_digits::{caption, MovingDigits, NUM_CLASSES};
use minisora::video::{Layout, VideoDiT, VideoDiTConfig};
use std::path::PathBuf;

#[derive(Parser)]
struct Args {
    /// The video demo's output folder (its latent clips and VAE).
    #[arg(long, default_value = "out/demo-video")]
    demo: PathBuf,
    #[arg(long, default_value_t = 1500)]
    steps: u64,
    #[arg(long, default_value = "out/text_conditioning")]
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
    for (name, pooled) in [
        ("cross-attention", false),
        ("cross-attention + pooled", true),
    ] {
        println!("\n{name}:");
        let opts = TrainOptions {
            data: Source::Latents(args.demo.join("latents.safetensors")),
            vae: args.demo.join("vae/vae.safetensors"),
            steps: args.steps,
            batch: 32,
            guidance: 3.0,
            out: args.out.join(if pooled { "pooled" } else { "cross" }),
            ..video_options(Recipe::Cpu)
        };
        let data = TrainData::load(&opts)?;
        let &[c, f, h, _] = data.sample_shape() else {
            unreachable!("latent clips are (C, F, H, W)")
        };
        let mut config = VideoDiTConfig::named("video-mini/2", Layout::Full, f, 2, h, c, 1)?;
        config.text = Some(CaptionConfig {
            encoder: TextEncoderConfig::new(vocab_size()),
            pooled,
            train_encoder: true,
        });
        let mut model = VideoDiT::new(config, &mut rng(0))?;
        let report = train_video(&mut model, &data, &opts)?;
        // two clips of every class, asked for by its caption
        let loaded = load_model(&report.checkpoint)?;
        let vae = decoder(&opts.vae, &report.checkpoint, &loaded)?;
        let labels: Vec<usize> = (0..NUM_CLASSES).flat_map(|l| [l, l]).collect();
        let tokens: Vec<Tokens> = labels
            .iter()
            .map(|&l| tokenize(&caption(l)))
            .collect::<Result<_>>()?;
        let pixels = generate_clips(&loaded, vae.as_ref(), &tokens, 3.0, 25, 0)?;
        let gen = MovingDigits {
            frames: f,
            ..MovingDigits::default()
        };
        let scorer = load_or_train_scorer(&gen, &PathBuf::from("out/scorer"))?;
        let real = gen.generate(4 * NUM_CLASSES, 0x4ea1)?;
        let r = score_clips(&scorer, pixels.view(), &labels, &real, 0)?;
        println!("{name}: {r}");
        rows.push(Json::obj([
            ("row", Json::str(name)),
            ("digit_accuracy", Json::num(r.digit_accuracy, 4)),
            ("motion_accuracy", Json::num(r.motion_accuracy, 4)),
            ("consistency", Json::num(r.consistency, 4)),
            ("fvd", Json::num(r.fvd, 3)),
            ("fvd_floor", Json::num(r.fvd_floor, 3)),
            ("train_seconds", Json::num(report.train_seconds, 1)),
        ]));
    }
    println!("{}", Json::obj([("rows", Json::Arr(rows))]).to_line());
    Ok(())
}

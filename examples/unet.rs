//! The U-Net chapter's experiment: a class-conditional U-Net (ADM, scaled down) trained on the
//! VAE latents of the procedural digits (8×8×4), sampled for every class with DDIM and
//! classifier-free guidance, decoded by the VAE (the code is `minisora::unet::train`, also
//! `minisora train --model unet`).
//!
//! ```text
//! cargo run --release --example unet [-- STEPS [GUIDANCE]]
//! ```
//! Measured on two cores: 1800 steps of batch 32 in 170 s (0.094 s/step, 339 img/s),
//! sampling 80 digits in 8 s, 178 s in all (a 2000-step run with the cores shared by other
//! jobs took 297 s). It needs `out/vae/vae.safetensors` and
//! `out/latents/digits.safetensors`; if either is missing it first trains the VAE and encodes
//! the digits (as `minisora train-vae` and `minisora encode` do: about 2.5 more minutes, 4.5
//! measured with the cores shared).
//! Writes `out/unet/`: `samples.png` (one row per class, 0 to 9), `denoise.png`, `loss.png`
//! and `unet.safetensors`. The last stdout line is a JSON object with the parameter count,
//! the Gflops per forward, the final loss and the seconds per step.

use minisora::data::DataSource;
use minisora::error::{Error, Result};
use minisora::models::unet::{default_config, default_options, train_unet};
use minisora::vae::encode::encode_dataset;
use minisora::vae::train::{train_vae, TrainVaeOptions};
use std::path::Path;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<Option<T>> {
    args.get(i)
        .map(|s| {
            s.parse()
                .map_err(|_| Error::new(format!("{s:?} is not a {what}"), "see the usage line"))
        })
        .transpose()
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = default_options();
    if let Some(steps) = arg(&args, 0, "step count")? {
        opts.steps = steps;
    }
    if let Some(g) = arg(&args, 1, "guidance scale")? {
        opts.guidance = g;
    }
    let latents = match &opts.data {
        minisora::train::Source::Latents(p) => p.clone(),
        _ => unreachable!("the example trains on latents"),
    };
    let fresh_vae = !opts.vae.exists();
    if fresh_vae {
        println!(
            "{} is missing: training the VAE first (minisora train-vae, ~2.5 min on 2 cores)",
            opts.vae.display()
        );
        let vae = TrainVaeOptions {
            out: opts.vae.parent().unwrap_or(Path::new(".")).to_path_buf(),
            ..TrainVaeOptions::default()
        };
        train_vae(&vae)?;
    }
    if fresh_vae || !latents.exists() {
        println!(
            "{} is missing or older than the VAE: encoding 10,000 digits with the VAE (minisora encode, ~20 s)",
            latents.display()
        );
        let (n, secs) = encode_dataset(&opts.vae, &DataSource::Digits, 10_000, 0, &latents)?;
        println!("encoded {n} digits in {secs:.1} s");
    }
    train_unet(&default_config(), &opts).map(|_| ())
}

//! The VAE chapter's experiment: train the KL-VAE on procedural digits (≤ 3 minutes on two
//! cores), report the held-out PSNR, the KL and the latent scale factor, and draw the figures
//! (the code is `minisora::vae::train`, also `minisora train-vae`).
//!
//! ```text
//! cargo run --release --example vae [-- DATA [STEPS]]
//! ```
//! DATA is digits (default), shapes, mnist:DIR or an image folder; STEPS defaults to the
//! library's default. Writes `out/vae/`: `recon.png` (held-out originals over their
//! reconstructions), `interpolation.png`, `samples.png` (decodes of N(0, I) latents),
//! `loss.png` and the checkpoint `vae.safetensors`. The last stdout line is a JSON object with
//! the PSNR, the KL, the latent std and the scale factor.

use minisora::data::DataSource;
use minisora::error::{Error, Result};
use minisora::vae::train::{train_vae, TrainVaeOptions};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = TrainVaeOptions::default();
    if let Some(d) = args.first() {
        opts.data = DataSource::parse(d)?;
    }
    if let Some(s) = args.get(1) {
        opts.steps = s
            .parse()
            .map_err(|_| Error::new(format!("{s:?} is not a step count"), "give e.g. 1500"))?;
    }
    train_vae(&opts).map(|_| ())
}

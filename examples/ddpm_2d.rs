//! The first diffusion model: a small MLP learns a 2-D distribution, then DDPM and DDIM
//! sample from it (the code is `minisora::diffusion::train2d`, also `minisora train-2d`).
//!
//! ```text
//! cargo run --release --example ddpm_2d [-- DATASET [STEPS]]
//! ```
//! DATASET is swiss_roll (default), two_moons, 8gaussians or checkerboard; STEPS defaults to
//! 10000. Writes `out/ddpm_2d/`: data vs samples, the reverse trajectory, the loss curve and
//! the schedules. The last stdout line is a JSON object with the sample-quality figures.

use minisora::data::toy2d::Toy2d;
use minisora::error::{Error, Result};
use minisora::toy2d::train_2d;
use std::path::Path;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let data = Toy2d::parse(args.first().map_or("swiss_roll", |s| s.as_str()))?;
    let steps: u64 = match args.get(1) {
        Some(s) => s
            .parse()
            .map_err(|_| Error::new(format!("{s:?} is not a step count"), "give e.g. 10000"))?,
        None => 10_000,
    };
    train_2d(data, steps, Path::new("out/ddpm_2d"))
}

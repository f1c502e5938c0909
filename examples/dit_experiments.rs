//! The DiT paper's experiments at CPU scale (the code is `minisora::experiments`):
//!
//! ```text
//! cargo run --release --example dit_experiments -- <scaling|conditioning|unet-vs-dit|guidance|samplers|all> [--quick] [--data digits] [--out out/experiments] [--seed N]
//! ```
//! Each writes `<out>/<name>/<name>.png`, `.md` and `.json` (with `--data` other than
//! `digits`, under `<out>/<data>/<name>/`) and prints one JSON line of headline figures last; `--help` describes every experiment and its two settings. The book's
//! page "DiT experiments" shows the results of `--quick`.

use clap::{CommandFactory, FromArgMatches, Parser};
use minisora::cli::demo::ExperimentArgs;
use minisora::experiments::{long_help, run};

#[derive(Parser)]
#[command(
    name = "dit_experiments",
    about = "The DiT paper's experiments on the latents of the digits or of --data"
)]
struct Cli {
    #[command(flatten)]
    args: ExperimentArgs,
}

fn main() {
    let matches = Cli::command().long_about(long_help()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Err(e) = run(&cli.args.into()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

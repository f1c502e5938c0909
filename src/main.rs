//! The `minisora` command line: one subcommand per thing a reader runs.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "minisora", version, about = "Sora-style diffusion from scratch on the CPU", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the main demo. Until the latent DiT lands (issue 6) it trains and samples the 2-D
    /// diffusion model of the DDPM chapter and writes its figures to out/demo/.
    Demo,
    /// Train the 2-D toy diffusion model and sample it (the DDPM chapter's experiment).
    #[command(name = "train-2d")]
    Train2d {
        /// swiss_roll, two_moons, 8gaussians or checkerboard.
        #[arg(long, default_value = "swiss_roll")]
        dataset: String,
        /// Training steps.
        #[arg(long, default_value_t = 10_000)]
        steps: u64,
        /// Folder for the figures.
        #[arg(long, default_value = "out/ddpm_2d")]
        out: std::path::PathBuf,
    },
}

fn main() {
    let cli = Cli::parse();
    let result: minisora::error::Result<()> = match cli.command {
        Command::Demo => {
            println!("minisora demo: the latent DiT pipeline is not built yet (issue 6);");
            println!("meanwhile: DDPM on a 2-D swiss roll, the book's first experiment (< 1 min).");
            minisora::diffusion::train2d::train_2d(
                minisora::data::toy2d::Toy2d::SwissRoll,
                10_000,
                std::path::Path::new("out/demo"),
            )
        }
        Command::Train2d {
            dataset,
            steps,
            out,
        } => minisora::data::toy2d::Toy2d::parse(&dataset)
            .and_then(|d| minisora::diffusion::train2d::train_2d(d, steps, &out)),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

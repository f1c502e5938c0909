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
    /// Run the main demo (placeholder until the DiT pipeline lands: checks every layer's gradient).
    Demo,
}

fn main() {
    let cli = Cli::parse();
    let result: minisora::error::Result<()> = match cli.command {
        Command::Demo => {
            println!("minisora demo: the full latent DiT pipeline is not built yet.");
            Ok(())
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

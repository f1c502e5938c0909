//! The `minisora` command line; its subcommands and flags are in `minisora::cli`.

fn main() {
    minisora::cli::main();
}

//! The `statesync` binary.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = statesync_api::cli::Cli::parse();
    cli.init_logs();
    statesync_api::cli::run(cli)
}

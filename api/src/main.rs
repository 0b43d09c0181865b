//! The `statesync` binary.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    if let Err(e) = statesync_circuits::check_cpu() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let cli = statesync_api::cli::Cli::parse();
    cli.init_logs();
    statesync_api::cli::run(cli)
}

//! The `kerblam` command line.
//!
//! Each subcommand lives in its own module under `cmd/`; `cli.rs` holds the clap definitions and
//! `exit.rs` the mapping from outcomes to exit codes (0 ok, 1 failure, 2 usage or validation error).

mod cli;
mod cmd;
mod execute;
mod exit;
mod fetch;
mod lock;
mod output;
mod profile;
mod signals;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    output::init(&cli.global);
    match cmd::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(report) => {
            let code = exit::code_for(&report);
            output::print_report(&report);
            ExitCode::from(code)
        }
    }
}

//! The `kerblam` command line.
//!
//! Each subcommand lives in its own module under `cmd/`; `cli.rs` holds the clap definitions and
//! `exit.rs` the mapping from outcomes to exit codes (0 ok, 1 failure, 2 usage or validation error).

/// `print!`, without its panic on a closed stdout (see [`output::write_stdout`]).
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write_stdout(format_args!($($arg)*)) };
}

/// `println!`, without its panic on a closed stdout.
macro_rules! outln {
    () => { $crate::output::write_stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!`, without its panic on a closed stderr (see [`output::write_stderr`]).
macro_rules! errln {
    () => { $crate::output::write_stderr(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::write_stderr(format_args!("{}\n", format_args!($($arg)*))) };
}

mod citation;
mod cli;
mod cmd;
mod execute;
mod exit;
mod fetch;
mod gitignore;
mod lock;
mod output;
mod profile;
mod progress;
mod prompt;
mod publish;
mod replace;
mod replay_archive;
mod signals;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    output::init(&cli.global);
    let code = match cmd::dispatch(cli) {
        Ok(code) => code,
        Err(report) => {
            let code = exit::code_for(&report);
            output::print_report(&report);
            code
        }
    };
    match output::stdout_error() {
        Some(e) if code == exit::OK => {
            errln!("error: cannot write to stdout: {e}");
            ExitCode::from(exit::FAILURE)
        }
        _ => ExitCode::from(code),
    }
}

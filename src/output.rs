//! Terminal output: colour choice, verbosity, and rendering of error reports.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cli::{ColorChoice, GlobalArgs};

static SETTINGS: OnceLock<Settings> = OnceLock::new();

#[derive(Debug, Clone, Copy)]
struct Settings {
    verbosity: i8,
}

/// Record the global output settings and configure miette's renderer.
pub fn init(global: &GlobalArgs) {
    let color = match global.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    };
    let verbosity = if global.quiet {
        -1
    } else {
        global.verbose as i8
    };
    let _ = SETTINGS.set(Settings { verbosity });
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(color)
                .unicode(color)
                .terminal_links(false)
                .width(100)
                // A message is never broken inside a path, a name or a command a user may copy:
                // the terminal wraps long lines, kerblam does not.
                .wrap_lines(false)
                .build(),
        )
    }));
}

fn settings() -> Settings {
    SETTINGS.get().copied().unwrap_or(Settings { verbosity: 0 })
}

/// Whether `-q` was given.
pub fn quiet() -> bool {
    settings().verbosity < 0
}

/// Whether `-v` was given at least `level` times.
pub fn verbose(level: i8) -> bool {
    settings().verbosity >= level
}

/// Whether progress bars may be drawn: stderr is a terminal and `-q` was not given.
pub fn progress_enabled() -> bool {
    !quiet() && std::io::stderr().is_terminal()
}

/// Print an informational line to stderr unless `-q` was given.
pub fn info(msg: impl std::fmt::Display) {
    if !quiet() {
        errln!("{msg}");
    }
}

/// Print a detail to stderr when `-v` was given.
pub fn debug(msg: impl std::fmt::Display) {
    if verbose(1) {
        errln!("{msg}");
    }
}

/// Print a warning to stderr (even with `-q`).
pub fn warn(msg: impl std::fmt::Display) {
    errln!("warning: {msg}");
}

/// Render an error report to stderr.
pub fn print_report(report: &miette::Report) {
    errln!("{report:?}");
}

/// The first error writing to stdout other than a closed pipe (a full disk, say): `main` reports it
/// and exits 1 once the command is done.
static STDOUT_ERROR: OnceLock<String> = OnceLock::new();
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Write to stdout, as `print!` does, but without its panic when the reader has gone away
/// (`kerblam plan x | head`): a closed pipe ends the output quietly and the command goes on to its
/// own exit code; any other error is kept for [`stdout_error`].
pub fn write_stdout(args: std::fmt::Arguments) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        keep_stdout_error(e);
    }
}

/// Keeps a stdout error for [`stdout_error`], unless it is a closed pipe (not an error here).
fn keep_stdout_error(e: std::io::Error) {
    if e.kind() != std::io::ErrorKind::BrokenPipe {
        let _ = STDOUT_ERROR.set(e.to_string());
    }
}

/// Write to stderr, as `eprint!` does, but never panic: when stderr itself is closed there is
/// nowhere left to tell, and the exit code still says how the command went.
pub fn write_stderr(args: std::fmt::Arguments) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// Flush stdout; the error of a failed write (other than a closed pipe), if any.
pub fn stdout_error() -> Option<String> {
    if !STDOUT_CLOSED.load(Ordering::Relaxed) {
        if let Err(e) = std::io::stdout().lock().flush() {
            keep_stdout_error(e);
        }
    }
    STDOUT_ERROR.get().cloned()
}

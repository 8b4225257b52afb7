//! Terminal output: colour choice, verbosity, and rendering of error reports.

use std::io::IsTerminal;
use std::sync::OnceLock;

use crate::cli::{ColorChoice, GlobalArgs};

static SETTINGS: OnceLock<Settings> = OnceLock::new();

#[derive(Debug, Clone, Copy)]
struct Settings {
    color: bool,
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
    let _ = SETTINGS.set(Settings { color, verbosity });
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .color(color)
                .unicode(color)
                .terminal_links(false)
                .width(100)
                .build(),
        )
    }));
}

fn settings() -> Settings {
    SETTINGS.get().copied().unwrap_or(Settings {
        color: false,
        verbosity: 0,
    })
}

/// Whether colour is on for stderr.
#[allow(dead_code)]
pub fn color() -> bool {
    settings().color
}

/// Whether `-q` was given.
pub fn quiet() -> bool {
    settings().verbosity < 0
}

/// Whether `-v` was given at least `level` times.
#[allow(dead_code)]
pub fn verbose(level: i8) -> bool {
    settings().verbosity >= level
}

/// Whether progress bars may be drawn: stderr is a terminal and `-q` was not given.
#[allow(dead_code)]
pub fn progress_enabled() -> bool {
    !quiet() && std::io::stderr().is_terminal()
}

/// Print an informational line to stderr unless `-q` was given.
pub fn info(msg: impl std::fmt::Display) {
    if !quiet() {
        eprintln!("{msg}");
    }
}

/// Print a warning to stderr (even with `-q`).
pub fn warn(msg: impl std::fmt::Display) {
    eprintln!("warning: {msg}");
}

/// Render an error report to stderr.
pub fn print_report(report: &miette::Report) {
    eprintln!("{report:?}");
}

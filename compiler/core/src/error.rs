//! The compiler's one error type.

use std::fmt;
use std::path::PathBuf;

use crate::diag::Finding;
use crate::discover::PipeSummary;

/// Everything that can stop the compiler.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// No `kerblam.toml` was found walking up from the start directory.
    #[error("no kerblam.toml found in {} or any parent directory", .start.display())]
    #[diagnostic(
        code("kerblam::no-manifest"),
        help("run kerblam inside a Kerblam! project, or point at one with -C DIR")
    )]
    ManifestNotFound {
        /// Where the search started.
        start: PathBuf,
    },
    /// A file or directory could not be read.
    #[error("{}: {source}", .path.display())]
    #[diagnostic(code("kerblam::io"))]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The manifest (or freeze spec) has findings at error level.
    #[error("{file}: {} found", Problems(.findings))]
    #[diagnostic(code("kerblam::invalid"))]
    Invalid {
        /// The file's display name.
        file: String,
        /// Every finding, errors and warnings.
        #[related]
        findings: Vec<Finding>,
    },
    /// No pipe of that name exists.
    #[error("no pipe named `{name}` in {pipes_dir}/{}", Available(.available))]
    #[diagnostic(
        code("kerblam::no-pipe"),
        help("🐋 = has its own recipe, 🐟 = uses default.dockerfile, no mark = runs locally only")
    )]
    PipeNotFound {
        /// The name asked for.
        name: String,
        /// The pipes that do exist.
        available: Vec<PipeSummary>,
        /// The pipes directory, relative to the root.
        pipes_dir: String,
    },
    /// The pipe has no container recipe, and the operation needs one.
    #[error("pipe `{pipe}` has no container recipe; tried {}", .tried.join(" and "))]
    #[diagnostic(
        code("kerblam::no-recipe"),
        help(
            "create {} (a Dockerfile) to package `{pipe}`",
            .tried.first().map(String::as_str).unwrap_or("a recipe")
        )
    )]
    NoRecipe {
        /// The pipe.
        pipe: String,
        /// The recipe paths tried, relative to the root.
        tried: Vec<String>,
    },
    /// An option value is not acceptable (e.g. an invalid `--tag`).
    #[error("{option}: {message}")]
    #[diagnostic(code("kerblam::option"))]
    InvalidOption {
        /// The option, e.g. `--tag`.
        option: String,
        /// What is wrong.
        message: String,
        /// How to fix it.
        #[help]
        help: Option<String>,
    },
}

impl Error {
    /// True for errors caused by bad input (exit code 2), false for failures (exit code 1).
    pub fn is_invalid_input(&self) -> bool {
        !matches!(self, Error::Io { .. })
    }

    /// An I/O error about `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// "N problem(s)", counting the findings at error level.
struct Problems<'a>(&'a [Finding]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self
            .0
            .iter()
            .filter(|f| f.level == crate::diag::Level::Error)
            .count();
        write!(f, "{n} problem{}", if n == 1 { "" } else { "s" })
    }
}

/// The tail of [`Error::PipeNotFound`]: the pipes there are, one a line, or that there are none.
struct Available<'a>(&'a [PipeSummary]);

impl fmt::Display for Available<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, " (it holds no *.makefile or *.sh pipes)");
        }
        write!(f, "; available pipes:")?;
        for p in self.0 {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

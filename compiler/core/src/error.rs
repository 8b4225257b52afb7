//! The compiler's one error type.

use std::fmt;
use std::path::PathBuf;

use miette::Diagnostic;

use crate::diag::Finding;
use crate::discover::PipeSummary;

/// Everything that can stop the compiler.
#[derive(Debug)]
pub enum Error {
    /// No `kerblam.toml` was found walking up from the start directory.
    ManifestNotFound {
        /// Where the search started.
        start: PathBuf,
    },
    /// A file or directory could not be read.
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The manifest (or freeze spec) has findings at error level.
    Invalid {
        /// The file's display name.
        file: String,
        /// Every finding, errors and warnings.
        findings: Vec<Finding>,
    },
    /// No pipe of that name exists.
    PipeNotFound {
        /// The name asked for.
        name: String,
        /// The pipes that do exist.
        available: Vec<PipeSummary>,
        /// The pipes directory, relative to the root.
        pipes_dir: String,
    },
    /// The pipe has no container recipe, and the operation needs one.
    NoRecipe {
        /// The pipe.
        pipe: String,
        /// The recipe paths tried, relative to the root.
        tried: Vec<String>,
    },
    /// An option value is not acceptable (e.g. an invalid `--tag`).
    InvalidOption {
        /// The option, e.g. `--tag`.
        option: String,
        /// What is wrong.
        message: String,
        /// How to fix it.
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

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ManifestNotFound { start } => write!(
                f,
                "no kerblam.toml found in {} or any parent directory",
                start.display()
            ),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Invalid { file, findings } => {
                let n = findings
                    .iter()
                    .filter(|f| f.level == crate::diag::Level::Error)
                    .count();
                write!(
                    f,
                    "{file}: {n} problem{} found",
                    if n == 1 { "" } else { "s" }
                )
            }
            Error::PipeNotFound {
                name,
                available,
                pipes_dir,
            } => {
                write!(f, "no pipe named `{name}` in {pipes_dir}/")?;
                if available.is_empty() {
                    write!(f, " (it holds no *.makefile or *.sh pipes)")
                } else {
                    write!(f, "; available pipes:")?;
                    for p in available {
                        write!(f, "\n  {p}")?;
                    }
                    Ok(())
                }
            }
            Error::NoRecipe { pipe, tried } => write!(
                f,
                "pipe `{pipe}` has no container recipe; tried {}",
                tried.join(" and ")
            ),
            Error::InvalidOption {
                option, message, ..
            } => write!(f, "{option}: {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl Diagnostic for Error {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let code = match self {
            Error::ManifestNotFound { .. } => "kerblam::no-manifest",
            Error::Io { .. } => "kerblam::io",
            Error::Invalid { .. } => "kerblam::invalid",
            Error::PipeNotFound { .. } => "kerblam::no-pipe",
            Error::NoRecipe { .. } => "kerblam::no-recipe",
            Error::InvalidOption { .. } => "kerblam::option",
        };
        Some(Box::new(code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let help: Option<String> = match self {
            Error::ManifestNotFound { .. } => {
                Some("run kerblam inside a Kerblam! project, or point at one with -C DIR".into())
            }
            Error::NoRecipe { pipe, tried } => Some(format!(
                "create {} (a Dockerfile) to package `{pipe}`",
                tried.first().map(String::as_str).unwrap_or("a recipe")
            )),
            Error::PipeNotFound { .. } => Some(
                "🐋 = has its own recipe, 🐟 = uses default.dockerfile, no mark = runs locally only".into(),
            ),
            Error::InvalidOption { help, .. } => help.clone(),
            _ => None,
        };
        help.map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        match self {
            Error::Invalid { findings, .. } => {
                Some(Box::new(findings.iter().map(|f| f as &dyn Diagnostic)))
            }
            _ => None,
        }
    }
}

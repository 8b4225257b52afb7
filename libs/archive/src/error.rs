//! The one error type of this crate.
//!
//! [`Error`] is an enum with one variant per kind of failure a user can meet; each displays as its
//! message alone (the message names the file or member it is about), and the variants with an
//! obvious fix carry it as miette help. [`Error::kind`] gives the coarse [`ErrorKind`] a caller
//! maps to an exit code.

use std::io;
use std::path::Path;

/// The help of an I/O error when the filesystem is full.
const NO_SPACE_HELP: &str =
    "the filesystem is full: free some space, or write elsewhere (TMPDIR for temporary files)";

/// What went wrong, coarsely, so a caller can pick an exit code or a help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Reading or writing a file failed (permissions, no space, ...).
    Io,
    /// A replay archive is corrupt, hostile, or fails its checksums.
    InvalidArchive,
    /// An input file changed (size or content) while it was being archived.
    ChangedWhileReading,
    /// Extraction would overwrite a different file in the destination (use `force`).
    Conflict,
    /// The caller asked for something this crate cannot do (bad path, wrong call order, ...).
    InvalidInput,
}

/// An error with a message that names the file or member it is about.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// Reading or writing a file failed (permissions, no space, ...).
    #[error("{message}")]
    Io {
        /// What was done to which file, and the system's error.
        message: String,
        /// The system's error, when there was one.
        #[source]
        source: Option<io::Error>,
        /// Set when the filesystem was full.
        #[help]
        help: Option<&'static str>,
    },
    /// A replay archive is corrupt, hostile, or fails its checksums.
    #[error("{0}")]
    #[diagnostic(help(
        "the archive is damaged, truncated or was not written by kerblam; get a fresh copy of it"
    ))]
    InvalidArchive(String),
    /// An input file changed (size or content) while it was being archived.
    #[error("{0}")]
    #[diagnostic(help(
        "something is writing to the project while it is packaged; wait for it and retry"
    ))]
    ChangedWhileReading(String),
    /// The output would replace a different existing file.
    #[error("{0}")]
    #[diagnostic(help("pass --force to overwrite, or choose another output"))]
    Conflict(String),
    /// The caller asked for something this crate cannot do (bad path, wrong call order, ...).
    #[error("{0}")]
    InvalidInput(String),
    /// A cancel callback asked to stop; nothing partial was kept (kind [`ErrorKind::Io`]).
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// A new error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let message = message.into();
        match kind {
            ErrorKind::Io => Error::Io {
                message,
                source: None,
                help: None,
            },
            ErrorKind::InvalidArchive => Error::InvalidArchive(message),
            ErrorKind::ChangedWhileReading => Error::ChangedWhileReading(message),
            ErrorKind::Conflict => Error::Conflict(message),
            ErrorKind::InvalidInput => Error::InvalidInput(message),
        }
    }

    /// The error returned when a cancel callback asked to stop (kind [`ErrorKind::Io`]).
    pub fn cancelled() -> Self {
        Error::Cancelled
    }

    /// True when the work stopped because a cancel callback said so; nothing partial was kept.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Cancelled)
    }

    /// A copy of an error of this crate recovered from an `io::Error`, with a new message.
    pub(crate) fn recovered(inner: &Error, message: String) -> Self {
        if inner.is_cancelled() {
            return Error::Cancelled;
        }
        Error::new(inner.kind(), message)
    }

    /// An I/O error about `path`, doing `what` (e.g. "reading").
    pub fn io(what: &str, path: &Path, source: io::Error) -> Self {
        // Errors we raise ourselves through an io::Error (size changes, limits) keep their kind.
        if let Some(inner) = source.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
            return Error::recovered(
                inner,
                format!("{} while {what} {}", inner.message(), path.display()),
            );
        }
        Error::from_io(format!("error {what} {}: {source}", path.display()), source)
    }

    /// An I/O error with a ready-made context (`"error writing x to y"`); recovers errors of this
    /// crate carried inside `source` with their kind and message.
    pub(crate) fn io_context(context: String, source: io::Error) -> Self {
        if let Some(inner) = source.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
            return Error::recovered(inner, inner.message().to_string());
        }
        Error::from_io(format!("{context}: {source}"), source)
    }

    /// An [`Error::Io`] with `message` and its system error, with help when the disk was full.
    fn from_io(message: String, source: io::Error) -> Self {
        let no_space = source.raw_os_error() == Some(libc::ENOSPC);
        Error::Io {
            message,
            source: Some(source),
            help: no_space.then_some(NO_SPACE_HELP),
        }
    }

    /// Whether the filesystem was full (`ENOSPC`).
    pub fn is_no_space(&self) -> bool {
        match self {
            Error::Io {
                source: Some(s), ..
            } => s.raw_os_error() == Some(libc::ENOSPC),
            _ => false,
        }
    }

    /// A corrupt or hostile archive.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArchive(message.into())
    }

    /// Wrong use of the API.
    pub fn input(message: impl Into<String>) -> Self {
        Error::InvalidInput(message.into())
    }

    /// The kind of the error (a cancellation is [`ErrorKind::Io`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } | Error::Cancelled => ErrorKind::Io,
            Error::InvalidArchive(_) => ErrorKind::InvalidArchive,
            Error::ChangedWhileReading(_) => ErrorKind::ChangedWhileReading,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
        }
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Error::Io { message, .. } => message,
            Error::InvalidArchive(m)
            | Error::ChangedWhileReading(m)
            | Error::Conflict(m)
            | Error::InvalidInput(m) => m,
            Error::Cancelled => "cancelled",
        }
    }

    /// Wraps this error into an `io::Error` so it can cross `Read`/`Write` boundaries and be recovered
    /// by [`Error::io`] with its kind intact.
    pub(crate) fn into_io(self) -> io::Error {
        io::Error::other(self)
    }
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

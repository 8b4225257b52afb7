//! The one error type of this crate.

use std::fmt;
use std::io;
use std::path::Path;

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
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<io::Error>,
    cancelled: bool,
}

impl Error {
    /// A new error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
            cancelled: false,
        }
    }

    /// The error returned when a cancel callback asked to stop (kind [`ErrorKind::Io`]).
    pub fn cancelled() -> Self {
        Error {
            cancelled: true,
            ..Error::new(ErrorKind::Io, "cancelled")
        }
    }

    /// True when the work stopped because a cancel callback said so; nothing partial was kept.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// A copy of an error of this crate recovered from an `io::Error`, with a new message.
    pub(crate) fn recovered(inner: &Error, message: String) -> Self {
        if inner.cancelled {
            return Error::cancelled();
        }
        Error::new(inner.kind, message)
    }

    /// An I/O error about `path`, doing `what` (e.g. "reading").
    pub fn io(what: &str, path: &Path, source: io::Error) -> Self {
        // Errors we raise ourselves through an io::Error (size changes, limits) keep their kind.
        if let Some(inner) = source.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
            return Error::recovered(
                inner,
                format!("{} while {what} {}", inner.message, path.display()),
            );
        }
        Error {
            kind: ErrorKind::Io,
            message: format!("error {what} {}: {source}", path.display()),
            source: Some(source),
            cancelled: false,
        }
    }

    /// An I/O error with a ready-made context (`"error writing x to y"`); recovers errors of this
    /// crate carried inside `source` with their kind and message.
    pub(crate) fn io_context(context: String, source: io::Error) -> Self {
        if let Some(inner) = source.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
            return Error::recovered(inner, inner.message.clone());
        }
        Error {
            kind: ErrorKind::Io,
            message: format!("{context}: {source}"),
            source: Some(source),
            cancelled: false,
        }
    }

    /// Whether the filesystem was full (`ENOSPC`).
    pub fn is_no_space(&self) -> bool {
        self.source
            .as_ref()
            .and_then(|s| s.raw_os_error())
            .is_some_and(|c| c == libc::ENOSPC)
    }

    /// A corrupt or hostile archive.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArchive, message)
    }

    /// Wrong use of the API.
    pub fn input(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// The kind of the error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Wraps this error into an `io::Error` so it can cross `Read`/`Write` boundaries and be recovered
    /// by [`Error::io`] with its kind intact.
    pub(crate) fn into_io(self) -> io::Error {
        io::Error::other(self)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

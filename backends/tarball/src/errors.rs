//! Turning `kerblam-archive` and I/O errors into the plugin's [`ErrorMessage`]s.

use std::path::Path;

use kerblam_archive::{Error, ErrorKind};
use kerblam_backend_api::ErrorMessage;

/// An archive error as an error message: bad input stays "invalid input", the rest is a backend
/// failure; each gets a help line when there is an obvious fix.
pub fn archive(e: Error) -> ErrorMessage {
    if e.is_cancelled() {
        return ErrorMessage::cancelled();
    }
    let msg = e.message().to_string();
    match e.kind() {
        ErrorKind::InvalidInput | ErrorKind::InvalidArchive => ErrorMessage::invalid_input(msg),
        ErrorKind::Conflict => ErrorMessage::invalid_input(msg)
            .with_help("pass --force to overwrite, or choose another output"),
        ErrorKind::ChangedWhileReading => ErrorMessage::backend(msg).with_help(
            "something is writing to the project while it is packaged; wait for it and retry",
        ),
        ErrorKind::Io => ErrorMessage::backend(msg),
    }
}

/// An I/O error doing `what` on `path`.
pub fn io(what: &str, path: &Path, e: std::io::Error) -> ErrorMessage {
    archive(Error::io(what, path, e))
}

//! Archive errors as a backend plugin's error messages (feature `plugin`), one mapping for every
//! plugin that writes archives.

use kerblam_backend_api::ErrorMessage;

use crate::{Error, ErrorKind};

/// An archive error as an error message: a cancellation stays one, bad input stays "invalid
/// input", the rest is a backend failure; each gets a help line when there is an obvious fix.
pub fn error_message(e: Error) -> ErrorMessage {
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
        ErrorKind::Io if e.is_no_space() => ErrorMessage::backend(msg).with_help(
            "the filesystem is full: free some space, or write elsewhere (TMPDIR for temporary files)",
        ),
        ErrorKind::Io => ErrorMessage::backend(msg),
    }
}

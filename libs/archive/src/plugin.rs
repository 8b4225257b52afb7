//! Archive errors as a backend plugin's error messages (feature `plugin`), one mapping for every
//! plugin that writes archives.

use kerblam_backend_api::ErrorMessage;
use miette::Diagnostic;

use crate::{Error, ErrorKind};

/// An archive error as an error message: a cancellation stays one, bad input (and a conflict) stays
/// "invalid input", the rest is a backend failure; each keeps the help of its [`Error`] variant.
pub fn error_message(e: Error) -> ErrorMessage {
    if e.is_cancelled() {
        return ErrorMessage::cancelled();
    }
    let msg = e.message().to_string();
    let message = match e.kind() {
        ErrorKind::InvalidInput | ErrorKind::InvalidArchive | ErrorKind::Conflict => {
            ErrorMessage::invalid_input(msg)
        }
        ErrorKind::ChangedWhileReading | ErrorKind::Io => ErrorMessage::backend(msg),
    };
    match e.help() {
        Some(help) => message.with_help(help.to_string()),
        None => message,
    }
}

//! Registry errors as a backend plugin's error messages (feature `plugin`), one mapping for every
//! plugin that pushes or names images in registries.

use kerblam_backend_api::ErrorMessage;
use miette::Diagnostic;

use crate::Error;

/// A registry error as an error message: what the user gave (a bad reference, credentials the
/// registry refuses, a missing manifest) is "invalid input", the rest a backend failure; each keeps
/// the help of its [`Error`] variant.
pub fn error_message(e: Error) -> ErrorMessage {
    let message = if e.is_user_error() {
        ErrorMessage::invalid_input(e.to_string())
    } else {
        ErrorMessage::backend(e.to_string())
    };
    match e.help() {
        Some(help) => message.with_help(help.to_string()),
        None => message,
    }
}

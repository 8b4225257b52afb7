//! Engine and archive errors as the plugin's [`ErrorMessage`]s.

use kerblam_archive::ErrorKind as ArchiveKind;
use kerblam_backend_api::ErrorMessage;

use crate::EngineError;

/// An engine error: a missing or stopped engine keeps its "how to install/start it" help; a failed
/// engine command carries the tail of the engine's output.
pub fn engine(e: EngineError) -> ErrorMessage {
    let help = e.help();
    let msg = match &e {
        EngineError::InvalidInput(m) => return ErrorMessage::invalid_input(m.clone()),
        EngineError::Unsupported(m) => return ErrorMessage::unsupported(m.clone()),
        other => other.to_string(),
    };
    let m = ErrorMessage::backend(msg);
    match help {
        Some(h) => m.with_help(h),
        None => m,
    }
}

/// An archive error: bad input stays "invalid input", the rest is a backend failure.
pub fn archive(e: kerblam_archive::Error) -> ErrorMessage {
    let msg = e.message().to_string();
    match e.kind() {
        ArchiveKind::InvalidInput | ArchiveKind::InvalidArchive => ErrorMessage::invalid_input(msg),
        ArchiveKind::Conflict => ErrorMessage::invalid_input(msg)
            .with_help("pass --force to overwrite, or choose another output with -o"),
        ArchiveKind::ChangedWhileReading => ErrorMessage::backend(msg).with_help(
            "something is writing to the project while it is packaged; wait for it and retry",
        ),
        ArchiveKind::Io => ErrorMessage::backend(msg),
    }
}

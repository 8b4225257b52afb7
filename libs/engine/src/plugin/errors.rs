//! Engine and archive errors as the plugin's [`ErrorMessage`]s.

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

/// An archive error as an error message (the one mapping every plugin uses).
pub use kerblam_archive::plugin::error_message as archive;

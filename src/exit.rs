//! Exit codes: 0 ok, 1 failure, 2 usage or validation error.

/// Everything went well.
pub const OK: u8 = 0;
/// The work failed (a build, a download, a pipe).
pub const FAILURE: u8 = 1;
/// The input was invalid: bad usage, a manifest with findings, a plan that does not validate.
pub const INVALID: u8 = 2;

/// An error that carries its own exit code, for failures that are not worth a diagnostic type of
/// their own (e.g. "the pipe exited with 3").
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl Exit {
    /// A usage or validation error (exit 2).
    pub fn invalid(message: impl Into<String>) -> Exit {
        Exit {
            code: INVALID,
            message: message.into(),
        }
    }

    /// A failure (exit 1).
    pub fn failure(message: impl Into<String>) -> Exit {
        Exit {
            code: FAILURE,
            message: message.into(),
        }
    }
}

/// A usage or validation error (exit 2) with this message.
pub fn invalid(message: impl Into<String>) -> miette::Report {
    Exit::invalid(message).into()
}

/// The exit code for an error report.
pub fn code_for(report: &miette::Report) -> u8 {
    if let Some(exit) = report.downcast_ref::<Exit>() {
        return exit.code;
    }
    if let Some(err) = report.downcast_ref::<kerblam_compiler::Error>() {
        return if err.is_invalid_input() {
            INVALID
        } else {
            FAILURE
        };
    }
    FAILURE
}

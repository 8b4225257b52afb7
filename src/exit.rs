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

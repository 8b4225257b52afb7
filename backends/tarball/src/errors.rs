//! Turning `kerblam-archive` and I/O errors into the plugin's [`ErrorMessage`]s.

use std::path::Path;

use kerblam_archive::Error;
use kerblam_backend_api::ErrorMessage;

/// An archive error as an error message (the one mapping every plugin uses).
pub use kerblam_archive::plugin::error_message as archive;

/// An I/O error doing `what` on `path`.
pub fn io(what: &str, path: &Path, e: std::io::Error) -> ErrorMessage {
    archive(Error::io(what, path, e))
}

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The [`Preflight::DiskSpace`] path meaning the image storage of the backend's container engine.
pub const ENGINE_STORAGE: &str = "$ENGINE_STORAGE";

/// The [`Preflight::DiskSpace`] path meaning the directory where the backend's container engine
/// stages a build context and image blobs.
pub const ENGINE_TMPDIR: &str = "$ENGINE_TMPDIR";

/// A check a backend runs before it starts any work. A failing check aborts with a message that
/// carries the numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "check", rename_all = "kebab-case", deny_unknown_fields)]
#[schemars(transform = crate::tag_doc::describe_tag)]
pub enum Preflight {
    /// The filesystem holding `path` must have at least `bytes` free. Checks whose paths are on the
    /// same filesystem need their bytes together.
    DiskSpace {
        /// The directory to check; relative to the root unless absolute. `$TMPDIR` means the
        /// temporary directory the host names for the call (`paths.temp_dir`, the system one).
        /// `$ENGINE_STORAGE` and `$ENGINE_TMPDIR` mean the image storage and the temporary
        /// directory of the container engine the backend drives (docker: its root dir for both;
        /// podman: its graph root, and its image copy temp dir), which only that backend can
        /// resolve.
        path: String,
        /// The bytes needed there.
        bytes: u64,
        /// How `bytes` was computed, for the error message.
        why: String,
    },
    /// The directory must exist (or be creatable) and be writable.
    Writable {
        /// The directory; relative to the root unless absolute.
        path: String,
    },
    /// A program must be found on `PATH` (any one of `names`).
    Tool {
        /// Acceptable program names, in order of preference.
        names: Vec<String>,
    },
    /// A file the plan reads must exist.
    FileExists {
        /// The file; relative to the root unless absolute.
        path: String,
    },
}

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A check a backend runs before it starts any work. A failing check aborts with a message that
/// carries the numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "check", rename_all = "kebab-case", deny_unknown_fields)]
#[schemars(transform = crate::tag_doc::describe_tag)]
pub enum Preflight {
    /// The filesystem holding `path` must have at least `bytes` free.
    DiskSpace {
        /// The directory to check; relative to the root unless absolute. `$TMPDIR` means the system
        /// temporary directory.
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

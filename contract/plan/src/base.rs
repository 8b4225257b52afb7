use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What an image starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
#[schemars(transform = crate::tag_doc::describe_tag)]
pub enum Base {
    /// A container recipe (Dockerfile / Containerfile) inside the build context.
    Recipe {
        /// The recipe's path, relative to the root.
        path: String,
        /// Whether this is the pipe's own recipe (`<pipe>.dockerfile`) or the project's
        /// `default.dockerfile`.
        default: bool,
    },
    /// An image reference an engine can resolve locally or pull, e.g. `debian:12`.
    Image {
        /// The image reference.
        reference: String,
    },
    /// A local OCI image layout archive or `docker save` archive.
    Archive {
        /// The archive's path; relative to the root unless absolute.
        path: String,
    },
    /// An empty image.
    Scratch,
}

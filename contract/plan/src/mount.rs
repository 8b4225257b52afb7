use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A host directory bound into the container at run or replay time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// The host directory, relative to the project (or replay) root.
    pub host: String,
    /// The absolute directory inside the container.
    pub container: String,
    /// Whether the container may only read it.
    pub read_only: bool,
}

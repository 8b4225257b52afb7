use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Descriptive metadata about a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Who made the package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The package version (`meta.version` of a project, or a freeze's dated version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// A human description (a pipe's `#?` doc lines, or a freeze's help text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The version of kerblam that compiled the plan.
    pub kerblam_version: String,
    /// RFC 3339 creation time; a pipe plan has it only when `SOURCE_DATE_EPOCH` is set (plans stay
    /// reproducible); a freeze plan always has it (its version carries the date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

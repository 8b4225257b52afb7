use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The pipe a plan packages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipeInfo {
    /// The pipe's name (its file name without extension).
    pub name: String,
    /// How the pipe runs.
    pub kind: PipeKind,
    /// The pipe's file, relative to the root.
    pub path: String,
    /// The project's data directories, relative to the root.
    pub data: DataPaths,
    /// Input files that cannot be fetched again; they travel in the replay archive. Sorted by path.
    pub precious: Vec<DataFile>,
    /// Input files fetched from a URL by `kerblam data fetch`. Sorted by path.
    pub remote: Vec<RemoteFile>,
    /// Who the pipe runs as in its container (the manifest's `execution.user`). Absent: the user
    /// who runs kerblam.
    #[serde(default, skip_serializing_if = "RunUser::is_invoker")]
    pub user: RunUser,
}

/// Who a pipe runs as in its container: `invoker`, the user who runs kerblam (under `sudo`, the
/// user who called it, when the project is theirs), so that the outputs are theirs; or `root`
/// (uid 0), for an image whose tools must run as root, after which kerblam gives the files the run
/// created under the data directories back to the user who ran kerblam.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RunUser {
    // (No doc comments on the variants: the schema stays a plain `enum`, whose error names the
    // accepted values.)
    #[default]
    Invoker,
    Root,
}

impl RunUser {
    /// Whether this is the default, [`RunUser::Invoker`].
    pub fn is_invoker(&self) -> bool {
        *self == RunUser::Invoker
    }
}

/// How a pipe is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PipeKind {
    /// A `*.makefile`, run with `make -f`.
    Make,
    /// A `*.sh`, run with `bash`.
    Shell,
}

impl PipeKind {
    /// The file extension of this kind of pipe, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            PipeKind::Make => "makefile",
            PipeKind::Shell => "sh",
        }
    }
}

/// The data directories of a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataPaths {
    /// Input data.
    pub input: String,
    /// Output data.
    pub output: String,
    /// Intermediate data.
    pub intermediate: String,
}

/// A data file in the project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataFile {
    /// The path relative to the root.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// `sha256:<hex>`; only present with `--digests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A remote input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoteFile {
    /// The URL it is fetched from.
    pub url: String,
    /// Where it is saved, relative to the root.
    pub path: String,
}

//! The typed `kerblam.toml` model, with the defaults of Kerblam! 1.x.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema_patterns::{RELATIVE_PATH, RELATIVE_PATH_OR_ABSENT, REMOTE_URL};

/// A Kerblam! project manifest (`kerblam.toml`). Every table and key is optional; an empty file is a
/// valid manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "kerblam.toml",
    description = "A Kerblam! project manifest.",
    extend("$id" = "https://kerblam.dev/schemas/kerblam.toml.json")
)]
pub struct Manifest {
    /// Information about the manifest itself.
    #[serde(default)]
    pub meta: Meta,
    /// Where the project's data lives, its profiles and its remote files.
    #[serde(default)]
    pub data: Data,
    /// Where the project's pipes and container recipes live.
    #[serde(default)]
    pub code: Code,
    /// How pipes are executed in containers.
    #[serde(default)]
    pub execution: Execution,
}

/// The `[meta]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// The Kerblam! version this manifest was written for, e.g. `"1.0.0"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// The `[data]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Data {
    /// The data directories.
    #[serde(default)]
    pub paths: DataPaths,
    /// Named profiles. Each maps a file of the input directory to the file that replaces it while the
    /// profile is active; the target `_` means "the file is absent under this profile".
    #[serde(default)]
    #[schemars(extend("additionalProperties" = {
        "type": "object",
        "propertyNames": { "minLength": 1, "pattern": RELATIVE_PATH },
        "additionalProperties": { "type": "string", "minLength": 1, "pattern": RELATIVE_PATH_OR_ABSENT }
    }))]
    pub profiles: BTreeMap<String, BTreeMap<String, String>>,
    /// Remote input files: a map of URL to a path relative to the input directory. The URL `_` marks
    /// a file that cannot be fetched (so it is precious).
    #[serde(default)]
    #[schemars(extend(
        "propertyNames" = { "pattern": REMOTE_URL },
        "additionalProperties" = { "type": "string", "minLength": 1, "pattern": RELATIVE_PATH }
    ))]
    pub remote: BTreeMap<String, String>,
}

/// The `[data.paths]` table. Paths are relative to the project root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataPaths {
    /// The input data directory.
    #[serde(default = "default_input")]
    #[schemars(length(min = 1), regex(pattern = RELATIVE_PATH))]
    pub input: String,
    /// The output data directory.
    #[serde(default = "default_output")]
    #[schemars(length(min = 1), regex(pattern = RELATIVE_PATH))]
    pub output: String,
    /// The intermediate data directory.
    #[serde(default = "default_intermediate")]
    #[schemars(length(min = 1), regex(pattern = RELATIVE_PATH))]
    pub intermediate: String,
}

impl Default for DataPaths {
    fn default() -> Self {
        DataPaths {
            input: default_input(),
            output: default_output(),
            intermediate: default_intermediate(),
        }
    }
}

fn default_input() -> String {
    "data/in".into()
}
fn default_output() -> String {
    "data/out".into()
}
fn default_intermediate() -> String {
    "data".into()
}

/// The `[code]` table. Paths are relative to the project root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Code {
    /// The directory of container recipes: `<pipe>.dockerfile` and `default.dockerfile`.
    #[serde(default = "default_env_dir")]
    #[schemars(length(min = 1), regex(pattern = RELATIVE_PATH))]
    pub env_dir: String,
    /// The directory of pipes: `<name>.makefile` (run with make) and `<name>.sh` (run with bash).
    #[serde(default = "default_pipes_dir")]
    #[schemars(length(min = 1), regex(pattern = RELATIVE_PATH))]
    pub pipes_dir: String,
}

impl Default for Code {
    fn default() -> Self {
        Code {
            env_dir: default_env_dir(),
            pipes_dir: default_pipes_dir(),
        }
    }
}

fn default_env_dir() -> String {
    "src/dockerfiles".into()
}
fn default_pipes_dir() -> String {
    "src/workflows".into()
}

/// The `[execution]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Execution {
    /// The backend that builds and runs containers: `docker`, `podman`, or the name of any installed
    /// backend plugin (see `kerblam backends`): a lowercase letter, then up to 63 lowercase letters,
    /// digits and `-` (the rule plugin names follow).
    #[serde(default = "default_backend")]
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]{0,63}$"), example = &"docker", example = &"podman")]
    pub backend: String,
    /// The working directory inside the container, an absolute path; the data directories are
    /// mounted under it.
    #[serde(default = "default_workdir")]
    #[schemars(regex(pattern = r"^/"))]
    pub workdir: String,
    /// Who the pipe runs as in its container. `invoker` (the default): the user who runs kerblam,
    /// so that the outputs are theirs and they can delete them. `root`: for an image whose tools
    /// must run as root (they write into the image's own root-owned directories, or refuse a user
    /// without a passwd entry); kerblam then gives what the run created under the data directories
    /// back to the user who ran it, and touches nothing else. A replay keeps the container's
    /// privileges dropped, and runs a root pipe as the user where giving its files back would
    /// need the image's own `chown` (kerblam not root, a rootful engine), unless
    /// `kerblam replay --trust-image`: the archive's author does not decide how much a replay may
    /// do.
    #[serde(default)]
    pub user: kerblam_plan::RunUser,
}

impl Default for Execution {
    fn default() -> Self {
        Execution {
            backend: default_backend(),
            workdir: default_workdir(),
            user: kerblam_plan::RunUser::default(),
        }
    }
}

fn default_backend() -> String {
    "docker".into()
}
fn default_workdir() -> String {
    "/".into()
}

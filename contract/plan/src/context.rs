use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The build context: the project files an engine sees while building the base recipe.
///
/// What kerblam writes into a project is never part of it and is not listed, so that a plan
/// checked into the project does not describe itself, the other plans or the last package, and
/// stays fresh after a package: plans in the tree (files named `*.plan.json` or `*.plan.toml`
/// that hold a plan schema id), artifacts at the root with the conventional ending of their kind
/// (`.kerblam.tar`, `.context.tar`, `.oci.tar`, `.sif`, and their temporaries), the files the
/// backend's part of the plan names, and the `CITATION.cff` and `ro-crate-metadata.json` kerblam
/// wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// The context root, relative to the plan root (`.` for a whole project).
    pub root: String,
    /// Paths left out of the context and why, sorted by path.
    pub excluded: Vec<Exclusion>,
    /// The files that go into the context, sorted by path.
    pub files: Vec<ContextFile>,
    /// The total size in bytes of `files`.
    pub total_bytes: u64,
}

/// A path left out of the build context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Exclusion {
    /// The excluded path (a file, a directory or an ignore pattern), relative to the context root.
    pub path: String,
    /// Why it is excluded.
    pub reason: ExclusionReason,
}

/// Why a path is not in the build context.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ExclusionReason {
    /// The input data directory: precious data travels in the replay archive, remote data is fetched.
    InputData,
    /// The output data directory: outputs are produced by running the pipe.
    OutputData,
    /// The intermediate data directory.
    IntermediateData,
    /// The container recipe directory (`code.env_dir`): kerblam sends the recipe itself.
    EnvDir,
    /// A pattern or file excluded by the project's `.dockerignore`.
    Dockerignore,
    /// The `.dockerignore` file itself, already applied by kerblam.
    DockerignoreFile,
    /// Version-control metadata (`.git`).
    VersionControl,
    /// An artifact kerblam itself writes (`*.kerblam.tar`, `*.context.tar`): plans written before
    /// kerblam stopped listing them (it leaves them out without a word now).
    KerblamArtifact,
    /// A path excluded by a freeze spec's `exclude` patterns.
    FreezeExclude,
}

/// One file in the build context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextFile {
    /// The path relative to the context root, `/`-separated.
    pub path: String,
    /// Size in bytes (0 for symlinks).
    pub size: u64,
    /// Unix permission bits as git records them: 0o755 (printed as 493) when the file has any
    /// execute bit, else 0o644 (420); 0o777 (511) for a symlink. The checkout's umask plays no part.
    pub mode: u32,
    /// The symlink target, when the entry is a symlink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// `sha256:<hex>` of the content; only present with `kerblam plan --digests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

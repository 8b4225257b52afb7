use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    Artifact, Base, Context, FreezeInfo, Layer, Metadata, Mount, PLAN_SCHEMA, PipeInfo, Preflight,
};

/// A package plan: everything a backend needs to build an image, an archive or a SIF, decided ahead of
/// time by the compiler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "kerblam package plan", extend("$id" = "https://kerblam.dev/schemas/plan.json"))]
pub struct PackagePlan {
    /// The plan schema identifier, always `kerblam.plan/v1` for this version.
    pub schema: String,
    /// What the plan was compiled from.
    pub source: Source,
    /// The project root as the host saw it. Always `.` in printed plans; the host passes the absolute
    /// root to a backend separately, so that plans stay free of machine-specific paths.
    pub root: String,
    /// A short name for the package: the pipe name, or the freeze image name.
    pub name: String,
    /// The backend the plan was compiled for (`docker`, `podman`, `apptainer`, `tarball`, or a
    /// third-party backend's name). Artifacts and preflight checks depend on it.
    pub backend: String,
    /// Why the plan exists: to package (image + replay archive) or to run a pipe in a container.
    pub purpose: Purpose,
    /// The image to produce.
    pub image: Image,
    /// What the image starts from.
    pub base: Base,
    /// The build context sent to the engine (or archived by the tarball backend).
    pub context: Context,
    /// Files kerblam adds on top of the base, in order.
    pub layers: Vec<Layer>,
    /// Host directories bound into the container when the package is run or replayed, parents first.
    pub mounts: Vec<Mount>,
    /// The working directory inside the container.
    pub workdir: String,
    /// Environment variables set in the image, in order.
    pub env: Vec<EnvVar>,
    /// The command the image runs by default (argv form).
    pub entrypoint: Vec<String>,
    /// What carrying out the plan leaves behind.
    pub artifacts: Vec<Artifact>,
    /// Descriptive metadata, also used for image labels.
    pub metadata: Metadata,
    /// Checks a backend must pass before it starts any work.
    pub preflight: Vec<Preflight>,
    /// The pipe this plan packages, for plans compiled from a `kerblam.toml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipe: Option<PipeInfo>,
    /// The software environment this plan freezes, for plans compiled from a freeze spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze: Option<FreezeInfo>,
}

impl PackagePlan {
    /// True when the `schema` field names a plan version this crate understands.
    pub fn is_supported_schema(&self) -> bool {
        self.schema == PLAN_SCHEMA
    }

    /// The artifact of the given kind, if the plan produces one.
    pub fn artifact(&self, kind: crate::ArtifactKind) -> Option<&Artifact> {
        self.artifacts.iter().find(|a| a.kind == kind)
    }
}

/// What a plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// `kerblam package` / `kerblam freeze`: build an image with kerblam baked in and write the
    /// artifacts.
    Package,
    /// `kerblam run`: build the pipe's recipe and run the pipe in it with the data dirs mounted.
    Run,
}

/// Where a plan comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Whether the plan packages a pipe or freezes a software environment.
    pub kind: SourceKind,
    /// The manifest (`kerblam.toml`) or freeze spec the plan was compiled from, relative to the root.
    pub manifest: String,
    /// `sha256:<hex>` of the manifest's bytes, so a stale plan can be detected.
    pub digest: String,
}

/// The kind of input a plan was compiled from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// A pipe of a Kerblam! project (`kerblam.toml`).
    Pipe,
    /// A frozen software environment (a freeze spec).
    Freeze,
}

/// The image a plan produces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Image {
    /// The tag the image gets, e.g. `process_exec` or `registry.example/lab/process:1`.
    pub tag: String,
    /// Labels (OCI annotations) set on the image, sorted by key.
    pub labels: BTreeMap<String, String>,
}

/// One environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    /// The variable's name.
    pub name: String,
    /// The variable's value, used verbatim.
    pub value: String,
}

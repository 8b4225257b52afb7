use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    Artifact, ArtifactKind, BackendPlan, Base, Context, FreezeInfo, Layer, Metadata, Mount, Output,
    PLAN_SCHEMA, PipeInfo, Preflight,
};

/// A package plan: everything a backend needs to build an image, an archive or a SIF, decided ahead of
/// time by the compiler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "kerblam package plan", extend("$id" = "https://kerblam.dev/schemas/plan.json"))]
pub struct PackagePlan {
    /// The plan schema identifier, always `kerblam.plan/v2` for this version.
    pub schema: String,
    /// What the plan was compiled from.
    pub source: Source,
    /// The project root as the host saw it. Always `.` in printed plans; the host passes the absolute
    /// root to a backend separately, so that plans stay free of machine-specific paths.
    pub root: String,
    /// A short name for the package: the pipe name, or the freeze image name.
    pub name: String,
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
    /// Where the backend writes the files it makes.
    pub output: Output,
    /// What kerblam itself writes, whatever the backend: the replay archive of a pipe package.
    /// The backend's own artifacts are in `backend.artifacts`.
    pub artifacts: Vec<Artifact>,
    /// Descriptive metadata, also used for image labels.
    pub metadata: Metadata,
    /// Checks that follow from the plan whatever the backend (a recipe that must exist, room for
    /// the replay archive), run before any work by kerblam and by the backend. The backend's own
    /// checks are in `backend.preflight`.
    pub preflight: Vec<Preflight>,
    /// The pipe this plan packages, for plans compiled from a `kerblam.toml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipe: Option<PipeInfo>,
    /// The software environment this plan freezes, for plans compiled from a freeze spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze: Option<FreezeInfo>,
    /// The backend's part: its name, the artifacts it writes, its own checks and what it renders.
    pub backend: BackendPlan,
}

impl PackagePlan {
    /// True when the `schema` field names a plan version this crate understands.
    pub fn is_supported_schema(&self) -> bool {
        self.schema == PLAN_SCHEMA
    }

    /// The artifact of the given kind, if the plan produces one (kerblam's or the backend's).
    pub fn artifact(&self, kind: ArtifactKind) -> Option<&Artifact> {
        self.all_artifacts().find(|a| a.kind == kind)
    }

    /// Every artifact of the plan: kerblam's own, then the backend's.
    pub fn all_artifacts(&self) -> impl Iterator<Item = &Artifact> {
        self.artifacts.iter().chain(&self.backend.artifacts)
    }

    /// The bytes of the text layers kerblam generates (scripts, help), which backends count in
    /// the room they need.
    pub fn generated_bytes(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| match &l.from {
                crate::LayerSource::Generated { text } => text.len() as u64,
                _ => 0,
            })
            .sum()
    }

    /// Every preflight check of the plan: the plan's own, then the backend's.
    pub fn all_preflight(&self) -> impl Iterator<Item = &Preflight> {
        self.preflight.iter().chain(&self.backend.preflight)
    }

    /// Takes the files the backend's part writes (and their temporaries, `<path>.tmp-...`) out of
    /// the build context, without listing them: what a package wrote into the project must not go
    /// into the next package's image, nor make a checked-in plan stale. Returns whether the
    /// context changed (then the backend's part was made from a context that held them, and is
    /// asked for again).
    pub fn exclude_backend_artifacts(&mut self) -> bool {
        let prefix = match self.context.root.as_str() {
            "." | "" => String::new(),
            root => format!("{}/", root.trim_end_matches('/')),
        };
        let written: Vec<String> = self
            .backend
            .artifacts
            .iter()
            .filter(|a| a.kind.is_file())
            .filter_map(|a| a.path.strip_prefix(&prefix).map(str::to_string))
            .collect();
        let ours = |path: &str| {
            written
                .iter()
                .any(|w| path == w || path.starts_with(&format!("{w}.tmp-")))
        };
        let context = &mut self.context;
        let before = context.files.len();
        context.files.retain(|f| !ours(&f.path));
        if context.files.len() == before {
            return false;
        }
        context.total_bytes = context.files.iter().map(|f| f.size).sum();
        true
    }

    /// The plan without the backend's part, as the compiler made it: what a backend's
    /// `kerblam_backend_plan` is given.
    pub fn neutral(&self) -> PackagePlan {
        PackagePlan {
            backend: BackendPlan::named(self.backend.name.clone()),
            ..self.clone()
        }
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

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Artifact, Preflight};

/// The backend's own part of a plan: what only the backend knows. The compiler leaves it empty
/// but for [`BackendPlan::name`]; the host asks the backend plugin for the rest (the ABI's
/// `kerblam_backend_plan`) and writes it in before anything runs. From then on it is part of the
/// contract: after `package`, every artifact listed here must exist with its kind, and the backend
/// may report nothing else.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackendPlan {
    /// The backend that carries the plan out, as users pass it to `--backend` (`docker`,
    /// `podman`, `apptainer`, `tarball`, or a third-party backend's name).
    pub name: String,
    /// The artifacts the backend writes: an image in its engine, or files, named under the plan's
    /// [`Output`](crate::Output) unless absolute.
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    /// The backend's own checks (the tools it runs, the room its artifacts and temporary copies
    /// need), on top of the plan's `preflight`.
    #[serde(default)]
    pub preflight: Vec<Preflight>,
    /// The files the backend generates to build from (a Containerfile, an Apptainer definition
    /// file), as it will write them, so that a plan shows and diffs them. Paths under the
    /// temporary directory are written `$TMPDIR/...`.
    #[serde(default)]
    pub rendered: Vec<Rendered>,
    /// Lines telling the user how to use what the backend makes (how to start a frozen
    /// environment, how to build an image from a context archive), printed after it ran.
    #[serde(default)]
    pub usage: Vec<String>,
}

impl BackendPlan {
    /// The part of a plan for `name` before the backend has said anything.
    pub fn named(name: impl Into<String>) -> BackendPlan {
        BackendPlan {
            name: name.into(),
            ..BackendPlan::default()
        }
    }

    /// The rendered file called `name`.
    pub fn rendered(&self, name: &str) -> Option<&Rendered> {
        self.rendered.iter().find(|r| r.name == name)
    }
}

/// A file a backend generates from the plan to build from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rendered {
    /// Its name, as `kerblam plan --show NAME` takes it, e.g. `Containerfile` or
    /// `definition.def`.
    pub name: String,
    /// Its full text.
    pub text: String,
}

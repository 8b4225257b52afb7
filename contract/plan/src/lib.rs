//! The kerblam *package plan*.
//!
//! A [`PackagePlan`] is what the compiler decides and what a backend carries out. It is plain data: the
//! types here derive `serde` and `schemars` and do no I/O. The compiler (`kerblam-compiler`) lowers a
//! `kerblam.toml` pipe or a freeze spec into a plan; a backend plugin (docker, podman, apptainer,
//! tarball, or a third-party one) receives the plan as JSON and executes it without re-deciding
//! anything.
//!
//! The main types:
//!
//! - [`PackagePlan`], the root, versioned by [`PLAN_SCHEMA`];
//! - [`Base`], what the image starts from (a recipe in the project, an image reference, an archive,
//!   or scratch);
//! - [`Context`], the build context: which files go in, which are left out and why;
//! - [`Layer`], a file kerblam adds on top of the base (its own executable, the replay script, frozen
//!   software trees);
//! - [`Mount`], a host directory bound into the container at run or replay time;
//! - [`Artifact`], what running the plan leaves behind and what each artifact holds;
//! - [`Preflight`], a check a backend must pass before it starts any work;
//! - [`BackendPlan`], the backend's own part: the artifacts it writes, its extra checks and the
//!   files it renders. The compiler knows no backend: it leaves this part empty, and the host fills
//!   it in from the backend plugin before anything runs.
//!
//! [`upgrade`] reads plans of older schema versions (a replay archive made years ago holds one).
//!
//! Paths in a plan are relative, `/`-separated and relative to [`PackagePlan::root`] unless a field
//! says otherwise, so that a plan printed on two machines is byte-identical.

mod artifact;
mod backend;
mod base;
mod context;
mod freeze;
mod layer;
mod metadata;
mod mount;
mod output;
mod pipe;
mod plan;
mod preflight;
mod tag_doc;
pub mod upgrade;

pub use artifact::{Artifact, ArtifactKind};
pub use backend::{BackendPlan, Rendered};
pub use base::Base;
pub use context::{Context, ContextFile, Exclusion, ExclusionReason};
pub use freeze::{FreezeInfo, FrozenModule, FrozenTree};
pub use layer::{Layer, LayerSource};
pub use metadata::Metadata;
pub use mount::Mount;
pub use output::Output;
pub use pipe::{DataFile, DataPaths, PipeInfo, PipeKind, RemoteFile, RunUser};
pub use plan::{EnvVar, Image, PackagePlan, Purpose, Source, SourceKind};
pub use preflight::{ENGINE_STORAGE, ENGINE_TMPDIR, Preflight};

/// The schema identifier every plan carries in its `schema` field.
pub const PLAN_SCHEMA: &str = "kerblam.plan/v2";

/// The major version of the plan schema ([`PLAN_SCHEMA`]'s `v2`).
pub const PLAN_SCHEMA_MAJOR: u32 = 2;

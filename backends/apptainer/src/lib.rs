//! The apptainer backend plugin: SIF images through `apptainer build`, or assembled natively
//! without apptainer, root, fakeroot or subuid entries.
//!
//! The backend turns a plan into a [`model::Model`] (base, copied files, environment, runscript,
//! labels, help and test), then either
//!
//! - renders it as a definition file ([`def`], minijinja templates in `templates/`, every value
//!   escaped by [`escape`]) and runs `apptainer build` on it ([`tool`]), writing to a temporary
//!   name that is renamed only when the build succeeds; or
//! - (`--native`, or when neither `apptainer` nor `singularity` is on `PATH`) assembles the root
//!   filesystem itself ([`rootfs`], from scratch or a `--base` docker/OCI archive read by
//!   [`image`]), squashes it with `mksquashfs` ([`squash`]) and writes the SIF ([`sif`]) with the
//!   definition file and the JSON labels as data objects.
//!
//! The `run` action ([`run`]) runs the SIF with `apptainer run --bind host:container`.
//! The backend's part of a plan ([`plan`]) names the SIF, the tools and room it needs, and the
//! definition file, which `kerblam plan --backend apptainer --show definition.def` prints.
//!
//! Every failure is an [`Error`] variant named after what failed; it reaches the host as an
//! [`ErrorMessage`] whose kind [`Error::kind`] decides.

pub mod def;
pub mod error;
pub mod escape;
pub mod image;
pub mod model;
pub mod package;
pub mod plan;
pub mod recipe;
pub mod rootfs;
pub mod run;
pub mod sif;
pub mod squash;
pub mod tool;

use std::path::{Path, PathBuf};

use kerblam_backend_api::plan::{ArtifactKind as A, BackendPlan, SourceKind};
use kerblam_backend_api::{
    Action, Backend, BaseKind as B, Capabilities, Describe, ErrorMessage, ExecuteRequest,
    ExecuteResult, Host, PlanRequest,
};
use kerblam_backend_api::{LayerSourceKind as L, PreflightKind as P};

pub use error::{Error, Unwritable};
pub use package::Settings;

/// `p` if absolute, else `base/p`.
pub(crate) fn abs(base: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// Carry out a request with explicit [`Settings`] (the plugin uses [`Settings::detect`]).
pub fn execute_with(
    req: &ExecuteRequest,
    host: &Host<'_>,
    settings: &Settings,
) -> Result<ExecuteResult, ErrorMessage> {
    match req.action {
        Action::Package => package::package(req, host, settings),
        Action::Run => run::run(req, host, settings),
    }
}

/// The apptainer backend.
struct Apptainer;

impl Backend for Apptainer {
    fn describe(&self) -> Describe {
        let mut d = kerblam_backend_api::sdk::describe(
            "apptainer",
            env!("CARGO_PKG_VERSION"),
            Capabilities {
                actions: vec![Action::Package, Action::Run],
                sources: vec![SourceKind::Pipe, SourceKind::Freeze],
                base_kinds: vec![B::Recipe, B::Image, B::Archive, B::Scratch],
                layer_sources: vec![L::Kerblam, L::Generated, L::Context, L::Host],
                mounts: true,
                artifact_kinds: vec![A::Sif],
                preflight_checks: vec![P::DiskSpace, P::Writable, P::Tool, P::FileExists],
                formats: vec![],
                rootless: true,
                push: false,
                embed_image: false,
                base_archive: true,
                native: true,
                reentrant: false,
            },
        );
        d.description =
            Some("builds SIF images with apptainer/singularity, or natively without them".into());
        d
    }

    fn plan(&self, req: &PlanRequest) -> Result<BackendPlan, ErrorMessage> {
        plan::plan(req)
    }

    /// The plan's checks are packaging checks (the recipe exists, room for the archive); a `run`
    /// (a replay) happens where those files are not, and checks its own needs.
    fn preflight(&self, req: &ExecuteRequest, _host: &Host<'_>) -> Result<(), ErrorMessage> {
        if req.action != Action::Package {
            return Ok(());
        }
        kerblam_backend_api::preflight::check_all(&req.plan, &req.paths)
    }

    fn execute(
        &self,
        req: &ExecuteRequest,
        host: &Host<'_>,
    ) -> Result<ExecuteResult, ErrorMessage> {
        execute_with(req, host, &Settings::detect()?)
    }
}

kerblam_backend_api::export_backend!(Apptainer);

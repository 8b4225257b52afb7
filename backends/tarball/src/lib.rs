//! The tarball-only backend plugin: carries out package plans by writing files, with no container
//! engine (issue 5).
//!
//! For a pipe plan it writes, next to each other and each atomically (temporary name, renamed only
//! when every artifact is complete):
//!
//! - `<pipe>.context.tar` (`context_archive.rs`): the build context, the generated Containerfile (at
//!   the root as `Dockerfile`, so `docker build -t TAG - < <pipe>.context.tar` needs no `-f`), the
//!   kerblam executable and the replay script;
//! - `<pipe>.oci.tar` (`oci.rs`) when the plan asks for one: an OCI image layout archive whose layers
//!   are the plan's own on top of `scratch` or a base archive (`--base FILE`, an OCI or docker
//!   archive, `base_archive.rs`);
//! - (the replay archive is kerblam's own, written while this backend works).
//!
//! For a freeze plan (`freeze.rs`) it writes the compressed tarball of the frozen trees, an
//! `activate.sh` and the metadata JSON (and an OCI archive when the plan asks for one).
//!
//! What it will write, and the room that takes, is its part of the plan (`plan.rs`). Before any
//! of it, `room.rs` refuses a destination that is not writable or lacks room, and
//! refuses to replace existing artifacts without `force`. Progress goes to the host's progress
//! callback (the SDK's `sdk::Reporter`).

mod base_archive;
mod context_archive;
mod enter;
mod errors;
mod freeze;
mod layer;
mod oci;
mod package;
mod pending;
mod plan;
mod push;
mod room;

use kerblam_backend_api::plan::{ArtifactKind as A, BackendPlan, SourceKind};
use kerblam_backend_api::{
    Action, Backend, BaseKind as B, Capabilities, Describe, ErrorMessage, ExecuteRequest,
    ExecuteResult, Host, PlanRequest,
};
use kerblam_backend_api::{LayerSourceKind as L, PreflightKind as P};

/// The tarball backend.
struct Tarball;

impl Backend for Tarball {
    fn describe(&self) -> Describe {
        let mut d = kerblam_backend_api::sdk::describe(
            "tarball",
            env!("CARGO_PKG_VERSION"),
            Capabilities {
                actions: vec![Action::Package],
                sources: vec![SourceKind::Pipe, SourceKind::Freeze],
                base_kinds: vec![B::Recipe, B::Image, B::Archive, B::Scratch],
                layer_sources: vec![L::Kerblam, L::Generated, L::Context, L::Host],
                mounts: false,
                artifact_kinds: vec![
                    A::ContextArchive,
                    A::OciArchive,
                    A::Tarball,
                    A::ActivateScript,
                    A::MetadataJson,
                ],
                preflight_checks: vec![P::DiskSpace, P::Writable, P::Tool, P::FileExists],
                formats: plan::FORMATS.iter().map(|s| s.to_string()).collect(),
                rootless: true,
                push: true,
                embed_image: false,
                base_archive: true,
                native: false,
                reentrant: true,
            },
        );
        d.description = Some(
            "writes build-context and OCI archives or frozen tarballs; no container engine needed"
                .into(),
        );
        d
    }

    fn plan(&self, req: &PlanRequest) -> Result<BackendPlan, ErrorMessage> {
        plan::plan(req)
    }

    fn preflight(&self, req: &ExecuteRequest, _host: &Host<'_>) -> Result<(), ErrorMessage> {
        kerblam_backend_api::preflight::check_all(&req.plan, &req.paths)?;
        room::check(req)
    }

    fn execute(
        &self,
        req: &ExecuteRequest,
        host: &Host<'_>,
    ) -> Result<ExecuteResult, ErrorMessage> {
        package::package(req, host)
    }
}

kerblam_backend_api::export_backend!(Tarball);

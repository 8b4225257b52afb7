//! The tarball-only backend plugin: writes files, needs no engine (issue 5). `execute` lands with
//! the `kerblam-archive` crate; until then the SDK answers "unsupported" because `actions` is empty.

use kerblam_backend_api::plan::{ArtifactKind as A, SourceKind};
use kerblam_backend_api::{
    Backend, BaseKind as B, Capabilities, Describe, ErrorMessage, ExecuteRequest, ExecuteResult,
    Host,
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
                actions: vec![],
                sources: vec![SourceKind::Pipe, SourceKind::Freeze],
                base_kinds: vec![B::Recipe, B::Archive, B::Scratch],
                layer_sources: vec![L::Kerblam, L::Generated, L::Context, L::Host],
                mounts: false,
                artifact_kinds: vec![
                    A::ReplayArchive,
                    A::ContextArchive,
                    A::OciArchive,
                    A::Tarball,
                    A::ActivateScript,
                    A::MetadataJson,
                ],
                preflight_checks: vec![P::DiskSpace, P::Writable, P::Tool, P::FileExists],
                formats: vec!["kerblam-v1".into(), "oci".into()],
                rootless: true,
                push: false,
                embed_image: false,
                sign: true,
                base_archive: true,
                native: false,
                reentrant: true,
            },
        );
        d.description = Some("writes replay, context and OCI archives or frozen tarballs; no container engine needed".into());
        d
    }

    fn execute(
        &self,
        req: &ExecuteRequest,
        _host: &Host<'_>,
    ) -> Result<ExecuteResult, ErrorMessage> {
        Err(ErrorMessage::unsupported(format!(
            "the tarball backend does not implement {:?} yet",
            req.action.name()
        )))
    }
}

kerblam_backend_api::export_backend!(Tarball);

//! The docker backend plugin. It describes what it will do (issue 4); `execute` lands with the
//! `kerblam-engine` crate, until then the SDK answers "unsupported" because `actions` is empty.

use kerblam_backend_api::plan::{ArtifactKind as A, SourceKind};
use kerblam_backend_api::{
    Backend, BaseKind as B, Capabilities, Describe, ErrorMessage, ExecuteRequest, ExecuteResult,
    Host,
};
use kerblam_backend_api::{LayerSourceKind as L, PreflightKind as P};

/// The docker backend.
struct Docker;

impl Backend for Docker {
    fn describe(&self) -> Describe {
        let mut d = kerblam_backend_api::sdk::describe(
            "docker",
            env!("CARGO_PKG_VERSION"),
            Capabilities {
                actions: vec![],
                sources: vec![SourceKind::Pipe, SourceKind::Freeze],
                base_kinds: vec![B::Recipe, B::Image, B::Archive, B::Scratch],
                layer_sources: vec![L::Kerblam, L::Generated, L::Context, L::Host],
                mounts: true,
                artifact_kinds: vec![A::EngineImage, A::ReplayArchive, A::ImageArchive],
                preflight_checks: vec![P::DiskSpace, P::Writable, P::Tool, P::FileExists],
                formats: vec!["kerblam-v1".into()],
                rootless: false,
                push: false,
                embed_image: true,
                sign: true,
                base_archive: false,
                native: false,
                reentrant: false,
            },
        );
        d.description =
            Some("builds and runs images with Docker (legacy builder or BuildKit)".into());
        d
    }

    fn execute(
        &self,
        req: &ExecuteRequest,
        _host: &Host<'_>,
    ) -> Result<ExecuteResult, ErrorMessage> {
        Err(ErrorMessage::unsupported(format!(
            "the docker backend does not implement {:?} yet",
            req.action.name()
        )))
    }
}

kerblam_backend_api::export_backend!(Docker);

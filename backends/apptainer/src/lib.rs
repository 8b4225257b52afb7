//! The apptainer backend plugin: SIF images through `apptainer build`, or assembled natively
//! without apptainer (issue 6). Until `execute` lands the SDK answers "unsupported" because
//! `actions` is empty.

use kerblam_backend_api::plan::{ArtifactKind as A, SourceKind};
use kerblam_backend_api::{
    Backend, BaseKind as B, Capabilities, Describe, ErrorMessage, ExecuteRequest, ExecuteResult,
    Host,
};
use kerblam_backend_api::{LayerSourceKind as L, PreflightKind as P};

/// The apptainer backend.
struct Apptainer;

impl Backend for Apptainer {
    fn describe(&self) -> Describe {
        let mut d = kerblam_backend_api::sdk::describe(
            "apptainer",
            env!("CARGO_PKG_VERSION"),
            Capabilities {
                actions: vec![],
                sources: vec![SourceKind::Pipe, SourceKind::Freeze],
                base_kinds: vec![B::Image, B::Archive, B::Scratch],
                layer_sources: vec![L::Kerblam, L::Generated, L::Context, L::Host],
                mounts: true,
                artifact_kinds: vec![A::Sif, A::ReplayArchive],
                preflight_checks: vec![P::DiskSpace, P::Writable, P::Tool, P::FileExists],
                formats: vec!["kerblam-v1".into()],
                rootless: true,
                push: false,
                embed_image: true,
                sign: true,
                base_archive: true,
                native: true,
                reentrant: false,
            },
        );
        d.description =
            Some("builds SIF images with apptainer/singularity, or natively without them".into());
        d
    }

    fn execute(
        &self,
        req: &ExecuteRequest,
        _host: &Host<'_>,
    ) -> Result<ExecuteResult, ErrorMessage> {
        Err(ErrorMessage::unsupported(format!(
            "the apptainer backend does not implement {:?} yet",
            req.action.name()
        )))
    }
}

kerblam_backend_api::export_backend!(Apptainer);

//! A deliberately broken backend for the tests: it claims every capability, so any plan reaches
//! its `execute`, which logs a line, reports progress, and then panics (in the backend's own code,
//! not in an SDK hook). The SDK must turn that into status `panic` and leave the host running.

use kerblam_backend_api::plan::{ArtifactKind as A, SourceKind};
use kerblam_backend_api::{
    Action, Backend, BaseKind, Capabilities, Describe, ErrorMessage, ExecuteRequest, ExecuteResult, Host,
    LayerSourceKind as L, PreflightKind as P,
};

struct Panicky;

impl Backend for Panicky {
    fn describe(&self) -> Describe {
        let caps = Capabilities {
            actions: vec![Action::Package, Action::Run],
            sources: vec![SourceKind::Pipe, SourceKind::Freeze],
            base_kinds: vec![BaseKind::Scratch, BaseKind::Image, BaseKind::Recipe, BaseKind::Archive],
            layer_sources: vec![L::Generated, L::Context, L::Kerblam, L::Host],
            artifact_kinds: vec![
                A::EngineImage,
                A::ReplayArchive,
                A::ContextArchive,
                A::OciArchive,
                A::ImageArchive,
                A::Sif,
                A::Tarball,
                A::ActivateScript,
                A::MetadataJson,
            ],
            preflight_checks: vec![P::DiskSpace, P::Writable, P::Tool, P::FileExists],
            mounts: true,
            embed_image: true,
            base_archive: true,
            rootless: true,
            ..Capabilities::default()
        };
        kerblam_backend_api::sdk::describe("panicky", env!("CARGO_PKG_VERSION"), caps)
    }

    fn execute(&self, req: &ExecuteRequest, host: &Host<'_>) -> Result<ExecuteResult, ErrorMessage> {
        host.info(&format!("panicky: starting on {}", req.plan.name));
        host.progress(1, 2, "panicky: half way");
        let layers: Vec<usize> = Vec::new();
        // A bug of the kind real backends have: an index out of bounds.
        let first = layers[req.plan.layers.len()];
        Ok(ExecuteResult { notes: vec![format!("unreachable {first}")], ..Default::default() })
    }
}

kerblam_backend_api::export_backend!(Panicky);

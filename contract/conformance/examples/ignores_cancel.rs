//! A deliberately broken backend built with the Rust SDK, for the kit's own tests: it asks whether
//! it is cancelled, ignores the answer, and returns ok. The SDK polls twice before calling the
//! backend; the kit's `cancellation-mid-run` must still catch this one (it used to be fooled,
//! because the SDK's second poll did the stopping).
use kerblam_backend_api::plan::SourceKind;
use kerblam_backend_api::{Action, Backend, BaseKind, Capabilities, Describe, ErrorMessage};
use kerblam_backend_api::{ExecuteRequest, ExecuteResult, Host};
use kerblam_backend_api::{LayerSourceKind, PreflightKind};

struct IgnoresCancel;

impl Backend for IgnoresCancel {
    fn describe(&self) -> Describe {
        let caps = Capabilities {
            actions: vec![Action::Package],
            sources: vec![SourceKind::Pipe],
            base_kinds: vec![BaseKind::Scratch],
            layer_sources: vec![LayerSourceKind::Generated],
            preflight_checks: vec![PreflightKind::FileExists],
            ..Capabilities::default()
        };
        kerblam_backend_api::sdk::describe("ignores-cancel", "0.0.0", caps)
    }

    fn execute(&self, _: &ExecuteRequest, host: &Host<'_>) -> Result<ExecuteResult, ErrorMessage> {
        let _ = host.is_cancelled();
        Ok(ExecuteResult::default())
    }
}

kerblam_backend_api::export_backend!(IgnoresCancel);

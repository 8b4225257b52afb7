//! The podman backend plugin: `kerblam-engine`'s plan executor ([`kerblam_engine::plugin`]) with the
//! podman CLI (`KERBLAM_PODMAN` or `podman` on PATH).

use kerblam_backend_api::plan::BackendPlan;
use kerblam_backend_api::{
    Backend, Describe, ErrorMessage, ExecuteRequest, ExecuteResult, Host, PlanRequest,
};
use kerblam_engine::{Engine, Flavor, plugin};

/// The podman backend.
struct Podman;

impl Backend for Podman {
    fn describe(&self) -> Describe {
        let mut d = kerblam_backend_api::sdk::describe(
            "podman",
            env!("CARGO_PKG_VERSION"),
            plugin::capabilities(Flavor::Podman),
        );
        d.engine = Some(plugin::service(&Engine::podman()));
        d.description = Some("builds and runs images with Podman".into());
        d
    }

    fn plan(&self, req: &PlanRequest) -> Result<BackendPlan, ErrorMessage> {
        plugin::plan_part(&Engine::podman(), req)
    }

    fn preflight(&self, req: &ExecuteRequest, host: &Host<'_>) -> Result<(), ErrorMessage> {
        plugin::preflight(&Engine::podman(), req, host)
    }

    fn execute(
        &self,
        req: &ExecuteRequest,
        host: &Host<'_>,
    ) -> Result<ExecuteResult, ErrorMessage> {
        plugin::execute(&Engine::podman(), req, host)
    }
}

kerblam_backend_api::export_backend!(Podman);

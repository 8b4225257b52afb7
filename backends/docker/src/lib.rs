//! The docker backend plugin: `kerblam-engine`'s plan executor ([`kerblam_engine::plugin`]) with the
//! docker CLI (`KERBLAM_DOCKER` or `docker` on PATH).

use kerblam_backend_api::plan::BackendPlan;
use kerblam_backend_api::{
    Backend, Describe, ErrorMessage, ExecuteRequest, ExecuteResult, Host, PlanRequest,
};
use kerblam_engine::{Engine, Flavor, plugin};

/// The docker backend.
struct Docker;

impl Backend for Docker {
    fn describe(&self) -> Describe {
        let mut d = kerblam_backend_api::sdk::describe(
            "docker",
            env!("CARGO_PKG_VERSION"),
            plugin::capabilities(Flavor::Docker),
        );
        d.engine = Some(plugin::service(&Engine::docker()));
        d.description = Some("builds and runs images with Docker (legacy builder or BuildKit, as DOCKER_BUILDKIT says)".into());
        d
    }

    fn plan(&self, req: &PlanRequest) -> Result<BackendPlan, ErrorMessage> {
        plugin::plan_part(&Engine::docker(), req)
    }

    fn preflight(&self, req: &ExecuteRequest, host: &Host<'_>) -> Result<(), ErrorMessage> {
        plugin::preflight(&Engine::docker(), req, host)
    }

    fn execute(
        &self,
        req: &ExecuteRequest,
        host: &Host<'_>,
    ) -> Result<ExecuteResult, ErrorMessage> {
        plugin::execute(&Engine::docker(), req, host)
    }
}

kerblam_backend_api::export_backend!(Docker);

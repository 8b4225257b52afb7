//! "Carry out a plan with this engine": the execute implementation the docker and podman backend
//! plugins share. Each plugin is a few lines wiring [`Backend`](kerblam_backend_api::Backend) to
//! [`describe`], [`preflight`] and [`execute`] with its [`Engine`].
//!
//! - **package** ([`package`]): render the Containerfile (the user's recipe followed by one
//!   single-source `COPY` per plan layer, `WORKDIR`, `ENV`, `LABEL`s, `ENTRYPOINT`, through
//!   `kerblam-render`, which every builder accepts), stream the build context (plan context files,
//!   `.kerblam/Containerfile`, `.kerblam/kerblam`, generated files) straight into `engine build -`,
//!   then write the replay archive with `kerblam-archive` (optionally embedding `engine save`).
//! - **run** ([`run`]): run the image with the plan's mounts (host paths under `paths.root`,
//!   created when missing, never outside it), workdir and entrypoint plus `options.args`, network
//!   `none` (or `host` when `options.network` says so); load `options.image_archive` (a replay
//!   archive with an embedded image, or a saved image) first when the tag is missing.

mod errors;
mod package;
mod pipe;
mod progress;
mod run;

use kerblam_backend_api::plan::{ArtifactKind as A, Preflight, SourceKind};
use kerblam_backend_api::{
    Action, BaseKind as B, Capabilities, ErrorMessage, ExecuteRequest, ExecuteResult, Host,
    LayerSourceKind as L, PreflightKind as P,
};

pub use package::CONTAINERFILE;

use crate::{Engine, Flavor};

/// What the docker and podman plugins can do.
pub fn capabilities(flavor: Flavor) -> Capabilities {
    Capabilities {
        actions: vec![Action::Package, Action::Run],
        sources: vec![SourceKind::Pipe],
        base_kinds: vec![B::Recipe, B::Image, B::Scratch],
        layer_sources: vec![L::Kerblam, L::Generated, L::Context, L::Host],
        mounts: true,
        artifact_kinds: vec![A::EngineImage, A::ReplayArchive],
        preflight_checks: vec![P::DiskSpace, P::Writable, P::Tool, P::FileExists],
        formats: vec!["kerblam-v1".into()],
        rootless: flavor == Flavor::Podman,
        push: false,
        embed_image: true,
        sign: true,
        base_archive: false,
        native: false,
        reentrant: false,
    }
}

/// The plan's preflight checks, for `package` only: a `run` (a replay) happens where the project's
/// recipe files are not, and checks the engine itself before it starts.
///
/// A `tool` check naming this engine is answered by the engine itself (`KERBLAM_DOCKER` /
/// `KERBLAM_PODMAN` may name another program than the one on `PATH`): is it installed and running?
/// Its error says which program was tried and how to install or start it.
pub fn preflight(engine: &Engine, req: &ExecuteRequest) -> Result<(), ErrorMessage> {
    if req.action != Action::Package {
        return Ok(());
    }
    let (mine, others): (Vec<_>, Vec<_>) = req.plan.preflight.iter().cloned().partition(
        |c| matches!(c, Preflight::Tool { names } if names.iter().any(|n| n == engine.name())),
    );
    if !mine.is_empty() {
        engine.check_available().map_err(errors::engine)?;
    }
    let mut plan = req.plan.clone();
    plan.preflight = others;
    kerblam_backend_api::preflight::check_all(&plan, &req.paths)
}

/// Carries out `req` with `engine`.
pub fn execute(
    engine: &Engine,
    req: &ExecuteRequest,
    host: &Host<'_>,
) -> Result<ExecuteResult, ErrorMessage> {
    match req.action {
        Action::Package => package::package(engine, req, host),
        Action::Run => run::run(engine, req, host),
    }
}

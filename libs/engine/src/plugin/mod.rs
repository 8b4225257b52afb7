//! "Carry out a plan with this engine": the execute implementation the docker and podman backend
//! plugins share. Each plugin is a few lines wiring [`Backend`](kerblam_backend_api::Backend) to
//! [`describe`], [`preflight`] and [`execute`] with its [`Engine`].
//!
//! - **plan** ([`plan`]): the backend's part of a plan: the engine image, the engine as a tool, a
//!   freeze's room in the engine's storage, and the rendered Containerfile.
//! - **package** ([`package`]): render the Containerfile (the user's recipe followed by one
//!   single-source `COPY` per plan layer, `WORKDIR`, `ENV`, `LABEL`s, `ENTRYPOINT`, through
//!   `kerblam-render`, which every builder accepts), stream the build context (plan context files,
//!   `.kerblam/Containerfile`, `.kerblam/kerblam`, generated files) straight into `engine build -`,
//!   and save the image into the host's file when it asks (`--embed-image`). The replay archive is
//!   the host's.
//! - **run** ([`run`]): run the image with the plan's mounts (host paths under `paths.root`,
//!   created when missing, never outside it), workdir and entrypoint plus `options.args`, network
//!   `none` (or `host` when `options.network` says so); load `options.image_archive` (a replay
//!   archive with an embedded image, or a saved image) first when the tag is missing.
//! - **package** of a freeze plan ([`freeze`]): the same Containerfile rendering and streamed
//!   context, with the frozen trees (minus their excludes) in the context and the smoke test as a
//!   build step; the image is the only artifact.

mod errors;
mod freeze;
mod package;
mod pipe;
pub mod plan;
mod run;

use kerblam_backend_api::plan::{
    ArtifactKind, ENGINE_STORAGE, ENGINE_TMPDIR, Preflight, SourceKind,
};
use kerblam_backend_api::preflight::names_engine_dir;
use kerblam_backend_api::{
    Action, BaseKind as B, Capabilities, ErrorMessage, ExecuteRequest, ExecuteResult, Host,
    LayerSourceKind as L, PreflightKind as P,
};

pub use package::CONTAINERFILE;

use crate::{Engine, Flavor, StorageDirs};

/// What the docker and podman plugins can do.
pub fn capabilities(flavor: Flavor) -> Capabilities {
    Capabilities {
        actions: vec![Action::Package, Action::Run],
        sources: vec![SourceKind::Pipe, SourceKind::Freeze],
        base_kinds: vec![B::Recipe, B::Image, B::Scratch],
        layer_sources: vec![L::Kerblam, L::Generated, L::Context, L::Host],
        mounts: true,
        artifact_kinds: vec![ArtifactKind::EngineImage],
        preflight_checks: vec![P::DiskSpace, P::Writable, P::Tool, P::FileExists],
        formats: vec![],
        rootless: flavor == Flavor::Podman,
        push: true,
        embed_image: true,
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
///
/// Checks at `$ENGINE_STORAGE` / `$ENGINE_TMPDIR` are made at the directories the engine reports
/// ([`Engine::storage_dirs`]) with the plan's figures, added up when they share a filesystem. When
/// the engine's directory is not on this machine (a remote daemon), it cannot be measured: a
/// warning says so and the build goes on.
pub fn preflight(
    engine: &Engine,
    req: &ExecuteRequest,
    host: &Host<'_>,
) -> Result<(), ErrorMessage> {
    if req.action != Action::Package {
        return Ok(());
    }
    let (mine, others): (Vec<_>, Vec<_>) = req.plan.all_preflight().cloned().partition(
        |c| matches!(c, Preflight::Tool { names } if names.iter().any(|n| n == engine.name())),
    );
    if !mine.is_empty() {
        engine.check_available().map_err(errors::engine)?;
    }
    let (at_engine, mut checks): (Vec<_>, Vec<_>) = others.into_iter().partition(names_engine_dir);
    if !at_engine.is_empty() {
        let dirs = engine.storage_dirs().map_err(errors::engine)?;
        for c in at_engine {
            match resolve_engine_dir(&c, &dirs) {
                Some(resolved) => checks.push(resolved),
                None => host.warn(&format!(
                    "cannot check {c:?}: {} reports its directories as {} and {}, which are not on this machine",
                    engine.name(),
                    dirs.storage.display(),
                    dirs.temp.display()
                )),
            }
        }
    }
    kerblam_backend_api::preflight::check_list(&checks, &req.paths)
}

/// `check` with its `$ENGINE_STORAGE` / `$ENGINE_TMPDIR` path replaced by the engine's directory;
/// `None` when that directory does not exist here.
fn resolve_engine_dir(check: &Preflight, dirs: &StorageDirs) -> Option<Preflight> {
    let swap = |p: &str| -> Option<String> {
        let (dir, rest) = [(ENGINE_STORAGE, &dirs.storage), (ENGINE_TMPDIR, &dirs.temp)]
            .into_iter()
            .find_map(|(name, dir)| p.strip_prefix(name).map(|rest| (dir, rest)))?;
        dir.exists().then(|| format!("{}{rest}", dir.display()))
    };
    Some(match check {
        Preflight::DiskSpace { path, bytes, why } => Preflight::DiskSpace {
            path: swap(path)?,
            bytes: *bytes,
            why: why.clone(),
        },
        Preflight::Writable { path } => Preflight::Writable { path: swap(path)? },
        Preflight::FileExists { path } => Preflight::FileExists { path: swap(path)? },
        Preflight::Tool { .. } => check.clone(),
    })
}

/// The backend's part of `req.plan` with `engine` (see [`plan`]).
pub fn plan_part(
    engine: &Engine,
    req: &kerblam_backend_api::PlanRequest,
) -> Result<kerblam_backend_api::plan::BackendPlan, ErrorMessage> {
    plan::plan(engine, req)
}

/// The service `engine` talks to, for the plugin's description.
pub fn service(engine: &Engine) -> kerblam_backend_api::EngineService {
    let e = engine.endpoint();
    kerblam_backend_api::EngineService {
        name: engine.name().to_string(),
        address: e.address,
        remote: e.remote,
    }
}

/// Pushes the built image to `options.push`, when asked: the digest-pinned reference it got.
pub(crate) fn push(
    engine: &Engine,
    req: &ExecuteRequest,
    host: &Host<'_>,
) -> Result<Option<String>, ErrorMessage> {
    let Some(target) = &req.options.push else {
        return Ok(None);
    };
    let target = kerblam_registry::Reference::parse(target)
        .map_err(kerblam_registry::plugin::error_message)?;
    host.check_cancelled()?;
    host.info(&format!(
        "pushing {} to {target} with {}",
        req.plan.image.tag,
        engine.name()
    ));
    let pinned = engine
        .push(&req.plan.image.tag, &target)
        .map_err(errors::engine)?;
    Ok(Some(pinned.to_string()))
}

/// Carries out `req` with `engine`.
pub fn execute(
    engine: &Engine,
    req: &ExecuteRequest,
    host: &Host<'_>,
) -> Result<ExecuteResult, ErrorMessage> {
    match (req.action, req.plan.source.kind) {
        (Action::Package, SourceKind::Freeze) => freeze::package(engine, req, host),
        (Action::Package, SourceKind::Pipe) => package::package(engine, req, host),
        (Action::Run, SourceKind::Pipe) => run::run(engine, req, host),
        (Action::Run, SourceKind::Freeze) => Err(ErrorMessage::unsupported(format!(
            "a freeze plan is not run through kerblam; start the image with `{} run --rm -it {}`",
            engine.name(),
            req.plan.image.tag
        ))),
    }
}

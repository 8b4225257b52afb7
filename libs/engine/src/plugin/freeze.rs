//! Action `package` of a freeze plan: build `plan.image.tag` from the plan as the compiler wrote it.
//!
//! The Containerfile comes from `kerblam-render` like a pipe's: `FROM` the base image, one `COPY`
//! per layer (each frozen tree is a host layer, sent in the build context as `.kerblam/layer-<n>`
//! minus its exclude patterns; the generated `activate.sh`, `start.sh` and help text as files),
//! `WORKDIR`, the plan's `ENV` (with `EESSI_SOFTWARE_SUBDIR_OVERRIDE`), the smoke test as a `RUN`,
//! the plan's labels and its entrypoint. The context is one tar stream piped into `engine build -`
//! in a single stage: nothing is copied to a temporary directory by kerblam, and each tree is read
//! once.
//!
//! `RUN` steps (the smoke test) have no network unless `KERBLAM_BUILD_NETWORK=host`: a frozen
//! environment must work offline, and a daemon without a bridge has no other network to offer.
//! A failing smoke test fails the build; the engine tags nothing then (the tag is written only
//! when every step passed), and the error carries the tail of the engine's output.

use kerblam_archive::TarOptions;
use kerblam_backend_api::plan::{ArtifactKind, Base};
use kerblam_backend_api::{ErrorKind, ErrorMessage, ExecuteRequest, ExecuteResult, Host};

use super::errors;
use super::package::{Stream, build_network, stream};
use crate::{Engine, Network};

/// Carries out a freeze plan with `engine`.
pub fn package(
    engine: &Engine,
    req: &ExecuteRequest,
    host: &Host<'_>,
) -> Result<ExecuteResult, ErrorMessage> {
    let plan = &req.plan;
    let info = plan
        .freeze
        .as_ref()
        .ok_or_else(|| ErrorMessage::invalid_input("a freeze plan without its `freeze` section"))?;
    if let Some(a) = plan
        .all_artifacts()
        .find(|a| a.kind != ArtifactKind::EngineImage)
    {
        return Err(ErrorMessage::unsupported(format!(
            "the {} backend builds an image from a freeze; it cannot also write a {:?} artifact ({})",
            engine.name(),
            a.kind,
            a.path
        ))
        .with_help("freeze with --backend tarball for tarballs, or apptainer for a SIF"));
    }
    if !matches!(plan.base, Base::Image { .. } | Base::Scratch) {
        return Err(ErrorMessage::unsupported(format!(
            "the {} backend freezes onto an image reference or scratch, not {:?}",
            engine.name(),
            plan.base
        )));
    }
    let tar = TarOptions::from_env().map_err(errors::archive)?;
    let network = build_network()?.or(Some(Network::None));
    let rendered = super::package::render(plan, std::path::Path::new(&req.paths.root))?;
    engine.check_available().map_err(errors::engine)?;
    host.check_cancelled()?;
    let tag = &plan.image.tag;
    stream(
        engine,
        req,
        tag,
        &plan.context,
        &rendered.containerfile,
        &rendered.entries,
        Stream { tar, network },
        host,
    )
    .map_err(|mut m| {
        if m.kind == ErrorKind::Backend
            && let Some(test) = &info.test
        {
            m.message = format!(
                "{}\n(the build runs the smoke test `{test}` once the trees are in place; this build tagged nothing)",
                m.message
            );
            if m.help.is_none() {
                m.help = Some(
                    "the engine's output above shows which step failed; fix the frozen environment or the spec's `test` and freeze again".into(),
                );
            }
        }
        m
    })?;
    let mut notes = Vec::new();
    if info.test.is_some() {
        notes.push("the smoke test passed while building".into());
    }
    let pushed = super::push(engine, req, host)?;
    Ok(ExecuteResult {
        artifacts: super::package::built_image(engine, plan)?
            .into_iter()
            .collect(),
        exit_code: None,
        notes,
        pushed,
    })
}

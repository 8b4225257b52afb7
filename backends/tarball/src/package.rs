//! Carrying out a package plan: which artifacts to write, in which order, and committing them
//! together so that an error leaves no file under a final name.

use std::path::PathBuf;

use kerblam_archive::{TarOptions, fault};
use kerblam_backend_api::plan::{ArtifactKind, SourceKind};
use kerblam_backend_api::{Action, ErrorMessage, ExecuteRequest, ExecuteResult, Host};

use crate::errors;
use crate::pending::Pending;
use crate::plan::FORMATS;
use crate::{context_archive, oci};

/// The absolute path of an artifact: as is when absolute, else under `paths.output_dir`.
pub fn artifact_path(req: &ExecuteRequest, path: &str) -> PathBuf {
    let p = std::path::Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::path::Path::new(&req.paths.output_dir).join(p)
    }
}

/// Carries out `req` (action `package`).
pub fn package(req: &ExecuteRequest, host: &Host<'_>) -> Result<ExecuteResult, ErrorMessage> {
    if req.action != Action::Package {
        return Err(ErrorMessage::unsupported(
            "the tarball backend only packages; it cannot run a container",
        ));
    }
    if let Some(f) = req.options.format.as_deref()
        && !FORMATS.contains(&f)
    {
        return Err(ErrorMessage::invalid_input(format!(
            "unknown format {f:?}; the tarball backend accepts {}",
            FORMATS.join(", ")
        )));
    }
    match req.plan.source.kind {
        SourceKind::Pipe => pipe(req, host),
        SourceKind::Freeze => crate::freeze::package(req, host),
    }
}

fn pipe(req: &ExecuteRequest, host: &Host<'_>) -> Result<ExecuteResult, ErrorMessage> {
    let plan = &req.plan;
    if plan.pipe.is_none() {
        return Err(ErrorMessage::invalid_input(
            "a pipe plan without its `pipe` section",
        ));
    }
    for a in &plan.backend.artifacts {
        if !matches!(
            a.kind,
            ArtifactKind::ContextArchive | ArtifactKind::OciArchive
        ) {
            return Err(ErrorMessage::unsupported(format!(
                "the tarball backend cannot produce a {:?} artifact ({}) for a pipe",
                a.kind, a.path
            )));
        }
    }
    let tar = TarOptions::from_env().map_err(errors::archive)?;
    let mut pending: Vec<Pending> = Vec::new();
    let mut notes = Vec::new();
    fault::point("tarball/start");
    if let Some(a) = plan.artifact(ArtifactKind::ContextArchive) {
        let path = artifact_path(req, &a.path);
        pending.push(context_archive::write(req, &path, tar, host)?);
        fault::point("tarball/context-written");
        host.check_cancelled()?;
    }
    if let Some(a) = plan.artifact(ArtifactKind::OciArchive) {
        let path = artifact_path(req, &a.path);
        let written = oci::write(req, &path, tar, host)?;
        fault::point("tarball/oci-written");
        host.check_cancelled()?;
        match &written.base {
            Some(b) => notes.push(format!("OCI base: {b}")),
            None => notes.push(
                "OCI base: scratch (pass --base FILE, an OCI or docker archive, for a base with a shell); the recipe's instructions are only in the context archive".to_string(),
            ),
        }
        notes.push(format!(
            "OCI image {} (manifest {}): load it with `podman load -i {}` or `skopeo copy oci-archive:{} ...`",
            plan.image.tag,
            written.manifest_digest,
            path.display(),
            path.display()
        ));
        pending.push(written.pending);
    }
    let oci = pending
        .iter_mut()
        .find(|p| p.kind == ArtifactKind::OciArchive);
    let pushed = crate::push::push(req, oci, host)?;
    // Every artifact is complete under its temporary name: rename them all.
    fault::point("tarball/before-commit");
    host.check_cancelled()?;
    let mut produced = Vec::new();
    for p in pending {
        produced.push(p.commit()?);
        fault::point("tarball/after-commit");
    }
    // Report in the plan's order.
    produced.sort_by_key(|p| {
        plan.backend
            .artifacts
            .iter()
            .position(|a| a.kind == p.kind)
            .unwrap_or(usize::MAX)
    });
    Ok(ExecuteResult {
        artifacts: produced,
        exit_code: None,
        notes,
        pushed,
    })
}

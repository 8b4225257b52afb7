//! Action `run`: run the built (or loaded) image with the plan's mounts, workdir and entrypoint plus
//! `options.args`, with no network unless `options.network` is `host`; report its exit code.

use std::fs::File;
use std::path::Path;

use kerblam_archive::ReplayArchive;
use kerblam_backend_api::confine::mount_dir;
use kerblam_backend_api::{ErrorMessage, ExecuteRequest, ExecuteResult, Host};

use super::errors;
use super::pipe::pipe;
use crate::{Engine, Mount, Network, RunOptions};

/// Runs the plan's image with `engine`.
pub fn run(
    engine: &Engine,
    req: &ExecuteRequest,
    host: &Host<'_>,
) -> Result<ExecuteResult, ErrorMessage> {
    let plan = &req.plan;
    let network = network(req.options.network.as_deref())?;
    let root = Path::new(&req.paths.root);
    let mounts = mounts(req, root)?;
    engine.check_available().map_err(errors::engine)?;
    let tag = &plan.image.tag;
    if !engine.image_exists(tag).map_err(errors::engine)? {
        let Some(archive) = &req.options.image_archive else {
            return Err(ErrorMessage::invalid_input(format!(
                "image {tag} is not in {}",
                engine.name()
            ))
            .with_help(
                "build it with `kerblam package`, load it with `docker load`/`podman load`, or replay an archive made with --embed-image",
            ));
        };
        let loaded = load(engine, Path::new(archive), host)?;
        if !engine.image_exists(tag).map_err(errors::engine)? {
            retag(engine, &loaded, tag)?;
        }
        if !engine.image_exists(tag).map_err(errors::engine)? {
            return Err(ErrorMessage::invalid_input(format!(
                "{archive} was loaded into {} but holds no image named {tag}",
                engine.name()
            )));
        }
    }
    host.check_cancelled()?;
    let opts = RunOptions {
        mounts,
        workdir: Some(plan.workdir.clone()),
        entrypoint: (!plan.entrypoint.is_empty()).then(|| plan.entrypoint.clone()),
        network,
        ..RunOptions::default()
    };
    host.info(&format!(
        "running {tag} with {} (network {})",
        engine.name(),
        network.as_arg()
    ));
    let cancelled = || host.is_cancelled();
    let code = engine
        .run_cancellable(tag, &req.options.args, &opts, &cancelled)
        .map_err(errors::engine)?;
    Ok(ExecuteResult {
        artifacts: vec![],
        exit_code: Some(code),
        notes: vec![],
    })
}

/// `none` (default) or `host`; a bridge is never used.
fn network(value: Option<&str>) -> Result<Network, ErrorMessage> {
    match value {
        None | Some("none") => Ok(Network::None),
        Some("host") => Ok(Network::Host),
        Some(other) => Err(ErrorMessage::invalid_input(format!(
            "unknown network {other:?}; expected \"none\" or \"host\""
        ))),
    }
}

/// The plan's mounts under `root`, creating missing host directories. A host path that is absolute
/// or climbs out of the root with `..` is refused; a symlink in the project (a data dir on another
/// disk) is followed. A replay's host has checked that none leaves its destination.
fn mounts(req: &ExecuteRequest, root: &Path) -> Result<Vec<Mount>, ErrorMessage> {
    let mut out = Vec::with_capacity(req.plan.mounts.len());
    for m in &req.plan.mounts {
        let host = mount_dir(root, &m.host).map_err(|e| {
            ErrorMessage::invalid_input(format!("refusing to mount {}: {e}", m.host))
        })?;
        out.push(Mount {
            host,
            container: m.container.clone(),
            read_only: m.read_only,
        });
    }
    Ok(out)
}

/// Loads an image archive: a replay archive's embedded `image.tar` (streamed and checked against its
/// checksum), or a `docker save`/`podman save` archive.
fn load(engine: &Engine, path: &Path, host: &Host<'_>) -> Result<Vec<String>, ErrorMessage> {
    host.info(&format!(
        "loading the image from {} into {}",
        path.display(),
        engine.name()
    ));
    if let Ok(archive) = ReplayArchive::open(path) {
        if !archive.has_image() {
            return Err(ErrorMessage::invalid_input(format!(
                "{} embeds no image (package it with --embed-image)",
                path.display()
            )));
        }
        let cancelled = || host.is_cancelled();
        let (mut out, mut input) = pipe(&cancelled);
        return std::thread::scope(|s| {
            let copier = s.spawn(move || match archive.copy_image_to(&mut out, None) {
                Ok(_) => {
                    out.finish();
                    Ok(())
                }
                Err(e) => {
                    let m = e.message().to_string();
                    out.fail(m);
                    Err(e)
                }
            });
            let loaded = engine.load(&mut input);
            drop(input);
            let copied = copier
                .join()
                .unwrap_or_else(|_| Err(kerblam_archive::Error::invalid("image copy panicked")));
            copied.map_err(errors::archive)?;
            loaded.map_err(errors::engine)
        });
    }
    let mut f = File::open(path).map_err(|e| {
        ErrorMessage::invalid_input(format!(
            "cannot open the image archive {}: {e}",
            path.display()
        ))
    })?;
    engine.load(&mut f).map_err(errors::engine)
}

/// `name` without a `localhost/` registry and a `:latest` tag, to compare image names across
/// engines (podman saves `process_exec` as `localhost/process_exec:latest`, docker keeps that
/// name when it loads it).
fn bare(name: &str) -> &str {
    let n = name.strip_prefix("localhost/").unwrap_or(name);
    n.strip_suffix(":latest").unwrap_or(n)
}

/// Tags the loaded image that is `tag` under another engine's naming as `tag` itself.
fn retag(engine: &Engine, loaded: &[String], tag: &str) -> Result<(), ErrorMessage> {
    let Some(found) = loaded.iter().find(|n| bare(n) == bare(tag)) else {
        return Ok(());
    };
    let mut cmd = engine.command();
    cmd.args(["tag", found, tag]);
    let out = crate::process::run_captured(&mut cmd, engine.name()).map_err(errors::engine)?;
    if !out.status.success() {
        return Err(errors::engine(crate::process::failed(
            &cmd,
            out.status,
            crate::process::output_tail(&out),
        )));
    }
    Ok(())
}

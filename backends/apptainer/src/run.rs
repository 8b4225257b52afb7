//! The `run` action: `apptainer run` of the plan's SIF with its data directories bound.

use std::path::{Path, PathBuf};

use kerblam_backend_api::confine::{mount_dir, relative};
use kerblam_backend_api::plan::ArtifactKind;
use kerblam_backend_api::{ErrorMessage, ExecuteRequest, ExecuteResult, Host};

use crate::error::Error;
use crate::package::Settings;
use crate::tool;

/// Whether `p` starts like a SIF file (the magic at byte 32).
pub fn is_sif(p: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 42];
    std::fs::File::open(p).is_ok_and(|mut f| f.read_exact(&mut head).is_ok())
        && &head[32..42] == b"SIF_MAGIC\0"
}

/// The SIF to run: `options.image_archive` when it is a SIF file (the host may pass a replay
/// archive there, which holds no SIF), else the plan's `sif` artifact under the root.
pub fn image_path(req: &ExecuteRequest) -> Result<PathBuf, Error> {
    if let Some(p) = &req.options.image_archive
        && is_sif(Path::new(p))
    {
        return Ok(PathBuf::from(p));
    }
    let a = req
        .plan
        .artifact(ArtifactKind::Sif)
        .ok_or(Error::NoSifArtifact)?;
    // Plain relative only; a replay's host has checked that it does not leave its destination.
    let root = Path::new(&req.paths.root);
    relative(root, &a.path).map_err(Error::SifPath)?;
    Ok(root.join(&a.path))
}

/// Carry out a `run` request.
pub fn run(
    req: &ExecuteRequest,
    host: &Host<'_>,
    settings: &Settings,
) -> Result<ExecuteResult, ErrorMessage> {
    let apptainer = settings.apptainer.as_deref().ok_or(Error::NoApptainer)?;
    let image = image_path(req)?;
    if !image.is_file() {
        return Err(Error::NoImage(image).into());
    }
    let root = Path::new(&req.paths.root);
    let mut binds = Vec::new();
    for m in &req.plan.mounts {
        // Plain relative paths only; a replay's host has checked that none leaves its destination.
        let host_dir = mount_dir(root, &m.host).map_err(|why| Error::MountRefused {
            host: m.host.clone(),
            why,
        })?;
        binds.push(tool::bind_spec(&host_dir, &m.container, m.read_only)?);
    }
    let mut notes = Vec::new();
    let root_user = !settings.identity.needs_fakeroot();
    let isolate = match req.options.network.as_deref() {
        None | Some("none") => {
            if !root_user {
                notes.push(
                    "apptainer can only isolate the network as root; the container shares the host network"
                        .to_string(),
                );
            }
            root_user
        }
        Some("host") => false,
        Some(other) => {
            return Err(Error::Network(other.to_string()).into());
        }
    };
    let args = tool::run_args(
        &image,
        &binds,
        isolate,
        req.options.confine,
        &req.options.args,
    );
    let done = tool::stream(apptainer, &args, Some(root), host)?;
    Ok(ExecuteResult {
        artifacts: vec![],
        exit_code: Some(done.code),
        notes,
        pushed: None,
    })
}

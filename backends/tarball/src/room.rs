//! Checks the tarball backend runs before it writes anything, beyond the plan's own preflights
//! (which the SDK runs first): no artifact may already exist (unless `force`), each artifact's
//! directory must be writable, and the filesystems must have room for what will be written, with
//! sizes known only at execution time (the kerblam executable, a base archive's layers, the OCI
//! layer blobs in the temporary directory). Failures carry the numbers and nothing is written.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use kerblam_backend_api::plan::{ArtifactKind, Preflight};
use kerblam_backend_api::preflight::{available_bytes, check as check_one};
use kerblam_backend_api::{ErrorMessage, ExecuteRequest};

use crate::package::artifact_path;

/// Tar overhead per entry (header + padding), rounded up.
const PER_ENTRY: u64 = 1536;

fn size(p: &str) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Bytes each artifact of the request needs, at most (uncompressed).
pub fn estimate(req: &ExecuteRequest) -> Vec<(ArtifactKind, PathBuf, u64)> {
    let plan = &req.plan;
    let kerblam = size(&req.paths.kerblam);
    let entries = plan.context.files.len() as u64 + plan.layers.len() as u64 + 16;
    let generated: u64 = plan
        .layers
        .iter()
        .map(|l| match &l.from {
            kerblam_backend_api::plan::LayerSource::Generated { text } => text.len() as u64,
            kerblam_backend_api::plan::LayerSource::Host { .. } => {
                plan.freeze.as_ref().map_or(0, |f| f.total_bytes)
            }
            _ => 0,
        })
        .sum();
    let layered = plan.context.total_bytes * 2 + kerblam + generated + entries * PER_ENTRY;
    plan.backend
        .artifacts
        .iter()
        .map(|a| {
            let bytes = match a.kind {
                ArtifactKind::ContextArchive => {
                    plan.context.total_bytes + kerblam + generated + 64 * 1024 + entries * PER_ENTRY
                }
                ArtifactKind::OciArchive => {
                    layered
                        + crate::oci::base_path(req)
                            .and_then(|p| std::fs::metadata(p).ok())
                            .map_or(0, |m| m.len())
                        + 1024 * 1024
                }
                ArtifactKind::Tarball => plan
                    .freeze
                    .as_ref()
                    .map_or(0, |f| f.total_bytes + f.total_files * PER_ENTRY),
                _ => 64 * 1024,
            };
            (a.kind, artifact_path(req, &a.path), bytes)
        })
        .collect()
}

fn device(p: &Path) -> Option<(u64, PathBuf)> {
    let at = p.ancestors().find(|a| a.exists())?;
    Some((std::fs::metadata(at).ok()?.dev(), at.to_path_buf()))
}

/// Runs the checks; the first failure is returned.
pub fn check(req: &ExecuteRequest) -> Result<(), ErrorMessage> {
    let plan = &req.plan;
    let refuse_as =
        |c: &Preflight, m: String| kerblam_backend_api::preflight::refusal(&[(c, m)], &[]);
    let space = Preflight::DiskSpace {
        path: String::new(),
        bytes: 0,
        why: String::new(),
    };
    let refuse = |m: String| refuse_as(&space, m);
    // Needs per filesystem: (device) -> (a path on it, bytes, what).
    let mut needs: Vec<(u64, PathBuf, u64, Vec<String>)> = Vec::new();
    let mut add = |p: &Path, bytes: u64, what: String| {
        if let Some((dev, at)) = device(p) {
            match needs.iter_mut().find(|n| n.0 == dev) {
                Some(n) => {
                    n.2 += bytes;
                    n.3.push(what);
                }
                None => needs.push((dev, at, bytes, vec![what])),
            }
        }
    };
    for (kind, path, bytes) in estimate(req) {
        if !req.options.force && path.symlink_metadata().is_ok() {
            return Err(ErrorMessage::invalid_input(format!(
                "{} already exists; nothing was written",
                path.display()
            ))
            .with_help("pass --force to overwrite it, or choose another output"));
        }
        let dir = path
            .parent()
            .unwrap_or(Path::new("/"))
            .to_string_lossy()
            .into_owned();
        let writable = Preflight::Writable { path: dir };
        check_one(&req.paths, &writable).map_err(|m| refuse_as(&writable, m))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        add(
            &path,
            bytes,
            format!("{name} ({kind:?}) up to {bytes} bytes"),
        );
        if kind == ArtifactKind::OciArchive {
            // Layer blobs are compressed into the temporary directory before the archive is written.
            let blobs = plan.context.total_bytes + size(&req.paths.kerblam);
            add(
                Path::new(&req.paths.temp_dir),
                blobs,
                format!("OCI layer blobs up to {blobs} bytes"),
            );
        }
    }
    for (_, at, bytes, what) in needs {
        let avail = available_bytes(&at)
            .map_err(|e| refuse(format!("cannot read free space at {}: {e}", at.display())))?;
        if avail < bytes {
            return Err(refuse(format!(
                "not enough disk space at {}: {bytes} bytes needed ({}), {avail} available",
                at.display(),
                what.join(", ")
            )));
        }
    }
    Ok(())
}

//! Freeze plans (a captured EESSI-style software environment) as three files:
//!
//! - the **tarball** (`Tarball` artifact): the plan's layers, i.e. the frozen trees at their absolute
//!   paths without the leading `/` (minus each layer's exclude patterns), compressed with zstd
//!   (`tar+zstd`, default, or a `.zst` path) or gzip (`tar+gzip`, or a `.gz`/`.tgz` path);
//!   The tarball also carries `kerblam-freeze/enter.sh` ([`crate::enter`]), which runs a command
//!   in the frozen environment from wherever the tarball was unpacked, the trees mounted at their
//!   original paths in a private namespace;
//! - **`activate.sh`** (`ActivateScript`): a copy of the plan's own `/kerblam-freeze/activate.sh`,
//!   which is also inside the tarball: sourced where the trees are at their original paths (in
//!   `enter.sh`'s shell, or after extracting the tarball at `/`) it loads the modules; anywhere
//!   else it fails, naming the missing prefix and pointing to `enter.sh`;
//! - the **metadata JSON** (`MetadataJson`, format `kerblam.freeze/v1`): the plan's `freeze`
//!   (module list, CPU target, prefix, trees), `image.labels` and `metadata` (author, version, ...)
//!   and the tarball's digest, with sorted keys.
//!
//! An OCI archive, when the plan asks for one, has the trees as layers ([`crate::oci`]).

use std::path::{Path, PathBuf};

use kerblam_archive::{DetTar, GzWriter, TarOptions};
use kerblam_backend_api::plan::{Artifact, ArtifactKind, FreezeInfo, LayerSource, PackagePlan};
use kerblam_backend_api::{ErrorMessage, ExecuteRequest, ExecuteResult, Host};

use crate::errors;
use crate::layer::{self, Excludes};
use crate::package::artifact_path;
use crate::pending::Pending;
use kerblam_backend_api::sdk::Reporter;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Codec {
    Zstd,
    Gzip,
}

fn codec(a: &Artifact) -> Result<Codec, ErrorMessage> {
    match a.format.as_deref() {
        Some("tar+zstd" | "tar.zst" | "zstd") => Ok(Codec::Zstd),
        Some("tar+gzip" | "tar.gz" | "gzip") => Ok(Codec::Gzip),
        Some(other) => Err(ErrorMessage::invalid_input(format!(
            "unknown tarball format {other:?} for {}; expected tar+zstd or tar+gzip",
            a.path
        ))),
        None if a.path.ends_with(".gz") || a.path.ends_with(".tgz") => Ok(Codec::Gzip),
        None => Ok(Codec::Zstd),
    }
}

/// Carries out a freeze plan.
pub fn package(req: &ExecuteRequest, host: &Host<'_>) -> Result<ExecuteResult, ErrorMessage> {
    let plan = &req.plan;
    let info = plan
        .freeze
        .as_ref()
        .ok_or_else(|| ErrorMessage::invalid_input("a freeze plan without its `freeze` section"))?;
    refuse_other_kinds(plan)?;
    let tar = TarOptions::from_env().map_err(errors::archive)?;
    let mut pending: Vec<Pending> = Vec::new();
    let mut notes = Vec::new();
    let mut tarball: Option<(String, String, u64)> = None;
    if let Some(a) = plan.artifact(ArtifactKind::Tarball) {
        let path = artifact_path(req, &a.path);
        let p = write_tarball(req, info, a, &path, tar, host)?;
        let (sha, bytes) = p.digest();
        let name = file_name(&path);
        tarball = Some((name, sha, bytes));
        pending.push(p);
        host.check_cancelled()?;
    }
    if let Some(a) = plan.artifact(ArtifactKind::ActivateScript) {
        let text = activate_text(plan, a)?;
        pending.push(small(req, a, text.as_bytes(), true)?);
    }
    if let Some(a) = plan.artifact(ArtifactKind::MetadataJson) {
        let json = metadata(plan, a, tarball.as_ref());
        pending.push(small(req, a, &json, false)?);
    }
    if let Some(a) = plan.artifact(ArtifactKind::OciArchive) {
        let written = crate::oci::write(req, &artifact_path(req, &a.path), tar, host)?;
        notes.push(format!(
            "OCI image {} (manifest {})",
            plan.image.tag, written.manifest_digest
        ));
        pending.push(written.pending);
    }
    let oci = pending
        .iter_mut()
        .find(|p| p.kind == ArtifactKind::OciArchive);
    let pushed = crate::push::push(req, oci, host)?;
    let mut produced = Vec::new();
    for p in pending {
        produced.push(p.commit()?);
    }
    produced.sort_by_key(|p| plan.backend.artifacts.iter().position(|a| a.kind == p.kind));
    Ok(ExecuteResult {
        artifacts: produced,
        exit_code: None,
        notes,
        pushed,
    })
}

/// Refuses an artifact of `plan`'s backend part that a freeze cannot give: anything but the
/// tarball, the activate script, the metadata JSON and the OCI archive.
fn refuse_other_kinds(plan: &PackagePlan) -> Result<(), ErrorMessage> {
    for a in &plan.backend.artifacts {
        if !matches!(
            a.kind,
            ArtifactKind::Tarball
                | ArtifactKind::ActivateScript
                | ArtifactKind::MetadataJson
                | ArtifactKind::OciArchive
        ) {
            return Err(ErrorMessage::unsupported(format!(
                "the tarball backend cannot produce a {:?} artifact ({}) for a freeze",
                a.kind, a.path
            )));
        }
    }
    Ok(())
}

/// The text of the `activate.sh` artifact `a`: the plan's own script (a generated `…/activate.sh`
/// layer, also inside the tarball), so that the two agree.
fn activate_text(plan: &PackagePlan, a: &Artifact) -> Result<String, ErrorMessage> {
    plan.layers
        .iter()
        .find_map(|l| match &l.from {
            LayerSource::Generated { text } if l.to.ends_with("/activate.sh") => Some(text.clone()),
            _ => None,
        })
        .ok_or_else(|| {
            ErrorMessage::invalid_input(format!(
                "the freeze plan of {} has no /kerblam-freeze/activate.sh layer to copy to {}",
                plan.name, a.path
            ))
        })
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn small(
    req: &ExecuteRequest,
    a: &Artifact,
    bytes: &[u8],
    executable: bool,
) -> Result<Pending, ErrorMessage> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let path = artifact_path(req, &a.path);
    let (mut file, mut w) = Pending::create(&path, req.options.force)?;
    w.write_all(bytes)
        .map_err(|e| errors::io("writing", file.final_path(), e))?;
    let mode = if executable { 0o755 } else { 0o644 };
    file.file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| errors::io("setting the mode of", &path, e))?;
    Pending::finish(a.kind, file, w)
}

fn write_tarball(
    req: &ExecuteRequest,
    info: &FreezeInfo,
    a: &Artifact,
    path: &Path,
    tar: TarOptions,
    host: &Host<'_>,
) -> Result<Pending, ErrorMessage> {
    let codec = codec(a)?;
    let reporter = Reporter::new(
        host,
        format!("writing {}", file_name(path)),
        info.total_bytes,
    );
    let callback = reporter.callback();
    let (file, writer) = Pending::create(path, req.options.force)?;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    let io_err = |e| errors::io("compressing", path, e);
    let cancel = || host.is_cancelled();
    let writer = match codec {
        Codec::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(writer, 3).map_err(io_err)?;
            enc.multithread(threads).map_err(io_err)?;
            let mut t = DetTar::new(enc, tar)
                .with_progress(Some(&callback))
                .with_cancel(Some(&cancel));
            let counts = layers(&mut t, req, host)?;
            reporter.done(counts.0, counts.1);
            t.finish()
                .map_err(errors::archive)?
                .finish()
                .map_err(io_err)?
        }
        Codec::Gzip => {
            let mut t = DetTar::new(GzWriter::new(writer, threads), tar)
                .with_progress(Some(&callback))
                .with_cancel(Some(&cancel));
            let counts = layers(&mut t, req, host)?;
            reporter.done(counts.0, counts.1);
            t.finish()
                .map_err(errors::archive)?
                .finish()
                .map_err(io_err)?
        }
    };
    Pending::finish(ArtifactKind::Tarball, file, writer)
}

/// Appends every plan layer at its destination (without the leading `/`), then
/// `kerblam-freeze/enter.sh`.
fn layers<W: std::io::Write>(
    t: &mut DetTar<'_, W>,
    req: &ExecuteRequest,
    host: &Host<'_>,
) -> Result<(u64, u64), ErrorMessage> {
    let root = Path::new(&req.paths.root);
    for l in &req.plan.layers {
        host.check_cancelled()?;
        let name = l.to.trim_start_matches('/');
        if name.is_empty() {
            return Err(ErrorMessage::invalid_input(
                "a freeze layer cannot replace `/`",
            ));
        }
        match &l.from {
            LayerSource::Host { path, exclude } => {
                let p = PathBuf::from(path);
                layer::tree(t, name, &p, &Excludes::new(&p, exclude)?)?;
            }
            LayerSource::Generated { text } => {
                t.append_bytes(name, text.as_bytes(), l.mode)
                    .map_err(errors::archive)?;
            }
            LayerSource::Kerblam => {
                t.append_file_with_mode(name, Path::new(&req.paths.kerblam), l.mode)
                    .map_err(errors::archive)?;
            }
            LayerSource::Context { path } => {
                layer::tree(t, name, &root.join(path), &Excludes::none())?;
            }
        }
    }
    t.append_bytes(
        crate::enter::PATH,
        crate::enter::script(&req.plan).as_bytes(),
        0o755,
    )
    .map_err(errors::archive)?;
    Ok(t.counts())
}

/// The metadata JSON of a freeze (format `kerblam.freeze/v1` unless the artifact names another):
/// the plan's `freeze` (prefix, CPU target, modules, trees, totals, help), `image.labels` and
/// `metadata` (author, version, description, created, kerblam version), the image name, and the
/// tarball's file name, size and digest. Pretty, keys sorted, final newline.
pub fn metadata(
    plan: &PackagePlan,
    artifact: &Artifact,
    tarball: Option<&(String, String, u64)>,
) -> Vec<u8> {
    let value = serde_json::json!({
        "format": artifact.format.as_deref().unwrap_or("kerblam.freeze/v1"),
        "name": plan.name,
        "image": plan.image.tag,
        "freeze": plan.freeze,
        "labels": plan.image.labels,
        "metadata": plan.metadata,
        "tarball": tarball.map(|(name, sha, bytes)| serde_json::json!({"file": name, "sha256": sha, "bytes": bytes})),
    });
    let mut s =
        serde_json::to_string_pretty(&kerblam_render::sorted(value)).expect("JSON serializes");
    s.push('\n');
    s.into_bytes()
}

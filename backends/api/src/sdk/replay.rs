//! Writing the plan's replay archive (`<pipe>.kerblam.tar`) from a plugin, with feature `replay`.
//!
//! Every backend that packages a pipe writes the same replay archive: the manifest, the image name,
//! the plan, the precious input data and a checksum list, in the layout the plan's artifact names
//! (`kerblam.replay/v2`, or Kerblam! 1.x's `kerblam-v1`). This module is the one implementation,
//! shared by the first-party plugins and open to third-party ones:
//!
//! - [`write`] does it all in one call (what a backend with nothing to add needs);
//! - [`start`], [`add_data`], [`signature`] and [`finish`] are the steps, for a backend that adds
//!   something of its own (the docker and podman backends embed the image before finishing).
//!
//! The archive is written under a temporary name next to its final path and renamed when complete,
//! so an error or a cancellation never leaves a partial archive under the final name.

use std::path::{Path, PathBuf};

use kerblam_archive::{Error, ErrorKind, ReplayContents, ReplayFormat, ReplayOptions, Signature};
/// The writer [`start`] returns, the tar options it takes, and what [`prepare`] returns.
pub use kerblam_archive::{FinishedArchive, ReplayWriter, TarOptions};
use kerblam_plan::{Artifact, ArtifactKind, PipeInfo};

use crate::sdk::progress::Reporter;
use crate::{ErrorMessage, ExecuteRequest, Host, ProducedArtifact};

/// An archive error as an error message: bad input stays "invalid input", the rest is a backend
/// failure; each gets a help line when there is an obvious fix.
pub fn archive_error(e: Error) -> ErrorMessage {
    if e.is_cancelled() {
        return ErrorMessage::cancelled();
    }
    let msg = e.message().to_string();
    match e.kind() {
        ErrorKind::InvalidInput | ErrorKind::InvalidArchive => ErrorMessage::invalid_input(msg),
        ErrorKind::Conflict => ErrorMessage::invalid_input(msg)
            .with_help("pass --force to overwrite, or choose another output"),
        ErrorKind::ChangedWhileReading => ErrorMessage::backend(msg).with_help(
            "something is writing to the project while it is packaged; wait for it and retry",
        ),
        ErrorKind::Io if e.is_no_space() => ErrorMessage::backend(msg).with_help(
            "the filesystem is full: free some space, or write elsewhere (`-o PATH` for the replay archive, TMPDIR for temporary files)",
        ),
        ErrorKind::Io => ErrorMessage::backend(msg),
    }
}

/// The absolute path of an artifact: as is when absolute, else under `paths.output_dir`.
pub fn artifact_path(req: &ExecuteRequest, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        Path::new(&req.paths.output_dir).join(p)
    }
}

/// The plan's pipe section, which a replay archive needs.
pub fn pipe(req: &ExecuteRequest) -> Result<&PipeInfo, ErrorMessage> {
    req.plan.pipe.as_ref().ok_or_else(|| {
        ErrorMessage::invalid_input(format!(
            "the plan of {} asks for a replay archive but describes no pipe",
            req.plan.name
        ))
    })
}

/// The replay archive layout the plan's artifact names (`kerblam.replay/v2` when unset).
pub fn format(artifact: &Artifact) -> Result<ReplayFormat, ErrorMessage> {
    ReplayFormat::from_option(artifact.format.as_deref()).map_err(archive_error)
}

/// Opens the plan's replay archive under its temporary name and writes the manifest, the image
/// name and the plan; the data follows with [`add_data`], and [`finish`] renames it into place.
/// Returns the writer and the archive's final path.
pub fn start(
    req: &ExecuteRequest,
    artifact: &Artifact,
    tar: TarOptions,
) -> Result<(ReplayWriter, PathBuf), ErrorMessage> {
    let plan = &req.plan;
    let pipe = pipe(req)?;
    let root = Path::new(&req.paths.root);
    let manifest_path = root.join(&plan.source.manifest);
    let manifest = std::fs::read(&manifest_path)
        .map_err(|e| archive_error(Error::io("reading", &manifest_path, e)))?;
    let plan_json = kerblam_render::plan_json(plan);
    let contents = ReplayContents {
        manifest: &manifest,
        image_name: &plan.image.tag,
        plan_json: Some(&plan_json),
        input_dir: &pipe.data.input,
    };
    let opts = ReplayOptions {
        format: format(artifact)?,
        tar,
        force: req.options.force,
        ..ReplayOptions::default()
    };
    let path = artifact_path(req, &artifact.path);
    let writer = ReplayWriter::create(&path, contents, opts).map_err(archive_error)?;
    Ok((writer, path))
}

/// Archives the plan's precious data, reporting progress and honouring cancellation.
pub fn add_data(
    writer: &mut ReplayWriter,
    req: &ExecuteRequest,
    host: &Host<'_>,
) -> Result<(), ErrorMessage> {
    let pipe = pipe(req)?;
    let root = Path::new(&req.paths.root);
    let files: Vec<&str> = pipe.precious.iter().map(|f| f.path.as_str()).collect();
    let total: u64 = pipe.precious.iter().map(|f| f.size).sum();
    let reporter = Reporter::new(host, "archiving precious data", total);
    let callback = reporter.callback();
    let cancel = || host.is_cancelled();
    writer
        .add_data_cancellable(root, &files, Some(&callback), Some(&cancel))
        .map_err(archive_error)?;
    reporter.done(total, files.len() as u64);
    host.check_cancelled()
}

/// `signature.json` when the request asks for one (`--sign`): git's user name and email, dated
/// `SOURCE_DATE_EPOCH` when set (`tar.mtime`), else now.
pub fn signature(req: &ExecuteRequest, tar: TarOptions) -> Result<Option<Vec<u8>>, ErrorMessage> {
    if !req.options.sign {
        return Ok(None);
    }
    let when = if tar.mtime != 0 {
        tar.mtime
    } else {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    };
    let sig = Signature::from_git(when).map_err(archive_error)?;
    Ok(Some(sig.to_json()))
}

/// Writes the checksums (and the signature), syncs and renames the archive into place.
pub fn finish(
    writer: ReplayWriter,
    signature: Option<&[u8]>,
) -> Result<ProducedArtifact, ErrorMessage> {
    commit(
        writer
            .finish_uncommitted(signature)
            .map_err(archive_error)?,
    )
}

/// Renames an archive completed with [`prepare`] (or [`ReplayWriter::finish_uncommitted`]) into
/// place.
pub fn commit(finished: FinishedArchive) -> Result<ProducedArtifact, ErrorMessage> {
    let written = finished.commit().map_err(archive_error)?;
    Ok(ProducedArtifact {
        kind: ArtifactKind::ReplayArchive,
        path: written.path.to_string_lossy().into_owned(),
        bytes: Some(written.bytes),
        sha256: Some(written.sha256),
    })
}

/// Writes the plan's replay archive, if it has one: [`start`], [`add_data`], [`signature`],
/// [`finish`]. File times are `SOURCE_DATE_EPOCH` when set, so the bytes are reproducible.
pub fn write(
    req: &ExecuteRequest,
    host: &Host<'_>,
) -> Result<Option<ProducedArtifact>, ErrorMessage> {
    let Some(artifact) = req.plan.artifact(ArtifactKind::ReplayArchive) else {
        return Ok(None);
    };
    let tar = TarOptions::from_env().map_err(archive_error)?;
    write_with(req, artifact, tar, host).map(Some)
}

/// [`write`] with chosen tar options (e.g. a fixed time).
pub fn write_with(
    req: &ExecuteRequest,
    artifact: &Artifact,
    tar: TarOptions,
    host: &Host<'_>,
) -> Result<ProducedArtifact, ErrorMessage> {
    commit(prepare(req, artifact, tar, host)?)
}

/// [`write_with`] up to, not including, the rename into place: for a backend that commits the
/// replay archive together with its other artifacts ([`commit`]), so that an error in between
/// leaves none of them under its final name.
pub fn prepare(
    req: &ExecuteRequest,
    artifact: &Artifact,
    tar: TarOptions,
    host: &Host<'_>,
) -> Result<FinishedArchive, ErrorMessage> {
    let sig = signature(req, tar)?;
    let (mut writer, _) = start(req, artifact, tar)?;
    add_data(&mut writer, req, host)?;
    writer
        .finish_uncommitted(sig.as_deref())
        .map_err(archive_error)
}

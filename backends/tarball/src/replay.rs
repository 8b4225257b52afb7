//! The replay archive, written by `kerblam-archive`'s [`ReplayWriter`]: the same implementation, format
//! and checksums as the docker and podman backends, with the image name the plan gives.

use std::path::Path;

use kerblam_archive::{
    ReplayContents, ReplayFormat, ReplayOptions, ReplayWriter, Signature, TarOptions,
};
use kerblam_backend_api::plan::{Artifact, ArtifactKind, PipeInfo};
use kerblam_backend_api::{ErrorMessage, ExecuteRequest, Host, ProducedArtifact};

use crate::errors;
use crate::progress::Reporter;

/// The replay archive layout the plan's artifact names (`kerblam.replay/v2` when unset).
pub fn format(artifact: &Artifact) -> Result<ReplayFormat, ErrorMessage> {
    ReplayFormat::from_option(artifact.format.as_deref()).map_err(errors::archive)
}

/// Opens the replay archive at its temporary name and writes the manifest, name and plan; the
/// data and the checksums follow in [`finish`].
pub fn start(
    req: &ExecuteRequest,
    pipe: &PipeInfo,
    artifact: &Artifact,
    final_path: &Path,
    tar: TarOptions,
) -> Result<ReplayWriter, ErrorMessage> {
    let plan = &req.plan;
    let root = Path::new(&req.paths.root);
    let manifest_path = root.join(&plan.source.manifest);
    let manifest =
        std::fs::read(&manifest_path).map_err(|e| errors::io("reading", &manifest_path, e))?;
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
    ReplayWriter::create(final_path, contents, opts).map_err(errors::archive)
}

/// Archives the precious data, signs when asked, and renames the archive into place.
pub fn finish(
    mut writer: ReplayWriter,
    req: &ExecuteRequest,
    pipe: &PipeInfo,
    tar: TarOptions,
    host: &Host<'_>,
) -> Result<ProducedArtifact, ErrorMessage> {
    let root = Path::new(&req.paths.root);
    let files: Vec<&str> = pipe.precious.iter().map(|f| f.path.as_str()).collect();
    let total: u64 = pipe.precious.iter().map(|f| f.size).sum();
    let reporter = Reporter::new(host, "archiving precious data", total);
    let callback = reporter.callback();
    let cancel = || host.is_cancelled();
    writer
        .add_data_cancellable(root, &files, Some(&callback), Some(&cancel))
        .map_err(errors::archive)?;
    host.check_cancelled()?;
    let signature = if req.options.sign {
        let sig = Signature::from_git(tar.mtime_or_now()).map_err(errors::archive)?;
        Some(sig.to_json())
    } else {
        None
    };
    let written = writer
        .finish(signature.as_deref())
        .map_err(errors::archive)?;
    reporter.done(written.data_bytes, written.data_files);
    Ok(ProducedArtifact {
        kind: ArtifactKind::ReplayArchive,
        path: written.path.to_string_lossy().into_owned(),
        bytes: Some(written.bytes),
        sha256: Some(written.sha256),
    })
}

trait MtimeOrNow {
    fn mtime_or_now(&self) -> u64;
}

impl MtimeOrNow for TarOptions {
    /// The signing time: `SOURCE_DATE_EPOCH` when it was set (mtime non-zero), else now.
    fn mtime_or_now(&self) -> u64 {
        if self.mtime != 0 {
            return self.mtime;
        }
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

//! Identifiers to cite: what kerblam records about each package and freeze, so that a paper can
//! name exactly what it ran and a reader can check that what they hold is that.
//!
//! Once a backend has carried out a plan, kerblam hashes every file the backend wrote itself (a
//! plugin's own checksum is compared with it, never believed: [`identify`]) and takes the image ID
//! an engine backend reports. It then
//!
//! - prints the identifiers, one per artifact ([`crate::execute::report`]);
//! - writes `ro-crate-metadata.json` (RO-Crate 1.1) and `CITATION.cff` beside the artifacts
//!   ([`record_beside`]), merged with what kerblam wrote there before, never over a file someone
//!   else wrote;
//! - for a package, puts the same crate, without the replay archive's own checksum (an archive
//!   cannot hold its own digest), inside the replay archive;
//! - and checks all of it again on demand (`kerblam verify`).
//!
//! An image cannot carry its own digest in a label either (the label is part of what is hashed):
//! its ID is recorded next to it, in the crate and the citation.

pub mod cff;
pub mod person;
pub mod ro_crate;
pub mod work;

use std::path::{Path, PathBuf};

use kerblam_backend_api::host::contract;
use kerblam_backend_api::{ExecuteResult, Paths};
use kerblam_plan::{ArtifactKind, PackagePlan};

use crate::exit::Exit;
use crate::output;

pub use person::Person;
pub use work::{Digested, ImageId, Work};

/// The identifiers of what a backend made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identified {
    /// The files, hashed by kerblam, in the order the backend reported them.
    pub files: Vec<Digested>,
    /// The engine image and its ID, if one was built.
    pub image: Option<ImageId>,
}

impl Identified {
    /// The identifier of the file at `path`.
    pub fn of(&self, path: &Path) -> Option<&Digested> {
        self.files.iter().find(|f| Path::new(&f.path) == path)
    }
}

/// Hashes each file the backend `backend` reported, and takes its image's ID. A file whose
/// content does not match the checksum the backend reported for it is a broken contract: the
/// error names both.
pub fn identify(backend: &str, paths: &Paths, result: &ExecuteResult) -> Result<Identified, Exit> {
    let mut out = Identified::default();
    for a in &result.artifacts {
        if a.kind == ArtifactKind::EngineImage {
            out.image = a.sha256.as_ref().map(|id| ImageId {
                tag: a.path.clone(),
                id: id.clone(),
            });
            continue;
        }
        let path = contract::artifact_path(paths, &a.path);
        let failed = |e: String| {
            Exit::failure(format!(
                "cannot compute the identifier of {}: {e}",
                path.display()
            ))
        };
        let sha =
            kerblam_compiler::digest::sha256_file(&path).map_err(|e| failed(e.to_string()))?;
        let bytes = std::fs::metadata(&path)
            .map_err(|e| failed(e.to_string()))?
            .len();
        if let Some(claimed) = &a.sha256 {
            let claimed_hex = claimed.strip_prefix("sha256:").unwrap_or(claimed);
            if !claimed_hex.eq_ignore_ascii_case(sha.trim_start_matches("sha256:")) {
                return Err(Exit::failure(format!(
                    "the backend {backend} reported the sha256 of {} as {claimed}, but its content hashes to {sha}\nhelp: this is a bug in the backend plugin; kerblam records only checksums it computed",
                    path.display()
                )));
            }
        }
        out.files.push(Digested {
            path: path.to_string_lossy().into_owned(),
            bytes: Some(bytes),
            sha256: sha,
            media_type: work::media_type(&a.path),
        });
    }
    Ok(out)
}

/// The date a plan's work carries: its creation time (a freeze's, or a pipe's under
/// `SOURCE_DATE_EPOCH`), else today (UTC).
pub fn date_of(plan: &PackagePlan) -> String {
    if let Some(c) = plan.metadata.created.as_deref().filter(|c| c.len() >= 10) {
        return c[..10].to_string();
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    kerblam_compiler::time::iso_date(kerblam_compiler::time::source_date_epoch().unwrap_or(now))
}

/// The pretty JSON of `work`'s crate, with the files under `dir` as its data entities.
pub fn crate_json(
    work: &Work,
    dir: Option<&Path>,
    existing: Option<&serde_json::Value>,
) -> Vec<u8> {
    let doc = ro_crate::describe(work, dir, existing);
    let mut text = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    text.push(b'\n');
    text
}

/// Writes `ro-crate-metadata.json` and `CITATION.cff` for `work` into `dir`, where its artifacts
/// are. A crate kerblam wrote there before is merged with; a crate or citation file someone else
/// wrote is left as it is, with a warning. Nothing here fails the command: the artifacts are made
/// and their identifiers printed whatever happens to these files. Returns the files written.
pub fn record_beside(work: &Work, dir: &Path) -> Vec<PathBuf> {
    let mut written = Vec::new();
    let crate_path = dir.join(ro_crate::FILE_NAME);
    let existing = match std::fs::read(&crate_path) {
        Ok(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(doc) if ro_crate::is_kerblams(&doc) => Some(Some(doc)),
            _ => {
                output::warn(format!(
                    "{} was not written by kerblam: it is left as it is, without {}",
                    crate_path.display(),
                    work.title
                ));
                None
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(None),
        Err(e) => {
            output::warn(format!("cannot read {}: {e}", crate_path.display()));
            None
        }
    };
    if let Some(existing) = existing {
        let text = crate_json(work, Some(dir), existing.as_ref());
        write(&crate_path, &text, &mut written);
    }
    let cff_path = dir.join(cff::FILE_NAME);
    match cff::render(work) {
        None => output::info(format!(
            "no {} for {}: it names no author (pass --author \"Name <email>\", or set git's user.name)",
            cff::FILE_NAME,
            work.title
        )),
        Some(text) => match std::fs::read_to_string(&cff_path) {
            Ok(old) if !cff::is_kerblams(&old) => output::warn(format!(
                "{} was not written by kerblam: it is left as it is; cite {} by the identifiers above",
                cff_path.display(),
                work.title
            )),
            _ => write(&cff_path, text.as_bytes(), &mut written),
        },
    }
    written
}

fn write(path: &Path, bytes: &[u8], written: &mut Vec<PathBuf>) {
    match crate::cmd::plan::write_atomic(path, bytes) {
        Ok(()) => written.push(path.to_path_buf()),
        Err(e) => output::warn(e),
    }
}

/// Prints where the identifiers were recorded and how to check them.
pub fn say_recorded(written: &[PathBuf], artifact: &Path) {
    if written.is_empty() {
        return;
    }
    let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    output::info(format!(
        "identifiers recorded in {}; check them with: kerblam verify {}",
        names.join(" and "),
        kerblam_compiler::sh_quote(&artifact.to_string_lossy())
    ));
}

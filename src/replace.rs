//! Which existing files a `kerblam package` or `kerblam freeze` may replace.
//!
//! Running `package` again replaces what the last run wrote, as Kerblam! 1.x does (its `package`
//! writes over `<pipe>.kerblam.tar`); a file at an output path that kerblam did not write is the
//! user's, and stays unless `--force`. What kerblam wrote is told from what it holds:
//!
//! - at the replay archive's path, an archive [`ReplayArchive::open`] reads (kerblam's, or one
//!   Kerblam! 1.x wrote);
//! - at the path of a backend's artifact, a file that already looks like its kind
//!   ([`contract::sniff`]: a tar archive for a context archive, a SIF for a SIF...), for the kinds
//!   a sniff can tell;
//! - for the others (a plain file, a script, a JSON file: any user's file of that name looks like
//!   one), and for any kind, a file that kerblam's `ro-crate-metadata.json` beside it records
//!   with its very sha256: kerblam wrote it, and nobody changed it since.
//!
//! The decision is made here, in the host, once for every backend: when every existing output is
//! kerblam's, the backend gets `force` in its `ExecuteOptions` (and the replay archive writer
//! too), and each writes under a temporary name renamed into place, so an output is replaced
//! whole or not at all.

use std::path::{Path, PathBuf};

use kerblam_archive::ReplayArchive;
use kerblam_backend_api::Paths;
use kerblam_backend_api::host::contract;
use kerblam_plan::{ArtifactKind, PackagePlan};

use crate::citation::ro_crate::{self, Crate};
use crate::exit::Exit;
use crate::output;

/// Whether the crate kerblam wrote beside `path` records it with the sha256 it has now.
fn recorded_by_kerblam(path: &Path) -> bool {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return false;
    };
    let Ok(bytes) = std::fs::read(dir.join(ro_crate::FILE_NAME)) else {
        return false;
    };
    let kerblams = serde_json::from_slice(&bytes).is_ok_and(|doc| ro_crate::is_kerblams(&doc));
    if !kerblams {
        return false;
    }
    let Some(recorded) = Crate::parse(&bytes)
        .ok()
        .and_then(|c| c.file_digest(&name.to_string_lossy()))
    else {
        return false;
    };
    kerblam_compiler::digest::sha256_file(path).is_ok_and(|now| now == recorded)
}

/// Whether the outputs of `plan` may be written over: `force` (the user's `--force`), or every
/// file already at an output path was written by kerblam. Errors (exit 2) naming the files that
/// were not, before anything is written.
pub fn decide(plan: &PackagePlan, paths: &Paths, force: bool) -> miette::Result<bool> {
    if force {
        return Ok(true);
    }
    let mut ours: Vec<PathBuf> = Vec::new();
    let mut foreign: Vec<String> = Vec::new();
    for a in plan.all_artifacts().filter(|a| a.kind.is_file()) {
        let path = contract::artifact_path(paths, &a.path);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let why = if meta.file_type().is_symlink() {
            Err("a symbolic link".to_string())
        } else if !meta.is_file() {
            Err("not a regular file".to_string())
        } else if a.kind == ArtifactKind::ReplayArchive {
            ReplayArchive::open(&path)
                .map(|_| ())
                .map_err(|_| "not a replay archive".to_string())
        } else if recorded_by_kerblam(&path) {
            Ok(())
        } else if matches!(
            a.kind,
            ArtifactKind::File | ArtifactKind::ActivateScript | ArtifactKind::MetadataJson
        ) {
            Err(format!(
                "kerblam has no record of writing it in the {} beside it",
                ro_crate::FILE_NAME
            ))
        } else {
            contract::sniff(&path, a.kind)
        };
        match why {
            Ok(()) => ours.push(path),
            Err(why) => foreign.push(format!("{} ({why})", path.display())),
        }
    }
    if !foreign.is_empty() {
        return Err(Exit::invalid(format!(
                "kerblam did not write what is at its output path, and does not replace it; nothing was written:\n  {}\nhelp: pass --force to replace it, or write elsewhere",
                foreign.join("\n  ")
            ))
        .into());
    }
    for p in &ours {
        output::info(format!(
            "replacing {}, written by an earlier run",
            p.display()
        ));
    }
    Ok(!ours.is_empty())
}

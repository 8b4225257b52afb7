//! Which existing files a `kerblam package` or `kerblam freeze` may replace.
//!
//! Running `package` again replaces what the last run wrote, as Kerblam! 1.x does (its `package`
//! writes over `<pipe>.kerblam.tar`); a file at an output path that kerblam did not write is the
//! user's, and stays unless `--force`. What kerblam wrote is told from what it holds:
//!
//! - at the replay archive's path, an archive [`ReplayArchive::open`] reads (kerblam's, or one
//!   Kerblam! 1.x wrote);
//! - at the path of a backend's artifact, a file that already looks like its kind
//!   ([`contract::sniff`]: a tar archive for a context archive, a SIF for a SIF...).
//!
//! The decision is made here, in the host, once for every backend: when every existing output is
//! kerblam's, the backend gets `force` in its `ExecuteOptions` (and the replay archive writer
//! too), and each writes under a temporary name renamed into place, so an output is replaced
//! whole or not at all.

use std::path::PathBuf;

use kerblam_archive::ReplayArchive;
use kerblam_backend_api::Paths;
use kerblam_backend_api::host::contract;
use kerblam_plan::{ArtifactKind, PackagePlan};

use crate::exit::{self, Exit};
use crate::output;

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
        } else {
            contract::sniff(&path, a.kind)
        };
        match why {
            Ok(()) => ours.push(path),
            Err(why) => foreign.push(format!("{} ({why})", path.display())),
        }
    }
    if !foreign.is_empty() {
        return Err(Exit {
            code: exit::INVALID,
            message: format!(
                "kerblam did not write what is at its output path, and does not replace it; nothing was written:\n  {}\nhelp: pass --force to replace it, or write elsewhere",
                foreign.join("\n  ")
            ),
        }
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

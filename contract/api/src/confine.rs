//! Paths that must stay under a root. A replayed plan comes from someone else's archive, so the
//! host directories it mounts and the files it names are taken only when they lie inside the
//! replay's destination: relative, without `..`, and not led outside by a symlink already there.

use std::path::{Component, Path, PathBuf};

use kerblam_plan::{ArtifactKind, PackagePlan};

/// Refuses a path that is absolute or climbs with `..`: only plain relative paths name something
/// under a root.
pub fn relative(root: &Path, rel: &str) -> Result<(), String> {
    let plain = Path::new(rel)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if plain {
        Ok(())
    } else {
        Err(format!(
            "{rel:?} is absolute or climbs out with `..`; only paths inside {} are allowed",
            root.display()
        ))
    }
}

/// `rel` under `root`, or why not: it is absolute, climbs with `..`, or an existing part of it is a
/// symlink that resolves outside `root`. The parts that do not exist yet are not created.
pub fn within(root: &Path, rel: &str) -> Result<PathBuf, String> {
    relative(root, rel)?;
    let real_root = root
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", root.display()))?;
    let path = real_root.join(rel);
    let existing = path
        .ancestors()
        .find(|a| a.symlink_metadata().is_ok())
        .unwrap_or(&real_root);
    let real = existing
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", existing.display()))?;
    if !real.starts_with(&real_root) {
        return Err(format!(
            "{rel:?} leads to {} through a symlink, outside {}",
            real.display(),
            real_root.display()
        ));
    }
    Ok(path)
}

/// The host directory of a mount: `rel` under `root` (plain relative, see [`relative`]), created
/// when missing, resolved. A symlink in the project is followed (data dirs on another disk are
/// common); a replay's host refuses plans whose mounts leave the destination ([`check_plan`])
/// before a backend runs.
pub fn mount_dir(root: &Path, rel: &str) -> Result<PathBuf, String> {
    relative(root, rel)?;
    let path = root.join(rel);
    std::fs::create_dir_all(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    path.canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", path.display()))
}

/// Checks every host path a run of a replayed plan under `root` uses: each mount's host directory
/// and the image file it runs (a SIF). The package step's outputs recorded in the plan (the replay
/// archive, which `-o` may have put anywhere, the context or OCI archives) are not opened by a
/// run, so they are not checked. The first offender is the error.
pub fn check_plan(plan: &PackagePlan, root: &Path) -> Result<(), String> {
    for m in &plan.mounts {
        within(root, &m.host).map_err(|e| format!("the mount of {}: {e}", m.container))?;
    }
    for a in plan.all_artifacts() {
        if a.kind == ArtifactKind::Sif {
            within(root, &a.path).map_err(|e| format!("the {:?} artifact: {e}", a.kind))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_paths_stay_and_the_rest_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir(root.join("data")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("out")).unwrap();
        std::os::unix::fs::symlink("data", root.join("inside")).unwrap();
        let real = root.canonicalize().unwrap();
        assert_eq!(within(root, "data/in").unwrap(), real.join("data/in"));
        assert_eq!(within(root, "./data").unwrap(), real.join("./data"));
        assert!(within(root, "inside/x").is_ok());
        for bad in ["/etc", "../x", "data/../../x", "out", "out/new/dir"] {
            let e = within(root, bad).unwrap_err();
            assert!(e.contains(bad.trim_end_matches("/new/dir")), "{bad}: {e}");
        }
    }

    #[test]
    fn a_mount_dir_is_created_and_follows_the_projects_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let (root, away) = (t.path().join("p"), t.path().join("scratch"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&away).unwrap();
        std::os::unix::fs::symlink(&away, root.join("data")).unwrap();
        let real = away.canonicalize().unwrap();
        assert_eq!(mount_dir(&root, "data/out").unwrap(), real.join("out"));
        assert!(real.join("out").is_dir());
        for bad in ["/etc", "../x"] {
            assert!(mount_dir(&root, bad).is_err(), "{bad}");
        }
        assert!(!t.path().join("x").exists());
    }
}

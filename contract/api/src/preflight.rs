//! Running a plan's [`Preflight`] checks, for backends: the SDK runs them before it calls
//! [`crate::Backend::execute`] (a backend may override [`crate::Backend::preflight`]).
//!
//! Disk-space checks whose paths are on the same filesystem are checked together: their bytes are
//! added up. A check at [`ENGINE_STORAGE`] or [`ENGINE_TMPDIR`] names a directory of a container
//! engine that only the backend driving it can resolve ([`names_engine_dir`]); [`check`] refuses it
//! unresolved, and the host leaves it to the backend.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use kerblam_plan::{ENGINE_STORAGE, ENGINE_TMPDIR, PackagePlan, Preflight};

use crate::{ErrorMessage, Paths};

/// Resolve a plan path: `$TMPDIR` is `paths.temp_dir`, absolute paths stay, others are joined to
/// `paths.root`.
pub fn resolve(paths: &Paths, p: &str) -> PathBuf {
    if p == "$TMPDIR" {
        return PathBuf::from(&paths.temp_dir);
    }
    if let Some(rest) = p.strip_prefix("$TMPDIR/") {
        return Path::new(&paths.temp_dir).join(rest);
    }
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        Path::new(&paths.root).join(path)
    }
}

/// Whether `check` is at a container engine's directory ([`ENGINE_STORAGE`], [`ENGINE_TMPDIR`],
/// or below one), which only the backend driving that engine can resolve.
pub fn names_engine_dir(check: &Preflight) -> bool {
    let path = match check {
        Preflight::DiskSpace { path, .. }
        | Preflight::Writable { path }
        | Preflight::FileExists { path } => path,
        Preflight::Tool { .. } => return false,
    };
    [ENGINE_STORAGE, ENGINE_TMPDIR].iter().any(|d| {
        path == d
            || path
                .strip_prefix(d)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// The nearest existing ancestor of `p` (itself included).
fn existing_ancestor(p: &Path) -> Option<&Path> {
    p.ancestors().find(|a| a.exists())
}

fn cstring(p: &Path) -> Option<CString> {
    CString::new(p.as_os_str().as_bytes()).ok()
}

/// Bytes available to an unprivileged user on the filesystem holding `p`.
pub fn available_bytes(p: &Path) -> std::io::Result<u64> {
    let c = cstring(p).ok_or_else(|| std::io::Error::other("path contains a NUL byte"))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid C string, st a valid out pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

fn writable(p: &Path) -> bool {
    // SAFETY: valid C string.
    cstring(p).is_some_and(|c| unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0)
}

/// Whether a program named `name` is on `PATH` (or is an existing path when it contains `/`).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exe = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_exe(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_exe(p))
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {} ({bytes} bytes)", UNITS[u])
    }
}

/// Run one check; `Err` carries the reason with the numbers. A check at a container engine's
/// directory ([`names_engine_dir`]) is an error: the backend driving the engine must resolve it.
pub fn check(paths: &Paths, check: &Preflight) -> Result<(), String> {
    if names_engine_dir(check) {
        return Err(format!(
            "{check:?} names a directory of the container engine, which only the backend driving that engine can resolve"
        ));
    }
    match check {
        Preflight::DiskSpace { path, bytes, why } => {
            let p = resolve(paths, path);
            let at = existing_ancestor(&p)
                .ok_or_else(|| format!("no existing directory above {}", p.display()))?;
            let avail = available_bytes(at)
                .map_err(|e| format!("cannot read free space at {}: {e}", at.display()))?;
            if avail < *bytes {
                return Err(format!(
                    "not enough disk space at {}: {} needed ({why}), {} available",
                    p.display(),
                    human(*bytes),
                    human(avail)
                ));
            }
            Ok(())
        }
        Preflight::Writable { path } => {
            let p = resolve(paths, path);
            let at = existing_ancestor(&p)
                .ok_or_else(|| format!("no existing directory above {}", p.display()))?;
            if !at.is_dir() {
                return Err(format!("{} is not a directory", at.display()));
            }
            if !writable(at) {
                return Err(format!("{} is not writable", at.display()));
            }
            Ok(())
        }
        Preflight::Tool { names } => {
            if names.iter().any(|n| find_tool(n).is_some()) {
                Ok(())
            } else {
                Err(format!("none of {} found on PATH", names.join(", ")))
            }
        }
        Preflight::FileExists { path } => {
            let p = resolve(paths, path);
            if p.exists() {
                Ok(())
            } else {
                Err(format!("{} does not exist", p.display()))
            }
        }
    }
}

/// Tar header and padding per entry, at most (a 512-byte header, up to 511 bytes of padding and a
/// 512-byte PAX header for long names), rounded up: what an archive of N entries adds to their
/// bytes.
pub const TAR_BYTES_PER_ENTRY: u64 = 1536;
/// Filesystem block rounding per entry, at most, when trees are written out as files.
pub const BLOCK_BYTES_PER_ENTRY: u64 = 4096;
/// Room for small files written next to the big ones (metadata, headers) and slack.
pub const SLACK_BYTES: u64 = 1024 * 1024;

/// Run every check of the plan, its own and its backend's; all failures are reported together as
/// one backend error.
pub fn check_all(plan: &PackagePlan, paths: &Paths) -> Result<(), ErrorMessage> {
    let checks: Vec<Preflight> = plan.all_preflight().cloned().collect();
    check_list(&checks, paths)
}

/// Run `checks` (see [`check_all`]). Disk-space checks on the same filesystem are added up: the
/// filesystem must hold all of them at once.
pub fn check_list(checks: &[Preflight], paths: &Paths) -> Result<(), ErrorMessage> {
    let failed = failures(checks, paths);
    if failed.is_empty() {
        Ok(())
    } else {
        Err(refusal(&failed, &[]))
    }
}

/// The checks of `checks` that fail, each with its reason, disk-space checks on one filesystem
/// added up as in [`check_list`]; for a backend that adds reasons of its own to the [`refusal`].
pub fn failures<'a>(checks: &'a [Preflight], paths: &Paths) -> Vec<(&'a Preflight, String)> {
    let mut failed: Vec<(&Preflight, String)> = Vec::new();
    // Disk-space checks by filesystem (device), with the first check of each group.
    let mut disks: Vec<(u64, &Preflight, Vec<DiskNeed<'_>>)> = Vec::new();
    for c in checks {
        let Preflight::DiskSpace { path, bytes, why } = c else {
            failed.extend(check(paths, c).err().map(|e| (c, e)));
            continue;
        };
        if names_engine_dir(c) {
            failed.extend(check(paths, c).err().map(|e| (c, e)));
            continue;
        }
        let p = resolve(paths, path);
        match existing_ancestor(&p).and_then(|a| std::fs::metadata(a).ok()) {
            Some(meta) => match disks.iter_mut().find(|d| d.0 == meta.dev()) {
                Some(d) => d.2.push((p, *bytes, why)),
                None => disks.push((meta.dev(), c, vec![(p, *bytes, why)])),
            },
            // Reported by `check` with its reason.
            None => failed.extend(check(paths, c).err().map(|e| (c, e))),
        }
    }
    for (_, c, needs) in &disks {
        failed.extend(disk_group(needs).err().map(|e| (*c, e)));
    }
    failed
}

/// The error for failed checks (each with its reason) and `extra` reasons of the backend's own: one
/// message with every reason, and a help line saying how to fix each kind of failure.
pub fn refusal(failed: &[(&Preflight, String)], extra: &[String]) -> ErrorMessage {
    let mut hints: Vec<&str> = Vec::new();
    for (c, _) in failed {
        let hint = fix(c);
        if !hints.contains(&hint) {
            hints.push(hint);
        }
    }
    let reasons: Vec<&str> = failed
        .iter()
        .map(|(_, e)| e.as_str())
        .chain(extra.iter().map(String::as_str))
        .collect();
    let help = if hints.is_empty() {
        "nothing was written; fix the above and retry".to_string()
    } else {
        format!("nothing was written; {}", hints.join("; "))
    };
    ErrorMessage::backend(format!("preflight failed: {}", reasons.join("; "))).with_help(help)
}

/// How to fix a failed check.
pub fn fix(check: &Preflight) -> &'static str {
    match check {
        Preflight::DiskSpace { .. } => {
            "free some space there, or write elsewhere (`-o PATH` for a replay archive, `-d DIR` for a freeze, TMPDIR for temporary files)"
        }
        Preflight::Writable { .. } => {
            "choose a destination you can write to (`-o PATH`, `-d DIR`), or fix its permissions"
        }
        Preflight::Tool { .. } => {
            "install the tool (Debian: `bash scripts/engines.sh install` installs docker, podman and squashfs-tools), or choose another --backend"
        }
        Preflight::FileExists { .. } => {
            "the plan names a file that is not there: recompile it (`kerblam plan`) from the tree as it is now"
        }
    }
}

/// A disk-space check resolved: the path, the bytes, why.
type DiskNeed<'a> = (PathBuf, u64, &'a str);

/// Checks the disk-space needs that fall on one filesystem, together.
fn disk_group(needs: &[DiskNeed<'_>]) -> Result<(), String> {
    let (first, _, _) = &needs[0];
    let at = existing_ancestor(first)
        .ok_or_else(|| format!("no existing directory above {}", first.display()))?;
    let avail = available_bytes(at)
        .map_err(|e| format!("cannot read free space at {}: {e}", at.display()))?;
    let total: u64 = needs.iter().map(|n| n.1).sum();
    if avail >= total {
        return Ok(());
    }
    if let [(p, bytes, why)] = needs {
        return Err(format!(
            "not enough disk space at {}: {} needed ({why}), {} available",
            p.display(),
            human(*bytes),
            human(avail)
        ));
    }
    let mut places: Vec<String> = Vec::new();
    for n in needs {
        let p = n.0.display().to_string();
        if !places.contains(&p) {
            places.push(p);
        }
    }
    // Each need keeps the words a single check uses ("H needed (why)").
    let parts: Vec<String> = needs
        .iter()
        .map(|(p, bytes, why)| format!("{}: {} needed ({why})", p.display(), human(*bytes)))
        .collect();
    Err(format!(
        "not enough disk space at {} (one filesystem): {} needed in all, {} available; {}",
        places.join(" and "),
        human(total),
        human(avail),
        parts.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(root: &Path) -> Paths {
        Paths {
            root: root.to_string_lossy().into_owned(),
            kerblam: String::new(),
            output_dir: root.to_string_lossy().into_owned(),
            temp_dir: root.to_string_lossy().into_owned(),
        }
    }

    fn disk(path: &str, bytes: u64) -> Preflight {
        Preflight::DiskSpace {
            path: path.into(),
            bytes,
            why: format!("{bytes} for {path}"),
        }
    }

    #[test]
    fn disk_checks_on_one_filesystem_are_added_up() {
        let t = std::env::temp_dir();
        let p = paths(&t);
        let avail = available_bytes(&t).unwrap();
        // Each fits alone; together they do not.
        let half = avail / 2 + avail / 4;
        let checks = [disk("$TMPDIR", half), disk("a/b", half)];
        for c in &checks {
            check(&p, c).unwrap();
        }
        let e = check_list(&checks, &p).unwrap_err().message;
        assert!(e.contains("(one filesystem)"), "{e}");
        assert!(e.contains(&format!("{half} for $TMPDIR")), "{e}");
        assert!(e.contains(&format!("{half} for a/b")), "{e}");
        assert!(
            e.contains(&format!("({} bytes) needed in all", 2 * half)),
            "{e}"
        );
        check_list(&checks[..1], &p).unwrap();
    }

    #[test]
    fn engine_dirs_are_left_to_the_backend() {
        let t = std::env::temp_dir();
        let p = paths(&t);
        for path in [
            "$ENGINE_STORAGE",
            "$ENGINE_TMPDIR",
            "$ENGINE_STORAGE/overlay2",
        ] {
            let c = disk(path, 1);
            assert!(names_engine_dir(&c), "{path}");
            let e = check(&p, &c).unwrap_err();
            assert!(e.contains("only the backend driving that engine"), "{e}");
            assert!(check_list(&[c], &p).is_err());
        }
        assert!(!names_engine_dir(&disk("$ENGINE_STORAGEX", 1)));
        assert!(!names_engine_dir(&disk("$TMPDIR", 1)));
    }
}

//! Giving what a run created back to the user who ran kerblam.
//!
//! A container that had to run as root (the pipe's `user: root`) leaves root-owned files in the
//! data directories it had mounted. Before such a run a backend takes a [`Snapshot`] of the
//! mounted host directories; afterwards [`Snapshot::created`] lists what the run created there
//! (a path that was absent before, or is another file now) and is not owned by the user, and
//! [`restore`] gives it to them with `lchown`. Device nodes are left out: owning one is owning the
//! device (the user can still delete them, from the directories that are theirs again). Nothing else is ever touched: not a file that was
//! there before the run (whoever owns it), not anything outside the mounted directories, and no
//! symlink is followed (a link is changed itself, never its target).
//!
//! `lchown` to another user needs root; a backend whose kerblam does not run as root has to do it
//! its own way (a container engine: a short container with only `CAP_CHOWN` given
//! [`Created::tops`]). Changing the owner clears a file's set-user-ID and set-group-ID bits, so a
//! set-user-ID root program that a root container left behind becomes the user's own.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::Owner;

/// The entries under some directories before a run: path → (device, inode, uid, gid).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    roots: Vec<PathBuf>,
    before: HashMap<PathBuf, (u64, u64, u32, u32)>,
}

/// What a run created and the user does not own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Created {
    /// Every such entry, parents before their children.
    pub all: Vec<PathBuf>,
    /// Those whose parent is not listed (a recursive change of these covers the rest, whose
    /// directories may not even be readable by a user who is not root).
    pub tops: Vec<PathBuf>,
}

impl Created {
    /// Whether the run left nothing to give back.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty() && self.tops.is_empty()
    }
}

impl Snapshot {
    /// Records every entry under `dirs` (resolved; a directory inside another one of them is
    /// walked once). Missing or unreadable directories are recorded as far as they can be read.
    pub fn take(dirs: &[PathBuf]) -> Snapshot {
        let mut roots: Vec<PathBuf> = dirs
            .iter()
            .map(|d| d.canonicalize().unwrap_or_else(|_| d.clone()))
            .collect();
        roots.sort();
        roots.dedup();
        let outer: Vec<PathBuf> = roots
            .iter()
            .filter(|r| !roots.iter().any(|o| o != *r && r.starts_with(o)))
            .cloned()
            .collect();
        let mut before = HashMap::new();
        for root in &outer {
            walk(root, &mut |p, m| {
                before.insert(p.to_path_buf(), key(m));
            });
        }
        Snapshot {
            roots: outer,
            before,
        }
    }

    /// The directories this snapshot covers.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// What exists now under the roots that did not before (a new path, another file at an old
    /// path, or an old file with another owner) and is not owned by `owner`'s uid and gid.
    pub fn created(&self, owner: Owner) -> Created {
        let mut out = Created::default();
        let mut listed: HashSet<PathBuf> = HashSet::new();
        for root in &self.roots {
            walk(root, &mut |p, m| {
                if self.before.get(p) == Some(&key(m)) {
                    return;
                }
                if m.uid() == owner.uid && m.gid() == owner.gid {
                    return;
                }
                // A device node is never given away: owning one is owning the device.
                let t = m.file_type();
                if t.is_block_device() || t.is_char_device() {
                    return;
                }
                if !p.parent().is_some_and(|d| listed.contains(d)) {
                    out.tops.push(p.to_path_buf());
                }
                listed.insert(p.to_path_buf());
                out.all.push(p.to_path_buf());
            });
        }
        out
    }
}

/// Gives every path of `created.all` to `owner` with `lchown` (never following a link). Returns
/// how many changed; the first error names its path.
pub fn restore(created: &Created, owner: Owner) -> Result<usize, String> {
    let mut n = 0;
    for p in &created.all {
        std::os::unix::fs::lchown(p, Some(owner.uid), Some(owner.gid))
            .map_err(|e| format!("cannot give {} to {}: {e}", p.display(), owner.spec()))?;
        n += 1;
    }
    Ok(n)
}

/// What tells a file from the one at its path before: its device and inode (which a new file may
/// reuse), and its owner (a file whose owner changed is not as it was).
fn key(m: &std::fs::Metadata) -> (u64, u64, u32, u32) {
    (m.dev(), m.ino(), m.uid(), m.gid())
}

/// Calls `f` for `root`'s entries, depth first, parents before children, without following
/// symlinks; directories that cannot be read are skipped (their own entry is still reported).
fn walk(root: &Path, f: &mut dyn FnMut(&Path, &std::fs::Metadata)) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        f(&p, &m);
        if m.is_dir() {
            walk(&p, f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Owner {
        // SAFETY: getuid/getgid cannot fail.
        unsafe {
            Owner {
                uid: libc::getuid(),
                gid: libc::getgid(),
            }
        }
    }

    #[test]
    fn lists_only_what_the_run_created_and_the_owner_does_not_own() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join("old")).unwrap();
        std::fs::write(out.join("kept.txt"), "k").unwrap();
        std::fs::write(out.join("replaced.txt"), "r").unwrap();
        let snap = Snapshot::take(&[dir.path().to_path_buf(), out.clone()]);
        assert_eq!(snap.roots(), [dir.path().canonicalize().unwrap()]);

        std::fs::create_dir_all(out.join("new/deep")).unwrap();
        std::fs::write(out.join("new/deep/f"), "f").unwrap();
        std::fs::write(out.join("old/g"), "g").unwrap();
        std::fs::write(out.join("kept.txt"), "changed in place").unwrap();
        std::fs::write(out.join("replaced.tmp"), "r2").unwrap();
        std::fs::rename(out.join("replaced.tmp"), out.join("replaced.txt")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", out.join("link")).unwrap();

        // Everything new is the test user's own: nothing to give back.
        assert!(snap.created(me()).is_empty());
        // As seen by another owner: what the run made, parents first; never kept.txt.
        let other = Owner {
            uid: me().uid + 1,
            gid: me().gid,
        };
        let c = snap.created(other);
        let rel = |v: &[PathBuf]| -> Vec<String> {
            v.iter()
                .map(|p| {
                    p.strip_prefix(dir.path().canonicalize().unwrap())
                        .unwrap()
                        .display()
                        .to_string()
                })
                .collect()
        };
        let mut all = rel(&c.all);
        all.sort();
        assert_eq!(
            all,
            [
                "out/link",
                "out/new",
                "out/new/deep",
                "out/new/deep/f",
                "out/old/g",
                "out/replaced.txt"
            ]
        );
        let mut tops = rel(&c.tops);
        tops.sort();
        assert_eq!(
            tops,
            ["out/link", "out/new", "out/old/g", "out/replaced.txt"]
        );
    }

    #[test]
    fn restore_changes_links_not_their_targets() {
        if me().uid != 0 {
            eprintln!("skipping: giving files to another user needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "t").unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        let snap = Snapshot::take(&[dir.path().join("d")]);
        let link = dir.path().join("d/link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        std::fs::write(dir.path().join("d/file"), "f").unwrap();
        let null = std::ffi::CString::new(
            dir.path()
                .join("d/null")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        // SAFETY: a valid C string; makes a /dev/null twin (root only).
        assert_eq!(
            unsafe { libc::mknod(null.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) },
            0
        );
        let user = Owner {
            uid: 4242,
            gid: 4343,
        };
        let c = snap.created(user);
        assert_eq!(restore(&c, user).unwrap(), 2);
        let l = std::fs::symlink_metadata(&link).unwrap();
        assert_eq!((l.uid(), l.gid()), (4242, 4343));
        let f = std::fs::metadata(dir.path().join("d/file")).unwrap();
        assert_eq!((f.uid(), f.gid()), (4242, 4343));
        let t = std::fs::metadata(&target).unwrap();
        assert_eq!(t.uid(), 0, "the link's target is not the run's");
        let n = std::fs::symlink_metadata(dir.path().join("d/null")).unwrap();
        assert_eq!(n.uid(), 0, "a device node is never given away");
    }
}

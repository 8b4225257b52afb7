//! A small tmpfs mounted for one test (needs root): a real filesystem that fills up.

use std::path::{Path, PathBuf};

/// A tmpfs mounted at a directory; unmounted when dropped.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs with `opts` (e.g. `size=4m`) at `dir`. Without root (or mount rights) it
    /// prints why and returns `None`, unless `KERBLAM_REQUIRE_ENGINES=1` (CI runs as root), where
    /// it panics instead.
    pub fn mount(dir: &Path, opts: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_path_buf())),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                crate::unavailable(format!("cannot mount a tmpfs (needs root): {why}"))
            }
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

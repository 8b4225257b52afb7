//! Files written under a temporary name in their final directory and renamed when complete.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Temporary files and staging directories this process has made and not yet removed or committed.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

pub(crate) fn register(path: &Path) {
    if let Ok(mut live) = LIVE.lock() {
        live.push(path.to_path_buf());
    }
}

pub(crate) fn unregister(path: &Path) {
    if let Ok(mut live) = LIVE.lock() {
        live.retain(|p| p != path);
    }
}

/// Removes every temporary archive (`<final>.tmp-<pid>-<n>`) and extraction staging directory
/// (`dest/.kerblam-replay-<pid>-<n>`) that this process still has, and returns how many it removed.
///
/// For a Ctrl-C handler (e.g. the `ctrlc` crate's thread) that exits the process without unwinding:
/// call this first so that no partial file or stray directory is left behind. (A Ctrl-C during the
/// short final rename phase of an extraction may leave some files already moved into place.)
pub fn remove_temporaries() -> usize {
    let paths = match LIVE.lock() {
        Ok(mut live) => std::mem::take(&mut *live),
        Err(_) => return 0,
    };
    let mut n = 0;
    for p in paths {
        let gone = match p.symlink_metadata() {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&p).is_ok(),
            Ok(_) => std::fs::remove_file(&p).is_ok(),
            Err(_) => false,
        };
        n += gone as usize;
    }
    n
}

/// Removes the temporaries of `final_path` (`<final>.tmp-<pid>-<n>`) left by kerblam processes
/// that no longer exist (killed with SIGKILL, say), and returns how many it removed. A temporary of
/// a live process, this one included, is never touched.
pub fn remove_stale_temporaries(final_path: &Path) -> usize {
    let (Some(dir), Some(name)) = (final_path.parent(), final_path.file_name()) else {
        return 0;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.tmp-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let Some((pid, n)) = rest.split_once('-') else {
            continue;
        };
        let (Ok(pid), true) = (pid.parse::<i32>(), n.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        let is_file = e.file_type().is_ok_and(|t| t.is_file());
        if is_file && pid > 0 && !process_alive(pid) && std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Whether a process with this id exists (signal 0 reaches it, or it exists but is not ours); this
/// process counts as alive.
pub fn process_alive(pid: i32) -> bool {
    if pid == std::process::id() as i32 {
        return true;
    }
    // SAFETY: kill with signal 0 only checks for the process.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The temporary name used for `final_path`: `<final>.tmp-<pid>-<n>` in the same directory.
pub fn temp_name(final_path: &Path) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = final_path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".tmp-{}-{n}", std::process::id()));
    final_path.with_file_name(name)
}

/// A file being written under a temporary name next to its final path. [`AtomicFile::commit`]
/// renames it into place; dropping it uncommitted removes the temporary file, so nothing partial is
/// ever left under the final name (nor, short of SIGKILL, under the temporary one).
#[derive(Debug)]
pub struct AtomicFile {
    final_path: PathBuf,
    temp_path: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    /// Creates the temporary file. Refuses when `final_path` exists and `force` is false.
    pub fn create(final_path: &Path, force: bool) -> Result<Self> {
        if final_path.file_name().is_none() {
            return Err(Error::input(format!(
                "{} is not a file path",
                final_path.display()
            )));
        }
        if !force && final_path.symlink_metadata().is_ok() {
            return Err(Error::new(
                crate::ErrorKind::Conflict,
                format!(
                    "{} already exists (use --force to overwrite it)",
                    final_path.display()
                ),
            ));
        }
        remove_stale_temporaries(final_path);
        let temp_path = temp_name(final_path);
        let file = OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .open(&temp_path)
            // Named by the file the user asked for: the temporary name is kerblam's business.
            .map_err(|e| Error::io("creating", final_path, e))?;
        register(&temp_path);
        Ok(AtomicFile {
            final_path: final_path.to_path_buf(),
            temp_path,
            file: Some(file),
        })
    }

    /// The open temporary file.
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("file is present until commit")
    }

    /// The temporary path. Messages for the user name [`AtomicFile::final_path`] instead.
    pub fn temp_path(&self) -> &Path {
        &self.temp_path
    }

    /// The final path.
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Syncs the file to disk and renames it to its final name.
    pub fn commit(mut self) -> Result<PathBuf> {
        let file = self.file.take().expect("file is present until commit");
        unregister(&self.temp_path);
        let guard = TempGuard(&self.temp_path);
        file.sync_all()
            .map_err(|e| Error::io("syncing", &self.final_path, e))?;
        drop(file);
        crate::fault::point("atomic/before-rename");
        std::fs::rename(&self.temp_path, &self.final_path)
            .map_err(|e| Error::io("renaming into place", &self.final_path, e))?;
        std::mem::forget(guard);
        crate::fault::point("atomic/after-rename");
        if let Some(dir) = self
            .final_path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(std::mem::take(&mut self.final_path))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.temp_path);
            unregister(&self.temp_path);
        }
    }
}

/// Removes the temporary file if the commit fails half-way (sync or rename error).
struct TempGuard<'a>(&'a Path);

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

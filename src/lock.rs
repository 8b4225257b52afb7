//! One `kerblam package` per project at a time.
//!
//! Two packages of the same project at once would build the same tag and write the same archive
//! names: the later rename silently wins, and an engine's tag may point at either build. So
//! `package` holds an exclusive `flock` on the project's `kerblam.toml` (advisory, on the file
//! kerblam already reads: no lock file is created, and the kernel releases it when the process
//! ends, SIGKILL included). A second run says it is waiting, then waits; Ctrl-C while waiting exits.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::{output, signals};

/// The held lock; released when dropped.
pub struct ProjectLock {
    _file: File,
}

/// Takes the lock on `manifest`, waiting (and saying so) while another kerblam holds it.
pub fn lock_project(manifest: &Path) -> miette::Result<ProjectLock> {
    let file = File::open(manifest)
        .map_err(|e| miette::miette!("cannot open {} to lock it: {e}", manifest.display()))?;
    let fd = file.as_raw_fd();
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(ProjectLock { _file: file });
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
        return Err(miette::miette!("cannot lock {}: {err}", manifest.display()));
    }
    output::info(format!(
        "waiting for another kerblam package of this project to finish (it holds a lock on {})",
        manifest.display()
    ));
    let _exit = signals::exit_on_signal();
    loop {
        // SAFETY: as above.
        if unsafe { libc::flock(fd, libc::LOCK_EX) } == 0 {
            return Ok(ProjectLock { _file: file });
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(miette::miette!("cannot lock {}: {err}", manifest.display()));
        }
    }
}

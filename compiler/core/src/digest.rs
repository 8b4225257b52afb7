//! SHA-256 of files, on all cores.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::Error;

/// `sha256:<hex>` of a byte slice.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// `sha256:<hex>` of a file's content, read in 256 KiB chunks into a buffer each thread keeps (a
/// fresh 256 KiB buffer per file is an mmap and munmap each: most of the cost for small files).
pub fn sha256_file(path: &Path) -> Result<String, Error> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    sha256_read(f, path)
}

/// [`sha256_file`] of the file `name` in the open directory `dir` (`openat`: the kernel looks up
/// one name, not every component of a long path). `path` names it in errors.
pub fn sha256_at(dir: &File, name: &std::ffi::OsStr, path: &Path) -> Result<String, Error> {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(name.as_bytes()).map_err(|_| {
        Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "a NUL in a file name"),
        )
    })?;
    // SAFETY: openat with a valid directory fd and a NUL-terminated name; the result is owned.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    };
    if fd < 0 {
        return Err(Error::io(path, std::io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    let f = unsafe { File::from_raw_fd(fd) };
    sha256_read(f, path)
}

fn sha256_read(mut f: File, path: &Path) -> Result<String, Error> {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 256 * 1024]);
    }
    let mut hasher = Sha256::new();
    BUF.with_borrow_mut(|buf| {
        loop {
            let n = f.read(buf).map_err(|e| Error::io(path, e))?;
            if n == 0 {
                return Ok(());
            }
            hasher.update(&buf[..n]);
        }
    })?;
    Ok(format!("sha256:{}", hex(&hasher.finalize())))
}

/// Hash many files in parallel; results in the same order as `paths`.
pub fn sha256_files(paths: &[std::path::PathBuf]) -> Result<Vec<String>, Error> {
    paths.par_iter().map(|p| sha256_file(p)).collect()
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

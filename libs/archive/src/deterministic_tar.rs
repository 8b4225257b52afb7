//! The deterministic tar writer shared by replay archives, build contexts and the tarball backend.
//!
//! Every header is normalised so that the same inputs give the same bytes on any machine:
//! GNU format, one fixed mtime for every entry ([`TarOptions::mtime`]), uid and gid 0, empty user
//! and group names, modes `0644`/`0755` (the executable bit is kept, everything else dropped),
//! `0777` for symlinks. Long names and link targets use GNU `././@LongLink` entries. Entry order is
//! the order of the calls; callers sort.
//!
//! Files are streamed from disk through a fixed buffer and hashed (SHA-256) on the way, so each input
//! file is read exactly once and never held in memory. A file whose size or modification time changes
//! while it is read is reported as [`ErrorKind::ChangedWhileReading`] naming the path; a half-written
//! file is never archived silently.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use crate::error::{Error, ErrorKind, Result};

/// A progress callback: `(bytes_done, files_done)`, cumulative. Called often (every buffer), so it
/// must be cheap; the CLI and plugins map it onto an indicatif bar.
pub type Progress<'a> = Option<&'a dyn Fn(u64, u64)>;

/// A cancel callback: returning true stops the work at the next buffer with
/// [`Error::cancelled`] (e.g. a plugin host's `is_cancelled`).
pub type Cancel<'a> = Option<&'a dyn Fn() -> bool>;

/// The buffer used when streaming files.
pub(crate) const CHUNK: usize = 1 << 20;

/// How headers are normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TarOptions {
    /// The mtime written on every entry, in seconds since the epoch.
    ///
    /// Choice (documented in the crate docs): the caller passes `SOURCE_DATE_EPOCH` when it is set,
    /// else **0**. Archives are therefore byte-identical for the same inputs even without
    /// `SOURCE_DATE_EPOCH`; original file mtimes are not preserved (extraction stamps files with the
    /// time they are written, which is what a make pipe wants for freshly replayed inputs).
    pub mtime: u64,
}

impl TarOptions {
    /// Options from the environment: `mtime` = `SOURCE_DATE_EPOCH` when set, else 0.
    pub fn from_env() -> Result<Self> {
        Ok(TarOptions {
            mtime: source_date_epoch()?.unwrap_or(0),
        })
    }
}

/// `SOURCE_DATE_EPOCH` parsed, `None` when unset or empty; an error naming the bad value otherwise.
pub fn source_date_epoch() -> Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
            Error::input(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a whole number of seconds since 1970-01-01"
            ))
        }),
        Err(_) => Ok(None),
    }
}

/// The normalised mode: `0755` for directories and for files with any executable bit, else `0644`.
pub fn normalise_mode(mode: u32, is_dir: bool) -> u32 {
    if is_dir || mode & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

/// What was archived for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Bytes of content.
    pub size: u64,
    /// SHA-256 of the content.
    pub sha256: [u8; 32],
}

/// A tar builder that writes normalised headers (see the module docs).
pub struct DetTar<'p, W: Write> {
    builder: tar::Builder<W>,
    opts: TarOptions,
    progress: Progress<'p>,
    bytes_done: u64,
    files_done: u64,
    out_name: String,
    cancel: Cancel<'p>,
}

impl<'p, W: Write> DetTar<'p, W> {
    /// A writer over `out`.
    pub fn new(out: W, opts: TarOptions) -> Self {
        let mut builder = tar::Builder::new(out);
        builder.mode(tar::HeaderMode::Deterministic);
        builder.follow_symlinks(false);
        DetTar {
            builder,
            opts,
            progress: None,
            bytes_done: 0,
            files_done: 0,
            out_name: "the tar stream".into(),
            cancel: None,
        }
    }

    /// Checks `cancel` before each entry and each buffer from now on.
    pub fn with_cancel(mut self, cancel: Cancel<'p>) -> Self {
        self.cancel = cancel;
        self
    }

    fn check_cancel(&self) -> Result<()> {
        match self.cancel {
            Some(c) if c() => Err(Error::cancelled()),
            _ => Ok(()),
        }
    }

    /// Names the output in error messages (e.g. the archive's temporary path), so that a full disk
    /// is reported against the file being written.
    pub fn with_output_name(mut self, name: impl Into<String>) -> Self {
        self.out_name = name.into();
        self
    }

    fn werr(&self, entry: &str, e: io::Error) -> Error {
        Error::io_context(format!("error writing {entry} to {}", self.out_name), e)
    }

    /// Reports progress to `progress` from now on.
    pub fn with_progress(mut self, progress: Progress<'p>) -> Self {
        self.progress = progress;
        self
    }

    /// `(bytes_done, files_done)` so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.bytes_done, self.files_done)
    }

    fn header(&self, kind: EntryType, mode: u32, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(self.opts.mtime);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn tick(&mut self, bytes: u64) {
        self.bytes_done += bytes;
        if let Some(p) = self.progress {
            p(self.bytes_done, self.files_done);
        }
    }

    /// Appends the regular file at `path` under `name`, streaming it and hashing it. Refuses anything
    /// that is not a regular file (FIFOs, devices, directories) and files that change while read.
    pub fn append_file(&mut self, name: &str, path: &Path) -> Result<Appended> {
        self.append_file_impl(name, path, None)
    }

    /// Like [`DetTar::append_file`], with the mode taken from `mode` instead of the file (still
    /// normalised: `0755` when any executable bit is set, else `0644`).
    pub fn append_file_with_mode(
        &mut self,
        name: &str,
        path: &Path,
        mode: u32,
    ) -> Result<Appended> {
        self.append_file_impl(name, path, Some(mode))
    }

    fn append_file_impl(&mut self, name: &str, path: &Path, mode: Option<u32>) -> Result<Appended> {
        self.check_cancel()?;
        // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| Error::io("opening", path, e))?;
        let before = file
            .metadata()
            .map_err(|e| Error::io("reading metadata of", path, e))?;
        if !before.is_file() {
            return Err(Error::input(format!(
                "{} is not a regular file (FIFOs, sockets, devices and directories cannot be archived as files)",
                path.display()
            )));
        }
        let size = before.len();
        let mode = normalise_mode(mode.unwrap_or(before.permissions().mode()), false);
        let mut header = self.header(EntryType::Regular, mode, size);
        let mut guarded = Guarded {
            file,
            path,
            expected: size,
            read: 0,
            hasher: Sha256::new(),
            progress: self.progress,
            cancel: self.cancel,
            base: (self.bytes_done, self.files_done),
        };
        let res = self.builder.append_data(
            &mut header,
            name,
            BufReader::with_capacity(CHUNK, &mut guarded),
        );
        res.map_err(|e| self.werr(name, e))?;
        let after = guarded
            .file
            .metadata()
            .map_err(|e| Error::io("reading metadata of", path, e))?;
        if after.len() != size || mtime(&after) != mtime(&before) {
            return Err(Error::new(
                ErrorKind::ChangedWhileReading,
                format!(
                    "{} changed while it was being archived (size {} -> {} bytes); not archiving a half-written file",
                    path.display(),
                    size,
                    after.len()
                ),
            ));
        }
        let sha256 = guarded.hasher.finalize().into();
        self.files_done += 1;
        self.tick(size);
        Ok(Appended { size, sha256 })
    }

    /// Appends in-memory bytes as a regular file with mode `mode` (normalised).
    pub fn append_bytes(&mut self, name: &str, data: &[u8], mode: u32) -> Result<Appended> {
        let mut header = self.header(
            EntryType::Regular,
            normalise_mode(mode, false),
            data.len() as u64,
        );
        self.builder
            .append_data(&mut header, name, data)
            .map_err(|e| self.werr(name, e))?;
        self.files_done += 1;
        self.tick(data.len() as u64);
        Ok(Appended {
            size: data.len() as u64,
            sha256: Sha256::digest(data).into(),
        })
    }

    /// Appends exactly `size` bytes read from `reader`. Fewer or more bytes is an error (the archive
    /// would be corrupt otherwise).
    pub fn append_reader(
        &mut self,
        name: &str,
        size: u64,
        mode: u32,
        reader: &mut dyn Read,
    ) -> Result<Appended> {
        let mut header = self.header(EntryType::Regular, normalise_mode(mode, false), size);
        let mut exact = Exact {
            inner: reader,
            expected: size,
            read: 0,
            hasher: Sha256::new(),
            name,
        };
        self.builder
            .append_data(&mut header, name, &mut exact)
            .map_err(|e| self.werr(name, e))?;
        let sha256 = exact.hasher.finalize().into();
        self.files_done += 1;
        self.tick(size);
        Ok(Appended { size, sha256 })
    }

    /// Appends a directory entry (mode `0755`).
    pub fn append_dir(&mut self, name: &str) -> Result<()> {
        let mut header = self.header(EntryType::Directory, 0o755, 0);
        let name = if name.ends_with('/') {
            name.to_string()
        } else {
            format!("{name}/")
        };
        self.builder
            .append_data(&mut header, &name, io::empty())
            .map_err(|e| self.werr(&name, e))
    }

    /// Appends a symlink `name -> target` (mode `0777`); long targets use GNU extensions.
    pub fn append_symlink(&mut self, name: &str, target: &str) -> Result<()> {
        let mut header = self.header(EntryType::Symlink, 0o777, 0);
        self.builder
            .append_link(&mut header, name, target)
            .map_err(|e| self.werr(name, e))?;
        self.files_done += 1;
        Ok(())
    }

    /// Appends the directory tree at `dir` under `prefix` (a relative path inside the archive; empty
    /// for the archive root): depth first, names in byte order, directories as `0755` entries,
    /// symlinks with the target read from disk (never followed), regular files streamed. A FIFO,
    /// socket or device, or a name that is not UTF-8, is an error naming the path. Used for frozen
    /// software trees and image layers.
    pub fn append_tree(&mut self, prefix: &str, dir: &Path) -> Result<()> {
        self.append_tree_impl(prefix, dir, None)
    }

    /// [`DetTar::append_tree`] leaving out what `exclude` matches: gitignore patterns relative to
    /// `dir`, matched against each entry (a symlink is never a directory), an excluded directory
    /// skipped whole. This is the matching the compiler measures frozen trees with, so the bytes
    /// written are the bytes the plan counted. A bad pattern is an input error naming it.
    pub fn append_tree_excluding(
        &mut self,
        prefix: &str,
        dir: &Path,
        exclude: &[String],
    ) -> Result<()> {
        if exclude.is_empty() {
            return self.append_tree_impl(prefix, dir, None);
        }
        let mut b = ignore::gitignore::GitignoreBuilder::new(dir);
        for pat in exclude {
            b.add_line(None, pat).map_err(|e| {
                Error::input(format!(
                    "exclude pattern {pat:?} of {} is invalid: {e}",
                    dir.display()
                ))
            })?;
        }
        let matcher = b
            .build()
            .map_err(|e| Error::input(format!("exclude patterns of {}: {e}", dir.display())))?;
        self.append_tree_impl(prefix, dir, Some(&matcher))
    }

    fn append_tree_impl(
        &mut self,
        prefix: &str,
        dir: &Path,
        exclude: Option<&ignore::gitignore::Gitignore>,
    ) -> Result<()> {
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() {
            self.append_dir(prefix)?;
        }
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(dir)
            .map_err(|e| Error::io("listing", dir, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(|e| Error::io("listing", dir, e))?;
        names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
        for name in names {
            let path = dir.join(&name);
            let meta = std::fs::symlink_metadata(&path)
                .map_err(|e| Error::io("reading metadata of", &path, e))?;
            let ft = meta.file_type();
            if exclude.is_some_and(|m| m.matched(&path, ft.is_dir()).is_ignore()) {
                continue;
            }
            let Some(name) = name.to_str() else {
                return Err(Error::input(format!(
                    "{} has a name that is not valid UTF-8",
                    path.display()
                )));
            };
            let inner = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}/{name}")
            };
            if ft.is_symlink() {
                let target =
                    std::fs::read_link(&path).map_err(|e| Error::io("reading link", &path, e))?;
                let target = target.to_str().ok_or_else(|| {
                    Error::input(format!(
                        "{} points to a target that is not valid UTF-8",
                        path.display()
                    ))
                })?;
                self.append_symlink(&inner, target)?;
            } else if ft.is_dir() {
                self.append_tree_impl(&inner, &path, exclude)?;
            } else if ft.is_file() {
                self.append_file(&inner, &path)?;
            } else {
                return Err(Error::input(format!(
                    "{} is a FIFO, socket or device; only files, directories and symlinks can be archived",
                    path.display()
                )));
            }
        }
        Ok(())
    }

    /// Writes the end-of-archive marker and returns the writer.
    pub fn finish(self) -> Result<W> {
        self.builder
            .into_inner()
            .map_err(|e| Error::io_context(format!("error finishing {}", self.out_name), e))
    }
}

impl<W: Write + Seek> DetTar<'_, W> {
    /// Appends a regular file whose size is not known in advance: `fill` writes the content, then the
    /// header is patched with the final size (the output must be seekable). Used for `data.tar.zst`
    /// and `image.tar` inside a replay archive.
    pub fn append_streamed<T>(
        &mut self,
        name: &str,
        mode: u32,
        fill: impl FnOnce(&mut dyn Write) -> Result<T>,
    ) -> Result<T> {
        let mut header = self.header(EntryType::Regular, normalise_mode(mode, false), 0);
        let context = format!("error writing {name} to {}", self.out_name);
        let mut entry = self
            .builder
            .append_writer(&mut header, name)
            .map_err(|e| Error::io_context(context.clone(), e))?;
        let out = fill(&mut entry)?;
        entry.finish().map_err(|e| Error::io_context(context, e))?;
        self.files_done += 1;
        Ok(out)
    }
}

fn mtime(m: &std::fs::Metadata) -> Option<SystemTime> {
    m.modified().ok()
}

/// Reads a file, hashing it, and fails when it yields fewer or more bytes than its size at open.
struct Guarded<'p, 'a> {
    file: File,
    path: &'a Path,
    expected: u64,
    read: u64,
    hasher: Sha256,
    progress: Progress<'p>,
    cancel: Cancel<'p>,
    base: (u64, u64),
}

impl Read for Guarded<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.is_some_and(|c| c()) {
            return Err(Error::cancelled().into_io());
        }
        if self.read == self.expected {
            let mut probe = [0u8; 1];
            let extra = self
                .file
                .read(&mut probe)
                .map_err(|e| Error::io("reading", self.path, e).into_io())?;
            if extra > 0 {
                return Err(Error::new(
                    ErrorKind::ChangedWhileReading,
                    format!(
                        "{} grew past its size of {} bytes while being archived; not archiving a half-written file",
                        self.path.display(),
                        self.expected
                    ),
                )
                .into_io());
            }
            return Ok(0);
        }
        let want = buf
            .len()
            .min((self.expected - self.read).min(usize::MAX as u64) as usize);
        let n = self
            .file
            .read(&mut buf[..want])
            .map_err(|e| Error::io("reading", self.path, e).into_io())?;
        if n == 0 {
            return Err(Error::new(
                ErrorKind::ChangedWhileReading,
                format!(
                    "{} shrank to {} bytes from {} while being archived; not archiving a half-written file",
                    self.path.display(),
                    self.read,
                    self.expected
                ),
            )
            .into_io());
        }
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        if let Some(p) = self.progress {
            p(self.base.0 + self.read, self.base.1);
        }
        Ok(n)
    }
}

/// Reads exactly `expected` bytes from `inner`, hashing them.
struct Exact<'a> {
    inner: &'a mut dyn Read,
    expected: u64,
    read: u64,
    hasher: Sha256,
    name: &'a str,
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read == self.expected {
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? > 0 {
                return Err(Error::input(format!(
                    "{}: the source gave more than the announced {} bytes",
                    self.name, self.expected
                ))
                .into_io());
            }
            return Ok(0);
        }
        let want = buf
            .len()
            .min((self.expected - self.read).min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(Error::input(format!(
                "{}: the source ended after {} of the announced {} bytes",
                self.name, self.read, self.expected
            ))
            .into_io());
        }
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

//! Building one OCI layer: a deterministic tar of files, compressed (gzip or zstd) into a temporary
//! blob file while both digests are computed (the compressed one names the blob, the uncompressed
//! one is the config's `diff_id`).
//!
//! Parent directories of the files are not written as entries: engines create missing parents
//! (0755), and writing `usr/` over a base whose `usr` or `bin` is a symlink (merged-`/usr`) would
//! replace that symlink with a directory. Trees copied from the host ([`Item::Tree`]) keep their own
//! directories, symlinks and executable bits.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use kerblam_archive::{DetTar, GzWriter, TarOptions, hex};
use kerblam_backend_api::ErrorMessage;

use crate::errors;
use crate::pending::HashWriter;
use kerblam_backend_api::sdk::Reporter;

/// How layers are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `tar+gzip` (deterministic parallel gzip, level 6).
    Gzip,
    /// `tar+zstd` (level 3).
    Zstd,
}

/// One entry of a layer.
pub enum Item<'a> {
    /// A host file stored at `name` with `mode` (normalised).
    File {
        /// The path in the image, relative (no leading `/`).
        name: String,
        /// The file on the host.
        path: PathBuf,
        /// Its mode.
        mode: u32,
        /// The size the plan expects, checked after reading (the file changed since the plan).
        expect: Option<u64>,
    },
    /// In-memory bytes.
    Bytes {
        /// The path in the image.
        name: String,
        /// The content.
        data: &'a [u8],
        /// Its mode.
        mode: u32,
    },
    /// A symlink.
    Symlink {
        /// The path in the image.
        name: String,
        /// Its target.
        target: String,
    },
    /// A host directory tree stored under `name`, walked in sorted order.
    Tree {
        /// The path in the image.
        name: String,
        /// The directory on the host.
        path: PathBuf,
        /// What to leave out.
        excludes: Excludes,
    },
}

/// A finished layer blob in a temporary file (removed on drop).
pub struct Blob {
    /// The temporary file.
    pub path: PathBuf,
    /// Its size (compressed).
    pub size: u64,
    /// The hex SHA-256 of the compressed blob.
    pub digest: String,
    /// The hex SHA-256 of the uncompressed tar.
    pub diff_id: String,
    /// Files in the layer.
    pub files: u64,
}

impl Drop for Blob {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `items` as a layer blob in `temp_dir`.
pub fn build(
    items: &[Item<'_>],
    temp_dir: &Path,
    compression: Compression,
    tar: TarOptions,
    reporter: &Reporter<'_>,
    cancel: &dyn Fn() -> bool,
) -> Result<Blob, ErrorMessage> {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = temp_dir.join(format!("kerblam-oci-layer-{}-{n}.tmp", std::process::id()));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| errors::io("creating the temporary layer", &path, e))?;
    // From here on, dropping `blob` removes the file.
    let mut blob = Blob {
        path,
        size: 0,
        digest: String::new(),
        diff_id: String::new(),
        files: 0,
    };
    let outer = HashWriter::new(BufWriter::with_capacity(1 << 20, file));
    let io_err = |e| errors::io("compressing the layer", &blob.path, e);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    let callback = reporter.callback();
    let (outer, files, diff_id) = match compression {
        Compression::Gzip => {
            let enc = GzWriter::new(outer, threads);
            let (enc, files, diff) =
                write_items(HashWriter::new(enc), items, tar, &callback, cancel)?;
            (enc.finish().map_err(io_err)?, files, diff)
        }
        Compression::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(outer, 3).map_err(io_err)?;
            enc.multithread(threads).map_err(io_err)?;
            let (enc, files, diff) =
                write_items(HashWriter::new(enc), items, tar, &callback, cancel)?;
            (enc.finish().map_err(io_err)?, files, diff)
        }
    };
    let (mut buf, size, digest) = outer.finish();
    buf.flush()
        .map_err(|e| errors::io("writing", &blob.path, e))?;
    blob.size = size;
    blob.digest = hex(&digest);
    blob.diff_id = hex(&diff_id);
    blob.files = files;
    Ok(blob)
}

fn write_items<W: Write>(
    out: HashWriter<W>,
    items: &[Item<'_>],
    tar: TarOptions,
    progress: &dyn Fn(u64, u64),
    cancel: &dyn Fn() -> bool,
) -> Result<(W, u64, [u8; 32]), ErrorMessage> {
    let mut t = DetTar::new(out, tar)
        .with_progress(Some(progress))
        .with_cancel(Some(cancel));
    for item in items {
        match item {
            Item::File {
                name,
                path,
                mode,
                expect,
            } => {
                let got = t
                    .append_file_with_mode(name, path, *mode)
                    .map_err(errors::archive)?;
                if let Some(want) = expect
                    && *want != got.size
                {
                    return Err(errors::archive(kerblam_archive::Error::new(
                        kerblam_archive::ErrorKind::ChangedWhileReading,
                        format!(
                            "{} changed since the plan was made ({want} bytes planned, {} found); re-run the command",
                            path.display(),
                            got.size
                        ),
                    )));
                }
            }
            Item::Bytes { name, data, mode } => {
                t.append_bytes(name, data, *mode).map_err(errors::archive)?;
            }
            Item::Symlink { name, target } => {
                t.append_symlink(name, target).map_err(errors::archive)?;
            }
            Item::Tree {
                name,
                path,
                excludes,
            } => tree(&mut t, name, path, excludes)?,
        }
    }
    let files = t.counts().1;
    let hw = t.finish().map_err(errors::archive)?;
    let (inner, _, diff) = hw.finish();
    Ok((inner, files, diff))
}

/// Patterns (gitignore syntax) relative to a tree's root, compiled.
pub struct Excludes(Option<ignore::gitignore::Gitignore>);

impl Excludes {
    /// No exclusions.
    pub fn none() -> Excludes {
        Excludes(None)
    }

    /// Compiles `patterns` for the tree at `root`; a bad pattern is an error naming it.
    pub fn new(root: &Path, patterns: &[String]) -> Result<Excludes, ErrorMessage> {
        if patterns.is_empty() {
            return Ok(Excludes(None));
        }
        let mut b = ignore::gitignore::GitignoreBuilder::new(root);
        for p in patterns {
            b.add_line(None, p).map_err(|e| {
                ErrorMessage::invalid_input(format!(
                    "exclude pattern {p:?} of {} is invalid: {e}",
                    root.display()
                ))
            })?;
        }
        let gi = b.build().map_err(|e| {
            ErrorMessage::invalid_input(format!("exclude patterns of {}: {e}", root.display()))
        })?;
        Ok(Excludes(Some(gi)))
    }

    fn excluded(&self, path: &Path, is_dir: bool) -> bool {
        self.0
            .as_ref()
            .is_some_and(|g| g.matched(path, is_dir).is_ignore())
    }
}

/// Appends the tree at `dir` under `name`: directories, files and symlinks, sorted by name, minus
/// what `excludes` matches. Anything else (sockets, FIFOs, devices) is refused with its path.
pub fn tree<W: Write>(
    t: &mut DetTar<'_, W>,
    name: &str,
    dir: &Path,
    excludes: &Excludes,
) -> Result<(), ErrorMessage> {
    use std::os::unix::fs::PermissionsExt;
    let meta = dir
        .symlink_metadata()
        .map_err(|e| errors::io("reading", dir, e))?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(dir).map_err(|e| errors::io("reading the link", dir, e))?;
        return t
            .append_symlink(name, &target.to_string_lossy())
            .map_err(errors::archive);
    }
    if meta.is_file() {
        return t
            .append_file_with_mode(name, dir, meta.permissions().mode())
            .map(|_| ())
            .map_err(errors::archive);
    }
    if !meta.is_dir() {
        return Err(ErrorMessage::invalid_input(format!(
            "{} is not a file, directory or symlink; it cannot be archived",
            dir.display()
        )));
    }
    if !name.is_empty() {
        t.append_dir(name).map_err(errors::archive)?;
    }
    let mut children: Vec<(String, PathBuf, bool)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| errors::io("listing", dir, e))? {
        let entry = entry.map_err(|e| errors::io("listing", dir, e))?;
        let file_name = entry.file_name();
        let Some(s) = file_name.to_str() else {
            return Err(ErrorMessage::invalid_input(format!(
                "{} has a name that is not UTF-8",
                entry.path().display()
            )));
        };
        let is_dir = entry.file_type().is_ok_and(|f| f.is_dir());
        if excludes.excluded(&entry.path(), is_dir) {
            continue;
        }
        children.push((s.to_string(), entry.path(), is_dir));
    }
    children.sort();
    for (child, path, _) in children {
        let sub = if name.is_empty() {
            child
        } else {
            format!("{name}/{child}")
        };
        tree(t, &sub, &path, excludes)?;
    }
    Ok(())
}

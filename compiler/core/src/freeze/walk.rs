//! Measuring the frozen trees after excludes, with the same matching the backends use when they
//! copy them (gitignore patterns relative to the tree root, an excluded directory is skipped whole,
//! symlinks are entries and are not followed).

use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::Error;

/// What a tree holds after excludes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeSize {
    /// Regular files and symlinks.
    pub files: u64,
    /// Directories, the root included.
    pub dirs: u64,
    /// Bytes of the regular files.
    pub bytes: u64,
}

/// A matcher for `exclude` relative to `root`.
pub fn matcher(root: &Path, exclude: &[String]) -> Result<Gitignore, String> {
    let mut b = GitignoreBuilder::new(root);
    for pat in exclude {
        b.add_line(None, pat)
            .map_err(|e| format!("invalid exclude pattern {pat:?}: {e}"))?;
    }
    b.build()
        .map_err(|e| format!("invalid exclude patterns: {e}"))
}

/// Visit every entry of the tree at `root` that survives `exclude`, in sorted order, calling
/// `f(path, metadata)`; the root itself is not visited. A file `root` is visited alone.
pub fn visit(
    root: &Path,
    exclude: &[String],
    mut f: impl FnMut(&Path, &std::fs::Metadata),
) -> Result<(), Error> {
    let meta = root.symlink_metadata().map_err(|e| Error::io(root, e))?;
    if !meta.is_dir() {
        f(root, &meta);
        return Ok(());
    }
    let m = matcher(root, exclude).map_err(|message| Error::InvalidOption {
        option: "exclude".into(),
        message,
        help: None,
    })?;
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(&dir, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| Error::io(&dir, e))?;
        entries.sort_by_key(|e| e.file_name());
        let mut subdirs = Vec::new();
        for e in entries {
            let p = e.path();
            let md = p.symlink_metadata().map_err(|e| Error::io(&p, e))?;
            if m.matched(&p, md.is_dir()).is_ignore() {
                continue;
            }
            f(&p, &md);
            if md.is_dir() {
                subdirs.push(p);
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(())
}

/// Measure the tree at `root` (a directory or a single file) after `exclude`.
pub fn measure(root: &Path, exclude: &[String]) -> Result<TreeSize, Error> {
    let mut size = TreeSize::default();
    if root
        .symlink_metadata()
        .map_err(|e| Error::io(root, e))?
        .is_dir()
    {
        size.dirs = 1;
    }
    visit(root, exclude, |_, md| {
        if md.is_dir() {
            size.dirs += 1;
        } else {
            size.files += 1;
            if md.is_file() {
                size.bytes += md.len();
            }
        }
    })?;
    Ok(size)
}

/// The paths (relative to `root`, `/`-separated) of the non-directory entries that survive
/// `exclude`, sorted. For a file `root`, its own name.
pub fn list_files(root: &Path, exclude: &[String]) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    visit(root, exclude, |p, md| {
        if !md.is_dir() {
            let rel = p.strip_prefix(root).unwrap_or(p);
            let rel = if rel.as_os_str().is_empty() {
                p.file_name().map(PathBuf::from).unwrap_or_default()
            } else {
                rel.to_path_buf()
            };
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    })?;
    out.sort();
    Ok(out)
}

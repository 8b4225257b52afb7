//! Writing a build context (the project without its data, plus generated files) as a tar stream.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use kerblam_plan::Context;

use crate::deterministic_tar::{DetTar, Progress, TarOptions};
use crate::error::{Error, Result};
use crate::paths::safe_relative;

/// Where the content of a generated context entry comes from.
pub enum ExtraSource<'a> {
    /// In-memory bytes (a generated Containerfile, the replay script).
    Bytes(&'a [u8]),
    /// A file on disk (the kerblam executable), streamed.
    File(&'a Path),
    /// A directory tree on disk (a frozen software tree), streamed under the entry's path with
    /// [`DetTar::append_tree_excluding`]: what `exclude` matches (gitignore patterns relative to
    /// `path`) is left out.
    Tree {
        /// The directory.
        path: &'a Path,
        /// Patterns left out.
        exclude: &'a [String],
    },
}

/// A file added to a build context on top of the plan's context files.
pub struct ExtraEntry<'a> {
    /// Its path inside the context, `/`-separated, relative.
    pub path: &'a str,
    /// Its content.
    pub source: ExtraSource<'a>,
    /// Its mode before normalisation (only the executable bit matters).
    pub mode: u32,
}

/// What [`write_build_context`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextSummary {
    /// Entries written (files and symlinks).
    pub files: u64,
    /// Content bytes written.
    pub bytes: u64,
}

/// Streams a build context as a deterministic tar into `out`: every file of `context` (paths relative
/// to `plan_root/context.root`, symlinks kept as symlinks with the plan's target) plus `extras`, all
/// sorted by path (a tree extra is written whole at its place in that order). A duplicate path, an unsafe path, or a file whose size differs from the plan (it
/// changed since the plan was made) is an error naming the path. Returns the writer after the
/// end-of-archive marker, so the caller can flush it or close the engine's stdin.
///
/// This is what a backend pipes into `docker build -` and what the tarball backend writes as
/// `<pipe>.context.tar`.
pub fn write_build_context<W: Write>(
    out: W,
    plan_root: &Path,
    context: &Context,
    extras: &[ExtraEntry<'_>],
    opts: TarOptions,
    progress: Progress<'_>,
) -> Result<(W, ContextSummary)> {
    write_context_named(out, None, plan_root, context, extras, opts, progress)
}

fn write_context_named<W: Write>(
    out: W,
    out_name: Option<String>,
    plan_root: &Path,
    context: &Context,
    extras: &[ExtraEntry<'_>],
    opts: TarOptions,
    progress: Progress<'_>,
) -> Result<(W, ContextSummary)> {
    enum Item<'a> {
        Planned(&'a kerblam_plan::ContextFile),
        Extra(&'a ExtraEntry<'a>),
    }
    let root: PathBuf = match context.root.as_str() {
        "" | "." => plan_root.to_path_buf(),
        r => plan_root.join(safe_relative(r.as_bytes(), "plan context root")?),
    };
    let mut items: Vec<(String, Item<'_>)> = Vec::with_capacity(context.files.len() + extras.len());
    for f in &context.files {
        items.push((
            safe_relative(f.path.as_bytes(), "plan context")?,
            Item::Planned(f),
        ));
    }
    for e in extras {
        items.push((
            safe_relative(e.path.as_bytes(), "generated context entry")?,
            Item::Extra(e),
        ));
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = items.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Error::input(format!(
            "build context: {:?} appears twice (a generated file collides with a project file)",
            w[0].0
        )));
    }
    let mut tar = DetTar::new(out, opts).with_progress(progress);
    if let Some(name) = out_name {
        tar = tar.with_output_name(name);
    }
    for (name, item) in &items {
        crate::fault::point("context/file");
        match item {
            Item::Planned(f) => {
                let path = root.join(name);
                if let Some(target) = &f.link {
                    tar.append_symlink(name, target)?;
                    continue;
                }
                let got = tar.append_file(name, &path)?;
                if got.size != f.size {
                    return Err(Error::new(
                        crate::ErrorKind::ChangedWhileReading,
                        format!(
                            "{} changed since the plan was made ({} bytes planned, {} found); re-run the command",
                            path.display(),
                            f.size,
                            got.size
                        ),
                    ));
                }
            }
            Item::Extra(e) => match &e.source {
                ExtraSource::Bytes(b) => {
                    tar.append_bytes(name, b, e.mode)?;
                }
                ExtraSource::File(p) => {
                    tar.append_file_with_mode(name, p, e.mode)?;
                }
                ExtraSource::Tree { path, exclude } => {
                    tar.append_tree_excluding(name, path, exclude)?;
                }
            },
        }
    }
    let (bytes, files) = tar.counts();
    Ok((tar.finish()?, ContextSummary { files, bytes }))
}

/// What [`write_build_context_file`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenContext {
    /// The final path.
    pub path: std::path::PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// `sha256:<hex>` of the file.
    pub sha256: String,
    /// Entries and content bytes.
    pub summary: ContextSummary,
}

/// [`write_build_context`] into a file (`<pipe>.context.tar`), written under a temporary name in the
/// same directory and renamed when complete. Refuses an existing file unless `force`.
pub fn write_build_context_file(
    final_path: &Path,
    force: bool,
    plan_root: &Path,
    context: &Context,
    extras: &[ExtraEntry<'_>],
    opts: TarOptions,
    progress: Progress<'_>,
) -> Result<WrittenContext> {
    let mut out = crate::AtomicFile::create(final_path, force)?;
    let shown = final_path.to_path_buf();
    let file = out
        .file()
        .try_clone()
        .map_err(|e| Error::io("opening", &shown, e))?;
    let hw = crate::hashing_streams::HashWriter::new(std::io::BufWriter::with_capacity(
        crate::deterministic_tar::CHUNK,
        file,
    ));
    let name = Some(shown.display().to_string());
    let (hw, summary) = write_context_named(hw, name, plan_root, context, extras, opts, progress)?;
    let (mut buf, bytes, sha) = hw.finish();
    buf.flush().map_err(|e| Error::io("writing", &shown, e))?;
    drop(buf);
    let path = out.commit()?;
    Ok(WrittenContext {
        path,
        bytes,
        sha256: format!("sha256:{}", crate::deterministic_tar::hex(&sha)),
        summary,
    })
}

/// Reads a whole small reader into memory with a cap (used for members like `kerblam.toml`).
pub(crate) fn read_capped(r: &mut dyn Read, cap: u64, what: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("reading", Path::new(what), e))?;
    if buf.len() as u64 > cap {
        return Err(Error::invalid(format!(
            "{what} is larger than the limit of {cap} bytes"
        )));
    }
    Ok(buf)
}

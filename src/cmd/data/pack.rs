//! `kerblam data pack [-o] [OUTPUT]`: export the data as Kerblam! 1.x does, a gzip-compressed tar
//! archive (`data/data_export.tar.gz` by default) of the precious input files and the output files
//! (with `-o/--output-only`, the output files only), at their paths from the project root, each
//! directory before its contents. Remote files are left out: they can be fetched again.
//!
//! The archive is written under a temporary name beside its final one and renamed into place, so
//! an interrupted pack never leaves half an archive, and a previous export is replaced whole. A
//! file at OUTPUT that is not a gzip archive (precious data given by mistake, say) is not replaced
//! without `--force`, and the archive is never written into the input dir.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use kerblam_compiler::paths::{is_within, rel_to};

use crate::cli::GlobalArgs;
use crate::cmd::plan::{load_project, start_dir};
use crate::exit;
use crate::exit::invalid;
use crate::{output, profile};

use super::files::{self, DataFile, size, total};

/// Where the archive goes when no OUTPUT is given, from the project root (Kerblam! 1.x's).
pub const DEFAULT_OUTPUT: &str = "data/data_export.tar.gz";

#[derive(Debug, Args)]
pub struct PackArgs {
    /// Where to write the archive, relative to where kerblam was started (gzip-compressed tar,
    /// whatever the name) [default: data/data_export.tar.gz in the project root].
    #[arg(value_name = "OUTPUT")]
    pub output_path: Option<PathBuf>,
    /// Pack the output files only, not the precious input files.
    #[arg(short, long)]
    pub output_only: bool,
    /// Replace a file at OUTPUT even when it is not a gzip archive.
    #[arg(long)]
    pub force: bool,
    /// Report unknown keys in kerblam.toml as warnings instead of errors.
    #[arg(long)]
    pub allow_unknown: bool,
}

pub fn run(global: &GlobalArgs, args: PackArgs) -> miette::Result<u8> {
    let project = load_project(global, args.allow_unknown)?;
    profile::recover(&project)?;
    let out = match &args.output_path {
        Some(p) => std::path::absolute(start_dir(global).join(p))
            .map_err(|e| miette::miette!("{}: {e}", p.display()))?,
        None => project.root.join(DEFAULT_OUTPUT),
    };
    let l = files::list(&project);
    for u in &l.unreadable {
        output::warn(format!("cannot read {u}: its files are not packed"));
    }
    let out_rel = resolved_rel(&project.root, &out);
    let mut packed: Vec<&DataFile> = l.output.iter().collect();
    if !args.output_only {
        packed.extend(l.precious());
    }
    packed.retain(|f| Some(&f.rel) != out_rel.as_ref());
    packed.sort_by(|a, b| a.rel.cmp(&b.rel));
    if packed.is_empty() {
        outln!("🕸️ Nothing to pack!");
        return Ok(exit::OK);
    }
    if let Some(rel) = &out_rel {
        if is_within(rel, &l.input_dir) {
            return Err(invalid(format!(
                "{} is in the input dir {}: the export would become input data; choose another OUTPUT",
                out.display(),
                l.input_dir
            )));
        }
    }
    refuse_foreign(&out, args.force)?;

    let written = write(&project.root, &out, &packed)?;
    outln!("{} ({written} bytes)", out.display());
    let (bytes, n) = total(packed.iter().copied());
    output::info(format!(
        "✨ packed {n} files ({}) into {}",
        size(bytes),
        out.display()
    ));
    Ok(exit::OK)
}

/// `path` relative to the project root, its directory resolved (`None` outside the project).
fn resolved_rel(root: &Path, path: &Path) -> Option<String> {
    let dir = path.parent()?.canonicalize().ok()?;
    let root = root.canonicalize().ok()?;
    rel_to(&root, &dir.join(path.file_name()?))
}

/// A file at `out` that this command did not write (not gzip) stays, unless `force`.
fn refuse_foreign(out: &Path, force: bool) -> miette::Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(out) else {
        return Ok(());
    };
    let gzip = meta.is_file()
        && std::fs::File::open(out)
            .and_then(|mut f| {
                let mut magic = [0u8; 2];
                f.read_exact(&mut magic).map(|_| magic)
            })
            .is_ok_and(|m| m == [0x1f, 0x8b]);
    if gzip || (force && meta.is_file()) {
        return Ok(());
    }
    let what = if meta.is_file() {
        "a file that is not a gzip archive"
    } else if meta.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    };
    Err(invalid(format!(
        "{} is {what}; it is not replaced{}",
        out.display(),
        if meta.is_file() {
            " (pass --force to replace it, or choose another OUTPUT)"
        } else {
            ""
        }
    )))
}

/// Write the archive under a temporary name, then rename it to `out`. Returns its size.
fn write(root: &Path, out: &Path, packed: &[&DataFile]) -> miette::Result<u64> {
    let dir = out
        .parent()
        .ok_or_else(|| miette::miette!("{} has no directory", out.display()))?;
    std::fs::create_dir_all(dir)
        .map_err(|e| miette::miette!("cannot create {}: {e}", dir.display()))?;
    let name = out.file_name().unwrap_or_default().to_string_lossy();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempfile_in(dir)
        .map_err(|e| miette::miette!("cannot create a temporary file in {}: {e}", dir.display()))?;
    let fail = |e: std::io::Error| miette::miette!("cannot write {}: {e}", out.display());
    {
        let gz = flate2::write::GzEncoder::new(tmp.as_file_mut(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        tar.follow_symlinks(false);
        // Each directory once, before its contents (ordered by components: `a` < `a/b` < `a/c`).
        let mut entries: BTreeMap<Vec<&str>, Option<&DataFile>> = BTreeMap::new();
        for f in packed {
            let parts: Vec<&str> = f.rel.split('/').collect();
            for i in 1..parts.len() {
                entries.entry(parts[..i].to_vec()).or_insert(None);
            }
            entries.insert(parts, Some(*f));
        }
        for (parts, file) in entries {
            let rel = parts.join("/");
            match file {
                Some(f) => tar
                    .append_path_with_name(&f.abs, &rel)
                    .map_err(|e| miette::miette!("cannot pack {}: {e}", f.rel))?,
                None => tar
                    .append_dir(&rel, root.join(&rel))
                    .map_err(|e| miette::miette!("cannot pack {rel}/: {e}"))?,
            }
            output::debug(format!("➕ added {rel}"));
        }
        let gz = tar.into_inner().map_err(fail)?;
        gz.finish().map_err(fail)?.flush().map_err(fail)?;
    }
    // A temporary file is private (0600); an export is for others, as `tar czf` would make it.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    let bytes = tmp.as_file().metadata().map(|m| m.len()).unwrap_or(0);
    tmp.persist(out).map_err(|e| fail(e.error))?;
    Ok(bytes)
}

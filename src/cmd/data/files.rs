//! The files of a project's data dirs, sorted as Kerblam! 1.x sorts them: each file belongs to the
//! deepest data dir that holds it (with the defaults, `data/in/x` is input, `data/out/x` output and
//! `data/x` intermediate). `kerblam data`, `data clean` and `data pack` all read this listing.
//!
//! The walk starts at each data dir (a data dir that is itself a symbolic link, say to a scratch
//! disk, is entered, as `kerblam run` writes through it) and never follows a link below it: a link
//! is listed as a link, never as the file or tree it points to. kerblam's own bookkeeping files
//! (a profile's journal and stashes) are not data and are left out.

use std::path::{Path, PathBuf};

use kerblam_compiler::Project;
use kerblam_compiler::paths::{is_within, join, normalize};

use crate::profile;

/// A regular file found in a data dir.
#[derive(Debug, Clone)]
pub struct DataFile {
    /// Relative to the project root, `/`-separated.
    pub rel: String,
    /// Absolute.
    pub abs: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

impl DataFile {
    /// Whether its name starts with a dot (Kerblam! 1.x never cleans those).
    pub fn hidden(&self) -> bool {
        self.rel
            .rsplit('/')
            .next()
            .is_some_and(|n| n.starts_with('.'))
    }
}

/// Which data dir a file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Input,
    Output,
    Intermediate,
}

/// A remote file of `data.remote`.
#[derive(Debug, Clone)]
pub struct Remote {
    /// The URL (`_`: a file that cannot be fetched, so precious).
    pub url: String,
    /// The target, relative to the project root.
    pub rel: String,
    /// Its size when present (a regular file, or a link to one).
    pub size: Option<u64>,
}

impl Remote {
    /// Whether kerblam can fetch it again (its URL is not `_`).
    pub fn fetchable(&self) -> bool {
        self.url != "_"
    }
}

/// The project's data, listed.
#[derive(Debug, Default)]
pub struct Listing {
    /// The data dirs, relative to the root: input, output, intermediate.
    pub input_dir: String,
    pub output_dir: String,
    pub intermediate_dir: String,
    pub input: Vec<DataFile>,
    pub output: Vec<DataFile>,
    pub intermediate: Vec<DataFile>,
    /// Every sub-directory of the output and intermediate dirs (not the dirs themselves, not the
    /// input dir nor anything in it), relative to the root.
    pub volatile_dirs: Vec<String>,
    /// Symbolic links found below the data dirs (never followed), relative to the root.
    pub links: Vec<String>,
    /// `data.remote`, sorted by target.
    pub remote: Vec<Remote>,
    /// Directories that could not be read, with the reason.
    pub unreadable: Vec<String>,
}

impl Listing {
    /// The input files that cannot be fetched again: not the target of a fetchable remote URL.
    pub fn precious(&self) -> impl Iterator<Item = &DataFile> {
        self.input
            .iter()
            .filter(|f| !self.remote.iter().any(|r| r.fetchable() && r.rel == f.rel))
    }

    /// The fetchable remote files that are present (as regular files, inside the input dir).
    pub fn fetched(&self) -> impl Iterator<Item = &DataFile> {
        self.input
            .iter()
            .filter(|f| self.remote.iter().any(|r| r.fetchable() && r.rel == f.rel))
    }
}

/// List the data of `project`.
pub fn list(project: &Project) -> Listing {
    let paths = &project.manifest.data.paths;
    let mut l = Listing {
        input_dir: normalize(&paths.input),
        output_dir: normalize(&paths.output),
        intermediate_dir: normalize(&paths.intermediate),
        ..Listing::default()
    };
    let dirs = DataDirs([
        (Kind::Input, l.input_dir.clone()),
        (Kind::Output, l.output_dir.clone()),
        (Kind::Intermediate, l.intermediate_dir.clone()),
    ]);
    let mut seen = std::collections::BTreeSet::new();
    for (_, dir) in &dirs.0 {
        walk(project, &dirs, dir, &mut seen, &mut l);
    }
    for v in [&mut l.input, &mut l.output, &mut l.intermediate] {
        v.sort_by(|a, b| a.rel.cmp(&b.rel));
    }
    l.volatile_dirs.sort();
    l.links.sort();
    l.remote = remotes(project, &l.input_dir);
    l
}

/// The three data directories, by kind.
struct DataDirs([(Kind, String); 3]);

impl DataDirs {
    /// The deepest data dir holding a path. Of two dirs that are one, the input dir wins (it is
    /// never cleaned), then the output dir (which --preserve-output keeps).
    fn owner(&self, rel: &str) -> Option<Kind> {
        let rank = |k: Kind| match k {
            Kind::Input => 2,
            Kind::Output => 1,
            Kind::Intermediate => 0,
        };
        self.0
            .iter()
            .filter(|(_, d)| is_within(rel, d))
            .max_by_key(|(k, d)| (depth(d), rank(*k)))
            .map(|(k, _)| *k)
    }

    /// Whether `rel` is a data dir or holds one (such a dir is never volatile).
    fn held_by(&self, rel: &str) -> bool {
        self.0.iter().any(|(_, d)| is_within(d, rel))
    }
}

/// Lists everything under the data dir `dir` into `l`: files by the kind of data they are, the
/// volatile dirs and the links; `seen` keeps a path met through two data dirs from being listed
/// twice.
fn walk(
    project: &Project,
    dirs: &DataDirs,
    dir: &str,
    seen: &mut std::collections::BTreeSet<String>,
    l: &mut Listing,
) {
    let mut stack = vec![dir.to_string()];
    while let Some(rel) = stack.pop() {
        let abs = project.abs(&rel);
        let rd = match std::fs::read_dir(&abs) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                l.unreadable.push(format!("{rel}: {e}"));
                continue;
            }
        };
        let mut entries: Vec<_> = rd.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                l.unreadable.push(format!(
                    "{}: a name that is not UTF-8 was skipped",
                    abs.join(e.file_name()).display()
                ));
                continue;
            };
            let child = join(&rel, &name);
            if !seen.insert(child.clone()) {
                continue;
            }
            let Ok(ft) = e.file_type() else { continue };
            let kind = dirs.owner(&child);
            let holds_data_dir = dirs.held_by(&child);
            if ft.is_symlink() {
                if !holds_data_dir {
                    l.links.push(child);
                }
            } else if ft.is_dir() {
                if matches!(kind, Some(Kind::Output | Kind::Intermediate)) && !holds_data_dir {
                    l.volatile_dirs.push(child.clone());
                }
                stack.push(child);
            } else if ft.is_file() && !is_bookkeeping(&name) {
                let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                let file = DataFile {
                    abs: project.abs(&child),
                    rel: child,
                    size,
                };
                match kind {
                    Some(Kind::Input) => l.input.push(file),
                    Some(Kind::Output) => l.output.push(file),
                    Some(Kind::Intermediate) => l.intermediate.push(file),
                    None => {}
                }
            }
        }
    }
}

/// The manifest's remote files, where they go under the input dir and their size when present.
fn remotes(project: &Project, input_dir: &str) -> Vec<Remote> {
    let mut remote: Vec<Remote> = project
        .manifest
        .data
        .remote
        .iter()
        .map(|(url, target)| {
            let rel = join(input_dir, target);
            let size = std::fs::metadata(project.abs(&rel))
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len());
            Remote {
                url: url.clone(),
                rel,
                size,
            }
        })
        .collect();
    remote.sort_by(|a, b| a.rel.cmp(&b.rel));
    remote
}

fn depth(rel: &str) -> usize {
    if rel == "." {
        0
    } else {
        rel.split('/').count()
    }
}

/// kerblam's own files in the input dir: a profile's journal, its temporaries and its stashes.
fn is_bookkeeping(name: &str) -> bool {
    name == profile::JOURNAL
        || name == profile::LAST_PROFILE
        || name.starts_with(&format!("{}.tmp-", profile::JOURNAL))
        || (name.starts_with('.') && name.ends_with(profile::STASH_SUFFIX))
}

/// A size as Kerblam! 1.x prints it: whole units of 1024 (`B`, `KiB`, `MiB`, `GiB`, `TiB`,
/// `PiB`), rounded down, a unit up only past 1024 of the one below.
pub fn size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut n = bytes;
    let mut unit = 0;
    while n > 1024 && unit < units.len() - 1 {
        n /= 1024;
        unit += 1;
    }
    format!("{n} {}", units[unit])
}

/// The total size of some files.
pub fn total<'a>(files: impl IntoIterator<Item = &'a DataFile>) -> (u64, usize) {
    files
        .into_iter()
        .fold((0, 0), |(b, n), f| (b + f.size, n + 1))
}

/// Whether any directory between `base` (excluded) and `path` (included) is a symbolic link, or
/// `path` is not there: kerblam never deletes through a link.
pub fn through_link(base: &Path, path: &Path) -> bool {
    let Ok(rest) = path.strip_prefix(base) else {
        return true;
    };
    let mut at = base.to_path_buf();
    for c in rest.components() {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => return true,
            Ok(_) => {}
            Err(_) => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_as_kerblam_1_does() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1024), "1024 B");
        assert_eq!(size(1025), "1 KiB");
        assert_eq!(size(2047), "1 KiB");
        assert_eq!(size(5 * 1024 * 1024 + 1), "5 MiB");
        assert_eq!(size(u64::MAX), "16383 PiB");
    }
}

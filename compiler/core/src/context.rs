//! The build context: the project without its data, its recipes dir, `.git` and whatever
//! `.dockerignore` excludes, listed file by file.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use kerblam_plan::{Context, ContextFile, Exclusion, ExclusionReason};
use rayon::prelude::*;

use crate::Error;
use crate::diag::{Finding, SourceFile};
use crate::digest::sha256_at;
use crate::paths::{is_within, normalize};
use crate::project::{display_path, read_text};

/// A directory left out of the context, with its reason.
#[derive(Debug, Clone)]
pub struct ExcludedDir {
    /// Relative to the root, normalised.
    pub path: String,
    /// Why.
    pub reason: ExclusionReason,
}

/// Walk `root` and list the build context.
pub fn build_context(
    root: &Path,
    excluded_dirs: &[ExcludedDir],
    digests: bool,
) -> Result<Context, Error> {
    let mut excluded: Vec<Exclusion> = Vec::new();
    for d in excluded_dirs {
        let p = normalize(&d.path);
        if !excluded.iter().any(|e| e.path == p) {
            excluded.push(Exclusion {
                path: p,
                reason: d.reason,
            });
        }
    }
    if root.join(".git").exists() {
        excluded.push(Exclusion {
            path: ".git".into(),
            reason: ExclusionReason::VersionControl,
        });
    }
    let dockerignore = root.join(".dockerignore");
    let ignore = if dockerignore.is_file() {
        excluded.push(Exclusion {
            path: ".dockerignore".into(),
            reason: ExclusionReason::DockerignoreFile,
        });
        let (gi, patterns) = parse_dockerignore(root, &dockerignore)?;
        excluded.extend(patterns.into_iter().map(|p| Exclusion {
            path: p,
            reason: ExclusionReason::Dockerignore,
        }));
        Some(gi)
    } else {
        None
    };
    let dirs: Vec<String> = excluded
        .iter()
        .filter(|e| e.reason != ExclusionReason::Dockerignore)
        .map(|e| e.path.clone())
        .collect();

    let walk = Walk {
        dirs: &dirs,
        ignore: ignore.as_ref(),
        digests,
    };
    let found = walk.dir(root, "")?;
    let mut files: Vec<ContextFile> = found.into_iter().map(|Found::File(f)| f).collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    excluded.sort_by(|a, b| a.path.cmp(&b.path).then(a.reason.cmp(&b.reason)));
    let total_bytes = files.iter().map(|f| f.size).sum();
    Ok(Context {
        root: ".".into(),
        excluded,
        files,
        total_bytes,
    })
}

/// What the walk of the context found, in no particular order.
enum Found {
    /// A file or symlink of the context.
    File(ContextFile),
}

/// The walk of the build context: every directory read once, entries stat'ed relative to their
/// open directory (no path lookup from the root for each file), subdirectories on all cores.
struct Walk<'a> {
    /// Paths left out (data dirs, env dir, `.git`, `.dockerignore` itself), relative to the root.
    dirs: &'a [String],
    /// The `.dockerignore` matcher.
    ignore: Option<&'a Gitignore>,
    /// Hash every file (`--digests`), as it is found.
    digests: bool,
}

impl Walk<'_> {
    /// The entries under `dir`, whose path relative to the root is `rel` (`""` for the root).
    fn dir(&self, dir: &Path, rel: &str) -> Result<Vec<Found>, Error> {
        let entries: Vec<std::fs::DirEntry> = std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| Error::io(dir, e))?;
        // Files are opened relative to their directory: one name to look up, not the whole path.
        let handle = if self.digests {
            Some(std::fs::File::open(dir).map_err(|e| Error::io(dir, e))?)
        } else {
            None
        };
        let lists: Vec<Vec<Found>> = entries
            .par_iter()
            .map(|e| self.entry(e, rel, handle.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(lists.into_iter().flatten().collect())
    }

    fn entry(
        &self,
        e: &std::fs::DirEntry,
        parent: &str,
        dir: Option<&std::fs::File>,
    ) -> Result<Vec<Found>, Error> {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let rel = if parent.is_empty() {
            name.into_owned()
        } else {
            format!("{parent}/{name}")
        };
        let path = e.path();
        let ft = e.file_type().map_err(|err| Error::io(&path, err))?;
        if self.dirs.iter().any(|d| is_within(&rel, d)) {
            return Ok(Vec::new());
        }
        if ft.is_dir() {
            return self.dir(&path, &rel);
        }
        if !(ft.is_file() || ft.is_symlink()) {
            return Ok(Vec::new());
        }
        if let Some(gi) = self.ignore {
            if gi.matched_path_or_any_parents(&rel, false).is_ignore() {
                return Ok(Vec::new());
            }
        }
        // Artifacts, plans and kerblam's citation records are not listed at all (see
        // `kerblam_plan::Context`): a plan is the same before and after a package.
        if parent.is_empty() && is_kerblam_artifact(&rel) {
            return Ok(Vec::new());
        }
        if ft.is_file()
            && (is_kerblam_plan(&path) || (parent.is_empty() && is_kerblam_record(&path)))
        {
            return Ok(Vec::new());
        }
        // `DirEntry::metadata` is an fstatat relative to the directory, without following links.
        let meta = e.metadata().map_err(|err| Error::io(&path, err))?;
        let mode = recorded_mode(ft.is_symlink(), meta.permissions().mode());
        let file = if ft.is_symlink() {
            let target = std::fs::read_link(&path).map_err(|err| Error::io(&path, err))?;
            ContextFile {
                path: rel,
                size: 0,
                mode,
                link: Some(target.to_string_lossy().into_owned()),
                sha256: None,
            }
        } else {
            let sha256 = match dir {
                Some(d) => Some(sha256_at(d, &e.file_name(), &path)?),
                None => None,
            };
            ContextFile {
                path: rel,
                size: meta.len(),
                mode,
                link: None,
                sha256,
            }
        };
        Ok(vec![Found::File(file)])
    }
}

/// Files kerblam itself writes into a project root.
pub fn is_kerblam_artifact(name: &str) -> bool {
    // A temporary of one (`<artifact>.tmp-<pid>-<n>`, left by a killed run) is one too.
    let name = match name.rsplit_once(".tmp-") {
        Some((stem, tail))
            if tail.split_once('-').is_some_and(|(pid, n)| {
                !pid.is_empty()
                    && !n.is_empty()
                    && pid.bytes().all(|b| b.is_ascii_digit())
                    && n.bytes().all(|b| b.is_ascii_digit())
            }) =>
        {
            stem
        }
        _ => name,
    };
    kerblam_plan::ArtifactKind::ALL
        .iter()
        .filter_map(|k| k.conventional_suffix())
        .any(|s| name.ends_with(s))
}

/// Whether `path` is a plan kerblam wrote: named `*.plan.json` or `*.plan.toml`, and holding a
/// plan schema id. Only files with such names are read.
pub fn is_kerblam_plan(path: &Path) -> bool {
    let named = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".plan.json") || n.ends_with(".plan.toml"));
    named
        && std::fs::read(path).is_ok_and(|bytes| {
            bytes
                .windows(PLAN_SCHEMA_PREFIX.len())
                .any(|w| w == PLAN_SCHEMA_PREFIX)
        })
}

const PLAN_SCHEMA_PREFIX: &[u8] = b"\"kerblam.plan/v";

/// The first line of every `CITATION.cff` kerblam writes.
pub const CITATION_MARK: &str = "# Written by kerblam";

/// Whether `path` is a citation record kerblam wrote beside a replay archive in the project root:
/// a `CITATION.cff` starting with [`CITATION_MARK`], or a `ro-crate-metadata.json` whose
/// descriptor kerblam published. They describe packages of the project, so they are not part of
/// the next package's build context (which would then change with every package). The user's own
/// are.
pub fn is_kerblam_record(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str());
    match name {
        Some("CITATION.cff") => {
            std::fs::read(path).is_ok_and(|b| b.starts_with(CITATION_MARK.as_bytes()))
        }
        Some("ro-crate-metadata.json") => std::fs::read(path).is_ok_and(|b| {
            let has = |needle: &[u8]| b.windows(needle.len()).any(|w| w == needle);
            has(b"\"sdPublisher\"") && has(b"\"#kerblam\"")
        }),
        _ => false,
    }
}

/// The reason a glob does not parse, without the pattern (the report shows it).
fn glob_reason(e: &ignore::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once("': ") {
        Some((_, reason)) => reason.to_string(),
        None => text,
    }
}

/// Parse a `.dockerignore`: patterns are relative to the context root (anchored), `!` re-includes,
/// `#` starts a comment. Returns the matcher and the patterns as written.
fn parse_dockerignore(root: &Path, file: &Path) -> Result<(Gitignore, Vec<String>), Error> {
    let text = read_text(file)?;
    let source = SourceFile::new(display_path(file), text.as_str());
    let mut builder = GitignoreBuilder::new(root);
    let mut patterns = Vec::new();
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let start = offset;
        offset += raw.len();
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (neg, pat) = match line.strip_prefix('!') {
            Some(rest) => ("!", rest.trim()),
            None => ("", line),
        };
        let pat = pat.trim_start_matches("./").trim_start_matches('/');
        let anchored = if pat.starts_with("**") {
            pat.to_string()
        } else {
            format!("/{pat}")
        };
        if let Err(e) = builder.add_line(None, &format!("{neg}{anchored}")) {
            // A bad pattern is bad input: point at its line.
            let lead = raw.len() - raw.trim_start().len();
            let span = start + lead..start + lead + line.len();
            let finding = Finding::error(
                &source,
                "kerblam::dockerignore",
                format!("invalid .dockerignore pattern `{line}`"),
            )
            .at(Some(span), glob_reason(&e))
            .help("fix or remove the pattern; `\\` escapes a special character");
            return Err(Error::Invalid {
                file: source.name.clone(),
                findings: vec![finding],
            });
        }
        patterns.push(line.to_string());
    }
    let gi = builder.build().map_err(|e| {
        Error::io(
            file,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
        )
    })?;
    Ok((gi, patterns))
}

/// The mode a plan records, as git records it: a symlink is 0o777, a file 0o755 when any execute
/// bit is set and 0o644 otherwise. The umask of whoever checked the project out (0o664 files under
/// umask 002) must not change the plan, or a checked-in plan goes stale on someone else's machine;
/// backends write these modes, so the image does not depend on it either.
fn recorded_mode(symlink: bool, mode: u32) -> u32 {
    if symlink {
        0o777
    } else if mode & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_and_their_temporaries_are_kerblam_artifacts() {
        for yes in [
            "process.kerblam.tar",
            "process.context.tar",
            "p.oci.tar",
            "p.sif",
            "process.kerblam.tar.tmp-123-0",
            "process.context.tar.tmp-9-17",
        ] {
            assert!(is_kerblam_artifact(yes), "{yes}");
        }
        for no in [
            "notes.txt",
            "process.context.tar.tmp-x-0",
            "process.context.tar.tmp-",
            "data.tmp-1-2",
            "kerblam.toml",
        ] {
            assert!(!is_kerblam_artifact(no), "{no}");
        }
    }

    #[test]
    fn only_the_citation_records_kerblam_wrote_are_its_own() {
        let d = tempfile::tempdir().unwrap();
        let cases = [
            (
                "CITATION.cff",
                "# Written by kerblam 1.0 for x.tar\ncff-version: 1.2.0\n",
                true,
            ),
            (
                "CITATION.cff",
                "cff-version: 1.2.0\n# Written by kerblam\n",
                false,
            ),
            (
                "ro-crate-metadata.json",
                "{\"@graph\": [{\"sdPublisher\": {\"@id\": \"#kerblam\"}}]}",
                true,
            ),
            ("ro-crate-metadata.json", "{\"@graph\": []}", false),
            ("notes.cff", "# Written by kerblam", false),
        ];
        for (name, text, mine) in cases {
            let p = d.path().join(name);
            std::fs::write(&p, text).unwrap();
            assert_eq!(is_kerblam_record(&p), mine, "{name}: {text}");
        }
    }

    #[test]
    fn a_bad_dockerignore_pattern_is_a_located_finding() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join(".dockerignore");
        std::fs::write(&file, "# c\n*.log\n  [z-a]  \nx\n").unwrap();
        let err = parse_dockerignore(t.path(), &file).unwrap_err();
        assert!(err.is_invalid_input());
        let Error::Invalid { findings, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert!(
            f.location().ends_with(".dockerignore:3:3"),
            "{}",
            f.location()
        );
        assert_eq!(&f.source.text[f.span.clone().unwrap()], "[z-a]");
        assert!(f.label.contains("invalid range"), "{}", f.label);
        // Good patterns parse.
        std::fs::write(&file, "*.log\n!keep.log\n/abs\n./rel\n**/deep\n").unwrap();
        let (_, patterns) = parse_dockerignore(t.path(), &file).unwrap();
        assert_eq!(patterns.len(), 5);
    }
}

//! `kerblam data clean`: delete the data that can be made again, as Kerblam! 1.x does.
//!
//! What goes: the files of the output dir (unless `--preserve-output`) and of the intermediate dir,
//! and with `-r` the remote files fetched into the input dir (fetched again by `kerblam data
//! fetch`); then, unless `-d`, every empty directory under the output and intermediate dirs. What
//! stays: everything else. Precious input data (files of the input dir that are not the target of
//! a fetchable URL; `_` marks a file that cannot be fetched), hidden files (their names start with
//! a dot, as the `.gitignore` files `kerblam new` writes), symbolic links (never followed: a link
//! is not deleted, nor what it points to), the data dirs themselves and the dirs holding them. A
//! data dir that leads out of the project (itself a link, say to a scratch disk) is not cleaned:
//! kerblam says so and exits 1.
//!
//! Before deleting, kerblam lists what it will delete and asks, reading the answer from standard
//! input as Kerblam! 1.x does (so `yes | kerblam data clean` works); without an answer (standard
//! input closed or at its end, where 1.x asks for ever) nothing is deleted and it exits 2 asking
//! for `--yes`. A file that cannot be deleted (a container left it owned by root) is named with the
//! reason; the others are deleted, and kerblam exits 1.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use clap::Args;
use kerblam_compiler::Project;
use kerblam_compiler::paths::{is_within, normalize};

use crate::cli::GlobalArgs;
use crate::cmd::plan::load_project;
use crate::exit::{self, Exit};
use crate::prompt::{self, Answer};
use crate::{output, profile};

use super::files::{self, DataFile, Listing, size, total};

#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Also delete the remote files that were fetched (`kerblam data fetch` gets them again);
    /// files whose URL is `_` cannot be fetched and stay.
    #[arg(short = 'r', long, alias = "delete-remote")]
    pub include_remote: bool,
    /// Do not delete the output files.
    #[arg(long)]
    pub preserve_output: bool,
    /// Do not remove the empty directories left behind.
    #[arg(short = 'd', long)]
    pub keep_dirs: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// Print what would be deleted, and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Report unknown keys in kerblam.toml as warnings instead of errors.
    #[arg(long)]
    pub allow_unknown: bool,
}

/// How many paths a preview shows before "and N more".
const PREVIEW: usize = 20;

pub fn run(global: &GlobalArgs, args: CleanArgs) -> miette::Result<u8> {
    let project = load_project(global, args.allow_unknown)?;
    // A profile run's swapped files would be cleaned as if they were the real ones.
    profile::recover(&project)?;
    refuse_project_root(&project)?;
    let l = files::list(&project);
    for u in &l.unreadable {
        output::warn(format!("cannot read {u}: nothing in it is deleted"));
    }
    // A data dir that leads out of the project (a link to a scratch disk) is not cleaned.
    let away = links_out(&project, &l, &args);
    for (dir, to) in &away {
        output::warn(format!(
            "{dir} leads out of the project (to {}): nothing in it is deleted; kerblam data clean never follows a link out of the project",
            to.display()
        ));
    }
    let outside = |rel: &str| away.iter().any(|(d, _)| is_within(rel, d));
    let mut doomed = doomed(&project, &l, &args);
    doomed.retain(|f| !outside(&f.rel));
    let volatile: Vec<String> = l
        .volatile_dirs
        .iter()
        .filter(|d| !outside(d))
        .cloned()
        .collect();
    let dirs = if args.keep_dirs {
        Vec::new()
    } else {
        left_empty(&project, &volatile, &doomed)
    };
    let (bytes, n) = total(doomed.iter().copied());

    if args.dry_run {
        dry_run(&doomed, &dirs, n, bytes);
        return Ok(exit::OK);
    }
    if doomed.is_empty() && dirs.is_empty() {
        outln!("✨ Nothing to clean!");
        return Ok(if l.unreadable.is_empty() && away.is_empty() {
            exit::OK
        } else {
            exit::FAILURE
        });
    }
    if !doomed.is_empty() && !args.yes {
        confirm(&doomed, &dirs, n, bytes)?;
    }

    let mut problems = delete_all(&project, &l, &doomed, &dirs);
    problems.extend(l.unreadable.iter().map(|u| format!("{u} (not cleaned)")));
    problems.extend(away.iter().map(|(d, to)| {
        format!(
            "{d}/: leads out of the project (to {}), not cleaned",
            to.display()
        )
    }));
    if problems.is_empty() {
        return Ok(exit::OK);
    }
    Err(Exit::failure(format!(
        "could not clean {} paths:\n  {}",
        problems.len(),
        problems.join("\n  ")
    ))
    .into())
}

/// `--dry-run`: what would go, and nothing deleted.
fn dry_run(doomed: &[&DataFile], dirs: &[String], n: usize, bytes: u64) {
    if doomed.is_empty() && dirs.is_empty() {
        outln!("✨ Nothing to clean!");
        return;
    }
    outln!("Files to clean:");
    for f in doomed {
        outln!("{}", f.rel);
    }
    if !dirs.is_empty() {
        outln!("Empty directories to remove:");
        for d in dirs {
            outln!("{d}/");
        }
    }
    output::info(format!(
        "{n} files ({}) and {} empty directories would go (--dry-run: nothing was deleted)",
        size(bytes),
        dirs.len()
    ));
}

/// Deletes the files, then the directories they leave empty, and says how much went; returns what
/// could not be deleted, with why.
fn delete_all(
    project: &Project,
    l: &Listing,
    doomed: &[&DataFile],
    dirs: &[String],
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut deleted = (0u64, 0usize);
    for f in doomed {
        match delete(project, l, f) {
            Ok(()) => deleted = (deleted.0 + f.size, deleted.1 + 1),
            Err(why) => problems.push(format!("{}: {why}", f.rel)),
        }
    }
    let mut removed = 0;
    for d in dirs {
        match std::fs::remove_dir(project.abs(d)) {
            Ok(()) => removed += 1,
            // Not empty: something in it could not be deleted (said above) or just appeared.
            Err(e) if e.kind() == ErrorKind::DirectoryNotEmpty => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => problems.push(format!("{d}/: {}", reason(project, parent_of(d), &e))),
        }
    }
    output::info(format!(
        "🧹 deleted {} files ({}){}",
        deleted.1,
        size(deleted.0),
        if removed > 0 {
            format!(" and {removed} empty directories")
        } else {
            String::new()
        }
    ));
    problems
}

/// A data dir that is the project root would make the whole project "data".
fn refuse_project_root(project: &Project) -> miette::Result<()> {
    let paths = &project.manifest.data.paths;
    for (key, dir) in [
        ("data.paths.output", &paths.output),
        ("data.paths.intermediate", &paths.intermediate),
    ] {
        if normalize(dir) == "." {
            return Err(Exit::invalid(format!(
                    "{key} is the project root: kerblam data clean would delete the whole project; nothing was deleted"
                ))
            .into());
        }
    }
    Ok(())
}

/// The data dirs clean would delete in (output, intermediate, input for -r) that resolve outside
/// the project, with where they lead.
fn links_out(project: &Project, l: &Listing, args: &CleanArgs) -> Vec<(String, PathBuf)> {
    let Ok(root) = project.root.canonicalize() else {
        return Vec::new();
    };
    let mut dirs = vec![&l.intermediate_dir];
    if !args.preserve_output {
        dirs.push(&l.output_dir);
    }
    if args.include_remote {
        dirs.push(&l.input_dir);
    }
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for d in dirs {
        if let Ok(to) = project.abs(d).canonicalize() {
            if !to.starts_with(&root) && !out.iter().any(|(o, _)| is_within(d, o)) {
                out.push((d.clone(), to));
            }
        }
    }
    out
}

/// The files to delete, sorted by path.
fn doomed<'a>(project: &Project, l: &'a Listing, args: &CleanArgs) -> Vec<&'a DataFile> {
    let code = &project.manifest.code;
    let keep = [normalize(&code.pipes_dir), normalize(&code.env_dir)];
    let mut out: Vec<&DataFile> = l.intermediate.iter().collect();
    if !args.preserve_output {
        out.extend(&l.output);
    }
    if args.include_remote {
        out.extend(l.fetched());
    }
    out.retain(|f| {
        !f.hidden()
            && f.rel != kerblam_compiler::MANIFEST_FILE
            && !keep.iter().any(|k| is_within(&f.rel, k))
    });
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out
}

/// The volatile dirs that are empty once `doomed` is gone, deepest first.
fn left_empty(project: &Project, dirs: &[String], doomed: &[&DataFile]) -> Vec<String> {
    let doomed: BTreeSet<&str> = doomed.iter().map(|f| f.rel.as_str()).collect();
    let mut sorted: Vec<&String> = dirs.iter().collect();
    sorted.sort_by_key(|d| std::cmp::Reverse(d.split('/').count()));
    let mut empty: BTreeSet<String> = BTreeSet::new();
    let mut order = Vec::new();
    for d in sorted {
        let Ok(rd) = std::fs::read_dir(project.abs(d)) else {
            continue;
        };
        let all_gone = rd.flatten().all(|e| {
            let child = format!("{d}/{}", e.file_name().to_string_lossy());
            doomed.contains(child.as_str()) || empty.contains(&child)
        });
        if all_gone {
            empty.insert(d.clone());
            order.push(d.clone());
        }
    }
    order
}

/// Show what goes and ask; an error when the answer is not yes.
fn confirm(doomed: &[&DataFile], dirs: &[String], n: usize, bytes: u64) -> miette::Result<()> {
    errln!("kerblam will delete:");
    for f in doomed.iter().take(PREVIEW) {
        errln!("  {}", f.rel);
    }
    if doomed.len() > PREVIEW {
        errln!(
            "  … and {} more (`kerblam data clean --dry-run` lists them all)",
            doomed.len() - PREVIEW
        );
    }
    if !dirs.is_empty() {
        errln!("and the {} empty directories left behind", dirs.len());
    }
    let question = format!("🧹 About to delete {n} files ({}). Continue?", size(bytes));
    match prompt::yes_no(&question) {
        Answer::Chosen(true) => Ok(()),
        Answer::Chosen(false) => Err(Exit::failure("Aborted! Nothing was deleted.").into()),
        Answer::NoAnswer => {
            let why = if prompt::interactive() {
                "no answer"
            } else {
                "standard input is not a terminal and gave no answer"
            };
            errln!();
            Err(Exit::invalid(format!(
                "{why}: nothing was deleted; pass --yes (-y) to delete without asking"
            ))
            .into())
        }
    }
}

/// Delete one file: a regular file still, reached through no link below its data dir.
fn delete(project: &Project, l: &Listing, f: &DataFile) -> Result<(), String> {
    let base = [&l.input_dir, &l.output_dir, &l.intermediate_dir]
        .into_iter()
        .filter(|d| is_within(&f.rel, d))
        .max_by_key(|d| d.len())
        .map(|d| project.abs(d))
        .ok_or("not in a data dir; not deleted")?;
    match std::fs::symlink_metadata(&f.abs) {
        Ok(m) if m.file_type().is_file() => {}
        Ok(_) => return Err("no longer a regular file; not deleted".into()),
        // Gone already: nothing to do.
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.to_string()),
    }
    if files::through_link(&base, &f.abs) {
        return Err("reached through a symbolic link; not deleted".into());
    }
    std::fs::remove_file(&f.abs).map_err(|e| reason(project, parent_of(&f.rel), &e))
}

fn parent_of(rel: &str) -> &str {
    rel.rsplit_once('/').map_or(".", |(p, _)| p)
}

/// Why a path could not be deleted; for a permission error, whose the directory holding it is
/// (deleting a file takes write permission on its directory).
fn reason(project: &Project, dir: &str, e: &std::io::Error) -> String {
    if e.kind() != ErrorKind::PermissionDenied {
        return e.to_string();
    }
    let owner = owner_of(&project.abs(dir));
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    match owner {
        Some(uid) if uid != me => format!(
            "{e} ({dir} belongs to {}, not to you: files a container wrote as root can be deleted as root, e.g. with sudo)",
            user_name(uid)
        ),
        _ => e.to_string(),
    }
}

fn owner_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().map(|m| m.uid())
}

fn user_name(uid: u32) -> String {
    if uid == 0 {
        "root".into()
    } else {
        format!("uid {uid}")
    }
}

//! Data profiles: run a pipe on other input files by swapping them in, and always swap them back.
//!
//! A profile (`[data.profiles.NAME]` in kerblam.toml) maps files of the input directory to the files
//! that replace them during the run, both relative to the input directory; the target `_` means "the
//! file is absent under this profile". As in Kerblam! 1.x, a `test` profile is inferred when none is
//! declared: every input file `test_X` (in any sub-directory) replaces its sibling `X` when `X` exists.
//!
//! For each entry `original = target`, [`apply`] renames the original to a hidden stash next to it
//! (`.NAME.kerblam-original`, same directory, so the rename is atomic and cannot cross file systems),
//! then renames the target to the original's name. An original that does not exist is allowed (the
//! profile adds a file); a target that does not exist is an error, found before anything moves.
//! Directories swap like files.
//!
//! **Guaranteed restore.** Before touching any file, `apply` writes a journal,
//! `<input>/.kerblam-profile.lock` (hidden, so never data), listing every entry and the pid of the
//! run. Restoring is idempotent and works from any intermediate state, so it does not need to know
//! how far the swap went: for each entry, in reverse order, if the original exists and the target
//! does not, the original goes back to the target; then if the stash exists, it goes back to the
//! original. The journal is removed only when everything is back. The restore runs when the run ends
//! (success or failure), from the signal thread on a forced exit (see `signals.rs`), and otherwise —
//! after SIGKILL, a power cut — at the start of the next `kerblam run`, which calls [`recover`] first.
//! The journal doubles as a lock: while its owner is alive, other runs refuse to start.
//!
//! **Timestamps.** make decides what to rebuild from modification times, so swapped-in files are
//! touched when the profile differs from the last one used, and the originals are touched on the first
//! run without a profile after a profile run (Kerblam! 1.x's rule). The last profile is remembered in
//! `<input>/.kerblam-last-profile`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use kerblam_compiler::Project;
use kerblam_compiler::paths::{is_within, normalize};
use serde::{Deserialize, Serialize};

use crate::exit::Exit;
use crate::exit::invalid;
use crate::output;
use crate::signals::Cleanup;

/// The journal file, in the input directory.
pub const JOURNAL: &str = ".kerblam-profile.lock";
/// The file remembering the last profile used, in the input directory.
pub const LAST_PROFILE: &str = ".kerblam-last-profile";
/// The suffix of a stashed original (`.NAME` + this).
pub const STASH_SUFFIX: &str = ".kerblam-original";
/// The journal's format identifier.
const JOURNAL_FORMAT: &str = "kerblam.profile-journal/v1";
/// Test hook: sleep this many milliseconds after each file operation of a swap or a restore, so a
/// test can interrupt it at a chosen point.
pub const STEP_DELAY_ENV: &str = "KERBLAM_TEST_PROFILE_STEP_DELAY_MS";

/// A profile's swaps: original → replacement (`None`: absent), relative to the input directory.
pub type Swaps = BTreeMap<String, Option<String>>;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Journal {
    format: String,
    profile: String,
    pid: u32,
    /// The run's start time in clock ticks since boot (`/proc/PID/stat` field 22), to tell the run
    /// from an unrelated process that got its pid later.
    #[serde(default)]
    start_time: Option<u64>,
    entries: Vec<Entry>,
}

/// One swap, paths relative to the input directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    original: String,
    /// `None` for `_`.
    target: Option<String>,
    /// Where the original was stashed; `None` when the original did not exist.
    stash: Option<String>,
}

/// The absolute input directory of a project.
pub fn input_dir(project: &Project) -> PathBuf {
    project.abs(&normalize(&project.manifest.data.paths.input))
}

/// Every profile of the project: the declared ones, plus the inferred `test` profile when there is
/// no declared one and `test_*` files exist.
pub fn available(project: &Project) -> miette::Result<BTreeMap<String, Swaps>> {
    let mut out: BTreeMap<String, Swaps> = project
        .manifest
        .data
        .profiles
        .iter()
        .map(|(name, files)| {
            let swaps = files
                .iter()
                .map(|(from, to)| (normalize(from), (to != "_").then(|| normalize(to))))
                .collect();
            (name.clone(), swaps)
        })
        .collect();
    if !out.contains_key("test") {
        let inferred = infer_test(&input_files(project)?);
        if !inferred.is_empty() {
            out.insert("test".into(), inferred);
        }
    }
    Ok(out)
}

/// The implicit `test` profile from input files (relative to the input directory): `dir/test_X`
/// replaces `dir/X` when both exist.
pub fn infer_test(files: &[String]) -> Swaps {
    let mut out = Swaps::new();
    for f in files {
        let (dir, name) = match f.rsplit_once('/') {
            Some((d, n)) => (Some(d), n),
            None => (None, f.as_str()),
        };
        if let Some(slug) = name.strip_prefix("test_").filter(|s| !s.is_empty()) {
            let original = match dir {
                Some(d) => format!("{d}/{slug}"),
                None => slug.to_string(),
            };
            if files.contains(&original) {
                out.insert(original, Some(f.clone()));
            }
        }
    }
    out
}

fn input_files(project: &Project) -> miette::Result<Vec<String>> {
    let input = normalize(&project.manifest.data.paths.input);
    let inv = kerblam_compiler::discover::data(project)?;
    Ok(inv
        .input
        .iter()
        .filter(|f| is_within(&f.path, &input))
        .map(|f| {
            if input == "." {
                f.path.clone()
            } else {
                f.path[input.len() + 1..].to_string()
            }
        })
        .collect())
}

/// The swaps of profile `name`, checked for consistency (no target used twice, no target that is
/// also an original).
pub fn resolve(project: &Project, name: &str) -> miette::Result<Swaps> {
    let all = available(project)?;
    let Some(swaps) = all.get(name) else {
        let names: Vec<&str> = all.keys().map(String::as_str).collect();
        let list = if names.is_empty() {
            "the project has no profiles (declare them under [data.profiles.NAME], or add test_* input files for `test`)".to_string()
        } else {
            format!("available profiles: {}", names.join(", "))
        };
        return Err(invalid(format!("no profile named `{name}`; {list}")));
    };
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (original, target) in swaps {
        let Some(t) = target else { continue };
        if t == original {
            return Err(invalid(format!(
                "profile `{name}`: `{original}` is swapped with itself"
            )));
        }
        if swaps.contains_key(t) {
            return Err(invalid(format!(
                "profile `{name}`: `{t}` is both a replacement (for `{original}`) and a file to replace; chains of swaps are not supported"
            )));
        }
        if let Some(other) = seen.insert(t, original) {
            return Err(invalid(format!(
                "profile `{name}`: `{t}` replaces both `{other}` and `{original}`"
            )));
        }
    }
    Ok(swaps.clone())
}

/// A profile in force. Restore it with [`ActiveProfile::restore`]; dropping it restores too.
pub struct ActiveProfile {
    state: Arc<Mutex<State>>,
    cleanup: Option<Cleanup>,
}

struct State {
    input: PathBuf,
    display_input: String,
    profile: String,
    entries: Vec<Entry>,
    /// Whether our journal is on disk (nothing moves before it is).
    journal_written: bool,
    /// Set once the restore ran: `Ok` or the problems found.
    outcome: Option<Result<(), Vec<String>>>,
}

impl ActiveProfile {
    /// Swap the files back and remove the journal. Problems are printed as they are found; the
    /// error returned only says that some remain.
    pub fn restore(mut self) -> miette::Result<()> {
        if let Some(c) = self.cleanup.take() {
            c.run();
        }
        let state = lock(&self.state);
        match &state.outcome {
            Some(Err(_)) => Err(Exit::failure(format!(
                "profile `{}` was not fully swapped back (see above)",
                state.profile
            ))
            .into()),
            _ => Ok(()),
        }
    }
}

fn restore_error(state: &State, problems: &[String]) -> miette::Report {
    miette::miette!(
        "could not swap back every file of profile `{}`:\n  {}\nthe journal {}/{JOURNAL} is kept; the next `kerblam run` tries again",
        state.profile,
        problems.join("\n  "),
        state.display_input
    )
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Swap in the files of profile `name`. Call [`recover`] first.
pub fn apply(project: &Project, name: &str) -> miette::Result<ActiveProfile> {
    let swaps = resolve(project, name)?;
    let input = input_dir(project);
    let display_input = normalize(&project.manifest.data.paths.input);
    let shown = |rel: &str| format!("{display_input}/{rel}");

    let entries = entries(&swaps, &input, name, &shown)?;

    let state = Arc::new(Mutex::new(State {
        input: input.clone(),
        display_input: display_input.clone(),
        profile: name.to_string(),
        entries: entries.clone(),
        journal_written: false,
        outcome: None,
    }));
    // Hold the state while swapping: a forced exit's cleanup waits for the swap to finish.
    let mut guard = lock(&state);
    let for_cleanup = state.clone();
    let cleanup = Cleanup::new(move || {
        let mut st = lock(&for_cleanup);
        // Without our journal nothing moved (and a journal there would be another run's).
        if st.journal_written && st.outcome.is_none() {
            let result = restore_entries(&st.input, &st.entries);
            if result.is_ok() {
                let _ = std::fs::remove_file(st.input.join(JOURNAL));
            } else if let Err(problems) = &result {
                output::print_report(&restore_error(&st, problems));
            }
            st.outcome = Some(result);
        }
    });
    let swapped = swap_in(&mut guard, name, &shown);
    drop(guard);
    if let Err(e) = swapped {
        drop(cleanup);
        return Err(e);
    }

    remember(&input, name, &entries);
    output::info(format!(
        "profile `{name}`: {} file{} swapped",
        entries.len(),
        if entries.len() == 1 { "" } else { "s" }
    ));
    Ok(ActiveProfile {
        state,
        cleanup: Some(cleanup),
    })
}

/// What swapping in `swaps` does to each file: refused when a target is missing, or when a stash
/// name is taken (left by an earlier run).
fn entries(
    swaps: &std::collections::BTreeMap<String, Option<String>>,
    input: &Path,
    name: &str,
    shown: &dyn Fn(&str) -> String,
) -> miette::Result<Vec<Entry>> {
    let mut missing = Vec::new();
    let mut entries = Vec::new();
    for (original, target) in swaps {
        if let Some(t) = target {
            if !exists(&input.join(t)) {
                missing.push(shown(t));
            }
        }
        let stash = exists(&input.join(original)).then(|| stash_name(original));
        if let Some(s) = &stash {
            if exists(&input.join(s)) {
                return Err(invalid(format!(
                    "{} exists (left by an earlier run?); move it away before using profile `{name}`",
                    shown(s)
                )));
            }
        }
        entries.push(Entry {
            original: original.clone(),
            target: target.clone(),
            stash,
        });
    }
    if !missing.is_empty() {
        return Err(invalid(format!(
            "profile `{name}` names files that do not exist:\n  {}",
            missing.join("\n  ")
        )));
    }
    Ok(entries)
}

/// Remembers `name` as the last profile used; when it is another than last time, the swapped-in
/// files are touched so that make sees them as new.
fn remember(input: &Path, name: &str, entries: &[Entry]) {
    let last = std::fs::read_to_string(input.join(LAST_PROFILE)).ok();
    if last.as_deref().map(str::trim) != Some(name) {
        for e in entries.iter().filter(|e| e.target.is_some()) {
            touch(&input.join(&e.original));
        }
        if let Err(err) = crate::cmd::plan::write_atomic(&input.join(LAST_PROFILE), name.as_bytes())
        {
            output::warn(format!("cannot remember the profile used: {err}"));
        }
    }
}

/// Write the journal, then move the files; the caller restores on error.
fn swap_in(st: &mut State, name: &str, shown: &dyn Fn(&str) -> String) -> miette::Result<()> {
    let input = st.input.clone();
    write_journal(
        &input,
        &Journal {
            format: JOURNAL_FORMAT.into(),
            profile: name.to_string(),
            pid: std::process::id(),
            start_time: start_time(std::process::id()),
            entries: st.entries.clone(),
        },
    )
    .map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AlreadyExists {
            " (another run just swapped a profile in)"
        } else {
            ""
        };
        miette::miette!(
            "cannot write the profile journal {}: {e}{hint}",
            shown(JOURNAL)
        )
    })?;
    st.journal_written = true;
    step_delay();
    for e in &st.entries {
        let o = input.join(&e.original);
        if let Some(s) = &e.stash {
            std::fs::rename(&o, input.join(s)).map_err(|err| {
                miette::miette!(
                    "cannot move {} aside for profile `{name}`: {err}",
                    shown(&e.original)
                )
            })?;
            step_delay();
        }
        if let Some(t) = &e.target {
            o.parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|_| std::fs::rename(input.join(t), &o))
                .map_err(|err| {
                    miette::miette!(
                        "cannot move {} to {} for profile `{name}`: {err}",
                        shown(t),
                        shown(&e.original)
                    )
                })?;
            step_delay();
        }
    }
    Ok(())
}

/// Before a run without a profile: if the last run used one, touch that profile's originals so make
/// rebuilds from the real data, and forget it.
pub fn note_plain_run(project: &Project) {
    let input = input_dir(project);
    let path = input.join(LAST_PROFILE);
    let Ok(last) = std::fs::read_to_string(&path) else {
        return;
    };
    if let Ok(all) = available(project) {
        if let Some(swaps) = all.get(last.trim()) {
            for (original, target) in swaps {
                if target.is_some() {
                    touch(&input.join(original));
                }
            }
        }
    }
    let _ = std::fs::remove_file(path);
}

/// Restore the files of a profile run that did not finish (kerblam was killed), from its journal.
/// Errors when the run that wrote the journal is still alive.
pub fn recover(project: &Project) -> miette::Result<()> {
    let input = input_dir(project);
    let display_input = normalize(&project.manifest.data.paths.input);
    remove_stale_temps(&input);
    let path = input.join(JOURNAL);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(miette::miette!(
                "cannot read the profile journal {display_input}/{JOURNAL}: {e}"
            ));
        }
    };
    let journal: Journal = serde_json::from_str(&text)
        .ok()
        .filter(|j: &Journal| j.format == JOURNAL_FORMAT && entries_are_safe(&j.entries))
        .ok_or_else(|| {
            miette::miette!(
                help = "restore the swapped files by hand (look for *.kerblam-original files), then delete the journal",
                "the profile journal {display_input}/{JOURNAL} is not readable"
            )
        })?;
    let owner_alive = pid_alive(journal.pid)
        && (journal.start_time.is_none() || journal.start_time == start_time(journal.pid));
    if journal.pid != std::process::id() && owner_alive {
        return Err(Exit::failure(format!(
                "a `kerblam run --profile {}` (pid {}) is running in this project and has swapped input files; wait for it to end (if it is not a kerblam run, delete {display_input}/{JOURNAL})",
                journal.profile, journal.pid
            ))
        .into());
    }
    match restore_entries(&input, &journal.entries) {
        Ok(()) => {
            std::fs::remove_file(&path)
                .map_err(|e| miette::miette!("cannot remove {display_input}/{JOURNAL}: {e}"))?;
            output::info(format!(
                "restored the input files of profile `{}`, swapped by an interrupted run (pid {})",
                journal.profile, journal.pid
            ));
            Ok(())
        }
        Err(problems) => Err(miette::miette!(
            "cannot restore the input files of profile `{}` from the interrupted run (pid {}):\n  {}\nfix them by hand, then delete {display_input}/{JOURNAL}",
            journal.profile,
            journal.pid,
            problems.join("\n  ")
        )),
    }
}

/// Journal paths must stay inside the input directory (the journal is a file anyone could edit).
fn entries_are_safe(entries: &[Entry]) -> bool {
    let ok = |p: &str| kerblam_compiler::paths::check_relative(p).is_none();
    entries.iter().all(|e| {
        ok(&e.original) && e.target.as_deref().is_none_or(ok) && e.stash.as_deref().is_none_or(ok)
    })
}

/// The idempotent restore described in the module docs.
fn restore_entries(input: &Path, entries: &[Entry]) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    for e in entries.iter().rev() {
        let o = input.join(&e.original);
        let stashed = e.stash.as_ref().is_some_and(|s| exists(&input.join(s)));
        if let Some(t) = &e.target {
            let t = input.join(t);
            if exists(&o) && exists(&t) && stashed {
                // Never reached by the swap itself (it moves one file at a time): something made a
                // new file at the replacement's name during the run. Keep everything, ask a human.
                problems.push(format!(
                    "{} was created during the run while {} stood in for {}, whose original is kept as {}: move the files back by hand",
                    t.display(),
                    t.display(),
                    o.display(),
                    input.join(e.stash.as_deref().unwrap_or_default()).display()
                ));
                continue;
            }
            if exists(&o) && !exists(&t) {
                let moved = t
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|_| std::fs::rename(&o, &t));
                if let Err(err) = moved {
                    problems.push(format!("{} → {}: {err}", o.display(), t.display()));
                    continue;
                }
                step_delay();
            } else if !exists(&t) {
                output::warn(format!(
                    "{} is gone: the run removed it while it stood in for {}",
                    t.display(),
                    o.display()
                ));
            }
        }
        if let Some(s) = &e.stash {
            let s = input.join(s);
            if exists(&s) {
                if e.target.is_none() && exists(&o) {
                    output::warn(format!(
                        "{} was created during the run (the profile removes it); the original replaces it",
                        o.display()
                    ));
                }
                if let Err(err) = std::fs::rename(&s, &o) {
                    problems.push(format!("{} → {}: {err}", s.display(), o.display()));
                    continue;
                }
                step_delay();
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn stash_name(original: &str) -> String {
    match original.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/.{name}{STASH_SUFFIX}"),
        None => format!(".{original}{STASH_SUFFIX}"),
    }
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

fn touch(p: &Path) {
    if let Ok(f) = std::fs::File::open(p) {
        let _ = f.set_modified(SystemTime::now());
    }
}

fn step_delay() {
    if let Some(ms) = std::env::var(STEP_DELAY_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(pid, 0) only checks for existence and permission.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A process's start time in clock ticks since boot, from `/proc/PID/stat` (Linux).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3; starttime is field 22.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Write the journal so that it appears complete or not at all, and only if none exists.
fn write_journal(input: &Path, journal: &Journal) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = input.join(format!("{JOURNAL}.tmp-{}", std::process::id()));
    let text = serde_json::to_string_pretty(journal).map_err(std::io::Error::other)?;
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        // hard_link fails if the journal exists: another run got there first.
        std::fs::hard_link(&tmp, input.join(JOURNAL))?;
        if let Ok(d) = std::fs::File::open(input) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

/// Remove journal temporaries left by runs killed while writing them.
fn remove_stale_temps(input: &Path) {
    let Ok(rd) = std::fs::read_dir(input) else {
        return;
    };
    for entry in rd.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(pid) = name
            .strip_prefix(&format!("{JOURNAL}.tmp-"))
            .and_then(|p| p.parse::<u32>().ok())
        {
            if !pid_alive(pid) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_profile_is_inferred_from_siblings() {
        let files: Vec<String> = [
            "a.txt",
            "test_a.txt",
            "test_b.txt",
            "sub/x",
            "sub/test_x",
            "test_",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let swaps = infer_test(&files);
        assert_eq!(swaps.len(), 2);
        assert_eq!(swaps["a.txt"], Some("test_a.txt".into()));
        assert_eq!(swaps["sub/x"], Some("sub/test_x".into()));
    }

    #[test]
    fn restore_works_from_every_intermediate_state() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path();
        let entries = vec![
            Entry {
                original: "a".into(),
                target: Some("t".into()),
                stash: Some(stash_name("a")),
            },
            Entry {
                original: "gone".into(),
                target: None,
                stash: Some(stash_name("gone")),
            },
            Entry {
                original: "new".into(),
                target: Some("n".into()),
                stash: None,
            },
        ];
        // The forward steps, in order; restoring after any prefix gives the start state back.
        let steps: Vec<(String, String)> = vec![
            ("a".into(), stash_name("a")),
            ("t".into(), "a".into()),
            ("gone".into(), stash_name("gone")),
            ("n".into(), "new".into()),
        ];
        for done in 0..=steps.len() {
            for f in [
                "a",
                "t",
                "gone",
                "n",
                "new",
                ".a.kerblam-original",
                ".gone.kerblam-original",
            ] {
                let _ = std::fs::remove_file(input.join(f));
            }
            std::fs::write(input.join("a"), "A").unwrap();
            std::fs::write(input.join("t"), "T").unwrap();
            std::fs::write(input.join("gone"), "G").unwrap();
            std::fs::write(input.join("n"), "N").unwrap();
            for (from, to) in &steps[..done] {
                std::fs::rename(input.join(from), input.join(to)).unwrap();
            }
            restore_entries(input, &entries).unwrap();
            // Twice: idempotent.
            restore_entries(input, &entries).unwrap();
            for (f, c) in [("a", "A"), ("t", "T"), ("gone", "G"), ("n", "N")] {
                assert_eq!(
                    std::fs::read_to_string(input.join(f)).unwrap(),
                    c,
                    "after {done} steps"
                );
            }
            assert!(!exists(&input.join("new")), "after {done} steps");
        }
    }
}

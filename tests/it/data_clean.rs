//! `kerblam data clean`, as a Kerblam! 1.x user runs it after a run: what goes (output and
//! intermediate files, the fetched remote files with `-r`, the directories left empty), what stays
//! (precious input data, files that cannot be fetched, hidden files, links and what they point to,
//! the data dirs), `--dry-run`, `--preserve-output`, `-d`, the confirmation on and off a terminal,
//! and files a container left owned by root.

use crate::support;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Output, Stdio};

use support::project::{TestProject, show};

const MANIFEST: &str = r#"
[data.remote]
"https://example.invalid/reference.txt" = "reference.txt"
"_" = "by_hand.txt"
"#;

/// A project after a run of its pipe: outputs in data/out (one in a sub-directory), intermediate
/// files in data/ and data/tmp, precious and remote input, hidden files, an empty dir, a link to
/// a precious file and one to a directory outside the project.
fn project_after_a_run(outside: &std::path::Path) -> TestProject {
    let p = TestProject::new(MANIFEST);
    p.write("data/in/precious.txt", "precious\n")
        .write("data/in/reference.txt", "fetched\n")
        .write("data/in/by_hand.txt", "made by hand\n")
        .write("data/in/.gitignore", "*\n")
        .write("data/.gitignore", "*\n")
        .write("data/out/.gitignore", "*\n")
        .write(
            "src/workflows/analyse.sh",
            "set -e\nmkdir -p data/tmp data/out/plots\n\
             cat data/in/precious.txt data/in/reference.txt > data/tmp/step1.txt\n\
             wc -l < data/tmp/step1.txt > data/step2.txt\n\
             cp data/step2.txt data/out/result.txt\n\
             echo plot > data/out/plots/p1.txt\n\
             echo cache > data/out/.cache\n",
        );
    let o = p.kerblam(&["run", "analyse"]);
    assert!(o.status.success(), "{}", show(&o));
    std::fs::create_dir_all(p.path("data/out/empty")).unwrap();
    std::fs::write(outside.join("keep.txt"), "not the project's").unwrap();
    std::os::unix::fs::symlink("../in/precious.txt", p.path("data/out/latest.txt")).unwrap();
    std::os::unix::fs::symlink(outside, p.path("data/elsewhere")).unwrap();
    p
}

fn keys(t: &BTreeMap<String, String>) -> Vec<&str> {
    t.keys().map(String::as_str).collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// What stays after a plain `data clean`.
const KEPT: &[&str] = &[
    "data/.gitignore",
    "data/elsewhere",
    "data/in/",
    "data/in/.gitignore",
    "data/in/by_hand.txt",
    "data/in/precious.txt",
    "data/in/reference.txt",
    "data/out/",
    "data/out/.cache",
    "data/out/.gitignore",
    "data/out/latest.txt",
];

#[test]
fn clean_after_a_run_deletes_outputs_and_intermediates_and_the_dirs_left_empty() {
    let outside = tempfile::tempdir().unwrap();
    let p = project_after_a_run(outside.path());
    let o = p.kerblam(&["data", "clean", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let after = support::files::tree(p.root(), "data");
    assert_eq!(keys(&after), KEPT, "{}", show(&o));
    // The links are links still, and nothing they point to was touched.
    assert_eq!(after["data/out/latest.txt"], "-> ../in/precious.txt");
    assert_eq!(p.read("data/in/precious.txt"), "precious\n");
    assert_eq!(
        std::fs::read_to_string(outside.path().join("keep.txt")).unwrap(),
        "not the project's"
    );
    assert!(
        stderr(&o).contains("deleted 4 files (26 B)"),
        "{}",
        show(&o)
    );

    // Once clean, there is nothing to clean.
    let o = p.kerblam(&["data", "clean", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Nothing to clean"),
        "{}",
        show(&o)
    );
}

#[test]
fn dry_run_lists_what_would_go_and_changes_nothing() {
    let outside = tempfile::tempdir().unwrap();
    let p = project_after_a_run(outside.path());
    let before = support::files::tree(p.root(), "data");
    let o = p.kerblam(&["data", "clean", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(support::files::tree(p.root(), "data"), before);
    let out = String::from_utf8_lossy(&o.stdout);
    let listed: Vec<&str> = out.lines().collect();
    assert_eq!(
        listed,
        [
            "Files to clean:",
            "data/out/plots/p1.txt",
            "data/out/result.txt",
            "data/step2.txt",
            "data/tmp/step1.txt",
            "Empty directories to remove:",
            "data/out/empty/",
            "data/out/plots/",
            "data/tmp/",
        ],
        "{}",
        show(&o)
    );
}

#[test]
fn include_remote_deletes_the_fetched_files_but_not_those_that_cannot_be_fetched() {
    let outside = tempfile::tempdir().unwrap();
    let p = project_after_a_run(outside.path());
    let o = p.kerblam(&["data", "clean", "-r", "-y"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let after = support::files::tree(p.root(), "data");
    let expected: Vec<&str> = KEPT
        .iter()
        .copied()
        .filter(|k| *k != "data/in/reference.txt")
        .collect();
    assert_eq!(keys(&after), expected, "{}", show(&o));
    // The spelling of 1.x's own help text is accepted too.
    let p = project_after_a_run(outside.path());
    let o = p.kerblam(&["data", "clean", "--delete-remote", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(!p.exists("data/in/reference.txt"));
}

#[test]
fn preserve_output_keeps_the_outputs_and_keep_dirs_the_dirs() {
    let outside = tempfile::tempdir().unwrap();
    let p = project_after_a_run(outside.path());
    let o = p.kerblam(&["data", "clean", "--preserve-output", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let after = support::files::tree(p.root(), "data");
    for kept in ["data/out/result.txt", "data/out/plots/p1.txt"] {
        assert!(after.contains_key(kept), "{kept} went:\n{}", show(&o));
    }
    for gone in [
        "data/step2.txt",
        "data/tmp/",
        "data/tmp/step1.txt",
        "data/out/empty/",
    ] {
        assert!(!after.contains_key(gone), "{gone} stayed:\n{}", show(&o));
    }

    let p = project_after_a_run(outside.path());
    let o = p.kerblam(&["data", "clean", "-d", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let after = support::files::tree(p.root(), "data");
    for kept in ["data/out/plots/", "data/tmp/", "data/out/empty/"] {
        assert!(after.contains_key(kept), "{kept} went:\n{}", show(&o));
    }
    assert!(!after.contains_key("data/out/result.txt"));
    assert!(!after.contains_key("data/tmp/step1.txt"));
}

fn clean_with_input(p: &TestProject, input: &str) -> Output {
    let mut child = p
        .command(&["data", "clean"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn without_yes_it_asks_and_deletes_nothing_without_a_yes() {
    let outside = tempfile::tempdir().unwrap();
    let p = project_after_a_run(outside.path());
    let before = support::files::tree(p.root(), "data");

    // No answer at all (Kerblam! 1.x asks for ever): refused, saying how to go on.
    let o = p.kerblam(&["data", "clean"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        stderr(&o).contains("not a terminal") && stderr(&o).contains("--yes"),
        "{}",
        show(&o)
    );
    assert_eq!(support::files::tree(p.root(), "data"), before);

    // No: 1.x's "Aborted!", exit 1.
    let o = clean_with_input(&p, "n\n");
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(stderr(&o).contains("Aborted"), "{}", show(&o));
    assert_eq!(support::files::tree(p.root(), "data"), before);

    // An answer that is not one asks again, as in 1.x; then yes. The preview names the files.
    let o = clean_with_input(&p, "\nmaybe\nYes\n");
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let err = stderr(&o);
    assert!(err.contains("Please choose one option"), "{}", show(&o));
    assert!(err.contains("'maybe' is not in yes/no"), "{}", show(&o));
    assert!(err.contains("  data/out/result.txt\n"), "{}", show(&o));
    assert!(
        err.contains("About to delete 4 files (26 B). Continue? [yes/no]"),
        "{}",
        show(&o)
    );
    assert_eq!(keys(&support::files::tree(p.root(), "data")), KEPT);
}

/// `script` runs a command on a pseudo-terminal (util-linux); `None` where it is missing.
fn on_a_terminal(p: &TestProject, args: &str, input: &str) -> Option<Output> {
    support::terminal::kerblam(p.root(), args, input, None)
}

#[test]
fn on_a_terminal_it_previews_and_asks() {
    let outside = tempfile::tempdir().unwrap();
    let p = project_after_a_run(outside.path());
    let Some(o) = on_a_terminal(&p, "data clean", "y\n") else {
        return;
    };
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let screen = String::from_utf8_lossy(&o.stdout);
    assert!(screen.contains("kerblam will delete:"), "{screen}");
    assert!(screen.contains("data/tmp/step1.txt"), "{screen}");
    assert!(screen.contains("Continue? [yes/no]"), "{screen}");
    assert_eq!(keys(&support::files::tree(p.root(), "data")), KEPT);
}

#[test]
fn a_data_dir_that_is_the_project_root_is_refused() {
    let p = TestProject::new("[data.paths]\nintermediate = \".\"\n");
    p.write("src/workflows/x.sh", "true\n")
        .write("notes.txt", "mine");
    let o = p.kerblam(&["data", "clean", "--yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(stderr(&o).contains("project root"), "{}", show(&o));
    assert!(p.exists("notes.txt") && p.exists("src/workflows/x.sh"));
}

/// Files a container wrote as root in a directory of its own: a user cannot delete them. kerblam
/// deletes the rest, names each file it could not delete and whose its directory is, and exits 1.
#[test]
fn files_left_by_root_are_reported_and_the_rest_is_cleaned() {
    if support::require_root("making files owned by root and running kerblam as another user")
        .is_none()
        || support::require_tool(
            "setpriv",
            "running kerblam as another user; apt-get install util-linux",
        )
        .is_none()
    {
        return;
    }
    let outside = tempfile::tempdir().unwrap();
    let p = project_after_a_run(outside.path());
    std::fs::create_dir_all(p.path("data/out/by_container")).unwrap();
    p.write("data/out/by_container/table.csv", "a,b\n");
    // The project is the user's (uid 65534), but for the container's directory.
    let chown = |path: &std::path::Path, uid: u32| {
        std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
    };
    fn all(dir: &std::path::Path, f: &dyn Fn(&std::path::Path)) {
        f(dir);
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                all(&e.path(), f);
            } else {
                f(&e.path());
            }
        }
    }
    all(p.root(), &|path| chown(path, 65534));
    chown(&p.path("data/out/by_container"), 0);
    chown(&p.path("data/out/by_container/table.csv"), 0);
    // The user must reach the project's temporary dir and the kerblam binary.
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_kerblam"))
        .arg("-C")
        .arg(p.root())
        .args(["data", "clean", "--yes"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = stderr(&o);
    assert!(
        err.contains("data/out/by_container/table.csv: Permission denied")
            && err.contains("data/out/by_container belongs to root"),
        "{}",
        show(&o)
    );
    assert!(!err.contains("panicked"), "{}", show(&o));
    // The rest went; the container's file and its directory stayed.
    let after = support::files::tree(p.root(), "data");
    assert!(after.contains_key("data/out/by_container/table.csv"));
    assert!(!after.contains_key("data/out/result.txt"));
    assert!(!after.contains_key("data/tmp/"));
}

/// A data dir that is a link out of the project (to a scratch disk, say) is not cleaned: kerblam
/// never follows a link out of the project. It says so and exits 1; the rest is cleaned.
#[test]
fn a_data_dir_that_leads_out_of_the_project_is_not_cleaned() {
    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(scratch.path().join("result.txt"), "on scratch").unwrap();
    let p = TestProject::new("");
    p.write("data/step.txt", "intermediate");
    std::os::unix::fs::symlink(scratch.path(), p.path("data/out")).unwrap();
    let o = p.kerblam(&["data", "clean", "--yes"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        stderr(&o).contains("data/out leads out of the project"),
        "{}",
        show(&o)
    );
    assert!(scratch.path().join("result.txt").is_file());
    assert!(!p.exists("data/step.txt"));
    assert!(p.exists("data/out/result.txt"));
    // Keeping the outputs, there is nothing out there to clean: no complaint.
    let o = p.kerblam(&["data", "clean", "--yes", "--preserve-output"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
}

/// When the output dir is the intermediate dir, its files are outputs: --preserve-output keeps
/// them (Kerblam! 1.x deletes them anyway).
#[test]
fn preserve_output_keeps_outputs_that_share_the_intermediate_dir() {
    let p = TestProject::new("[data.paths]\noutput = \"data\"\nintermediate = \"data\"\n");
    p.write("data/result.txt", "r")
        .write("data/in/precious.txt", "p");
    let o = p.kerblam(&["data", "clean", "--yes", "--preserve-output"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(p.exists("data/result.txt") && p.exists("data/in/precious.txt"));
    let o = p.kerblam(&["data", "clean", "--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(!p.exists("data/result.txt") && p.exists("data/in/precious.txt"));
}

//! `kerblam plan` on the example projects: byte-identical output across runs, working directories and
//! machines (two copies in two temp dirs), `--format toml`, `-o`, `--check`, `--digests`,
//! `SOURCE_DATE_EPOCH`, and one insta snapshot per example holding the plan of each of its pipes.
//!
//! Every test works on fresh copies of `examples/` in temp dirs, so nothing another test writes into
//! the examples (data outputs, archives) can change the result.
//!
//! When the plan changes on purpose, accept the new snapshots with
//! `INSTA_UPDATE=always cargo test --test it plan_cli::` and review the diff of `tests/it/snapshots/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The example projects and their pipes. A new example project must be added here.
const EXAMPLES: &[(&str, &[&str])] = &[
    ("custom-paths", &["analyse"]),
    ("minimal", &["hello"]),
    ("process", &["listing", "process", "shout"]),
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn kerblam() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kerblam"));
    c.env_remove("SOURCE_DATE_EPOCH")
        .env_remove("KERBLAM_BACKEND_PATH")
        .env("NO_COLOR", "1");
    c
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The files of an example as committed: `git ls-files` when git knows them, else every file.
fn example_files(name: &str) -> Vec<PathBuf> {
    let dir = repo().join("examples").join(name);
    let git = Command::new("git")
        .current_dir(repo())
        .args(["ls-files", "-z", "--"])
        .arg(format!("examples/{name}"))
        .output();
    if let Ok(out) = git {
        if out.status.success() && !out.stdout.is_empty() {
            return out
                .stdout
                .split(|b| *b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let p = repo().join(String::from_utf8_lossy(p).as_ref());
                    p.strip_prefix(&dir).unwrap().to_path_buf()
                })
                .collect();
        }
    }
    let mut out = Vec::new();
    walk(&dir, &dir, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            out.push(p.strip_prefix(root).unwrap().to_path_buf());
        }
    }
}

/// Copy an example into `parent/<name>`, with modes normalised to 0644/0755 (as a checkout with
/// umask 022 has them), and return the copy's root.
fn copy_example(name: &str, parent: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let src = repo().join("examples").join(name);
    let dst = parent.join(name);
    for rel in example_files(name) {
        let to = dst.join(&rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src.join(&rel), &to).unwrap();
        let exec = std::fs::metadata(&to).unwrap().permissions().mode() & 0o111 != 0;
        let mode = if exec { 0o755 } else { 0o644 };
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    dst
}

#[test]
fn the_checkouts_umask_does_not_change_the_plan() {
    // A checkout under umask 002 has 0664 files and 0775 scripts; one under 077 has 0600 and
    // 0700. The plan (and the image built from it) records modes as git does: 0644 or 0755.
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let reference = plan_in(&copy_example("process", t.path()), "process", &[]);
    for (plain, exec) in [(0o664, 0o775), (0o600, 0o700), (0o444, 0o555)] {
        let other = tempfile::tempdir().unwrap();
        let root = copy_example("process", other.path());
        for rel in example_files("process") {
            let p = root.join(&rel);
            let x = std::fs::metadata(&p).unwrap().permissions().mode() & 0o111 != 0;
            let mode = if x { exec } else { plain };
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        assert_eq!(
            plan_in(&root, "process", &[]),
            reference,
            "files {plain:o} and scripts {exec:o} changed the plan"
        );
    }
    assert!(
        reference.contains("\"mode\": 493"),
        "no executable recorded as 0o755"
    );
}

fn plan_in(dir: &Path, pipe: &str, extra: &[&str]) -> String {
    stdout_ok(
        kerblam()
            .arg("-C")
            .arg(dir)
            .args(["plan", pipe])
            .args(extra),
    )
}

#[test]
fn every_example_project_is_listed_here() {
    let mut found: Vec<String> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("kerblam.toml").is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let listed: Vec<&str> = EXAMPLES.iter().map(|(n, _)| *n).collect();
    assert_eq!(found, listed);
    assert!(listed.len() >= 3);
}

#[test]
fn plans_are_byte_identical_across_runs_directories_and_copies() {
    let t1 = tempfile::tempdir().unwrap();
    let t2 = tempfile::tempdir().unwrap();
    for (name, pipes) in EXAMPLES {
        let a = copy_example(name, t1.path());
        let b = copy_example(name, t2.path());
        // A subdirectory of the project: kerblam walks up to kerblam.toml.
        let pipe_file = |root: &Path| {
            let v: serde_json::Value = serde_json::from_str(&plan_in(root, pipes[0], &[])).unwrap();
            root.join(v["pipe"]["path"].as_str().unwrap())
        };
        let sub = pipe_file(&a).parent().unwrap().to_path_buf();
        assert_ne!(sub, a);
        for pipe in *pipes {
            for format in ["json", "toml"] {
                let first = plan_in(&a, pipe, &["--format", format]);
                let again = plan_in(&a, pipe, &["--format", format]);
                assert_eq!(first, again, "{name}/{pipe} ({format}): two runs differ");
                let from_cwd = stdout_ok(
                    kerblam()
                        .current_dir(&a)
                        .args(["plan", pipe, "--format", format]),
                );
                assert_eq!(first, from_cwd, "{name}/{pipe}: -C vs working directory");
                let from_sub = stdout_ok(
                    kerblam()
                        .current_dir(&sub)
                        .args(["plan", pipe, "--format", format]),
                );
                assert_eq!(first, from_sub, "{name}/{pipe}: from {}", sub.display());
                let relative_c = stdout_ok(
                    kerblam()
                        .current_dir(t1.path())
                        .args(["-C", name, "plan", pipe, "--format", format]),
                );
                assert_eq!(first, relative_c, "{name}/{pipe}: relative -C");
                let other_copy = plan_in(&b, pipe, &["--format", format]);
                assert_eq!(first, other_copy, "{name}/{pipe}: two copies differ");
                for dir in [t1.path(), t2.path(), repo()] {
                    let dir = dir.to_string_lossy();
                    assert!(
                        !first.contains(dir.as_ref()),
                        "{name}/{pipe}: the plan holds the absolute path {dir}"
                    );
                }
            }
        }
    }
}

/// The TOML rendering holds the same data as the JSON one.
#[test]
fn toml_format_is_the_json_plan() {
    let t = tempfile::tempdir().unwrap();
    for (name, pipes) in EXAMPLES {
        let root = copy_example(name, t.path());
        for pipe in *pipes {
            let json: serde_json::Value = serde_json::from_str(&plan_in(&root, pipe, &[])).unwrap();
            let toml = plan_in(&root, pipe, &["--format", "toml"]);
            let from_toml: serde_json::Value = toml_edit::de::from_str(&toml)
                .unwrap_or_else(|e| panic!("{name}/{pipe}: not TOML: {e}\n{toml}"));
            assert_eq!(json, from_toml, "{name}/{pipe}");
        }
    }
}

#[test]
fn output_file_is_written_whole_and_matches_stdout() {
    let t = tempfile::tempdir().unwrap();
    let root = copy_example("process", t.path());
    let out_dir = t.path().join("plans");
    std::fs::create_dir(&out_dir).unwrap();
    let stdout = plan_in(&root, "process", &[]);
    let file = out_dir.join("process.plan.json");
    let printed = stdout_ok(
        kerblam()
            .arg("-C")
            .arg(&root)
            .args(["plan", "process", "-o"])
            .arg(&file),
    );
    assert_eq!(printed, "", "-o prints nothing on stdout");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), stdout);
    // A .toml name selects TOML; nothing else is left in the directory.
    let toml_file = out_dir.join("process.plan.toml");
    stdout_ok(
        kerblam()
            .arg("-C")
            .arg(&root)
            .args(["plan", "process", "--output"])
            .arg(&toml_file),
    );
    assert_eq!(
        std::fs::read_to_string(&toml_file).unwrap(),
        plan_in(&root, "process", &["--format", "toml"])
    );
    let mut names: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["process.plan.json", "process.plan.toml"]);
    // A directory that does not exist is an error naming it, and writes nothing.
    let bad = t.path().join("missing/dir/plan.json");
    let out = run(kerblam()
        .arg("-C")
        .arg(&root)
        .args(["plan", "process", "-o"])
        .arg(&bad));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing/dir/plan.json"), "{stderr}");
    assert!(!t.path().join("missing").exists());
}

#[test]
fn check_passes_on_a_fresh_plan_and_fails_with_a_diff_on_a_stale_one() {
    let t = tempfile::tempdir().unwrap();
    for (name, pipes) in EXAMPLES {
        let root = copy_example(name, t.path());
        for pipe in *pipes {
            for ext in ["json", "toml"] {
                let file = t.path().join(format!("{name}-{pipe}.plan.{ext}"));
                stdout_ok(
                    kerblam()
                        .arg("-C")
                        .arg(&root)
                        .args(["plan", pipe, "-o"])
                        .arg(&file),
                );
                let out = run(kerblam()
                    .arg("-C")
                    .arg(&root)
                    .args(["plan", pipe, "--check"])
                    .arg(&file));
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "{name}/{pipe}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(out.stdout.is_empty());
            }
        }
    }
    // Add a file to a project: its checked-in plans are now stale.
    let root = t.path().join("process");
    std::fs::write(root.join("NOTES.txt"), "new\n").unwrap();
    for ext in ["json", "toml"] {
        let file = t.path().join(format!("process-process.plan.{ext}"));
        let before = std::fs::read(&file).unwrap();
        let out = run(kerblam()
            .arg("-C")
            .arg(&root)
            .args(["plan", "process", "--check"])
            .arg(&file));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
        assert!(
            stdout.starts_with(&format!("--- {}\n+++ (generated)\n@@ ", file.display())),
            "not a unified diff:\n{stdout}"
        );
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with('+') && l.contains("NOTES.txt")),
            "the diff does not show the new file:\n{stdout}"
        );
        assert!(stderr.contains("is stale"), "{stderr}");
        // The hint is this command line, --check turned into -o (the project dir stays).
        let hint = format!(
            "regenerate it with `kerblam -C {} plan process -o {}`",
            root.display(),
            file.display()
        );
        assert!(stderr.contains(&hint), "no `{hint}` in:\n{stderr}");
        assert_eq!(
            std::fs::read(&file).unwrap(),
            before,
            "--check wrote the file"
        );
    }
    // A missing file to check is an error naming it.
    let out = run(kerblam().arg("-C").arg(&root).args([
        "plan",
        "process",
        "--check",
        "no-such-plan.json",
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-plan.json"));
}

fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    let bytes = std::fs::read(path).unwrap();
    let sum = sha2::Sha256::digest(&bytes);
    let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[test]
fn digests_add_a_sha256_for_context_and_precious_files() {
    let t = tempfile::tempdir().unwrap();
    for (name, pipes) in EXAMPLES {
        let root = copy_example(name, t.path());
        let plain: serde_json::Value =
            serde_json::from_str(&plan_in(&root, pipes[0], &[])).unwrap();
        let with: serde_json::Value =
            serde_json::from_str(&plan_in(&root, pipes[0], &["--digests"])).unwrap();
        let again = plan_in(&root, pipes[0], &["--digests"]);
        assert_eq!(
            with,
            serde_json::from_str::<serde_json::Value>(&again).unwrap()
        );
        let files = with["context"]["files"].as_array().unwrap();
        assert!(!files.is_empty(), "{name}: empty context");
        for f in files {
            let path = root.join(f["path"].as_str().unwrap());
            assert_eq!(f["sha256"], sha256_of(&path).as_str(), "{name}: {f}");
        }
        for f in plain["context"]["files"].as_array().unwrap() {
            assert!(
                f.get("sha256").is_none(),
                "{name}: digest without --digests"
            );
        }
        for f in with["pipe"]["precious"].as_array().unwrap() {
            let path = root.join(f["path"].as_str().unwrap());
            assert_eq!(f["sha256"], sha256_of(&path).as_str(), "{name}: {f}");
        }
        for f in plain["pipe"]["precious"].as_array().unwrap() {
            assert!(
                f.get("sha256").is_none(),
                "{name}: digest without --digests"
            );
        }
    }
    // The examples with data do have precious files, so the loop above checked some.
    let root = t.path().join("process");
    let with: serde_json::Value =
        serde_json::from_str(&plan_in(&root, "process", &["--digests"])).unwrap();
    assert_eq!(with["pipe"]["precious"].as_array().unwrap().len(), 2);
}

#[test]
fn created_appears_only_with_source_date_epoch() {
    let t = tempfile::tempdir().unwrap();
    let root = copy_example("minimal", t.path());
    let plain = plan_in(&root, "hello", &[]);
    assert!(!plain.contains("\"created\""), "{plain}");
    let with_epoch = |epoch: &str| {
        stdout_ok(
            kerblam()
                .env("SOURCE_DATE_EPOCH", epoch)
                .arg("-C")
                .arg(&root)
                .args(["plan", "hello"]),
        )
    };
    let a = with_epoch("1700000000");
    let b = with_epoch("1700000000");
    assert_eq!(a, b);
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    assert_eq!(
        v["metadata"]["created"], "2023-11-14T22:13:20Z",
        "{}",
        v["metadata"]
    );
    let other: serde_json::Value = serde_json::from_str(&with_epoch("0")).unwrap();
    assert_eq!(other["metadata"]["created"], "1970-01-01T00:00:00Z");
}

#[test]
fn unknown_pipe_lists_the_available_ones() {
    let t = tempfile::tempdir().unwrap();
    let root = copy_example("process", t.path());
    let out = run(kerblam()
        .args(["--color", "never", "-C"])
        .arg(&root)
        .args(["plan", "nope"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for p in ["listing", "process", "shout"] {
        assert!(stderr.contains(p), "{stderr}");
    }
    assert!(stderr.contains("no pipe named `nope`"), "{stderr}");
    // Each pipe is marked with its recipe: its own (🐋) or the default one (🐟).
    assert!(
        stderr.contains("🐋 process (recipe: src/dockerfiles/process.dockerfile)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("🐟 shout (recipe: default src/dockerfiles/default.dockerfile)"),
        "{stderr}"
    );
    // Without a default recipe, a pipe with no recipe of its own says it runs locally only.
    std::fs::remove_file(root.join("src/dockerfiles/default.dockerfile")).unwrap();
    let out = run(kerblam()
        .args(["--color", "never", "-C"])
        .arg(&root)
        .args(["plan", "nope"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("shout (no recipe: runs locally only)"),
        "{stderr}"
    );
}

/// Precious files are the input files that are not remote targets, hidden files excluded (as
/// Kerblam! 1.x decides it); they are what the replay archive will hold.
#[test]
fn precious_files_leave_out_remote_targets_and_hidden_files() {
    let t = tempfile::tempdir().unwrap();
    let root = copy_example("process", t.path());
    std::fs::write(root.join("data/in/.hidden.txt"), "hidden\n").unwrap();
    std::fs::create_dir_all(root.join("data/in/.cache")).unwrap();
    std::fs::write(root.join("data/in/.cache/x.txt"), "cached\n").unwrap();
    std::fs::write(root.join("data/in/remote.txt"), "fetched earlier\n").unwrap();
    std::fs::create_dir_all(root.join("data/in/sub")).unwrap();
    std::fs::write(root.join("data/in/sub/nested.txt"), "nested\n").unwrap();
    let out = stdout_ok(kerblam().arg("-C").arg(&root).args(["plan", "process"]));
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    let precious: Vec<&str> = plan["pipe"]["precious"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        precious,
        [
            "data/in/precious.txt",
            "data/in/sub/nested.txt",
            "data/in/test_precious.txt"
        ]
    );
}

/// One snapshot per example holding the plan of each of its pipes.
#[test]
fn example_plans_snapshot() {
    let t = tempfile::tempdir().unwrap();
    for (name, pipes) in EXAMPLES {
        let root = copy_example(name, t.path());
        let mut all = String::new();
        for pipe in *pipes {
            all.push_str(&format!(
                "================ {pipe}.plan.json ================\n"
            ));
            all.push_str(&plan_in(&root, pipe, &[]));
        }
        insta::assert_snapshot!(format!("plan_{name}"), all);
    }
}

#[test]
fn a_bad_dockerignore_pattern_is_invalid_input_with_a_location() {
    let t = tempfile::tempdir().unwrap();
    let root = copy_example("process", t.path());
    std::fs::write(root.join(".dockerignore"), "*.log\n[z-a]\n").unwrap();
    let out = run(kerblam()
        .current_dir(&root)
        .args(["--color", "never", "plan", "process"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("[.dockerignore:2:1]"), "{stderr}");
    assert!(stderr.contains("invalid range"), "{stderr}");
    assert!(out.stdout.is_empty());
}

/// The README's workflow, with the plans checked in where users keep them: inside the project (at
/// the root and in a subdirectory). A plan leaves every plan file out of its context, unlisted (it
/// would otherwise list itself and the other plans, and never be fresh); a file that only looks
/// like a plan by name stays.
#[test]
fn a_plan_checked_into_the_project_is_fresh_and_not_in_its_own_context() {
    let t = tempfile::tempdir().unwrap();
    let root = copy_example("process", t.path());
    std::fs::create_dir_all(root.join("plans")).unwrap();
    std::fs::write(root.join("notes.plan.json"), "{\"not\": \"a plan\"}\n").unwrap();
    for file in ["process.plan.json", "plans/process.plan.toml"] {
        stdout_ok(
            kerblam()
                .arg("-C")
                .arg(&root)
                .args(["plan", "process", "-o"])
                .arg(root.join(file)),
        );
    }
    for file in ["process.plan.json", "plans/process.plan.toml"] {
        let out = run(kerblam()
            .arg("-C")
            .arg(&root)
            .args(["plan", "process", "--check"])
            .arg(root.join(file)));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{file}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("process.plan.json")).unwrap()).unwrap();
    let files: Vec<&str> = plan["context"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(files.contains(&"notes.plan.json"), "{files:?}");
    assert!(
        !files.iter().any(|f| f.contains("process.plan")),
        "{files:?}"
    );
    let excluded = plan["context"]["excluded"].to_string();
    assert!(!excluded.contains("process.plan"), "{excluded}");
}

//! Plugins cannot take the host down: `kerblam package` / `kerblam run` through deliberately broken
//! backends, built here (C plugins with gcc, and a Rust plugin that panics in its own `execute`),
//! each claiming every capability so that the CLI hands it a real compiled plan. Each gives a clear
//! error naming the backend, kerblam exits on its own with the right code, and no archive is left.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use kerblam_backend_api::host::testing;
use support::project::{TestProject, kill, show_joined, wait_timeout};

/// A C plugin named `cbroken` claiming everything, with the given behaviour, in its own dir.
fn c_plugin(dir: &Path, defines: &[&str]) -> PathBuf {
    let mut all = vec!["NAME=\"cbroken\"", "CLAIM_ALL"];
    all.extend_from_slice(defines);
    testing::c_fixture(dir, "libcbroken.so", &all);
    dir.to_path_buf()
}

fn run(p: &TestProject, plugins: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--backend-path", plugins.to_str().unwrap()];
    all.extend_from_slice(args);
    p.command(&all).output().unwrap()
}

/// `kerblam package process` (with `extra`) through a `cbroken` plugin built with `defines`, which
/// must fail with exit 1: the project, and the message.
fn package_failing(defines: &[&str], extra: &[&str]) -> (TestProject, String) {
    let t = tempfile::tempdir().unwrap();
    let dir = c_plugin(t.path(), defines);
    let p = TestProject::example("process");
    let mut args = vec!["package", "process", "--backend", "cbroken"];
    args.extend_from_slice(extra);
    let o = run(&p, &dir, &args);
    let msg = show_joined(&o);
    assert_eq!(o.status.code(), Some(1), "{defines:?}: {msg}");
    nothing_written(&p, &o);
    assert!(!p.exists("cplugin.out"), "{msg}");
    (p, msg)
}

/// The file the fixture writes, as kerblam names it.
fn fixture_file(p: &TestProject) -> std::path::PathBuf {
    p.root().canonicalize().unwrap().join("cplugin.out")
}

fn nothing_written(p: &TestProject, o: &std::process::Output) {
    for name in ["process.kerblam.tar", "process.context.tar"] {
        assert!(!p.exists(name), "{name}\n{}", show_joined(o));
    }
}

#[test]
fn a_plugin_that_panics_in_execute_is_a_clear_error_and_exit_1() {
    let dir = testing::build_standalone(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("contract/api/tests/plugins/panicky/Cargo.toml"),
    )
    .unwrap();
    let p = TestProject::example("process");
    let o = run(&p, &dir, &["package", "process", "--backend", "panicky"]);
    let t = show_joined(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("panicky"), "{t}");
    assert!(
        t.contains("panicked") && t.contains("index out of bounds"),
        "{t}"
    );
    assert!(
        t.contains("panicky: starting on process"),
        "its log line came through: {t}"
    );
    nothing_written(&p, &o);
}

#[test]
fn a_plugin_that_returns_garbage_is_a_clear_error_and_exit_1() {
    for (define, says) in [("TRUNCATED", "truncated"), ("NON_UTF8", "UTF-8")] {
        let t = tempfile::tempdir().unwrap();
        let dir = c_plugin(t.path(), &[define]);
        let p = TestProject::example("process");
        let o = run(&p, &dir, &["package", "process", "--backend", "cbroken"]);
        let msg = show_joined(&o);
        assert_eq!(o.status.code(), Some(1), "{define}: {msg}");
        assert!(
            msg.contains("cbroken") && msg.contains("libcbroken.so"),
            "{define}: {msg}"
        );
        assert!(msg.contains(says), "{define}: {msg}");
        nothing_written(&p, &o);
    }
}

/// A plugin that ignores cancellation: after Ctrl-C it gets `KERBLAM_CANCEL_GRACE` seconds, then
/// kerblam gives up on it, says so, and exits 130 (it would otherwise hang for 30 s).
#[test]
fn a_plugin_that_hangs_past_cancellation_is_abandoned_and_kerblam_exits_130() {
    let t = tempfile::tempdir().unwrap();
    let dir = c_plugin(t.path(), &["HANG"]);
    let p = TestProject::example("process");
    let mut child = p
        .command(&[
            "--backend-path",
            dir.to_str().unwrap(),
            "package",
            "process",
            "--backend",
            "cbroken",
        ])
        .env("KERBLAM_CANCEL_GRACE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let start = Instant::now();
    kill(i64::from(child.id()), 2);
    let status = wait_timeout(&mut child, Duration::from_secs(20));
    let took = start.elapsed();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let err = err.replace("\n  | ", " ");
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("ignored cancellation"), "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}: {err}");
    assert!(!p.exists("process.kerblam.tar"));
}

/// A plugin that hangs with nobody pressing Ctrl-C: `--backend-timeout` (or
/// `KERBLAM_BACKEND_TIMEOUT`) bounds the call; the plugin is asked to stop, abandoned after the
/// grace period, and kerblam exits 1 saying so. A timeout that is not a number is a usage error.
#[test]
fn a_plugin_that_hangs_past_the_timeout_is_abandoned_and_kerblam_exits_1() {
    let t = tempfile::tempdir().unwrap();
    let dir = c_plugin(t.path(), &["HANG"]);
    let p = TestProject::example("process");
    for (flag, env) in [(Some("1"), None), (None, Some("1.5"))] {
        let mut args = vec!["--backend-path", dir.to_str().unwrap()];
        if let Some(f) = flag {
            args.extend(["--backend-timeout", f]);
        }
        args.extend(["package", "process", "--backend", "cbroken"]);
        let mut cmd = p.command(&args);
        cmd.env("KERBLAM_CANCEL_GRACE", "1");
        if let Some(e) = env {
            cmd.env("KERBLAM_BACKEND_TIMEOUT", e);
        }
        let start = Instant::now();
        let o = cmd.output().unwrap();
        let took = start.elapsed();
        let msg = show_joined(&o).replace("\n  | ", " ");
        assert_eq!(o.status.code(), Some(1), "{msg}");
        let within = format!(
            "did not finish within {:.1}s",
            flag.or(env).unwrap().parse::<f64>().unwrap()
        );
        assert!(msg.contains(&within), "{msg}");
        assert!(msg.contains("ignored cancellation"), "{msg}");
        assert!(took < Duration::from_secs(10), "took {took:?}: {msg}");
        assert!(!p.exists("process.kerblam.tar"));
    }
    for bad in ["soon", "0", "-1", "1e20", "inf"] {
        let flag = format!("--backend-timeout={bad}");
        let o = p.kerblam(&[&flag, "plan", "process"]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", show_joined(&o));
        assert!(
            show_joined(&o).contains("not a positive number of seconds"),
            "{bad}: {}",
            show_joined(&o)
        );
    }
}

/// A plugin whose plan call hangs: `--backend-timeout` (or `KERBLAM_BACKEND_TIMEOUT`) bounds it
/// as it bounds a build, and kerblam exits 1 saying that the backend did not answer in time (a
/// plan call cannot be cancelled, so nothing "ignored cancellation").
#[test]
fn a_plugin_whose_plan_hangs_past_the_timeout_is_given_up_on_and_kerblam_exits_1() {
    let t = tempfile::tempdir().unwrap();
    let dir = c_plugin(t.path(), &["HANG_PLAN"]);
    let p = TestProject::example("process");
    for (flag, env) in [(Some("1"), None), (None, Some("1.5"))] {
        for command in ["plan", "package"] {
            let mut args = vec!["--backend-path", dir.to_str().unwrap()];
            if let Some(f) = flag {
                args.extend(["--backend-timeout", f]);
            }
            args.extend([command, "process", "--backend", "cbroken"]);
            let mut cmd = p.command(&args);
            if let Some(e) = env {
                cmd.env("KERBLAM_BACKEND_TIMEOUT", e);
            }
            let start = Instant::now();
            let o = cmd.output().unwrap();
            let took = start.elapsed();
            let msg = show_joined(&o);
            assert_eq!(o.status.code(), Some(1), "{command}: {msg}");
            let within = format!(
                "backend \"cbroken\" did not answer the plan request within {:.1}s; kerblam stopped waiting for it",
                flag.or(env).unwrap().parse::<f64>().unwrap()
            );
            assert!(msg.contains(&within), "{command}: {msg}");
            assert!(!msg.contains("cancel"), "{command}: {msg}");
            assert!(took < Duration::from_secs(10), "took {took:?}: {msg}");
            nothing_written(&p, &o);
        }
    }
}

/// A plugin that calls back after its call returned: the callback is ignored with a warning
/// naming the backend, and the run carries on to the pipe's exit code (`kerblam run` makes two
/// calls, build then run, so kerblam is alive when the late callback comes).
#[test]
fn a_plugin_that_calls_back_after_returning_is_ignored_with_a_warning() {
    let t = tempfile::tempdir().unwrap();
    let dir = c_plugin(t.path(), &["LATE_CALLBACK", "EXIT_CODE=0"]);
    let p = TestProject::example("process");
    let o = run(&p, &dir, &["run", "process", "--backend", "cbroken"]);
    let msg = show_joined(&o);
    assert_eq!(o.status.code(), Some(0), "{msg}");
    assert!(
        msg.contains("backend \"cbroken\" called `log` after its execute call returned; ignored"),
        "{msg}"
    );
}

/// A plugin that does not do what its part of the plan says: `package` exits 1 naming the backend
/// and what is wrong, removes the planned files the plugin did write, and leaves no replay
/// archive. One that keeps its word packages.
#[test]
fn a_plugin_that_breaks_its_plan_is_refused_and_leaves_nothing() {
    let cases: [(&[&str], &str); 3] = [
        (&["PLAN_ARTIFACT"], "cplugin.out does not exist"),
        (
            &["EXTRA_ARTIFACT"],
            "it reported a sif artifact at /etc/passwd, which its plan does not name",
        ),
        (
            &["PLAN_ARTIFACT", "WRITE_ARTIFACT", "PLAN_TWO"],
            "cplugin.second does not exist",
        ),
    ];
    let passwd = std::fs::read("/etc/passwd").unwrap();
    for (defines, says) in cases {
        let t = tempfile::tempdir().unwrap();
        let dir = c_plugin(t.path(), defines);
        let p = TestProject::example("process");
        let o = run(&p, &dir, &["package", "process", "--backend", "cbroken"]);
        let msg = show_joined(&o);
        assert_eq!(o.status.code(), Some(1), "{defines:?}: {msg}");
        assert!(
            msg.contains("backend \"cbroken\": it did not carry out its plan"),
            "{defines:?}: {msg}"
        );
        assert!(msg.contains(says), "{defines:?}: {msg}");
        nothing_written(&p, &o);
        assert!(!p.exists("cplugin.out"), "{defines:?}: {msg}");
        if defines.contains(&"WRITE_ARTIFACT") {
            let written = p.root().canonicalize().unwrap().join("cplugin.out");
            assert!(
                msg.contains(&format!(
                    "kerblam removed what it wrote: {}",
                    written.display()
                )),
                "{msg}"
            );
        }
    }
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), passwd);

    let t = tempfile::tempdir().unwrap();
    let dir = c_plugin(t.path(), &["PLAN_ARTIFACT", "WRITE_ARTIFACT"]);
    let p = TestProject::example("process");
    let o = run(&p, &dir, &["package", "process", "--backend", "cbroken"]);
    assert_eq!(o.status.code(), Some(0), "{}", show_joined(&o));
    assert!(p.exists("cplugin.out") && p.exists("process.kerblam.tar"));
}

/// kerblam hashes what a backend wrote itself: a checksum the backend reports that its file does
/// not have is a broken contract, and nothing of the package is left.
#[test]
fn a_plugin_that_misreports_a_checksum_is_refused_and_leaves_nothing() {
    let (p, msg) = package_failing(&["PLAN_ARTIFACT", "WRITE_ARTIFACT", "WRONG_SHA"], &[]);
    let real = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(b"written by the fixture\n");
        format!(
            "sha256:{}",
            d.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    };
    assert!(
        msg.contains(&format!(
            "the backend cbroken reported the sha256 of {} as sha256:{}, but its content hashes to {real}",
            fixture_file(&p).display(),
            "0".repeat(64)
        )),
        "{msg}"
    );
    assert!(msg.contains("kerblam removed what it wrote"), "{msg}");
    for name in ["ro-crate-metadata.json", "CITATION.cff"] {
        assert!(!p.exists(name), "{name}: {msg}");
    }
}

/// A backend that fails after writing a planned file: no package, so kerblam removes the file and
/// says so.
#[test]
fn a_plugin_that_fails_after_writing_leaves_nothing() {
    let (p, msg) = package_failing(
        &["PLAN_ARTIFACT", "WRITE_ARTIFACT", "FAIL_AFTER_WRITE"],
        &[],
    );
    assert!(msg.contains("failed after writing"), "{msg}");
    let removed = format!(
        "kerblam removed what it wrote: {}",
        fixture_file(&p).display()
    );
    assert!(msg.contains(&removed), "{msg}");
}

/// With `--embed-image` the backend saves its image into a file kerblam names; a backend that
/// claims it can but leaves the file empty is refused before the replay archive is finished.
#[test]
fn a_plugin_that_does_not_save_the_image_it_was_asked_for_is_refused() {
    let (_p, msg) = package_failing(&["PLAN_ARTIFACT", "WRITE_ARTIFACT"], &["--embed-image"]);
    assert!(
        msg.contains("backend \"cbroken\" was asked to save its image into")
            && msg.contains("(--embed-image), but that file is not a tar archive"),
        "{msg}"
    );
    assert!(msg.contains("kerblam removed what it wrote"), "{msg}");
}

/// A reply's status and kind agree, or it is invalid; a backend may not say it was cancelled when
/// kerblam did not ask it to stop. Both exit 1 (never 130, which means Ctrl-C).
#[test]
fn a_status_that_disagrees_with_its_kind_or_a_cancel_nobody_asked_for_exits_1() {
    let cases = [
        (
            "KIND_MISMATCH",
            "status 1 means backend, but the error's kind is cancelled",
        ),
        (
            "STATUS_3",
            "backend \"cbroken\" says it was cancelled, but kerblam did not ask it to stop",
        ),
    ];
    for (define, says) in cases {
        let t = tempfile::tempdir().unwrap();
        let dir = c_plugin(t.path(), &[define]);
        let p = TestProject::example("process");
        let o = run(&p, &dir, &["package", "process", "--backend", "cbroken"]);
        let msg = show_joined(&o);
        assert_eq!(o.status.code(), Some(1), "{define}: {msg}");
        assert!(msg.contains(says), "{define}: {msg}");
        nothing_written(&p, &o);
    }
}

/// Messages are never broken inside a path or a name, however long: the terminal wraps lines,
/// kerblam does not.
#[test]
fn long_messages_keep_paths_and_names_whole() {
    let t = tempfile::tempdir().unwrap();
    let deep = t.path().join(
        "a-very-long-directory-name-for-plugins/that-goes-on-and-on/past-any-terminal-width/engine-image",
    );
    std::fs::create_dir_all(&deep).unwrap();
    let p = TestProject::example("process");
    let o = run(
        &p,
        &deep,
        &[
            "package",
            "process",
            "--backend",
            "no-such-backend-anywhere",
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&deep.display().to_string()), "{stderr}");
    assert!(stderr.contains("\"no-such-backend-anywhere\""), "{stderr}");
}

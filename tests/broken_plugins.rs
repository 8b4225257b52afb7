//! Plugins cannot take the host down: `kerblam package` / `kerblam run` through deliberately broken
//! backends, built here (C plugins with gcc, and a Rust plugin that panics in its own `execute`),
//! each claiming every capability so that the CLI hands it a real compiled plan. Each gives a clear
//! error naming the backend, kerblam exits on its own with the right code, and no archive is left.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use kerblam_backend_api::host::testing;
use support::project::{TestProject, kill, show, wait_timeout};

/// A C plugin named `cbroken` claiming everything, with the given behaviour, in its own dir.
fn c_plugin(dir: &Path, defines: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("backends/api/tests/plugins/cplugin.c");
    let mut cmd = std::process::Command::new("gcc");
    cmd.args([
        "-shared",
        "-fPIC",
        "-pthread",
        "-DNAME=\"cbroken\"",
        "-DCLAIM_ALL",
        "-o",
    ])
    .arg(dir.join("libcbroken.so"))
    .arg(src);
    for d in defines {
        cmd.arg(format!("-D{d}"));
    }
    let out = cmd.output().expect("gcc");
    assert!(out.status.success(), "{}", show(&out));
    dir.to_path_buf()
}

fn run(p: &TestProject, plugins: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--backend-path", plugins.to_str().unwrap()];
    all.extend_from_slice(args);
    p.command(&all).output().unwrap()
}

fn text(o: &std::process::Output) -> String {
    show(o).replace("\n  | ", " ")
}

fn nothing_written(p: &TestProject, o: &std::process::Output) {
    for name in ["process.kerblam.tar", "process.context.tar"] {
        assert!(!p.exists(name), "{name}\n{}", text(o));
    }
}

#[test]
fn a_plugin_that_panics_in_execute_is_a_clear_error_and_exit_1() {
    let dir = testing::build_standalone(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("backends/api/tests/plugins/panicky/Cargo.toml"),
    )
    .unwrap();
    let p = TestProject::example("process");
    let o = run(&p, &dir, &["package", "process", "--backend", "panicky"]);
    let t = text(&o);
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
        let msg = text(&o);
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
        let msg = text(&o).replace("\n  | ", " ");
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
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", text(&o));
        assert!(
            text(&o).contains("not a positive number of seconds"),
            "{bad}: {}",
            text(&o)
        );
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
    let msg = text(&o);
    assert_eq!(o.status.code(), Some(0), "{msg}");
    assert!(
        msg.contains("backend \"cbroken\" called `log` after its execute call returned; ignored"),
        "{msg}"
    );
}

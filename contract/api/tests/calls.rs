//! Calling real plugins: output validation (non-UTF-8, truncated), callbacks forwarded during the
//! call and ignored after it, timeouts, capability refusal, and a panicking Rust plugin.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kerblam_backend_api::host::{CallError, Plugin};
use kerblam_backend_api::plan::{Artifact, ArtifactKind, Base};
use kerblam_backend_api::{ErrorKind, Hello, Status};
use support::*;

fn load(path: &std::path::Path) -> Plugin {
    Plugin::load(path, &Hello::new("kerblam-test", "0")).unwrap_or_else(|e| panic!("{e}"))
}

fn c(defines: &[&str]) -> (tempfile::TempDir, Plugin) {
    let t = tempfile::tempdir().unwrap();
    let path = cplugin(t.path(), "p.so", defines);
    let p = load(&path);
    (t, p)
}

#[test]
fn a_good_c_plugin_executes_and_its_log_lines_reach_the_host() {
    conformance_env();
    let (t, p) = c(&["NAME=\"cgood\""]);
    let rec = Recorder::new();
    let result = p
        .execute(&request(minimal_plan(), t.path()), rec.clone(), None)
        .unwrap();
    assert_eq!(result.notes, vec!["from C"]);
    assert_eq!(rec.logs(), vec!["hello from C"]);
    // The same through the timeout path (its own thread).
    let result = p
        .execute(
            &request(minimal_plan(), t.path()),
            rec.clone(),
            Some(Duration::from_secs(10)),
        )
        .unwrap();
    assert_eq!(result.notes, vec!["from C"]);
    assert_eq!(p.late_callbacks(), 0);
}

#[test]
fn a_non_utf8_reply_is_a_clear_error() {
    conformance_env();
    let (t, p) = c(&["NON_UTF8"]);
    let err = p
        .execute(&request(minimal_plan(), t.path()), Recorder::new(), None)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CallError::BadOutput { .. }), "{err:?}");
    assert!(
        msg.contains("returned an invalid reply (status 0)"),
        "{msg}"
    );
    assert!(
        msg.contains("is not UTF-8 (invalid byte 0xff at offset 11 of 16)"),
        "{msg}"
    );
    assert!(msg.contains("p.so"), "{msg}");
}

#[test]
fn a_truncated_reply_is_a_clear_error() {
    conformance_env();
    let (t, p) = c(&["TRUNCATED"]);
    let msg = p
        .execute(&request(minimal_plan(), t.path()), Recorder::new(), None)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("is truncated: its JSON ends unexpectedly after 20 bytes"),
        "{msg}"
    );
}

#[test]
fn callbacks_after_return_are_ignored_and_counted() {
    conformance_env();
    let (t, p) = c(&["LATE_CALLBACK"]);
    let rec = Recorder::new();
    p.execute(&request(minimal_plan(), t.path()), rec.clone(), None)
        .unwrap();
    assert_eq!(rec.logs(), vec!["hello from C"]);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(p.late_callbacks(), 1);
    // The late "late" line never reached the host's callbacks.
    assert_eq!(rec.logs(), vec!["hello from C"]);
}

#[test]
fn a_hanging_plugin_times_out_and_is_abandoned() {
    conformance_env();
    let (t, p) = c(&["HANG"]);
    let start = Instant::now();
    let err = p
        .execute(
            &request(minimal_plan(), t.path()),
            Recorder::new(),
            Some(Duration::from_millis(300)),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            CallError::TimedOut {
                returned: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(
        err.to_string()
            .contains("ignored cancellation and was abandoned"),
        "{err}"
    );
}

/// A plan call that hangs is bounded by the plugin's timeout (kerblam's `--backend-timeout`), and
/// said to be a plan call that did not answer: it cannot have ignored a cancellation it has no
/// way to receive.
#[test]
fn a_hanging_plan_call_times_out_at_the_plugins_timeout() {
    conformance_env();
    let (t, p) = c(&["HANG_PLAN"]);
    assert_eq!(p.timeout(), None, "no limit unless one is given");
    let p = p.with_timeout(Some(Duration::from_millis(300)));
    let req = kerblam_backend_api::PlanRequest::for_execute(&request(minimal_plan(), t.path()));
    let start = Instant::now();
    let err = p.plan(&req).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(
        matches!(
            err,
            CallError::TimedOut {
                call: kerblam_backend_api::host::Call::Plan,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "backend \"cplugin\" did not answer the plan request within 0.3s; kerblam stopped waiting for it"
    );
}

#[test]
fn a_timed_out_plugin_that_polls_is_cancelled_is_told_to_stop() {
    conformance_env();
    let (t, p) = c(&["HANG_POLL"]);
    let err = p
        .execute(
            &request(minimal_plan(), t.path()),
            Recorder::new(),
            Some(Duration::from_millis(200)),
        )
        .unwrap_err();
    assert!(
        matches!(err, CallError::TimedOut { returned: true, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("it stopped when asked to cancel"),
        "{err}"
    );
}

#[test]
fn a_plan_needing_a_missing_capability_is_refused_before_anything_runs() {
    conformance_env();
    let (t, p) = c(&["NAME=\"cgood\""]);
    let mut plan = minimal_plan();
    plan.base = Base::Recipe {
        path: "Dockerfile".into(),
        default: true,
    };
    let rec = Recorder::new();
    let err = p
        .execute(&request(plan, t.path()), rec.clone(), None)
        .unwrap_err();
    assert_eq!(err.status(), Status::Unsupported);
    assert_eq!(
        err.to_string(),
        "backend \"cgood\" cannot carry out this plan: it does not support base kind \"recipe\""
    );
    assert!(
        rec.logs().is_empty(),
        "the plugin was called: {:?}",
        rec.logs()
    );
}

#[test]
fn a_rust_plugin_refuses_by_itself_what_its_describe_does_not_claim() {
    conformance_env();
    let t = tempfile::tempdir().unwrap();
    let p = load(&first_party("kerblam_backend_docker"));
    // Docker never writes SIF images.
    let mut plan = minimal_plan();
    plan.backend.artifacts.push(Artifact {
        kind: ArtifactKind::Sif,
        path: "x.sif".into(),
        format: None,
        contents: vec![],
    });
    let err = p
        .execute(&request(plan.clone(), t.path()), Recorder::new(), None)
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("backend \"docker\" cannot carry out this plan"),
        "{msg}"
    );
    assert!(msg.contains("artifact kind \"sif\""), "{msg}");
    // Called anyway (raw), the plugin itself says the same: it never sees requests it cannot do.
    let raw = p
        .raw_execute(
            serde_json::to_vec(&request(plan, t.path())).unwrap(),
            Recorder::new(),
            None,
        )
        .unwrap();
    let CallError::Failed { status, error, .. } = p.interpret(&raw).unwrap_err() else {
        panic!()
    };
    assert_eq!(status, Status::Unsupported);
    assert!(
        error.message.contains("does not support")
            && error.message.contains("artifact kind \"sif\""),
        "{}",
        error.message
    );
}

#[test]
fn a_rust_plugin_that_panics_in_execute_returns_panic_status_and_the_host_lives_on() {
    conformance_env();
    let t = tempfile::tempdir().unwrap();
    let p = load(&first_party("kerblam_backend_podman"));
    let mut req = request(minimal_plan(), t.path());
    req.options.conformance_panic = true;
    let raw = p
        .raw_execute(serde_json::to_vec(&req).unwrap(), Recorder::new(), None)
        .unwrap();
    assert_eq!(raw.code, Status::Panic.code());
    let CallError::Failed { status, error, .. } = p.interpret(&raw).unwrap_err() else {
        panic!()
    };
    assert_eq!((status, error.kind), (Status::Panic, ErrorKind::Panic));
    assert!(
        error
            .message
            .contains("the backend panicked: conformance: injected panic"),
        "{}",
        error.message
    );
    // Still alive and still answering.
    let again = p.raw_describe(b"");
    assert_eq!(again.code, 0);
    let again = p
        .raw_execute(
            b"not json".to_vec(),
            Arc::new(kerblam_backend_api::host::StderrCallbacks),
            None,
        )
        .unwrap();
    assert_eq!(again.code, Status::InvalidInput.code());
}

fn parallel_executes(p: &Plugin, n: usize) -> Vec<Result<(), String>> {
    let t = tempfile::tempdir().unwrap();
    let barrier = std::sync::Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (barrier, dir) = (&barrier, t.path());
                s.spawn(move || {
                    barrier.wait();
                    p.execute(&request(minimal_plan(), dir), Recorder::new(), None)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn executes_of_a_non_reentrant_plugin_are_serialized() {
    conformance_env();
    let (_t, p) = c(&["DETECT_OVERLAP"]);
    assert!(!p.describe().capabilities.reentrant);
    let start = Instant::now();
    let results = parallel_executes(&p, 4);
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn executes_of_a_reentrant_plugin_run_concurrently() {
    conformance_env();
    let (_t, p) = c(&["DETECT_OVERLAP", "REENTRANT"]);
    assert!(p.describe().capabilities.reentrant);
    let results = parallel_executes(&p, 4);
    assert!(
        results
            .iter()
            .any(|r| r.as_ref().is_err_and(|e| e.contains("overlap"))),
        "{results:?}"
    );
}

#[test]
fn a_plugin_whose_describe_hangs_is_refused_after_the_timeout() {
    conformance_env();
    let t = tempfile::tempdir().unwrap();
    let path = cplugin(t.path(), "hang.so", &["HANG_DESCRIBE"]);
    let start = Instant::now();
    let err = Plugin::load_with_timeout(&path, &Hello::new("t", "0"), Duration::from_millis(300))
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(err.kind, kerblam_backend_api::host::LoadErrorKind::Refused);
    assert_eq!(err.reason, "describe did not answer within 0.3s");
}

/// A Rust plugin whose own `Backend::execute` panics (an index out of bounds, after a log line and
/// a progress report): the SDK's `catch_unwind` turns it into status `panic` with the panic's
/// message, the log line arrived, and the plugin answers the next calls.
#[test]
fn a_panic_inside_the_backends_own_execute_is_status_panic_and_the_host_lives_on() {
    let t = tempfile::tempdir().unwrap();
    let p = load(&panicky_plugin());
    let rec = Recorder::new();
    let err = p
        .execute(&request(minimal_plan(), t.path()), rec.clone(), None)
        .unwrap_err();
    let CallError::Failed { status, error, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!((*status, error.kind), (Status::Panic, ErrorKind::Panic));
    assert!(
        error.message.contains("the backend panicked")
            && error.message.contains("index out of bounds"),
        "{}",
        error.message
    );
    assert_eq!(rec.logs(), vec!["panicky: starting on golden"]);
    for _ in 0..3 {
        assert_eq!(p.raw_describe(b"").code, 0);
        let again = p
            .execute(&request(minimal_plan(), t.path()), rec.clone(), None)
            .unwrap_err();
        assert!(again.to_string().contains("index out of bounds"), "{again}");
    }
}

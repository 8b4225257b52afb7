//! The checks themselves: a table of named checks ([`CHECKS`]), each a function of the loaded
//! plugin. `load` runs first; when it fails, every check of the table is skipped for that reason.

use std::path::Path;
use std::sync::Arc;

use kerblam_backend_api::host::{Plugin, RawReply, contract, decode};
use kerblam_backend_api::sdk::CONFORMANCE_ENV;
use kerblam_backend_api::{
    Action, Describe, ErrorKind, ErrorMessage, ExecuteOptions, ExecuteRequest, ExecuteResult,
    Hello, PLAN_REQUEST_TAG, PlanRequest, Status,
};
use kerblam_plan::PackagePlan;

use crate::golden::{Golden, golden};
use crate::scratch::{Recorder, Scratch};
use crate::{Options, Outcome, Report};

/// What one check found: its outcome and, when there is something worth saying, what it saw.
type Verdict = (Outcome, Option<String>);

/// The plugin under test and what every check needs.
pub(crate) struct Kit<'a> {
    plugin: Plugin,
    describe: Describe,
    hello: Vec<u8>,
    opts: &'a Options,
}

/// One check: it looks at the plugin and says what it found.
type CheckFn = fn(&Kit) -> Verdict;

/// The checks, in the order they run. A check's name is its row; nothing else lists them.
const CHECKS: &[(&str, CheckFn)] = &[
    ("describe", describe),
    ("free-round-trip", free_round_trip),
    ("invalid-input", invalid_input),
    ("plan", plan_reply),
    ("golden/minimal", |k| run_golden(k, "minimal")),
    ("golden/oci-image", |k| run_golden(k, "oci-image")),
    ("golden/preflight-fails", |k| {
        run_golden(k, "preflight-fails")
    }),
    ("panic", panic),
    ("cancellation", cancellation),
    ("cancellation-mid-run", cancellation_mid_run),
    ("concurrent", concurrent),
    ("no-late-callbacks", no_late_callbacks),
];

/// How many times the Rust SDK asks `is_cancelled` before it calls the backend's `execute`
/// (`kerblam_backend_api::sdk`: once before preflight, once after).
const SDK_POLLS: u64 = 2;

/// Run every check on the library at `path`.
pub fn check_plugin(path: &Path, opts: &Options) -> Report {
    let mut report = Report {
        path: path.to_path_buf(),
        backend: None,
        version: None,
        checks: Vec::new(),
    };
    let hello = Hello::new("kerblam-conformance", env!("CARGO_PKG_VERSION"));
    let plugin = match Plugin::load(path, &hello) {
        Ok(p) => p.with_timeout(Some(opts.timeout)),
        Err(e) => {
            report.push("load", Outcome::Fail(e.reason), None);
            for (name, _) in CHECKS {
                report.push(*name, Outcome::Skip("the plugin did not load".into()), None);
            }
            return report;
        }
    };
    let d = plugin.describe().clone();
    report.backend = Some(d.name.clone());
    report.version = Some(d.version.clone());
    let (maj, min) = kerblam_backend_api::split_abi_version(plugin.abi_version());
    report.push(
        "load",
        Outcome::Pass,
        Some(format!(
            "ABI {maj}.{min}, plan schema {}{}",
            d.plan_schema,
            if plugin.has_plan() {
                ""
            } else {
                "; no kerblam_backend_plan"
            }
        )),
    );
    let kit = Kit {
        plugin,
        describe: d,
        hello: serde_json::to_vec(&hello).expect("hello serializes"),
        opts,
    };
    for (name, check) in CHECKS {
        let (outcome, detail) = check(&kit);
        report.push(*name, outcome, detail);
    }
    report
}

/// What a reply was, after strict checking.
enum Reply {
    Result(ExecuteResult),
    Error(Status, ErrorMessage),
}

/// The error of a raw reply: `None` for status ok; else the status and its error message, which
/// must parse, agree with the status, and say something.
fn error_of(raw: &RawReply) -> Result<Option<(Status, ErrorMessage)>, String> {
    let status =
        Status::from_code(raw.code).ok_or_else(|| format!("unknown status code {}", raw.code))?;
    if status == Status::Ok {
        return Ok(None);
    }
    let e: ErrorMessage = decode(&raw.bytes, "error message")?;
    if e.kind.status() != status {
        return Err(format!(
            "status {} ({}) but the error's kind is {:?}",
            raw.code,
            status.name(),
            e.kind
        ));
    }
    if e.message.trim().is_empty() {
        return Err("the error message is empty".into());
    }
    Ok(Some((status, e)))
}

/// Check a raw execute reply strictly: a known status, and bytes that are exactly the message
/// that status announces (an ExecuteResult for ok, an ErrorMessage of the matching kind
/// otherwise, with a message).
fn strict(raw: &RawReply) -> Result<Reply, String> {
    match error_of(raw)? {
        None => decode::<ExecuteResult>(&raw.bytes, "execute result").map(Reply::Result),
        Some((status, e)) => Ok(Reply::Error(status, e)),
    }
}

fn summarize(reply: &Reply) -> String {
    match reply {
        Reply::Result(r) => format!("ok with {} artifact(s)", r.artifacts.len()),
        Reply::Error(s, e) => format!("{}: {}", s.name(), e.message),
    }
}

impl Kit<'_> {
    /// The golden plan `g` for this backend, with the backend's own part from
    /// `kerblam_backend_plan` (checked as kerblam checks it), ready to execute in `scratch`.
    fn complete(&self, g: &Golden, scratch: &Scratch) -> Result<PackagePlan, String> {
        let mut plan = g.plan.clone();
        plan.backend.name = self.describe.name.clone();
        let request = PlanRequest {
            request: PLAN_REQUEST_TAG.to_string(),
            action: Action::Package,
            plan: plan.clone(),
            paths: scratch.paths.clone(),
            options: g.options.clone(),
        };
        plan.backend = self.plugin.plan(&request).map_err(|e| e.to_string())?;
        Ok(plan)
    }

    /// An execute of `plan` in `scratch`, its reply checked strictly.
    fn execute(
        &self,
        plan: &PackagePlan,
        options: &ExecuteOptions,
        scratch: &Scratch,
        recorder: Arc<Recorder>,
    ) -> Result<Reply, String> {
        let mut req = ExecuteRequest::new(Action::Package, plan.clone(), scratch.paths.clone());
        req.options = options.clone();
        let bytes = serde_json::to_vec(&req).expect("a request always serializes");
        self.plugin
            .raw_execute(bytes, recorder, Some(self.opts.timeout))
            .map_err(|e| e.to_string())
            .and_then(|raw| strict(&raw))
    }

    /// The minimal golden plan, completed for a fresh scratch project; for the checks that
    /// exercise calls rather than plans.
    fn minimal(&self) -> Result<(Scratch, PackagePlan, ExecuteOptions), String> {
        let g = golden("minimal");
        let s = Scratch::new().map_err(|e| format!("cannot make a scratch project: {e}"))?;
        let plan = self.complete(&g, &s)?;
        Ok((s, plan, g.options))
    }

    /// What `g` needs that the plugin's describe does not claim.
    fn unclaimed(&self, g: &Golden) -> Vec<String> {
        kerblam_backend_api::missing_capabilities(
            Action::Package,
            &g.plan,
            &g.options,
            &self.describe,
        )
    }
}

fn describe(k: &Kit) -> Verdict {
    let again = k.plugin.raw_describe(&k.hello);
    let outcome = match decode::<serde_json::Value>(&again.bytes, "describe reply") {
        Ok(v) if again.code == 0 && &v == k.plugin.describe_json() => Outcome::Pass,
        Ok(_) if again.code != 0 => {
            Outcome::Fail(format!("a second describe returned status {}", again.code))
        }
        Ok(_) => Outcome::Fail("a second describe returned a different reply".into()),
        Err(e) => Outcome::Fail(e),
    };
    let d = &k.describe;
    (outcome, Some(format!("{} {}", d.name, d.version)))
}

fn free_round_trip(k: &Kit) -> Verdict {
    let first = k.plugin.raw_describe(&k.hello);
    for i in 0..64 {
        let r = k.plugin.raw_describe(&k.hello);
        if r.code != 0 || r.null || r.bytes != first.bytes {
            return (
                Outcome::Fail(format!(
                    "describe call {i} returned status {} / different bytes",
                    r.code
                )),
                None,
            );
        }
    }
    k.plugin.free_empty();
    let detail = "64 describe buffers freed, empty buffer freed".to_string();
    match crate::leak::check(&k.plugin, &k.hello, first.bytes.len()) {
        Ok(d) => (Outcome::Pass, Some(format!("{detail}; {d}"))),
        Err(e) => (Outcome::Fail(e), Some(detail)),
    }
}

/// Bytes that are not JSON, not UTF-8, empty, or not the expected message get status
/// `invalid-input` from execute, and from plan when the plugin exports it.
fn invalid_input(k: &Kit) -> Verdict {
    let probes = |tag: &str| -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("not JSON", b"{ this is not json".to_vec()),
            ("not UTF-8", vec![0xff, 0xfe, b'{', b'}']),
            ("empty", Vec::new()),
            (
                "wrong message",
                format!(
                    r#"{{"request":"{tag}","action":"package","plan":{{"schema":"{}"}}}}"#,
                    kerblam_plan::PLAN_SCHEMA
                )
                .into_bytes(),
            ),
        ]
    };
    for (what, bytes) in probes(kerblam_backend_api::REQUEST_TAG) {
        let reply = k
            .plugin
            .raw_execute(bytes, Recorder::new(false), Some(k.opts.timeout))
            .map_err(|e| e.to_string())
            .and_then(|raw| strict(&raw));
        match reply {
            Ok(Reply::Error(Status::InvalidInput, _)) => {}
            Ok(other) => {
                return (
                    Outcome::Fail(format!(
                        "execute, {what}: expected status invalid-input, got {}",
                        summarize(&other)
                    )),
                    None,
                );
            }
            Err(e) => return (Outcome::Fail(format!("execute, {what}: {e}")), None),
        }
    }
    if !k.plugin.has_plan() {
        return (Outcome::Pass, Some("execute only (no plan export)".into()));
    }
    for (what, bytes) in probes(PLAN_REQUEST_TAG) {
        let Some(raw) = k.plugin.raw_plan(&bytes) else {
            break;
        };
        match error_of(&raw) {
            Ok(Some((Status::InvalidInput, _))) => {}
            Ok(other) => {
                let got = other.map_or("ok", |(s, _)| s.name());
                return (
                    Outcome::Fail(format!(
                        "plan, {what}: expected status invalid-input, got {got}"
                    )),
                    None,
                );
            }
            Err(e) => return (Outcome::Fail(format!("plan, {what}: {e}")), None),
        }
    }
    (Outcome::Pass, Some("execute and plan".into()))
}

/// For every golden plan the plugin claims, `kerblam_backend_plan` answers a part kerblam can
/// write into the plan, and the same bytes twice (plans are checked into repositories).
fn plan_reply(k: &Kit) -> Verdict {
    if !k.plugin.has_plan() {
        return (
            Outcome::Skip(
                "no kerblam_backend_plan (ABI 1.0): the plugin writes no artifacts of its own"
                    .into(),
            ),
            None,
        );
    }
    let Ok(s) = Scratch::new() else {
        return (Outcome::Fail("cannot make a scratch project".into()), None);
    };
    let mut seen = Vec::new();
    for name in crate::golden::NAMES {
        let g = golden(name);
        if !k.unclaimed(&g).is_empty() {
            continue;
        }
        let first = match k.complete(&g, &s) {
            Ok(p) => p,
            Err(e) => return (Outcome::Fail(format!("{name}: {e}")), None),
        };
        let again = k.complete(&g, &s);
        if again.as_ref() != Ok(&first) {
            return (
                Outcome::Fail(format!("{name}: two plan requests got different answers")),
                None,
            );
        }
        seen.push(format!(
            "{name}: {} artifact(s), {} check(s), {} rendered",
            first.backend.artifacts.len(),
            first.backend.preflight.len(),
            first.backend.rendered.len()
        ));
    }
    (Outcome::Pass, Some(seen.join("; ")))
}

/// A golden plan within the plugin's capabilities, completed with its part and executed: a valid
/// result that holds to the plan (every planned artifact there with its kind, nothing else
/// reported, kerblam's own replay archive neither written nor reported); a `backend` error (no
/// engine here, say) is a skip, any other error a failure; a plan whose preflight fails gets an
/// error and nothing written.
fn run_golden(k: &Kit, name: &str) -> Verdict {
    let g = golden(name);
    let unclaimed = k.unclaimed(&g);
    if !unclaimed.is_empty() {
        return (
            Outcome::Skip(format!(
                "the plugin does not claim what the plan needs: {}",
                unclaimed.join(", ")
            )),
            None,
        );
    }
    let scratch = match Scratch::new() {
        Ok(s) => s,
        Err(e) => {
            return (
                Outcome::Fail(format!("cannot make a scratch project: {e}")),
                None,
            );
        }
    };
    let plan = match k.complete(&g, &scratch) {
        Ok(p) => p,
        Err(e) => return (Outcome::Fail(e), None),
    };
    let before = scratch.listing();
    let reply = k.execute(&plan, &g.options, &scratch, Recorder::new(false));
    let detail = reply.as_ref().ok().map(summarize);
    let must_fail = !g.plan.preflight.is_empty();
    let outcome = match (reply, must_fail) {
        (Err(e), _) => Outcome::Fail(e),
        (Ok(Reply::Result(r)), false) => {
            let mut problems =
                contract::result_problems(&plan, &scratch.paths, Action::Package, &r);
            for a in &plan.artifacts {
                if contract::artifact_path(&scratch.paths, &a.path).exists() {
                    problems.push(format!("it wrote {}, kerblam's own {}", a.path, a.kind));
                }
            }
            if problems.is_empty() {
                Outcome::Pass
            } else {
                Outcome::Fail(format!(
                    "it did not carry out its plan: {}",
                    problems.join("; ")
                ))
            }
        }
        // The environment may lack what the backend drives (an engine, a tool): the plan
        // could not be tried here, which is not a pass.
        (Ok(Reply::Error(Status::BackendError, e)), false) => Outcome::Skip(format!(
            "the backend could not carry the plan out here: {}",
            e.message
        )),
        (Ok(Reply::Error(s, e)), false) => Outcome::Fail(format!(
            "a valid plan within the plugin's capabilities got status {}: {}",
            s.name(),
            e.message
        )),
        (Ok(Reply::Result(_)), true) => {
            Outcome::Fail("the plan's preflight cannot hold, yet execute returned ok".into())
        }
        // A preflight that does not hold is the backend failing, not the input being bad or
        // anyone asking it to stop: kerblam exits 1 and says which check failed.
        (Ok(Reply::Error(s, e)), true) if s != Status::BackendError => Outcome::Fail(format!(
            "a failed preflight is a `backend` error (status 1), but it answered {}: {}",
            s.name(),
            e.message
        )),
        (Ok(Reply::Error(..)), true) => {
            let after = scratch.listing();
            if after == before {
                Outcome::Pass
            } else {
                Outcome::Fail(format!("a failed preflight still wrote: {after:?}"))
            }
        }
    };
    (outcome, detail)
}

/// An injected panic (the SDK's `conformance_panic` hook) gets status `panic`, and the plugin
/// answers afterwards.
fn panic(k: &Kit) -> Verdict {
    if std::env::var(CONFORMANCE_ENV).as_deref() != Ok("1") {
        return (
            Outcome::Skip(format!("set {CONFORMANCE_ENV}=1 to inject a panic")),
            None,
        );
    }
    let (s, plan, mut options) = match k.minimal() {
        Ok(m) => m,
        Err(e) => return (Outcome::Fail(e), None),
    };
    options.conformance_panic = true;
    let outcome = match k.execute(&plan, &options, &s, Recorder::new(false)) {
        Ok(Reply::Error(Status::Panic, e)) if e.kind == ErrorKind::Panic => {
            let alive = k.plugin.raw_describe(&k.hello);
            if alive.code == 0 {
                Outcome::Pass
            } else {
                Outcome::Fail(format!(
                    "after the panic, describe returned status {}",
                    alive.code
                ))
            }
        }
        Ok(other) if k.describe.sdk.is_none() => Outcome::Skip(format!(
            "not built with the Rust SDK (no `sdk` in describe), so no panic hook; got {}",
            summarize(&other)
        )),
        Ok(other) => Outcome::Fail(format!("expected status panic, got {}", summarize(&other))),
        Err(e) => Outcome::Fail(e),
    };
    (outcome, None)
}

/// A host that says "cancelled" from the start gets status `cancelled`.
fn cancellation(k: &Kit) -> Verdict {
    let (s, plan, options) = match k.minimal() {
        Ok(m) => m,
        Err(e) => return (Outcome::Fail(e), None),
    };
    let outcome = match k.execute(&plan, &options, &s, Recorder::new(true)) {
        Ok(Reply::Error(Status::Cancelled, _)) => Outcome::Pass,
        Ok(other) => Outcome::Fail(format!("is_cancelled said yes, yet: {}", summarize(&other))),
        Err(e) => Outcome::Fail(e),
    };
    (outcome, None)
}

/// Cancellation while working: "no" to the polls made before the work starts, "yes" from then on,
/// so that it is the backend's own code that has to stop. With the Rust SDK those are the SDK's
/// two (before and after preflight), and the backend's first poll says yes; without it, the
/// plugin's first poll is taken as its own check before starting.
fn cancellation_mid_run(k: &Kit) -> Verdict {
    let before_work = if k.describe.sdk.is_some() {
        SDK_POLLS
    } else {
        1
    };
    let recorder = Recorder::cancelling_after(before_work);
    let (s, plan, options) = match k.minimal() {
        Ok(m) => m,
        Err(e) => return (Outcome::Fail(e), None),
    };
    let reply = k.execute(&plan, &options, &s, recorder.clone());
    let after = recorder.polls_after_flip();
    match reply {
        // Cancelled when nobody had asked: a backend may not cancel on its own.
        Ok(Reply::Error(Status::Cancelled, e)) if after == 0 => (
            Outcome::Fail(format!(
                "it answered cancelled, but no poll said so ({} poll(s), all answered no): {}",
                recorder.polls(),
                e.message
            )),
            None,
        ),
        Ok(Reply::Error(Status::Cancelled, _)) => (
            Outcome::Pass,
            Some(format!("stopped after {after} poll(s) said cancelled")),
        ),
        // Finishing before the next poll is fine; never polling means a Ctrl-C cannot stop it.
        Ok(Reply::Result(_)) if recorder.polls() == 0 => (
            Outcome::Fail(
                "it never asked is_cancelled: a backend polls it while it works, so that Ctrl-C \
                 and --backend-timeout can stop it"
                    .into(),
            ),
            None,
        ),
        Ok(Reply::Result(_)) if after == 0 => {
            (Outcome::Pass, Some("finished without polling again".into()))
        }
        Ok(Reply::Result(_)) => (
            Outcome::Fail(format!(
                "is_cancelled said yes {after} time(s) during the work, yet execute returned ok"
            )),
            None,
        ),
        Ok(Reply::Error(Status::BackendError, e)) => (
            Outcome::Skip(format!(
                "the backend could not carry the plan out here: {}",
                e.message
            )),
            None,
        ),
        Ok(other) => (
            Outcome::Fail(format!(
                "cancelled while working, it answered {}",
                summarize(&other)
            )),
            None,
        ),
        Err(e) => (Outcome::Fail(e), None),
    }
}

/// When the plugin claims `reentrant`, parallel executes all answer well.
fn concurrent(k: &Kit) -> Verdict {
    let threads = k.opts.threads.max(2);
    let detail = Some(format!("{threads} executes at once"));
    if !k.describe.capabilities.reentrant {
        return (
            Outcome::Skip(
                "the plugin does not claim `reentrant`; the host serializes its calls".into(),
            ),
            detail,
        );
    }
    let results: Vec<Result<(), String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(move || {
                    let (s, plan, options) = k.minimal()?;
                    k.execute(&plan, &options, &s, Recorder::new(false))
                        .map(|_| ())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a kit thread panicked".into()))
            })
            .collect()
    });
    match results.into_iter().find_map(Result::err) {
        None => (Outcome::Pass, detail),
        Some(e) => (Outcome::Fail(e), detail),
    }
}

/// Waits, then counts the callbacks that arrived after any call above had returned.
fn no_late_callbacks(k: &Kit) -> Verdict {
    std::thread::sleep(k.opts.late_wait);
    let late = k.plugin.late_callbacks();
    if late == 0 {
        (Outcome::Pass, None)
    } else {
        (
            Outcome::Fail(format!("{late} callback(s) arrived after execute returned")),
            None,
        )
    }
}

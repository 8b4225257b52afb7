//! The checks themselves.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kerblam_backend_api::host::{HostCallbacks, Plugin, RawReply, decode};
use kerblam_backend_api::sdk::CONFORMANCE_ENV;
use kerblam_backend_api::{
    Action, ErrorKind, ErrorMessage, ExecuteRequest, ExecuteResult, Hello, Paths, Status,
};
use kerblam_plan::PackagePlan;

use crate::{Options, Outcome, Report, golden_plans};

/// How many times the Rust SDK asks `is_cancelled` before it calls the backend's `execute`
/// (`kerblam_backend_api::sdk`: once before preflight, once after).
const SDK_POLLS: u64 = 2;

/// Host callbacks that count calls and answer `is_cancelled`: always with `cancelled`, or "no" for
/// the first `flip_after` polls and "yes" from then on (a Ctrl-C while the backend works).
struct Recorder {
    cancelled: bool,
    flip_after: Option<u64>,
    calls: AtomicU64,
    polls: AtomicU64,
}

impl Recorder {
    fn new(cancelled: bool) -> Arc<Recorder> {
        Arc::new(Recorder {
            cancelled,
            flip_after: None,
            calls: AtomicU64::new(0),
            polls: AtomicU64::new(0),
        })
    }

    /// Cancelled from the `(n + 1)`th poll on.
    fn cancelling_after(n: u64) -> Arc<Recorder> {
        Arc::new(Recorder {
            cancelled: false,
            flip_after: Some(n),
            calls: AtomicU64::new(0),
            polls: AtomicU64::new(0),
        })
    }

    /// Polls that were answered "cancelled" because of the flip.
    fn polls_after_flip(&self) -> u64 {
        let n = self.flip_after.unwrap_or(u64::MAX);
        self.polls.load(Ordering::SeqCst).saturating_sub(n)
    }
}

impl HostCallbacks for Recorder {
    fn log(&self, _level: i32, _message: &str) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
    fn progress(&self, _done: u64, _total: u64, _what: &str) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
    fn is_cancelled(&self) -> bool {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let before = self.polls.fetch_add(1, Ordering::SeqCst);
        match self.flip_after {
            Some(n) => before >= n,
            None => self.cancelled,
        }
    }
}

/// A scratch project for one execute: `root/` (kerblam.toml, `src/pipes/golden.sh`, `data/in`,
/// `data/out`), `out/`, `tmp/`.
struct Scratch {
    _dir: tempfile::TempDir,
    paths: Paths,
    root: PathBuf,
    out: PathBuf,
}

impl Scratch {
    fn new() -> std::io::Result<Scratch> {
        let dir = tempfile::Builder::new()
            .prefix("kerblam-conformance-")
            .tempdir()?;
        let root = dir.path().join("root");
        let out = dir.path().join("out");
        let tmp = dir.path().join("tmp");
        for d in [&root, &out, &tmp] {
            std::fs::create_dir(d)?;
        }
        // The project the golden plans were "compiled" from: a manifest, the pipe, the data dirs.
        std::fs::write(
            root.join("kerblam.toml"),
            "# a project made by the kerblam conformance kit\n",
        )?;
        std::fs::create_dir_all(root.join("src/pipes"))?;
        std::fs::write(
            root.join("src/pipes/golden.sh"),
            "echo golden > data/out/golden.txt\n",
        )?;
        std::fs::create_dir_all(root.join("data/in"))?;
        std::fs::create_dir_all(root.join("data/out"))?;
        let s = |p: &Path| p.to_string_lossy().into_owned();
        let paths = Paths {
            root: s(&root),
            kerblam: std::env::current_exe()
                .map(|p| s(&p))
                .unwrap_or_else(|_| "/bin/true".into()),
            output_dir: s(&out),
            temp_dir: s(&tmp),
        };
        Ok(Scratch {
            _dir: dir,
            paths,
            root,
            out,
        })
    }

    /// Every path under root and out (relative, sorted).
    fn listing(&self) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    let p = e.path();
                    out.push(p.strip_prefix(base).unwrap_or(&p).display().to_string());
                    if p.is_dir() {
                        walk(base, &p, out);
                    }
                }
            }
        }
        let mut v = Vec::new();
        let base = self.root.parent().unwrap_or(&self.root);
        walk(base, &self.root, &mut v);
        walk(base, &self.out, &mut v);
        v.sort();
        v
    }
}

/// What a reply was, after strict checking.
enum Reply {
    Result(ExecuteResult),
    Error(Status, ErrorMessage),
}

/// Check a raw execute reply strictly: a known status, and bytes that are exactly the message
/// that status announces (an ExecuteResult for ok, an ErrorMessage of the matching kind otherwise).
fn strict(raw: &RawReply) -> Result<Reply, String> {
    let status =
        Status::from_code(raw.code).ok_or_else(|| format!("unknown status code {}", raw.code))?;
    if status == Status::Ok {
        return decode::<ExecuteResult>(&raw.bytes, "execute result").map(Reply::Result);
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
    Ok(Reply::Error(status, e))
}

fn request_bytes(backend: &str, plan: &PackagePlan, paths: &Paths, panic: bool) -> Vec<u8> {
    let mut req = ExecuteRequest::new(Action::Package, plan.clone(), paths.clone());
    // Golden plans say `backend: "any"`; a compiled plan names the backend it was compiled for.
    req.plan.backend = backend.to_string();
    req.options.conformance_panic = panic;
    serde_json::to_vec(&req).expect("a request always serializes")
}

fn run(
    plugin: &Plugin,
    bytes: Vec<u8>,
    cb: Arc<Recorder>,
    opts: &Options,
) -> Result<RawReply, String> {
    plugin
        .raw_execute(bytes, cb, Some(opts.timeout))
        .map_err(|e| e.to_string())
}

fn summarize(reply: &Reply) -> String {
    match reply {
        Reply::Result(r) => format!("ok with {} artifact(s)", r.artifacts.len()),
        Reply::Error(s, e) => format!("{}: {}", s.name(), e.message),
    }
}

fn check_result_artifacts(r: &ExecuteResult, plan: &PackagePlan) -> Result<(), String> {
    for a in &r.artifacts {
        if plan.artifact(a.kind).is_none() {
            return Err(format!(
                "the result lists a {:?} artifact ({}) the plan does not ask for",
                a.kind, a.path
            ));
        }
        let p = Path::new(&a.path);
        if p.is_absolute() && !p.exists() && a.bytes.is_some() {
            return Err(format!(
                "the result lists {} ({} bytes) but it does not exist",
                a.path,
                a.bytes.unwrap_or(0)
            ));
        }
    }
    Ok(())
}

const LATER: &[&str] = &[
    "describe",
    "free-round-trip",
    "invalid-input",
    "golden/minimal",
    "golden/engine-image",
    "golden/oci-archive",
    "golden/sif",
    "golden/preflight-fails",
    "panic",
    "cancellation",
    "cancellation-mid-run",
    "no-late-callbacks",
    "concurrent",
];

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
        Ok(p) => p,
        Err(e) => {
            report.push("load", Outcome::Fail(e.reason), None);
            for name in LATER {
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
        Some(format!("ABI {maj}.{min}, plan schema {}", d.plan_schema)),
    );

    // describe: stable across calls.
    let hello_bytes = serde_json::to_vec(&hello).expect("hello serializes");
    let again = plugin.raw_describe(&hello_bytes);
    let outcome = match decode::<serde_json::Value>(&again.bytes, "describe reply") {
        Ok(v) if again.code == 0 && &v == plugin.describe_json() => Outcome::Pass,
        Ok(_) if again.code != 0 => {
            Outcome::Fail(format!("a second describe returned status {}", again.code))
        }
        Ok(_) => Outcome::Fail("a second describe returned a different reply".into()),
        Err(e) => Outcome::Fail(e),
    };
    report.push(
        "describe",
        outcome,
        Some(format!("{} {}", d.name, d.version)),
    );

    // free round trip.
    let mut outcome = Outcome::Pass;
    for i in 0..64 {
        let r = plugin.raw_describe(&hello_bytes);
        if r.code != 0 || r.null || r.bytes != again.bytes {
            outcome = Outcome::Fail(format!(
                "describe call {i} returned status {} / different bytes",
                r.code
            ));
            break;
        }
    }
    plugin.free_empty();
    let mut detail = "64 describe buffers freed, empty buffer freed".to_string();
    if outcome == Outcome::Pass {
        match leak_check(&plugin, &hello_bytes, again.bytes.len()) {
            Ok(d) => detail = format!("{detail}; {d}"),
            Err(e) => outcome = Outcome::Fail(e),
        }
    }
    report.push("free-round-trip", outcome, Some(detail));

    // invalid input.
    let minimal = golden_plans()
        .into_iter()
        .find(|(n, _)| *n == "minimal")
        .expect("golden minimal")
        .1;
    let probes: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON", b"{ this is not json".to_vec()),
        ("not UTF-8", vec![0xff, 0xfe, b'{', b'}']),
        ("empty", Vec::new()),
        ("wrong message", br#"{"request":"kerblam.execute/v1","action":"package","plan":{"schema":"kerblam.plan/v1"}}"#.to_vec()),
    ];
    let mut outcome = Outcome::Pass;
    for (what, bytes) in probes {
        match run(&plugin, bytes, Recorder::new(false), opts).and_then(|raw| strict(&raw)) {
            Ok(Reply::Error(Status::InvalidInput, _)) => {}
            Ok(other) => {
                outcome = Outcome::Fail(format!(
                    "{what}: expected status invalid-input, got {}",
                    summarize(&other)
                ));
                break;
            }
            Err(e) => {
                outcome = Outcome::Fail(format!("{what}: {e}"));
                break;
            }
        }
    }
    report.push("invalid-input", outcome, None);

    // golden plans.
    for (name, plan) in golden_plans() {
        let check = format!("golden/{name}");
        let scratch = match Scratch::new() {
            Ok(s) => s,
            Err(e) => {
                report.push(
                    check,
                    Outcome::Fail(format!("cannot make a scratch project: {e}")),
                    None,
                );
                continue;
            }
        };
        let missing = missing_capabilities(&d, &plan);
        if !missing.is_empty() {
            report.push(
                check,
                Outcome::Skip(format!(
                    "the plugin does not claim what the plan needs: {}",
                    missing.join(", ")
                )),
                None,
            );
            continue;
        }
        let before = scratch.listing();
        let reply = run(
            &plugin,
            request_bytes(&d.name, &plan, &scratch.paths, false),
            Recorder::new(false),
            opts,
        )
        .and_then(|raw| strict(&raw));
        let outcome = match (&reply, plan.preflight.is_empty()) {
            (Err(e), _) => Outcome::Fail(e.clone()),
            (Ok(Reply::Result(r)), true) => match check_result_artifacts(r, &plan) {
                Ok(()) => Outcome::Pass,
                Err(e) => Outcome::Fail(e),
            },
            // The environment may lack what the backend drives (an engine, a tool): the plan
            // could not be tried here, which is not a pass.
            (Ok(Reply::Error(Status::BackendError, e)), true) => Outcome::Skip(format!(
                "the backend could not carry the plan out here: {}",
                e.message
            )),
            (Ok(Reply::Error(s, e)), true) => Outcome::Fail(format!(
                "a valid plan within the plugin's capabilities got status {}: {}",
                s.name(),
                e.message
            )),
            (Ok(Reply::Result(_)), false) => {
                Outcome::Fail("the plan's preflight cannot hold, yet execute returned ok".into())
            }
            (Ok(Reply::Error(..)), false) => {
                let after = scratch.listing();
                if after == before {
                    Outcome::Pass
                } else {
                    Outcome::Fail(format!("a failed preflight still wrote: {:?}", after))
                }
            }
        };
        let detail = reply.as_ref().ok().map(summarize);
        report.push(check, outcome, detail);
    }

    // injected panic.
    let outcome = if std::env::var(CONFORMANCE_ENV).as_deref() != Ok("1") {
        Outcome::Skip(format!("set {CONFORMANCE_ENV}=1 to inject a panic"))
    } else {
        match Scratch::new() {
            Err(e) => Outcome::Fail(format!("cannot make a scratch project: {e}")),
            Ok(s) => match run(
                &plugin,
                request_bytes(&d.name, &minimal, &s.paths, true),
                Recorder::new(false),
                opts,
            )
            .and_then(|raw| strict(&raw))
            {
                Ok(Reply::Error(Status::Panic, e)) if e.kind == ErrorKind::Panic => {
                    let alive = plugin.raw_describe(&hello_bytes);
                    if alive.code == 0 {
                        Outcome::Pass
                    } else {
                        Outcome::Fail(format!(
                            "after the panic, describe returned status {}",
                            alive.code
                        ))
                    }
                }
                Ok(other) if d.sdk.is_none() => Outcome::Skip(format!(
                    "not built with the Rust SDK (no `sdk` in describe), so no panic hook; got {}",
                    summarize(&other)
                )),
                Ok(other) => {
                    Outcome::Fail(format!("expected status panic, got {}", summarize(&other)))
                }
                Err(e) => Outcome::Fail(e),
            },
        }
    };
    report.push("panic", outcome, None);

    // cancellation.
    let outcome = match Scratch::new() {
        Err(e) => Outcome::Fail(format!("cannot make a scratch project: {e}")),
        Ok(s) => match run(
            &plugin,
            request_bytes(&d.name, &minimal, &s.paths, false),
            Recorder::new(true),
            opts,
        )
        .and_then(|raw| strict(&raw))
        {
            Ok(Reply::Error(Status::Cancelled, _)) => Outcome::Pass,
            Ok(other) => {
                Outcome::Fail(format!("is_cancelled said yes, yet: {}", summarize(&other)))
            }
            Err(e) => Outcome::Fail(e),
        },
    };
    report.push("cancellation", outcome, None);

    // cancellation while working: "no" to the polls made before the work starts, "yes" from then
    // on, so that it is the backend's own code that has to stop. With the Rust SDK those are the
    // SDK's two (before and after preflight), and the backend's first poll says yes; without it,
    // the plugin's first poll is taken as its own check before starting.
    let before_work = if d.sdk.is_some() { SDK_POLLS } else { 1 };
    let recorder = Recorder::cancelling_after(before_work);
    let (outcome, detail) = match Scratch::new() {
        Err(e) => (
            Outcome::Fail(format!("cannot make a scratch project: {e}")),
            None,
        ),
        Ok(s) => {
            let reply = run(
                &plugin,
                request_bytes(&d.name, &minimal, &s.paths, false),
                recorder.clone(),
                opts,
            )
            .and_then(|raw| strict(&raw));
            let after = recorder.polls_after_flip();
            match reply {
                Ok(Reply::Error(Status::Cancelled, _)) => (
                    Outcome::Pass,
                    Some(format!("stopped after {after} poll(s) said cancelled")),
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
    };
    report.push("cancellation-mid-run", outcome, detail);

    // concurrency.
    let outcome = if !d.capabilities.reentrant {
        Outcome::Skip("the plugin does not claim `reentrant`; the host serializes its calls".into())
    } else {
        let results: Vec<Result<(), String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..opts.threads.max(2))
                .map(|_| {
                    let (plugin, minimal, name) = (&plugin, &minimal, d.name.as_str());
                    scope.spawn(move || {
                        let s = Scratch::new().map_err(|e| e.to_string())?;
                        run(
                            plugin,
                            request_bytes(name, minimal, &s.paths, false),
                            Recorder::new(false),
                            opts,
                        )
                        .and_then(|raw| strict(&raw))
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
            None => Outcome::Pass,
            Some(e) => Outcome::Fail(e),
        }
    };
    let threads = opts.threads.max(2);
    report.push(
        "concurrent",
        outcome,
        Some(format!("{threads} executes at once")),
    );

    // late callbacks: wait, then count what arrived after any call above had returned.
    std::thread::sleep(opts.late_wait);
    let late = plugin.late_callbacks();
    let outcome = if late == 0 {
        Outcome::Pass
    } else {
        Outcome::Fail(format!("{late} callback(s) arrived after execute returned"))
    };
    report.push("no-late-callbacks", outcome, None);
    report
}

/// What the plan needs that the plugin's describe does not claim.
fn missing_capabilities(d: &kerblam_backend_api::Describe, plan: &PackagePlan) -> Vec<String> {
    kerblam_backend_api::missing_capabilities(
        Action::Package,
        plan,
        &kerblam_backend_api::ExecuteOptions::default(),
        d,
    )
}

/// The resident set size of this process, in bytes (Linux: `/proc/self/statm`).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// Hands back enough describe buffers (three rounds of up to 32 MiB of them) that a
/// `kerblam_backend_free` which does not free shows in this process's memory: allocation and
/// release in a loop reuse the same memory, while a leak grows the resident size by about what went
/// through, every round. Only growth in every round counts, so that other threads of this process
/// (the kit may run beside other work) do not look like a leak.
fn leak_check(plugin: &Plugin, hello: &[u8], len: usize) -> Result<String, String> {
    const ROUND: u64 = 32 << 20;
    let Some(mut last) = rss_bytes() else {
        return Ok("memory not measured (no /proc/self/statm)".into());
    };
    let calls = (ROUND / len.max(1) as u64).clamp(1_000, 40_000);
    let through = calls * len as u64;
    let mut growth = Vec::new();
    for _ in 0..3 {
        for _ in 0..calls {
            let r = plugin.raw_describe(hello);
            if r.code != 0 {
                return Err(format!("describe returned status {}", r.code));
            }
        }
        let now = rss_bytes().unwrap_or(last);
        growth.push(now.saturating_sub(last));
        last = now;
    }
    let least = growth.iter().copied().min().unwrap_or(0);
    if least > through / 2 {
        return Err(format!(
            "memory grew by {} KiB in each of 3 rounds of {calls} describe calls ({} KiB of buffers each): \
             kerblam_backend_free does not seem to free what the plugin allocated",
            least >> 10,
            through >> 10
        ));
    }
    Ok(format!(
        "3 x {calls} more buffers ({} KiB each round) freed, memory grew {:?} KiB",
        through >> 10,
        growth.iter().map(|g| g >> 10).collect::<Vec<_>>()
    ))
}

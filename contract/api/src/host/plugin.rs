//! One loaded plugin: loading with checks, and guarded calls.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use serde::de::DeserializeOwned;

use super::callbacks::{HostCallbacks, Session};
use super::{Call, CallError, LoadError, LoadErrorKind, elf};
use kerblam_plan::BackendPlan;

use super::contract;
use crate::abi::{
    AbiVersionFn, DescribeFn, ExecuteFn, FreeFn, PlanFn, SYM_ABI_VERSION, SYM_DESCRIBE,
    SYM_EXECUTE, SYM_FREE, SYM_PLAN,
};
use crate::{
    Buf, Describe, ErrorMessage, ExecuteRequest, ExecuteResult, Hello, PlanRequest, Status,
    split_abi_version,
};

/// How long a plugin that timed out gets to honour cancellation before it is abandoned.
const CANCEL_GRACE: Duration = Duration::from_secs(2);

/// How long `kerblam_backend_describe` may take at load time before the plugin is refused.
pub const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

struct Fns {
    describe: DescribeFn,
    execute: ExecuteFn,
    free: FreeFn,
    plan: Option<PlanFn>,
}

struct Inner {
    path: PathBuf,
    abi_version: u32,
    describe: Describe,
    describe_json: serde_json::Value,
    fns: Fns,
    exec_lock: Mutex<()>,
    late: Arc<AtomicU64>,
}

/// A loaded, validated backend plugin. Cheap to clone; the library stays loaded for the life of
/// the process.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<Inner>,
    /// How long a plan call may take; `None`: as long as it takes. See [`Plugin::with_timeout`].
    timeout: Option<Duration>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name())
            .field("path", &self.inner.path)
            .finish()
    }
}

/// The raw outcome of a call: the status code and a copy of the bytes in `out` (already freed
/// with the plugin's `kerblam_backend_free`).
#[derive(Debug, Clone)]
pub struct RawReply {
    /// The status code returned.
    pub code: i32,
    /// The bytes of `out`.
    pub bytes: Vec<u8>,
    /// `out.ptr` was null.
    pub null: bool,
}

/// Decode a reply's bytes as a `T`, with a precise reason when they are not UTF-8, truncated, not
/// JSON, or not the expected message.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, String> {
    if bytes.is_empty() {
        return Err(format!("the {what} buffer is empty"));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "the {what} is not UTF-8 (invalid byte 0x{:02x} at offset {} of {})",
            bytes[e.valid_up_to()],
            e.valid_up_to(),
            bytes.len()
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        if e.is_eof() {
            format!(
                "the {what} is truncated: its JSON ends unexpectedly after {} bytes ({e})",
                bytes.len()
            )
        } else {
            format!("the {what} is not valid JSON: {e}")
        }
    })?;
    serde_json::from_value(value).map_err(|e| format!("the {what} is not a valid message: {e}"))
}

/// Check a describe reply as [`Plugin::load`] does: a non-zero status is a failure (with the
/// plugin's error message when it sent one), then the bytes must be a valid describe message with no
/// [`Describe::problems`], whose ABI major agrees with `abi_version` (the value of
/// `kerblam_backend_abi_version`). Returns the message and the JSON as the plugin sent it. The error
/// is the reason the plugin is refused.
pub fn decode_describe(
    raw: &RawReply,
    abi_version: u32,
) -> Result<(Describe, serde_json::Value), String> {
    let (major, minor) = split_abi_version(abi_version);
    if raw.code != Status::Ok.code() {
        let why = match decode::<ErrorMessage>(&raw.bytes, "error") {
            Ok(e) => e.message,
            Err(e) => e,
        };
        return Err(format!("describe failed with status {}: {why}", raw.code));
    }
    let describe_json: serde_json::Value = decode(&raw.bytes, "describe reply")
        .map_err(|e| format!("describe returned garbage: {e}"))?;
    let describe: Describe = serde_json::from_value(describe_json.clone())
        .map_err(|e| format!("describe returned garbage: not a valid describe message: {e}"))?;
    let problems = describe.problems();
    if !problems.is_empty() {
        return Err(format!("invalid describe: {}", problems.join("; ")));
    }
    if describe.abi.major != major {
        return Err(format!(
            "describe says ABI {} but kerblam_backend_abi_version says {major}.{minor}",
            describe.abi
        ));
    }
    Ok((describe, describe_json))
}

/// Turn a raw execute reply of the plugin `backend` (loaded from `path`) into a result or a
/// [`CallError`], checking that the bytes are a valid message of the kind the status announces.
/// [`Plugin::interpret`] for a plugin that is not at hand.
pub fn interpret_reply(
    backend: &str,
    path: &Path,
    raw: &RawReply,
) -> Result<ExecuteResult, CallError> {
    let bad = |reason: String| CallError::BadOutput {
        backend: backend.to_string(),
        path: path.to_path_buf(),
        code: raw.code,
        reason,
    };
    let status = Status::from_code(raw.code)
        .ok_or_else(|| bad(format!("unknown status code {}", raw.code)))?;
    if status == Status::Ok {
        return decode::<ExecuteResult>(&raw.bytes, "execute result").map_err(bad);
    }
    let error = decode::<ErrorMessage>(&raw.bytes, "error message").map_err(bad)?;
    if error.kind.status() != status {
        return Err(bad(format!(
            "status {} means {}, but the error's kind is {} ({})",
            raw.code,
            status.name(),
            error.kind.status().name(),
            error.message
        )));
    }
    Err(CallError::Failed {
        backend: backend.to_string(),
        status,
        error,
    })
}

/// A request that does not serialize, as a [`CallError`].
fn serialize(e: serde_json::Error) -> CallError {
    CallError::Request(format!("cannot serialize the request: {e}"))
}

fn sym<T: Copy>(lib: &Library, name: &str) -> Option<T> {
    // SAFETY: the caller names the symbol's type from the ABI; the library is never unloaded.
    unsafe { lib.get::<T>(name).ok().map(|s| *s) }
}

impl Plugin {
    /// The JSON of an execute request, once the plugin is known to have every capability it
    /// needs (refused naming what is missing, before the plugin is called).
    fn request_bytes(&self, request: &ExecuteRequest) -> Result<Vec<u8>, CallError> {
        let missing = self.missing_capabilities(request);
        if !missing.is_empty() {
            return Err(CallError::Missing {
                backend: self.name().to_string(),
                missing,
            });
        }
        serde_json::to_vec(request).map_err(serialize)
    }

    /// Load and validate the library at `path`: ELF header check, `dlopen` with
    /// `RTLD_NOW | RTLD_LOCAL` (never closed), the ABI version, all four symbols, and a valid
    /// describe reply to `hello` within [`DESCRIBE_TIMEOUT`].
    pub fn load(path: &Path, hello: &Hello) -> Result<Plugin, LoadError> {
        Self::load_with_timeout(path, hello, DESCRIBE_TIMEOUT)
    }

    /// [`Plugin::load`] with a chosen describe timeout. A plugin whose describe does not answer in
    /// time is refused (and its thread abandoned; the library stays loaded).
    pub fn load_with_timeout(
        path: &Path,
        hello: &Hello,
        describe_timeout: Duration,
    ) -> Result<Plugin, LoadError> {
        let skip = |reason: String| LoadError {
            path: path.to_path_buf(),
            kind: LoadErrorKind::Skipped,
            reason,
        };
        let refuse = |reason: String| LoadError {
            path: path.to_path_buf(),
            kind: LoadErrorKind::Refused,
            reason,
        };
        elf::check(path).map_err(skip)?;
        // SAFETY: loading runs the library's initializers; that is the point of a plugin. The
        // library is leaked below and never unloaded.
        let lib = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }
            .map_err(|e| skip(format!("cannot be loaded: {e}")))?;
        let lib: &'static Library = Box::leak(Box::new(lib));
        let abi: AbiVersionFn = sym(lib, SYM_ABI_VERSION).ok_or_else(|| {
            skip(format!(
                "not a kerblam backend (no `{SYM_ABI_VERSION}` symbol)"
            ))
        })?;
        // SAFETY: ABI signature.
        let abi_version = unsafe { abi() };
        let (major, minor) = split_abi_version(abi_version);
        if major != crate::ABI_MAJOR {
            return Err(refuse(format!(
                "built for backend ABI {major}.{minor}, but this kerblam speaks ABI {}.{}; its author must build it for ABI {} (kerblam_backend_abi_version returning {:#010x}, KERBLAM_BACKEND_ABI_VERSION of kerblam_backend.h; or kerblam-backend-api {} for a Rust plugin)",
                crate::ABI_MAJOR,
                crate::ABI_MINOR,
                crate::ABI_MAJOR,
                crate::ABI_VERSION,
                env!("CARGO_PKG_VERSION")
            )));
        }
        let missing = |s: &str| refuse(format!("missing symbol `{s}`"));
        let fns = Fns {
            describe: sym(lib, SYM_DESCRIBE).ok_or_else(|| missing(SYM_DESCRIBE))?,
            execute: sym(lib, SYM_EXECUTE).ok_or_else(|| missing(SYM_EXECUTE))?,
            free: sym(lib, SYM_FREE).ok_or_else(|| missing(SYM_FREE))?,
            plan: sym(lib, SYM_PLAN),
        };
        let hello_bytes = serde_json::to_vec(hello).map_err(|e| refuse(e.to_string()))?;
        let (tx, rx) = mpsc::channel();
        let (describe_fn, free_fn) = (fns.describe, fns.free);
        std::thread::Builder::new()
            .name("backend-describe".into())
            .spawn(move || {
                let _ = tx.send(Self::call_describe(describe_fn, free_fn, &hello_bytes));
            })
            .map_err(|e| refuse(format!("cannot start a thread: {e}")))?;
        let raw = rx.recv_timeout(describe_timeout).map_err(|_| {
            refuse(format!(
                "describe did not answer within {:.1}s",
                describe_timeout.as_secs_f64()
            ))
        })?;
        let (describe, describe_json) = decode_describe(&raw, abi_version).map_err(refuse)?;
        Ok(Plugin {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                abi_version,
                describe,
                describe_json,
                fns,
                exec_lock: Mutex::new(()),
                late: Arc::new(AtomicU64::new(0)),
            }),
            timeout: None,
        })
    }

    /// This plugin with `timeout` as the limit of its plan calls ([`Plugin::plan`]); `None`, the
    /// default, waits as long as the call takes. `kerblam` gives it the limit of every backend
    /// call (`--backend-timeout`, `KERBLAM_BACKEND_TIMEOUT`), which bounds execute calls too; the
    /// conformance kit its own. A plan call cannot be cancelled: past the limit the host stops
    /// waiting ([`CallError::TimedOut`]) and abandons the call's thread.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Plugin {
        self.timeout = timeout;
        self
    }

    /// The limit of a plan call (see [`Plugin::with_timeout`]).
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    fn call_describe(describe: DescribeFn, free: FreeFn, hello: &[u8]) -> RawReply {
        let mut out = Buf::EMPTY;
        // SAFETY: ABI contract; `hello` outlives the call.
        let code = unsafe { describe(hello.as_ptr(), hello.len(), &mut out) };
        Self::take(free, code, out)
    }

    /// Copy `out` and give it back to the plugin's free.
    fn take(free: FreeFn, code: i32, out: Buf) -> RawReply {
        let null = out.ptr.is_null();
        let bytes = if null || out.len == 0 {
            Vec::new()
        } else {
            // SAFETY: the plugin promises `len` readable bytes at `ptr` until it is freed.
            unsafe { std::slice::from_raw_parts(out.ptr, out.len) }.to_vec()
        };
        if !null {
            // SAFETY: handing back exactly what the plugin returned, once.
            unsafe { free(out) };
        }
        RawReply { code, bytes, null }
    }

    /// The backend name.
    pub fn name(&self) -> &str {
        &self.inner.describe.name
    }

    /// The library path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The raw value of `kerblam_backend_abi_version`.
    pub fn abi_version(&self) -> u32 {
        self.inner.abi_version
    }

    /// The validated describe reply.
    pub fn describe(&self) -> &Describe {
        &self.inner.describe
    }

    /// The describe reply as the plugin sent it (may contain fields newer than this host).
    pub fn describe_json(&self) -> &serde_json::Value {
        &self.inner.describe_json
    }

    /// How many callbacks arrived after their execute call had returned (ignored; a plugin bug).
    pub fn late_callbacks(&self) -> u64 {
        self.inner.late.load(Ordering::SeqCst)
    }

    /// Call `kerblam_backend_describe` with arbitrary bytes (for the conformance kit).
    pub fn raw_describe(&self, hello: &[u8]) -> RawReply {
        Self::call_describe(self.inner.fns.describe, self.inner.fns.free, hello)
    }

    /// Whether the plugin exports `kerblam_backend_plan` (ABI 1.1); without it, its part of every
    /// plan is empty.
    pub fn has_plan(&self) -> bool {
        self.inner.fns.plan.is_some()
    }

    /// Call `kerblam_backend_plan` with arbitrary bytes (for the conformance kit); `None` when the
    /// plugin does not export it.
    pub fn raw_plan(&self, request: &[u8]) -> Option<RawReply> {
        let plan = self.inner.fns.plan?;
        let mut out = Buf::EMPTY;
        // SAFETY: ABI contract; `request` outlives the call.
        let code = unsafe { plan(request.as_ptr(), request.len(), &mut out) };
        Some(Self::take(self.inner.fns.free, code, out))
    }

    /// The backend's part of `request.plan`: refused before the call when a capability is
    /// missing; the plugin's reply, checked ([`contract::plan_problems`]), when it exports
    /// `kerblam_backend_plan`; an empty part (its name only) when it does not. The call may take
    /// as long as [`Plugin::timeout`] allows. A part that puts one of its files where kerblam
    /// writes its own ([`contract::host_clash`]) is a [`CallError::Request`]: what was asked for
    /// (`-o` naming the backend's file) cannot be done.
    pub fn plan(&self, request: &PlanRequest) -> Result<BackendPlan, CallError> {
        let missing = crate::missing_capabilities(
            request.action,
            &request.plan,
            &request.options,
            self.describe(),
        );
        if !missing.is_empty() {
            return Err(CallError::Missing {
                backend: self.name().to_string(),
                missing,
            });
        }
        if self.inner.fns.plan.is_none() {
            return Ok(BackendPlan::named(self.name()));
        }
        let bytes = serde_json::to_vec(request).map_err(serialize)?;
        let (tx, rx) = mpsc::channel();
        let this = self.clone();
        std::thread::Builder::new()
            .name(format!("backend-{}-plan", self.name()))
            .spawn(move || {
                let _ = tx.send(this.raw_plan(&bytes));
            })
            .map_err(|e| CallError::Request(format!("cannot start a thread: {e}")))?;
        let reply = match self.timeout {
            Some(t) => rx.recv_timeout(t),
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        let raw = match reply {
            Ok(Some(raw)) => raw,
            Ok(None) => return Ok(BackendPlan::named(self.name())),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(CallError::TimedOut {
                    backend: self.name().to_string(),
                    call: Call::Plan,
                    after: self.timeout.unwrap_or_default(),
                    returned: false,
                });
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(CallError::Request(
                    "the backend's plan thread ended without a reply".into(),
                ));
            }
        };
        let part = self.interpret_as::<BackendPlan>(&raw, "plan reply")?;
        if let Some(clash) = contract::host_clash(&request.plan, &part, &request.paths) {
            return Err(CallError::Request(clash));
        }
        let problems = contract::plan_problems(self.name(), &request.plan, &part, &request.paths);
        if !problems.is_empty() {
            return Err(CallError::Broken {
                backend: self.name().to_string(),
                what: "its part of the plan is invalid".into(),
                problems,
            });
        }
        Ok(part)
    }

    /// Call `kerblam_backend_free` on the empty buffer, which must be a no-op.
    pub fn free_empty(&self) {
        // SAFETY: freeing a null buffer is defined as a no-op by the ABI.
        unsafe { (self.inner.fns.free)(Buf::EMPTY) }
    }

    /// The execute call itself, for any thread: serialized unless the plugin claims `reentrant`;
    /// the session is closed when it returns.
    fn call(
        &self,
        session: &'static Session,
        request: Vec<u8>,
    ) -> impl FnOnce() -> RawReply + Send + 'static {
        let inner = self.inner.clone();
        move || {
            let _serial = if inner.describe.capabilities.reentrant {
                None
            } else {
                Some(inner.exec_lock.lock().unwrap_or_else(|e| e.into_inner()))
            };
            let table = session.table();
            let mut out = Buf::EMPTY;
            // SAFETY: ABI contract; request and table outlive the call.
            let code =
                unsafe { (inner.fns.execute)(request.as_ptr(), request.len(), &table, &mut out) };
            session.close();
            Self::take(inner.fns.free, code, out)
        }
    }

    /// Call `kerblam_backend_execute` with arbitrary bytes. Calls are serialized unless the plugin
    /// claims `reentrant`. With a timeout the call runs on its own thread; when it expires the
    /// plugin is asked to cancel, given a short grace period, then abandoned.
    pub fn raw_execute(
        &self,
        request: Vec<u8>,
        callbacks: Arc<dyn HostCallbacks>,
        timeout: Option<Duration>,
    ) -> Result<RawReply, CallError> {
        let session = Session::leak(self.name(), callbacks, self.inner.late.clone());
        let run = self.call(session, request);
        let Some(timeout) = timeout else {
            return Ok(run());
        };
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("backend-{}", self.name()))
            .spawn(move || {
                let _ = tx.send(run());
            })
            .map_err(|e| CallError::Request(format!("cannot start a thread: {e}")))?;
        match rx.recv_timeout(timeout) {
            Ok(reply) => Ok(reply),
            Err(_) => {
                session.cancel();
                let returned = rx.recv_timeout(CANCEL_GRACE).is_ok();
                session.close();
                Err(CallError::TimedOut {
                    backend: self.name().to_string(),
                    call: Call::Execute,
                    after: timeout,
                    returned,
                })
            }
        }
    }

    /// [`Plugin::execute`], watched: the call runs on its own thread, and once
    /// `callbacks.is_cancelled()` says yes (the user pressed Ctrl-C), the plugin has `grace` to
    /// return. A plugin that ignores cancellation is abandoned ([`CallError::Unresponsive`]): its
    /// thread is left behind, its callbacks are ignored from then on, and the host can exit.
    /// With a `timeout`, a call still running after it is cancelled, given `grace`, and reported
    /// as [`CallError::TimedOut`] whether or not it then returns.
    pub fn execute_watched(
        &self,
        request: &ExecuteRequest,
        callbacks: Arc<dyn HostCallbacks>,
        grace: Duration,
        timeout: Option<Duration>,
    ) -> Result<ExecuteResult, CallError> {
        let bytes = self.request_bytes(request)?;
        let session = Session::leak(self.name(), callbacks.clone(), self.inner.late.clone());
        let run = self.call(session, bytes);
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("backend-{}", self.name()))
            .spawn(move || {
                let _ = tx.send(run());
            })
            .map_err(|e| CallError::Request(format!("cannot start a thread: {e}")))?;
        let started = std::time::Instant::now();
        let mut cancelled_at: Option<std::time::Instant> = None;
        let mut timed_out = false;
        let timed_out_error = |returned| CallError::TimedOut {
            backend: self.name().to_string(),
            call: Call::Execute,
            after: timeout.unwrap_or_default(),
            returned,
        };
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(_) if timed_out => {
                    session.close();
                    return Err(timed_out_error(true));
                }
                Ok(reply) => return self.interpret(&reply),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(CallError::Request(
                        "the backend's thread ended without a reply".into(),
                    ));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if cancelled_at.is_none() && timeout.is_some_and(|t| started.elapsed() >= t) {
                // Past its time: ask it to stop, as Ctrl-C would.
                timed_out = true;
                session.cancel();
                cancelled_at = Some(std::time::Instant::now());
            }
            match cancelled_at {
                None if callbacks.is_cancelled() => {
                    cancelled_at = Some(std::time::Instant::now());
                }
                Some(t) if t.elapsed() >= grace => {
                    session.cancel();
                    session.close();
                    if timed_out {
                        return Err(timed_out_error(false));
                    }
                    return Err(CallError::Unresponsive {
                        backend: self.name().to_string(),
                        grace,
                    });
                }
                _ => {}
            }
        }
    }

    /// Turn a raw execute reply into a result or a [`CallError`], checking that the bytes are a
    /// valid message of the kind the status announces.
    pub fn interpret(&self, raw: &RawReply) -> Result<ExecuteResult, CallError> {
        interpret_reply(self.name(), self.path(), raw)
    }

    /// [`Plugin::interpret`] for a reply of another message type, `what` naming it.
    fn interpret_as<T: DeserializeOwned>(
        &self,
        raw: &RawReply,
        what: &str,
    ) -> Result<T, CallError> {
        let bad = |reason: String| CallError::BadOutput {
            backend: self.name().to_string(),
            path: self.path().to_path_buf(),
            code: raw.code,
            reason,
        };
        if raw.code == Status::Ok.code() {
            return decode::<T>(&raw.bytes, what).map_err(bad);
        }
        match interpret_reply(self.name(), self.path(), raw) {
            Err(e) => Err(e),
            Ok(_) => Err(bad(format!("status {} with a result", raw.code))),
        }
    }

    /// The capabilities `request` needs that this plugin lacks (empty when it can run it).
    pub fn missing_capabilities(&self, request: &ExecuteRequest) -> Vec<String> {
        crate::missing_capabilities(
            request.action,
            &request.plan,
            &request.options,
            self.describe(),
        )
    }

    /// Execute a request: refuse it before anything runs when a capability is missing, then call
    /// the plugin (see [`Plugin::raw_execute`]) and validate its reply.
    pub fn execute(
        &self,
        request: &ExecuteRequest,
        callbacks: Arc<dyn HostCallbacks>,
        timeout: Option<Duration>,
    ) -> Result<ExecuteResult, CallError> {
        let bytes = self.request_bytes(request)?;
        let raw = self.raw_execute(bytes, callbacks, timeout)?;
        self.interpret(&raw)
    }
}

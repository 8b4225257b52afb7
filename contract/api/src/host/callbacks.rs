//! The host callback table handed to `kerblam_backend_execute`, and what happens to callbacks that
//! arrive after the call returned (they are ignored and counted).

use std::ffi::c_void;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::{HostV1, log_level};

/// What the host does when a plugin calls back. Called from any thread the plugin uses.
pub trait HostCallbacks: Send + Sync {
    /// A log line (level from [`crate::log_level`]).
    fn log(&self, level: i32, message: &str) {
        let tag = match level {
            log_level::ERROR => "error: ",
            log_level::WARN => "warning: ",
            _ => "",
        };
        if level <= log_level::INFO {
            // Not `eprintln!`: it panics when stderr is closed, and this runs inside a callback
            // the plugin made through the C ABI.
            let _ = writeln!(std::io::stderr().lock(), "{tag}{message}");
        }
    }
    /// Progress: `done` of `total` (0 = unknown) units of `what`.
    fn progress(&self, _done: u64, _total: u64, _what: &str) {}
    /// Whether the backend should stop.
    fn is_cancelled(&self) -> bool {
        false
    }
}

/// Logs errors, warnings and info to stderr; no progress; never cancels.
#[derive(Debug, Default, Clone, Copy)]
pub struct StderrCallbacks;

impl HostCallbacks for StderrCallbacks {}

/// The state behind one execute call's `ctx`. It is leaked (a few dozen bytes per call) so that a
/// misbehaving plugin calling back after return touches valid memory and is merely counted.
pub(crate) struct Session {
    backend: String,
    callbacks: Mutex<Option<Arc<dyn HostCallbacks>>>,
    cancelled: AtomicBool,
    warned: AtomicBool,
    late: Arc<AtomicU64>,
}

impl Session {
    pub(crate) fn leak(
        backend: &str,
        callbacks: Arc<dyn HostCallbacks>,
        late: Arc<AtomicU64>,
    ) -> &'static Session {
        Box::leak(Box::new(Session {
            backend: backend.to_string(),
            callbacks: Mutex::new(Some(callbacks)),
            cancelled: AtomicBool::new(false),
            warned: AtomicBool::new(false),
            late,
        }))
    }

    /// The call returned (or was abandoned): later callbacks are ignored.
    pub(crate) fn close(&self) {
        self.callbacks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    /// Make `is_cancelled` return true from now on.
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    pub(crate) fn table(&'static self) -> HostV1 {
        HostV1 {
            struct_size: std::mem::size_of::<HostV1>(),
            ctx: self as *const Session as *mut c_void,
            log: Some(cb_log),
            progress: Some(cb_progress),
            is_cancelled: Some(cb_is_cancelled),
        }
    }

    fn current(&self, what: &str) -> Option<Arc<dyn HostCallbacks>> {
        let cb = self
            .callbacks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if cb.is_none() {
            self.late.fetch_add(1, Ordering::SeqCst);
            if !self.warned.swap(true, Ordering::SeqCst) {
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "warning: backend {:?} called `{what}` after its execute call returned; ignored (a plugin bug)",
                    self.backend
                );
            }
        }
        cb
    }
}

unsafe fn text<'a>(ptr: *const u8, len: usize) -> std::borrow::Cow<'a, str> {
    if ptr.is_null() || len == 0 {
        return "".into();
    }
    // SAFETY: per the ABI the plugin passes `len` readable bytes.
    String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(ptr, len) })
}

unsafe fn session<'a>(ctx: *mut c_void) -> Option<&'a Session> {
    // SAFETY: ctx is the leaked Session we handed out (never freed).
    unsafe { (ctx as *const Session).as_ref() }
}

unsafe extern "C" fn cb_log(ctx: *mut c_void, level: i32, ptr: *const u8, len: usize) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: see `session` and `text`.
        let Some(s) = (unsafe { session(ctx) }) else {
            return;
        };
        if let Some(cb) = s.current("log") {
            cb.log(level, &unsafe { text(ptr, len) });
        }
    }));
}

unsafe extern "C" fn cb_progress(
    ctx: *mut c_void,
    done: u64,
    total: u64,
    ptr: *const u8,
    len: usize,
) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: see `session` and `text`.
        let Some(s) = (unsafe { session(ctx) }) else {
            return;
        };
        if let Some(cb) = s.current("progress") {
            cb.progress(done, total, &unsafe { text(ptr, len) });
        }
    }));
}

unsafe extern "C" fn cb_is_cancelled(ctx: *mut c_void) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: see `session`.
        let Some(s) = (unsafe { session(ctx) }) else {
            return 1;
        };
        if s.cancelled.load(Ordering::SeqCst) {
            return 1;
        }
        match s.current("is_cancelled") {
            Some(cb) => cb.is_cancelled() as i32,
            None => 1,
        }
    }))
    .unwrap_or(1)
}

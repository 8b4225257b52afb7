use std::marker::PhantomData;
use std::mem::{offset_of, size_of};

use crate::{ErrorMessage, HostV1, log_level};

/// The host's callbacks, as a backend sees them during one `execute` call. Fields missing from an
/// older host's (shorter) table are treated as absent, so every method is always safe to call.
#[derive(Clone, Copy)]
pub struct Host<'a> {
    raw: Option<&'a HostV1>,
    _not_static: PhantomData<&'a ()>,
}

// SAFETY: the ABI requires host callbacks to be callable from any thread while execute runs, and
// `Host<'a>` cannot outlive the call.
unsafe impl Send for Host<'_> {}
unsafe impl Sync for Host<'_> {}

macro_rules! field {
    ($raw:expr, $f:ident) => {{
        let raw: &HostV1 = $raw;
        if HostV1::has_field(
            raw.struct_size,
            offset_of!(HostV1, $f),
            size_of::<Option<fn()>>(),
        ) {
            raw.$f
        } else {
            None
        }
    }};
}

impl<'a> Host<'a> {
    /// Wrap a raw table (null means "no callbacks").
    ///
    /// # Safety
    /// `raw` must be null or point to a table valid for `'a`.
    pub unsafe fn from_raw(raw: *const HostV1) -> Host<'a> {
        // SAFETY: per the caller.
        Host {
            raw: unsafe { raw.as_ref() },
            _not_static: PhantomData,
        }
    }

    /// A host with no callbacks (logs go nowhere, never cancelled).
    pub fn none() -> Host<'static> {
        Host {
            raw: None,
            _not_static: PhantomData,
        }
    }

    /// Log one line at `level` (see [`crate::log_level`]).
    pub fn log(&self, level: i32, msg: &str) {
        if let Some(raw) = self.raw
            && let Some(f) = field!(raw, log)
        {
            // SAFETY: the host guarantees the callback and ctx are valid during execute.
            unsafe { f(raw.ctx, level, msg.as_ptr(), msg.len()) }
        }
    }

    /// Log at info level.
    pub fn info(&self, msg: &str) {
        self.log(log_level::INFO, msg)
    }

    /// Log at warn level.
    pub fn warn(&self, msg: &str) {
        self.log(log_level::WARN, msg)
    }

    /// Log at debug level.
    pub fn debug(&self, msg: &str) {
        self.log(log_level::DEBUG, msg)
    }

    /// Report progress: `done` of `total` (0 = unknown) units of `what`.
    pub fn progress(&self, done: u64, total: u64, what: &str) {
        if let Some(raw) = self.raw
            && let Some(f) = field!(raw, progress)
        {
            // SAFETY: as for log.
            unsafe { f(raw.ctx, done, total, what.as_ptr(), what.len()) }
        }
    }

    /// Whether the host asked to stop.
    pub fn is_cancelled(&self) -> bool {
        match self.raw {
            Some(raw) => match field!(raw, is_cancelled) {
                // SAFETY: as for log.
                Some(f) => unsafe { f(raw.ctx) != 0 },
                None => false,
            },
            None => false,
        }
    }

    /// `Err(cancelled)` when the host asked to stop, for use with `?`.
    pub fn check_cancelled(&self) -> Result<(), ErrorMessage> {
        if self.is_cancelled() {
            Err(ErrorMessage::cancelled())
        } else {
            Ok(())
        }
    }
}

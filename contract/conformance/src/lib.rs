//! The kerblam backend conformance kit.
//!
//! [`check_plugin`] loads a plugin library for real (the same loader `kerblam` uses) and runs it
//! through the contract, returning a [`Report`] of [`Check`]s, each passed, failed or skipped with
//! a reason:
//!
//! - `load`: ELF, `dlopen`, ABI major, the symbols, a valid describe reply;
//! - `describe`: the reply is stable across calls;
//! - `free-round-trip`: many describe calls, each buffer handed back to `kerblam_backend_free`, and
//!   freeing the empty buffer is a no-op; then tens of megabytes of describe buffers, after which
//!   this process's memory must not have grown with them (a `free` that frees nothing fails);
//! - `invalid-input`: bytes that are not JSON, not UTF-8, or the wrong message get status
//!   `invalid-input` with a well-formed error, from execute and from plan;
//! - `plan`: `kerblam_backend_plan` answers, for every golden plan the plugin claims, a part of
//!   the plan kerblam accepts, and the same one twice;
//! - `golden/<plan>`: each [golden plan](golden) within the plugin's claimed capabilities (else
//!   skipped, naming what is missing) is completed with the plugin's part and executed; the result
//!   must hold to it: every artifact it plans exists with its kind, nothing else is reported, and
//!   kerblam's own replay archive is neither written nor reported. A `backend` error (the
//!   environment lacks an engine, say) is a skip, any other error a failure; a plan whose
//!   preflight fails gets an error and nothing written;
//! - `panic`: an injected panic (the SDK's `conformance_panic` hook, enabled by
//!   `KERBLAM_CONFORMANCE=1`) gets status `panic` and the host stays usable;
//! - `cancellation`: a host that says "cancelled" gets status `cancelled`;
//! - `cancellation-mid-run`: a host that says "not cancelled" to the first poll and "cancelled"
//!   from then on gets status `cancelled`, or an `ok` from a plugin that never polled again; an
//!   `ok` after a poll said "cancelled" fails;
//! - `concurrent`: when the plugin claims `reentrant`, parallel executes all answer well;
//! - `no-late-callbacks`: no callback arrives after an execute call returned.
//!
//! Every reply is checked strictly: a status and an error kind that disagree fail the check.

mod checks;
mod golden;
mod leak;
mod report;
mod scratch;

use std::path::Path;
use std::time::Duration;

pub use checks::check_plugin;
pub use report::{Check, Outcome, Report};

/// How the kit runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The longest one plan or execute call may take before the check fails.
    pub timeout: Duration,
    /// How long to wait after the last call for late callbacks.
    pub late_wait: Duration,
    /// Threads used by the `concurrent` check.
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            timeout: Duration::from_secs(120),
            late_wait: Duration::from_millis(300),
            threads: 4,
        }
    }
}

pub use golden::{Golden, NAMES as GOLDEN_NAMES, golden};

/// The golden plans' JSON text as committed under `golden/`, by name.
pub fn golden_texts() -> &'static [(&'static str, &'static str)] {
    golden::TEXTS
}

/// Run the kit on the library at `path` with default options.
pub fn check(path: &Path) -> Report {
    check_plugin(path, &Options::default())
}

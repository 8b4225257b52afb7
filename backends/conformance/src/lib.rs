//! The kerblam backend conformance kit.
//!
//! [`check_plugin`] loads a plugin library for real (the same loader `kerblam` uses) and runs it
//! through the contract, returning a [`Report`] of [`Check`]s, each passed, failed or skipped with
//! a reason:
//!
//! - `load`: ELF, `dlopen`, ABI major, all four symbols, a valid describe reply;
//! - `describe`: the reply is stable across calls and its capabilities are consistent;
//! - `free-round-trip`: many describe calls, each buffer handed back to `kerblam_backend_free`, and
//!   freeing the empty buffer is a no-op;
//! - `invalid-input`: bytes that are not JSON, not UTF-8, or the wrong message get status
//!   `invalid-input` with a well-formed error;
//! - `golden/<plan>`: the [golden plans](golden_plans) get either a valid result or a well-formed
//!   error, never garbage; a plan whose preflight fails gets an error and nothing written;
//! - `panic`: an injected panic (the SDK's `conformance_panic` hook, enabled by
//!   `KERBLAM_CONFORMANCE=1`) gets status `panic` and the host stays usable;
//! - `cancellation`: a host that says "cancelled" gets status `cancelled`;
//! - `no-late-callbacks`: no callback arrives after an execute call returned;
//! - `concurrent`: when the plugin claims `reentrant`, parallel executes all answer well.

mod checks;
mod report;

use std::path::Path;
use std::time::Duration;

use kerblam_plan::PackagePlan;

pub use checks::check_plugin;
pub use report::{Check, Outcome, Report};

/// How the kit runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The longest one execute call may take before the check fails.
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

const GOLDEN: &[(&str, &str)] = &[
    ("minimal", include_str!("../golden/minimal.json")),
    (
        "preflight-fails",
        include_str!("../golden/preflight-fails.json"),
    ),
];

/// The golden plans, by name, parsed with the plan types. `preflight-fails` has a `file-exists`
/// preflight that never holds, so a backend must refuse it before doing anything.
pub fn golden_plans() -> Vec<(&'static str, PackagePlan)> {
    GOLDEN
        .iter()
        .map(|(name, text)| {
            (
                *name,
                serde_json::from_str(text).unwrap_or_else(|e| panic!("golden plan {name}: {e}")),
            )
        })
        .collect()
}

/// The golden plans' JSON text as committed under `golden/`, by name.
pub fn golden_texts() -> &'static [(&'static str, &'static str)] {
    GOLDEN
}

/// Run the kit on the library at `path` with default options.
pub fn check(path: &Path) -> Report {
    check_plugin(path, &Options::default())
}

//! The kerblam backend conformance kit.
//!
//! [`check_plugin`] loads a plugin library for real (the same loader `kerblam` uses) and runs it
//! through the contract, returning a [`Report`] of [`Check`]s, each passed, failed or skipped with
//! a reason:
//!
//! - `load`: ELF, `dlopen`, ABI major, all four symbols, a valid describe reply;
//! - `describe`: the reply is stable across calls and its capabilities are consistent;
//! - `free-round-trip`: many describe calls, each buffer handed back to `kerblam_backend_free`, and
//!   freeing the empty buffer is a no-op; then tens of megabytes of describe buffers, after which
//!   this process's memory must not have grown with them (a `free` that frees nothing fails);
//! - `invalid-input`: bytes that are not JSON, not UTF-8, or the wrong message get status
//!   `invalid-input` with a well-formed error;
//! - `golden/<plan>`: each [golden plan](golden_plans) within the plugin's claimed capabilities
//!   (else skipped, naming what is missing) gets a valid result whose artifacts the plan asks
//!   for; a `backend` error (the environment lacks an engine, say) is a skip, any other error a
//!   failure; a plan whose preflight fails gets an error and nothing written;
//! - `panic`: an injected panic (the SDK's `conformance_panic` hook, enabled by
//!   `KERBLAM_CONFORMANCE=1`) gets status `panic` and the host stays usable;
//! - `cancellation`: a host that says "cancelled" gets status `cancelled`;
//! - `cancellation-mid-run`: a host that says "not cancelled" to the first poll and "cancelled"
//!   from then on gets status `cancelled`, or an `ok` from a plugin that never polled again; an
//!   `ok` after a poll said "cancelled" fails;
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
    ("engine-image", include_str!("../golden/engine-image.json")),
    ("oci-archive", include_str!("../golden/oci-archive.json")),
    ("sif", include_str!("../golden/sif.json")),
    (
        "preflight-fails",
        include_str!("../golden/preflight-fails.json"),
    ),
];

/// The golden plans, by name, parsed with the plan types: one file layer on `scratch`, asking for
/// no artifact (`minimal`), or for one artifact each (`engine-image`, `oci-archive`, `sif`: the kit
/// tries those whose kind the plugin claims). `preflight-fails` has a `file-exists` preflight that
/// never holds, so a backend must refuse it before doing anything.
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

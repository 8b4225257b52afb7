//! Freeze specs: an EESSI-style software environment frozen into an image or a tarball.
//!
//! A freeze spec (`freeze.toml`, model [`FreezeSpec`]) names the EESSI prefix and CPU build, the
//! loaded modules with their software roots, the module path and Lmod config, extra paths, tree
//! excludes, and how the result is named, labelled and tested. It is checked like a `kerblam.toml`:
//! the JSON Schema generated from [`FreezeSpec`] maps every error to `file:line:col`, then
//! [`rules`] adds the located checks the schema cannot express.
//!
//! - [`spec_from_env`] infers a spec from a live environment (`kerblam freeze --from-env`);
//! - [`compile_freeze`] lowers a spec into a [`kerblam_plan::PackagePlan`] whose trees are `host`
//!   layers with the excludes, measured by [`walk`];
//! - [`scripts`] generates the `activate.sh`, `start.sh` and help text baked in next to the trees.

mod from_env;
mod lower;
pub mod rules;
pub mod scripts;
mod spec;
#[cfg(feature = "synthetic")]
pub mod synthetic;
mod trees;
pub mod walk;

pub use from_env::{FromEnvError, capture, ebroot_var, env_pattern_matches, spec_from_env};
pub use lower::{FreezeOptions, compile_freeze, dated_version};
pub use spec::{
    DEFAULT_ENV_EXCLUDE, DEFAULT_ENV_INCLUDE, DEFAULT_EXCLUDES, Eessi, EnvSpec, FreezeSpec, Module,
    default_name,
};

use crate::diag::{Finding, Level, SourceFile};
use crate::schema_check::{CheckOptions, check_toml};

/// The conventional file name of a freeze spec.
pub const FREEZE_FILE: &str = "freeze.toml";

/// Whether a file name looks like a freeze spec: `freeze.toml` or `*.freeze.toml`.
pub fn is_freeze_file_name(name: &str) -> bool {
    name == FREEZE_FILE || name.ends_with(".freeze.toml")
}

/// Check a spec's text: TOML syntax, the schema (types, unknown keys) and the freeze rules.
/// Returns every finding; the spec is usable when none is an error.
pub fn check(source: SourceFile, opts: CheckOptions) -> (Option<FreezeSpec>, Vec<Finding>) {
    let checked = check_toml::<FreezeSpec>(source, opts);
    let mut findings = checked.findings;
    if let (Some(s), Some(doc)) = (&checked.value, &checked.doc) {
        findings.extend(rules::check(s, doc));
    }
    let ok = !findings.iter().any(|f| f.level == Level::Error);
    (if ok { checked.value } else { None }, findings)
}

/// Parse a spec, failing with [`crate::Error::Invalid`] when it has errors. Returns the spec and
/// its warnings.
pub fn parse(
    source: SourceFile,
    opts: CheckOptions,
) -> Result<(FreezeSpec, Vec<Finding>), crate::Error> {
    let file = source.name.clone();
    let (spec, findings) = check(source, opts);
    match spec {
        Some(spec) => Ok((spec, findings)),
        None => Err(crate::Error::Invalid { file, findings }),
    }
}

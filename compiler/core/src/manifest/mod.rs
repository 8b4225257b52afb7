//! The `kerblam.toml` manifest: its model, parsing with located errors, and the compiler's rules.

mod model;
mod rules;

pub use model::{Code, Data, DataPaths, Execution, Manifest, Meta};

use crate::diag::{Finding, SourceFile};
use crate::schema_check::{CheckOptions, check_toml};

/// A manifest that passed every check, with its warnings.
#[derive(Debug, Clone)]
pub struct LoadedManifest {
    /// The typed manifest.
    pub manifest: Manifest,
    /// Warnings (e.g. unknown keys with `--allow-unknown`).
    pub warnings: Vec<Finding>,
}

/// Check a manifest's text: TOML syntax, the schema (types, unknown keys) and the compiler's rules.
/// Returns every finding; the manifest is usable when none is an error.
pub fn check(source: SourceFile, opts: CheckOptions) -> (Option<Manifest>, Vec<Finding>) {
    let checked = check_toml::<Manifest>(source, opts);
    let mut findings = checked.findings;
    if let (Some(m), Some(doc)) = (&checked.value, &checked.doc) {
        findings.extend(rules::check(m, doc));
    }
    let ok = !findings
        .iter()
        .any(|f| f.level == crate::diag::Level::Error);
    (if ok { checked.value } else { None }, findings)
}

/// Parse a manifest, failing with [`crate::Error::Invalid`] when it has errors.
pub fn parse(source: SourceFile, opts: CheckOptions) -> Result<LoadedManifest, crate::Error> {
    let file = source.name.clone();
    let (manifest, findings) = check(source, opts);
    match manifest {
        Some(manifest) => Ok(LoadedManifest {
            manifest,
            warnings: findings,
        }),
        None => Err(crate::Error::Invalid { file, findings }),
    }
}

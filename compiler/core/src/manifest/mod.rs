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
    if let Some(doc) = &checked.doc {
        // No manifest field is a datetime: report them instead of accepting them as strings, and
        // drop the schema's complaint about the same value (it saw the datetime as a string).
        for (path, span) in doc.datetimes() {
            findings.retain(|f| !(f.code == "kerblam::schema" && f.span == span));
            findings.push(
                Finding::error(
                    &doc.source,
                    "kerblam::schema",
                    format!(
                        "`{}`: a TOML datetime is not accepted here",
                        crate::schema_check::dotted(&path)
                    ),
                )
                .at(span, "expected a string")
                .help("quote the value to make it a string"),
            );
        }
        // The rules run on the best-effort value too, so one run reports every problem.
        if let Some(m) = checked.value.as_ref().or(checked.partial.as_ref()) {
            findings.extend(rules::check(m, doc));
        }
        findings.sort_by_key(|f| f.span.as_ref().map_or(0, |s| s.start));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(text: &str) -> Vec<Finding> {
        check(SourceFile::new("k.toml", text), CheckOptions::default()).1
    }

    #[test]
    fn a_datetime_is_not_a_string() {
        let f = findings("[meta]\nversion = 1979-05-27\n");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].location(), "k.toml:2:11");
        assert!(f[0].message.contains("datetime"), "{}", f[0].message);
        // In a field with a pattern, the datetime finding replaces the pattern one.
        let f = findings("[execution]\nworkdir = 2024-01-01T00:00:00Z\n");
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].message.contains("datetime"), "{}", f[0].message);
    }

    #[test]
    fn rules_still_run_when_the_schema_finds_errors() {
        let f = findings(
            "[code]\nenv_dir = 3\npipes_dir = \"/abs\"\n[data]\nremote = { \"s3://x\" = \"y\" }\nextra = 1\n",
        );
        let codes: Vec<_> = f.iter().map(|f| f.code).collect();
        assert_eq!(
            codes,
            [
                "kerblam::schema",
                "kerblam::bad-path",
                "kerblam::bad-url",
                "kerblam::unknown-key"
            ],
            "{f:?}"
        );
    }

    #[test]
    fn a_bad_profile_file_is_located_at_its_key() {
        let f = findings("[data.profiles.test]\n\"ok.csv\" = \"a\"\n\"../up.csv\" = \"b\"\n");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].location(), "k.toml:3:1");
    }
}

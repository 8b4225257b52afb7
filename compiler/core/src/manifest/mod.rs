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
    fn a_nan_or_inf_is_not_a_string() {
        for v in ["nan", "inf", "-inf", "+nan"] {
            let f = findings(&format!("[data.paths]\ninput = {v}\n"));
            assert_eq!(f.len(), 1, "{v}: {f:?}");
            assert!(
                f[0].message.contains("non-finite float"),
                "{}",
                f[0].message
            );
            assert_eq!(f[0].location(), "k.toml:2:9");
        }
        // A finite float is a plain type error from the schema.
        let f = findings("[meta]\nversion = 1.5\n");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            f[0].message,
            "`meta.version`: expected a string, found a float"
        );
    }

    #[test]
    fn a_syntax_error_at_the_end_of_the_file_is_underlined() {
        let f = findings("[meta");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].code, "kerblam::toml-syntax");
        assert_eq!(
            f[0].span,
            Some(4..5),
            "the last character, not the empty end"
        );
        assert_eq!(f[0].location(), "k.toml:1:5");
        // Before the end, the character where something was expected is underlined, as before.
        let f = findings("[meta\n");
        assert_eq!(f[0].span, Some(5..6), "{f:?}");
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
    fn a_data_dir_cannot_be_the_project_root() {
        let f =
            findings("[data.paths]\ninput = \"in\"\noutput = \"./\"\nintermediate = \"a/..\"\n");
        let locs: Vec<_> = f.iter().map(|f| f.location()).collect();
        assert_eq!(locs, ["k.toml:3:10", "k.toml:4:16"], "{f:?}");
        assert!(f[0].message.contains("project root"), "{}", f[0].message);
        // Other dirs may be the root (pipes next to kerblam.toml).
        assert!(findings("[code]\npipes_dir = \".\"\n").is_empty());
    }

    #[test]
    fn remote_targets_and_profile_files_must_name_files() {
        let f = findings(
            "[data.remote]\n\"https://e.org/a\" = \"sub/..\"\n[data.profiles.p]\n\".\" = \"x\"\n\"y\" = \"./\"\n",
        );
        let locs: Vec<_> = f.iter().map(|f| f.location()).collect();
        assert_eq!(locs, ["k.toml:2:21", "k.toml:4:1", "k.toml:5:7"], "{f:?}");
        for x in &f {
            assert!(
                x.message.contains("input directory itself"),
                "{}",
                x.message
            );
            assert!(
                x.help
                    .as_deref()
                    .unwrap()
                    .contains("relative to the input directory")
            );
        }
        let f = findings("[data.remote]\n\"https://e.org/a\" = \"../a\"\n");
        assert!(
            f[0].message.contains("escapes the input directory"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn type_errors_say_what_was_found_in_toml_words() {
        let cases = [
            (
                "[meta]\nversion = 2\n",
                "`meta.version`: expected a string, found an integer",
            ),
            ("data = \"x\"\n", "`data`: expected a table, found a string"),
            (
                "[execution]\nbackend = true\n",
                "`execution.backend`: expected a string, found a boolean",
            ),
            (
                "[data]\nremote = [\"a\"]\n",
                "`data.remote`: expected a table, found an array",
            ),
            (
                "[[code]]\n",
                "`code`: expected a table, found an array of tables",
            ),
            (
                "[data.paths.input]\n",
                "`data.paths.input`: expected a string, found a table",
            ),
        ];
        for (text, want) in cases {
            let f = findings(text);
            assert_eq!(f.len(), 1, "{text:?}: {f:?}");
            assert_eq!(f[0].message, want, "{text:?}");
        }
    }

    #[test]
    fn a_bad_profile_file_is_located_at_its_key() {
        let f = findings("[data.profiles.test]\n\"ok.csv\" = \"a\"\n\"../up.csv\" = \"b\"\n");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].location(), "k.toml:3:1");
    }

    #[test]
    fn execution_user_is_invoker_or_root() {
        let parsed = |text: &str| {
            check(SourceFile::new("k.toml", text), CheckOptions::default())
                .0
                .map(|m| m.execution.user)
        };
        assert_eq!(parsed(""), Some(kerblam_plan::RunUser::Invoker));
        assert_eq!(
            parsed("[execution]\nuser = \"root\"\n"),
            Some(kerblam_plan::RunUser::Root)
        );
        assert_eq!(
            parsed("[execution]\nuser = \"invoker\"\n"),
            Some(kerblam_plan::RunUser::Invoker)
        );
        let f = findings("[execution]\nuser = \"admin\"\n");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].location(), "k.toml:2:8");
        assert!(f[0].message.contains("execution.user"), "{}", f[0].message);
        assert!(f[0].message.contains(r#"not one of "invoker" or "root""#));
    }
}

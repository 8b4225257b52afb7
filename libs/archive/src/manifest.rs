//! The few facts the archive layer needs from a packaged `kerblam.toml`: its data directories.

use crate::error::{Error, Result};
use crate::paths::manifest_dir;

/// The data directories a packaged `kerblam.toml` names, relative to the project root, normalised
/// (`./data/in` becomes `data/in`). Defaults are Kerblam! 1.x's: `data/in`, `data/out`, `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDirs {
    /// `data.paths.input`.
    pub input: String,
    /// `data.paths.output`.
    pub output: String,
    /// `data.paths.intermediate`.
    pub intermediate: String,
}

impl DataDirs {
    /// Reads `[data.paths]` from manifest bytes. Refuses a manifest that is not UTF-8 TOML and any
    /// data path that is absolute or escapes the project with `..` (a hostile manifest).
    pub fn from_manifest(bytes: &[u8]) -> Result<DataDirs> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| Error::invalid("kerblam.toml in the archive is not valid UTF-8"))?;
        let doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            let at = e
                .span()
                .map(|s| {
                    let before = &text[..s.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let col = before
                        .rsplit('\n')
                        .next()
                        .map(|l| l.chars().count())
                        .unwrap_or(0)
                        + 1;
                    format!(":{line}:{col}")
                })
                .unwrap_or_default();
            Error::invalid(format!(
                "kerblam.toml{at} in the archive is not valid TOML: {}",
                e.message()
            ))
        })?;
        let get = |key: &str, default: &str| -> Result<String> {
            let item = doc
                .get("data")
                .and_then(|d| d.get("paths"))
                .and_then(|p| p.get(key));
            let value = match item {
                None => default.to_string(),
                Some(i) => i
                    .as_str()
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "kerblam.toml: data.paths.{key} in the archive is not a string"
                        ))
                    })?
                    .to_string(),
            };
            manifest_dir(&value, key)
        };
        Ok(DataDirs {
            input: get("input", "data/in")?,
            output: get("output", "data/out")?,
            intermediate: get("intermediate", "data")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_hostile_paths() {
        let d = DataDirs::from_manifest(b"[meta]\nversion = \"1\"\n").unwrap();
        assert_eq!(
            (d.input.as_str(), d.output.as_str(), d.intermediate.as_str()),
            ("data/in", "data/out", "data")
        );
        let d = DataDirs::from_manifest(b"[data.paths]\ninput = \"./inputs\"\n").unwrap();
        assert_eq!(d.input, "inputs");
        let e = DataDirs::from_manifest(b"[data.paths]\noutput = \"../../etc\"\n").unwrap_err();
        assert!(e.message().contains("data.paths.output"), "{e}");
        let e = DataDirs::from_manifest(b"[data.paths\n").unwrap_err();
        assert!(e.message().contains("kerblam.toml:1:"), "{e}");
    }
}

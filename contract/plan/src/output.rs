use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a backend writes the files it makes, and how it names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// The directory: relative to the root (`.` for a pipe: the project root) or absolute (a
    /// freeze's destination).
    pub dir: String,
    /// The stem of every file name: the pipe's name, or `<name>-<version>` for a freeze.
    pub stem: String,
}

impl Output {
    /// `<dir>/<stem><suffix>`, or `<stem><suffix>` when the directory is `.`.
    pub fn file(&self, suffix: &str) -> String {
        let name = format!("{}{suffix}", self.stem);
        match self.dir.as_str() {
            "." | "" => name,
            "/" => format!("/{name}"),
            dir => format!("{}/{name}", dir.trim_end_matches('/')),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Output;

    #[test]
    fn a_file_is_named_under_the_directory() {
        let out = |dir: &str| Output {
            dir: dir.into(),
            stem: "process".into(),
        };
        assert_eq!(out(".").file(".sif"), "process.sif");
        assert_eq!(
            out("/scratch/").file(".tar.zst"),
            "/scratch/process.tar.zst"
        );
        assert_eq!(out("/").file(".json"), "/process.json");
        assert_eq!(out("out").file(".context.tar"), "out/process.context.tar");
    }
}

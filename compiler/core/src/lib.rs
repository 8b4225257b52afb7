//! The kerblam compiler: it turns a `kerblam.toml` project (or a freeze spec) into a
//! [`kerblam_plan::PackagePlan`].
//!
//! The compiler does all the deciding, and nothing else: it reads the manifest and the project
//! tree, and never builds, runs or writes anything. Its parts:
//!
//! - [`manifest`]: the typed `kerblam.toml` model, parsed with located errors. Validation runs the
//!   JSON Schema generated from the model (so schema and compiler cannot disagree), maps every error back
//!   to `file:line:col` through `toml_edit` spans, and adds the compiler's own rules (paths that escape
//!   the project, URLs that do not parse).
//! - [`Project`]: a project on disk, found by walking up from a directory.
//! - [`discover`]: pipes, their recipes and the data files, found as Kerblam! 1.x finds them.
//! - [`freeze`]: freeze specs (`freeze.toml`), inferred from a live EESSI environment or written by
//!   hand, lowered into plans whose frozen trees are host layers.
//! - [`compile_pipe`]: the lowering of one pipe into a plan (build context, layers, mounts,
//!   artifacts, preflight checks).
//! - [`render`]: deterministic JSON/TOML printing of plans, and the diff used by `--check`.
//! - [`schemas`]: the JSON Schemas committed under `schemas/`.
//! - [`toml_dialect`]: the TOML 1.1 syntax Kerblam! 1.x and editors cannot read, found and refused.
//! - [`Finding`] and [`Error`]: diagnostics, rendered by miette.

mod context;
pub mod diag;
pub mod digest;
pub mod discover;
mod error;
pub mod freeze;
mod lower;
pub mod manifest;
pub mod paths;
mod project;
pub mod render;
mod schema_check;
pub mod schemas;
mod tag;
pub mod time;
pub mod toml_dialect;
mod toml_doc;

pub use context::{CITATION_MARK, is_kerblam_artifact, is_kerblam_record};
pub use diag::{Finding, Level, SourceFile};
pub use error::Error;
pub use lower::{
    KERBLAM_VERSION, PipeOptions, ReplayFormat, compile_pipe, replay_script, sh_quote,
};
pub use project::{MANIFEST_FILE, Project, display_path, read_text};
pub use schema_check::{CheckOptions, check_toml, did_you_mean};
pub use tag::{check_tag, default_tag};
pub use toml_doc::{Seg, TomlDoc};

#[cfg(test)]
mod tests {
    /// The compiler knows no backend by name: the only string literals naming a first-party
    /// backend in its sources are defaults (what a manifest or spec that names none gets), the
    /// examples the schemas show editors, and the name of the `tarball` artifact kind.
    #[test]
    fn no_backend_is_named_outside_defaults() {
        let allowed: &[(&str, &str)] = &[
            (
                "core/src/manifest/model.rs",
                "example = &\"docker\", example = &\"podman\"",
            ),
            ("core/src/manifest/model.rs", "\"docker\".into()"),
            ("core/src/freeze/spec.rs", "example = &\"apptainer\""),
            ("core/src/freeze/spec.rs", "\"apptainer\".into()"),
            (
                "plan/src/artifact.rs",
                "ArtifactKind::Tarball => \"tarball\"",
            ),
        ];
        let names = ["docker", "podman", "apptainer", "singularity", "tarball"];
        let compiler = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut found = Vec::new();
        let mut stack = vec![compiler.clone()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                let rel = p
                    .strip_prefix(&compiler)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if p.is_dir() {
                    if !rel.ends_with("tests") {
                        stack.push(p);
                    }
                    continue;
                }
                if !rel.ends_with(".rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&p).unwrap();
                for line in text.lines().take_while(|l| !l.starts_with("#[cfg(test)]")) {
                    let code = line.trim_start();
                    if code.starts_with("//") {
                        continue;
                    }
                    for n in names {
                        if code.contains(&format!("\"{n}\""))
                            && !allowed.iter().any(|(f, l)| *f == rel && code.contains(l))
                        {
                            found.push(format!("{rel}: {code}"));
                        }
                    }
                }
            }
        }
        assert!(
            found.is_empty(),
            "backend names in the compiler: {found:#?}"
        );
    }
}

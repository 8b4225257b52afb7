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
mod toml_doc;

pub use context::is_kerblam_artifact;
pub use diag::{Finding, Level, SourceFile};
pub use error::Error;
pub use lower::{
    KERBLAM_VERSION, PipeOptions, ReplayFormat, compile_pipe, replay_script, sh_quote,
};
pub use project::{MANIFEST_FILE, Project, display_path, read_text};
pub use schema_check::{CheckOptions, check_toml, did_you_mean};
pub use tag::{check_tag, default_tag};
pub use toml_doc::{Seg, TomlDoc};

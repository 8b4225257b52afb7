//! `kerblam ignore NAME... [--compress]`: add paths and language templates to the project's
//! `.gitignore`, as Kerblam! 1.x does (see [`crate::gitignore`] for how the file is edited).
//!
//! A NAME is a path when it exists (relative to the project root, as in 1.x), when it is one of
//! the project's own dirs in kerblam.toml (the data dirs, the pipes and env dirs) even before it
//! exists, or when it starts with `./` or `/` or ends with `/`; anything else is a language
//! template, which needs a network. Each NAME is applied in order as one 1.x run would apply it,
//! then the file is written once, atomically. A template that cannot be downloaded is said, the
//! paths are still added, and kerblam exits 1.

use std::path::{Path, PathBuf};

use clap::Args;
use kerblam_compiler::paths::normalize;
use kerblam_compiler::{CheckOptions, Project};

use crate::cli::GlobalArgs;
use crate::cmd::plan::{start_dir, write_atomic};
use crate::exit::{self, Exit};
use crate::{gitignore, output};

#[derive(Debug, Args)]
pub struct IgnoreArgs {
    /// Paths to ignore (`data/`, `./src/scratch.sh`), or names of GitHub's gitignore templates
    /// (`Python`, `R`: case-sensitive, downloaded, so they need a network).
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
    /// Remove the repeated lines and the extra blank lines of the .gitignore.
    #[arg(long)]
    pub compress: bool,
}

pub fn run(global: &GlobalArgs, args: IgnoreArgs) -> miette::Result<u8> {
    // As in 1.x, outside a project the .gitignore is the one of the directory kerblam starts in.
    let start = start_dir(global);
    let root = Project::find_root(&start).unwrap_or_else(|_| start.clone());
    let project = Project::load(
        &root,
        CheckOptions {
            allow_unknown: true,
        },
    )
    .ok();
    let own_dirs: Vec<String> = project.as_ref().map(own_dirs).unwrap_or_default();
    let path = root.join(".gitignore");
    let mut text = match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|_| miette::miette!("{} is not UTF-8 text", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            outln!("✨ Creating new .gitignore!");
            String::new()
        }
        Err(e) => return Err(miette::miette!("cannot read {}: {e}", path.display())),
    };
    let mut failed = Vec::new();
    for name in &args.names {
        let addition = if is_path(&root, &own_dirs, name) {
            gitignore::path_line(name)
        } else {
            match gitignore::template(name) {
                Ok(t) => t,
                Err(why) => {
                    failed.push(why);
                    continue;
                }
            }
        };
        text = gitignore::append(&text, &addition);
        if args.compress {
            text = gitignore::compress(&text);
        }
        output::info(format!("ignored {name}"));
    }
    if failed.len() < args.names.len() {
        write_atomic(&path, text.as_bytes())?;
    }
    if failed.is_empty() {
        return Ok(exit::OK);
    }
    Err(Exit::failure(failed.join("\n")).into())
}

/// The dirs kerblam.toml names, relative to the root.
fn own_dirs(p: &Project) -> Vec<String> {
    let m = &p.manifest;
    [
        &m.data.paths.input,
        &m.data.paths.output,
        &m.data.paths.intermediate,
        &m.code.pipes_dir,
        &m.code.env_dir,
    ]
    .into_iter()
    .map(|d| normalize(d))
    .collect()
}

fn is_path(root: &Path, own_dirs: &[String], name: &str) -> bool {
    let n = name.trim();
    n.starts_with("./")
        || n.starts_with('/')
        || n.ends_with('/')
        || own_dirs.contains(&normalize(n))
        || std::fs::symlink_metadata(root.join(PathBuf::from(n))).is_ok()
}

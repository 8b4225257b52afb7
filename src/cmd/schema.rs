//! `kerblam schema`: print the published JSON Schemas, or write / check the committed copies.

use std::path::PathBuf;

use clap::Args;
use kerblam_compiler::schemas::{NamedSchema, to_file_text};

use crate::cli::GlobalArgs;
use crate::exit;
use crate::output;

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// The schema to print (see --list).
    #[arg(required_unless_present_any = ["list", "write", "check"])]
    pub name: Option<String>,
    /// List the schema names.
    #[arg(long)]
    pub list: bool,
    /// Regenerate every schema file in DIR (normally `schemas/`).
    #[arg(long, value_name = "DIR", conflicts_with = "check")]
    pub write: Option<PathBuf>,
    /// Check that every schema file in DIR matches what this kerblam generates; exit 1 if stale.
    #[arg(long, value_name = "DIR")]
    pub check: Option<PathBuf>,
}

/// Every schema kerblam publishes: the compiler's (manifest, plan, freeze spec) and the backend plugin
/// messages. `kerblam schema --write schemas` regenerates all the committed files.
pub fn all_schemas() -> Vec<NamedSchema> {
    let mut all = kerblam_compiler::schemas::compiler_schemas();
    for (file, schema) in kerblam_backend_api::schemas() {
        all.push(NamedSchema {
            name: file.strip_suffix(".json").unwrap_or(file),
            file,
            schema,
        });
    }
    all
}

pub fn run(_global: &GlobalArgs, args: SchemaArgs) -> miette::Result<u8> {
    let schemas = all_schemas();
    if args.list {
        for s in &schemas {
            outln!("{:<28} schemas/{}", s.name, s.file);
        }
        return Ok(exit::OK);
    }
    if let Some(dir) = &args.write {
        std::fs::create_dir_all(dir)
            .map_err(|e| miette::miette!("cannot create {}: {e}", dir.display()))?;
        for s in &schemas {
            super::plan::write_atomic(&dir.join(s.file), to_file_text(&s.schema).as_bytes())?;
            output::info(format!("wrote {}", dir.join(s.file).display()));
        }
        return Ok(exit::OK);
    }
    if let Some(dir) = &args.check {
        let mut stale = 0;
        for s in &schemas {
            let path = dir.join(s.file);
            let want = to_file_text(&s.schema);
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            if let Some(diff) =
                kerblam_compiler::render::diff(&have, &want, &path.display().to_string())
            {
                out!("{diff}");
                stale += 1;
            }
        }
        if stale > 0 {
            errln!(
                "error: {stale} schema file(s) in {} are stale; run `kerblam schema --write {}`",
                dir.display(),
                dir.display()
            );
            return Ok(exit::FAILURE);
        }
        output::info(format!(
            "{} schemas in {} are up to date",
            schemas.len(),
            dir.display()
        ));
        return Ok(exit::OK);
    }
    let name = args.name.unwrap_or_default();
    match schemas.iter().find(|s| s.name == name || s.file == name) {
        Some(s) => {
            out!("{}", to_file_text(&s.schema));
            Ok(exit::OK)
        }
        None => Err(exit::Exit::invalid(format!(
            "no schema named `{name}`; known: {}",
            schemas
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into()),
    }
}

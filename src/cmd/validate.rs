//! `kerblam validate`: check a manifest against the schema and the compiler's rules.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use kerblam_compiler::{
    CheckOptions, Finding, Level, MANIFEST_FILE, Project, SourceFile, display_path,
};

use crate::cli::GlobalArgs;
use crate::exit;
use crate::output;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The manifest to check [default: the project's kerblam.toml].
    pub file: Option<PathBuf>,
    /// Report unknown keys as warnings instead of errors.
    #[arg(long)]
    pub allow_unknown: bool,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
    /// What the file is [default: a freeze spec when named freeze.toml or *.freeze.toml, else a
    /// kerblam.toml manifest].
    #[arg(long, value_enum)]
    pub kind: Option<FileKind>,
}

/// The kinds of file `kerblam validate` checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FileKind {
    /// A project manifest (kerblam.toml).
    Manifest,
    /// A freeze spec (freeze.toml).
    Freeze,
}

pub fn run(global: &GlobalArgs, args: ValidateArgs) -> miette::Result<u8> {
    let path = match &args.file {
        Some(f) => match &global.directory {
            Some(dir) if f.is_relative() => dir.join(f),
            _ => f.clone(),
        },
        None => Project::find_root(&super::plan::start_dir(global))?.join(MANIFEST_FILE),
    };
    let bytes = std::fs::read(&path).map_err(|e| kerblam_compiler::Error::io(&path, e))?;
    let opts = CheckOptions {
        allow_unknown: args.allow_unknown,
    };
    let kind = args.kind.unwrap_or_else(|| {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if kerblam_compiler::freeze::is_freeze_file_name(name) {
            FileKind::Freeze
        } else {
            FileKind::Manifest
        }
    });
    let findings = match SourceFile::from_bytes(display_path(&path), bytes) {
        Ok(source) => check_file(source, kind, opts),
        Err(not_utf8) => vec![not_utf8],
    };
    report(&path, &findings, args.json)
}

/// Check a file of a kind kerblam knows: a manifest or a freeze spec.
fn check_file(source: SourceFile, kind: FileKind, opts: CheckOptions) -> Vec<Finding> {
    match kind {
        FileKind::Manifest => kerblam_compiler::manifest::check(source, opts).1,
        FileKind::Freeze => kerblam_compiler::freeze::check(source, opts).1,
    }
}

/// Print findings and return the exit code: 0 when there is no error, 2 otherwise.
pub fn report(path: &std::path::Path, findings: &[Finding], json: bool) -> miette::Result<u8> {
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    if json {
        let list: Vec<_> = findings.iter().map(Finding::to_json).collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&list).expect("findings serialize")
        );
    } else {
        for f in findings {
            output::print_report(&miette::Report::new(f.clone()));
        }
        if errors == 0 {
            output::info(format!("{}: ok", display_path(path)));
        } else {
            errln!(
                "{}: {errors} error{}",
                display_path(path),
                if errors == 1 { "" } else { "s" }
            );
        }
    }
    Ok(if errors == 0 { exit::OK } else { exit::INVALID })
}

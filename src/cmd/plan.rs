//! `kerblam plan`: compile a pipe into a package plan and print it, or check a checked-in plan.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use kerblam_backend_api::{Action, ExecuteOptions};
use kerblam_compiler::render::{self, Format};
use kerblam_compiler::{CheckOptions, PipeOptions, Project, ReplayFormat};
use kerblam_plan::PackagePlan;
use miette::IntoDiagnostic;

use crate::cli::GlobalArgs;
use crate::exit;
use crate::{execute, output};

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The pipe to plan.
    #[arg(required_unless_present = "freeze", conflicts_with = "freeze")]
    pub pipe: Option<String>,
    /// Plan a freeze spec (freeze.toml) instead of a pipe.
    #[arg(long, value_name = "SPEC", conflicts_with_all = ["run", "archive", "digests"])]
    pub freeze: Option<PathBuf>,
    #[command(flatten)]
    pub pipe_opts: PipeArgs,
    /// Plan for `kerblam run` (build the recipe and run the pipe in it) instead of `kerblam package`.
    #[arg(long)]
    pub run: bool,
    /// Where the replay archive would be written.
    #[arg(long, value_name = "PATH")]
    pub archive: Option<String>,
    /// The replay archive layout the plan describes.
    #[arg(long, value_enum, default_value_t = ReplayFormatArg::Kerblam)]
    pub replay_format: ReplayFormatArg,
    /// The image format, for backends that write images as files (`oci` for the tarball backend).
    #[arg(long, value_name = "FORMAT")]
    pub image_format: Option<String>,
    /// Output format [default: json, or toml when -o/--check names a .toml file].
    #[arg(long, value_enum)]
    pub format: Option<PlanFormat>,
    /// Write the plan to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE", conflicts_with = "check")]
    pub output: Option<PathBuf>,
    /// Add a sha256 for each context and data file.
    #[arg(long)]
    pub digests: bool,
    /// Compare FILE with the plan that would be generated: exit 0 when equal, else print a diff and exit 1.
    #[arg(long, value_name = "FILE")]
    pub check: Option<PathBuf>,
    /// Print the file the backend renders to build from (NAME as its plan lists it in
    /// `backend.rendered`: `Containerfile` for docker, podman and tarball, `definition.def` for
    /// apptainer) instead of the plan.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["check", "format", "show_def"])]
    pub show: Option<String>,
    /// Print the definition file the backend renders (the rendered file whose name ends in
    /// `.def`; apptainer's), instead of the plan.
    #[arg(long, conflicts_with_all = ["check", "format"])]
    pub show_def: bool,
    /// The base image archive (OCI or docker) that `kerblam package --base FILE` would build on,
    /// so the plan (and the file shown) is the one that build uses.
    #[arg(long, value_name = "FILE")]
    pub base: Option<PathBuf>,
    /// The plan as `package --native` would carry it out (apptainer: without apptainer).
    #[arg(long)]
    pub native: bool,
}

/// Options shared by every command that compiles a pipe.
#[derive(Debug, Args, Clone, Default)]
pub struct PipeArgs {
    /// The image tag [default: <pipe>_exec].
    #[arg(long)]
    pub tag: Option<String>,
    /// The backend to use [default: the manifest's execution.backend].
    #[arg(long)]
    pub backend: Option<String>,
    /// Report unknown keys in kerblam.toml as warnings instead of errors.
    #[arg(long)]
    pub allow_unknown: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Json,
    Toml,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReplayFormatArg {
    /// kerblam's own layout (zstd data, plan, checksums).
    Kerblam,
    /// Kerblam! 1.x's layout, replayable by Kerblam! 1.x.
    KerblamV1,
}

impl From<ReplayFormatArg> for ReplayFormat {
    fn from(f: ReplayFormatArg) -> Self {
        match f {
            ReplayFormatArg::Kerblam => ReplayFormat::V2,
            ReplayFormatArg::KerblamV1 => ReplayFormat::KerblamV1,
        }
    }
}

/// The directory kerblam starts in: `-C DIR` or the working directory.
pub fn start_dir(global: &GlobalArgs) -> PathBuf {
    global
        .directory
        .clone()
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Find and load the project, printing its warnings.
pub fn load_project(global: &GlobalArgs, allow_unknown: bool) -> miette::Result<Project> {
    let project = Project::discover(&start_dir(global), CheckOptions { allow_unknown })?;
    for w in &project.warnings {
        output::print_report(&miette::Report::new(w.clone()));
    }
    Ok(project)
}

/// The creation time to record: from `SOURCE_DATE_EPOCH` when set, else none.
pub fn created() -> Option<String> {
    kerblam_compiler::time::source_date_epoch().map(kerblam_compiler::time::rfc3339)
}

/// Compile a pipe plan from command-line options.
pub fn compile(
    project: &Project,
    pipe: &str,
    args: &PipeArgs,
    mut opts: PipeOptions,
) -> miette::Result<PackagePlan> {
    opts.pipe = pipe.to_string();
    opts.tag = args.tag.clone();
    opts.backend = args.backend.clone();
    opts.created = created();
    Ok(kerblam_compiler::compile_pipe(project, &opts)?)
}

pub fn run(global: &GlobalArgs, args: PlanArgs) -> miette::Result<u8> {
    let (mut plan, root) = compile_plan(global, &args)?;
    // The backend's part: what only the installed plugin knows.
    let plugin = execute::load(global, &plan.backend.name)?;
    let options = ExecuteOptions {
        format: args.image_format.clone(),
        native: args.native,
        base_archive: args
            .base
            .as_deref()
            .map(super::package::base_archive)
            .transpose()?,
        ..ExecuteOptions::default()
    };
    let paths = execute::paths(&root)?;
    execute::complete(&plugin, &mut plan, Action::Package, &paths, &options)?;
    if args.show.is_some() || args.show_def {
        return show(&plan, args.show.as_deref(), args.output.as_deref());
    }
    if !plan.backend.rendered.is_empty() && args.check.is_none() && args.output.is_none() {
        let names: Vec<&str> = plan
            .backend
            .rendered
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        output::info(format!(
            "add --show {} to see the file the {} backend builds from",
            names.join(" or --show "),
            plan.backend.name
        ));
    }
    let format = args
        .format
        .unwrap_or_else(|| infer_format(args.check.as_deref().or(args.output.as_deref())));
    let text = render::render(&plan, to_format(format));
    if let Some(check) = &args.check {
        return check_against(check, &text);
    }
    match &args.output {
        Some(path) => write_atomic(path, text.as_bytes())?,
        None => out!("{text}"),
    }
    Ok(exit::OK)
}

/// The compiler's part of the plan (`--freeze SPEC`, or the pipe), and the root its paths are
/// relative to.
fn compile_plan(
    global: &GlobalArgs,
    args: &PlanArgs,
) -> miette::Result<(kerblam_plan::PackagePlan, PathBuf)> {
    match &args.freeze {
        Some(spec) => {
            let overrides = super::freeze::FreezeOverrides {
                backend: args.pipe_opts.backend.clone(),
                ..Default::default()
            };
            let compiled = super::freeze::compile_file(
                global,
                spec,
                &overrides,
                args.pipe_opts.allow_unknown,
            )?;
            Ok((compiled.plan, compiled.root))
        }
        None => {
            let project = load_project(global, args.pipe_opts.allow_unknown)?;
            let pipe = args.pipe.clone().unwrap_or_default();
            let opts = PipeOptions {
                run: args.run,
                output: args.archive.clone(),
                digests: args.digests,
                replay_format: args.replay_format.into(),
                ..Default::default()
            };
            let plan = compile(&project, &pipe, &args.pipe_opts, opts)?;
            Ok((plan, project.root))
        }
    }
}

/// `--check FILE`: exit 0 when FILE is today's plan; else print the diff and the command that
/// writes today's plan, and exit 1.
fn check_against(check: &Path, text: &str) -> miette::Result<u8> {
    let old = std::fs::read_to_string(check)
        .into_diagnostic()
        .map_err(|e| e.wrap_err(format!("cannot read {}", check.display())))?;
    match render::diff(&old, text, &check.display().to_string()) {
        None => {
            output::info(format!("{} is up to date", check.display()));
            Ok(exit::OK)
        }
        Some(diff) => {
            out!("{diff}");
            let args: Vec<String> = std::env::args().skip(1).collect();
            errln!(
                "error: {} is stale; regenerate it with `{}`",
                check.display(),
                regenerate_command(&args)
            );
            Ok(exit::FAILURE)
        }
    }
}

/// The command that rewrites a stale plan: this very command line with `--check FILE` turned into
/// `-o FILE`, so every option that shaped the plan (`-C`, `--backend`, `--digests`, ...) stays.
fn regenerate_command(args: &[String]) -> String {
    use kerblam_compiler::sh_quote;
    let mut words = vec!["kerblam".to_string()];
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--check" {
            words.push("-o".into());
            if let Some(file) = args.next() {
                words.push(sh_quote(file));
            }
        } else if let Some(file) = arg.strip_prefix("--check=") {
            words.push("-o".into());
            words.push(sh_quote(file));
        } else {
            words.push(sh_quote(arg));
        }
    }
    words.join(" ")
}

fn infer_format(path: Option<&Path>) -> PlanFormat {
    match path.and_then(|p| p.extension()).and_then(|e| e.to_str()) {
        Some("toml") => PlanFormat::Toml,
        _ => PlanFormat::Json,
    }
}

fn to_format(f: PlanFormat) -> Format {
    match f {
        PlanFormat::Json => Format::Json,
        PlanFormat::Toml => Format::Toml,
    }
}

/// Write a file under a temporary name in the same directory, then rename it into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> miette::Result<()> {
    use std::io::Write;
    let archive = |e: kerblam_archive::Error| miette::miette!("{e}");
    let mut file = kerblam_archive::AtomicFile::create(path, true).map_err(archive)?;
    file.file()
        .write_all(bytes)
        .map_err(|e| miette::miette!("cannot write {}: {e}", path.display()))?;
    file.commit().map_err(archive)?;
    Ok(())
}

/// `--show NAME` (or `--show-def`, the rendered file whose name ends in `.def`): print (or write)
/// a file the backend renders, from its part of the plan.
fn show(plan: &PackagePlan, name: Option<&str>, output: Option<&Path>) -> miette::Result<u8> {
    let part = &plan.backend;
    let found = match name {
        Some(n) => part.rendered(n),
        None => part.rendered.iter().find(|r| r.name.ends_with(".def")),
    };
    let Some(file) = found else {
        let wanted = name.map_or("a definition file (*.def)".to_string(), str::to_string);
        let has = if part.rendered.is_empty() {
            "renders no file".to_string()
        } else {
            let names: Vec<&str> = part.rendered.iter().map(|r| r.name.as_str()).collect();
            format!("renders {}", names.join(", "))
        };
        return Err(exit::Exit::invalid(format!(
            "the {} backend {has} for this plan, not {wanted}",
            part.name
        ))
        .into());
    };
    match output {
        Some(path) => write_atomic(path, file.text.as_bytes())?,
        None => out!("{}", file.text),
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(String::from).collect()
    }

    #[test]
    fn the_regenerate_command_keeps_every_option_and_writes_the_checked_file() {
        assert_eq!(
            regenerate_command(&args(
                "-C proj plan process --backend tarball --digests --check p.json"
            )),
            "kerblam -C proj plan process --backend tarball --digests -o p.json"
        );
        assert_eq!(
            regenerate_command(&args("plan --freeze f.toml --check=out/p.toml")),
            "kerblam plan --freeze f.toml -o out/p.toml"
        );
    }

    #[test]
    fn words_a_shell_would_split_are_quoted() {
        assert_eq!(
            regenerate_command(&args("plan it's --check my\tplan.json")),
            "kerblam plan 'it'\\''s' -o 'my\tplan.json'"
        );
    }
}

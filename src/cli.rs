//! clap definitions for every subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Package research pipelines and software environments so they can be re-run years later.
#[derive(Debug, Parser)]
#[command(
    name = "kerblam",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Run as if kerblam was started in DIR.
    #[arg(short = 'C', long = "directory", global = true, value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// Print only errors and warnings.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more (repeat for even more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// When to use colours.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// Extra directories (or plugin files) to search for backend plugins, searched first.
    #[arg(
        long = "backend-path",
        global = true,
        env = "KERBLAM_BACKEND_PATH",
        value_delimiter = ':',
        value_name = "PATH"
    )]
    pub backend_path: Vec<PathBuf>,
    /// Give up on a backend call (its part of a plan, a build, a run) that takes longer than
    /// SECONDS, and exit 1: a build or a run is asked to stop and given KERBLAM_CANCEL_GRACE
    /// seconds (default 10). No limit by default.
    #[arg(
        long = "backend-timeout",
        global = true,
        env = "KERBLAM_BACKEND_TIMEOUT",
        value_name = "SECONDS",
        value_parser = parse_seconds
    )]
    pub backend_timeout: Option<std::time::Duration>,
}

/// A positive number of seconds, fractions allowed.
fn parse_seconds(s: &str) -> Result<std::time::Duration, String> {
    match s.parse::<f64>().map(std::time::Duration::try_from_secs_f64) {
        Ok(Ok(d)) if !d.is_zero() => Ok(d),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile a pipe (or a freeze spec) into a package plan and print it.
    Plan(crate::cmd::plan::PlanArgs),
    /// Check a kerblam.toml (or a freeze spec) against the schema and the compiler's rules.
    Validate(crate::cmd::validate::ValidateArgs),
    /// Print a JSON Schema (kerblam.toml, plan, freeze spec, plugin messages).
    Schema(crate::cmd::schema::SchemaArgs),
    /// List the backend plugins found (and skipped), or check one with the conformance kit.
    Backends(crate::cmd::backends::BackendsArgs),
    /// Run a pipe locally or in its container, optionally with a data profile (no pipe: list them).
    Run(crate::cmd::run::RunArgs),
    /// The project's data: a summary without a subcommand; `fetch` the remote files, `clean` what
    /// can be made again, `pack` an export.
    Data(crate::cmd::data::DataArgs),
    /// Make a new, empty project laid out as Kerblam! 1.x lays it out.
    New(crate::cmd::new::NewArgs),
    /// Add paths or language templates to the project's .gitignore.
    Ignore(crate::cmd::ignore::IgnoreArgs),
    /// Package a pipe: build its image (kerblam baked in) and write `<pipe>.kerblam.tar`.
    Package(crate::cmd::package::PackageArgs),
    /// Replay a packaged pipe: verify the archive, unpack its data into DEST and run the image there.
    Replay(crate::cmd::replay::ReplayArgs),
    /// Freeze a loaded EESSI software environment (or a freeze spec) into an image or a tarball.
    /// Here `-v` is the version suffix (as in EESSI's freeze script); use `kerblam -v freeze` or
    /// `--verbose` for more output.
    #[command(disable_version_flag = true)]
    Freeze(crate::cmd::freeze::FreezeArgs),
    /// Check an artifact against the identifiers kerblam recorded when it made it (the
    /// ro-crate-metadata.json and CITATION.cff beside it; a replay archive's own checksums).
    Verify(crate::cmd::verify::VerifyArgs),
}

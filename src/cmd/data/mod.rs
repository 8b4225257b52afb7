//! `kerblam data`: the project's data. Without a subcommand, a summary of the data dirs and the
//! remote files (as Kerblam! 1.x prints it, plus each remote file's status); `fetch` downloads the
//! remote files, `clean` deletes what can be made again, `pack` exports the data as a `.tar.gz`.

mod clean;
mod fetch;
mod files;
mod pack;
mod summary;

use clap::{Args, Subcommand};

use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DataArgs {
    #[command(subcommand)]
    pub command: Option<DataCommand>,
    /// Report unknown keys in kerblam.toml as warnings instead of errors.
    #[arg(long)]
    pub allow_unknown: bool,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Download every `data.remote` URL into its target under the input directory (files already
    /// present are skipped; exit 1 if any download failed).
    Fetch(fetch::FetchArgs),
    /// Delete the data that can be made again: output and intermediate files (and, with -r, the
    /// remote files fetched), then the empty directories left behind. Precious input data is never
    /// deleted, nor anything outside the data dirs.
    Clean(clean::CleanArgs),
    /// Export the precious input data and the outputs as a gzip-compressed tar archive
    /// [default: data/data_export.tar.gz].
    Pack(pack::PackArgs),
}

pub fn run(global: &GlobalArgs, args: DataArgs) -> miette::Result<u8> {
    match args.command {
        None => summary::run(global, args.allow_unknown),
        Some(DataCommand::Fetch(a)) => fetch::run(global, a),
        Some(DataCommand::Clean(a)) => clean::run(global, a),
        Some(DataCommand::Pack(a)) => pack::run(global, a),
    }
}

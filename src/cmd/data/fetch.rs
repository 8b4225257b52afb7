//! `kerblam data fetch`: download the remote input files.

use clap::Args;
use kerblam_compiler::display_path;

use crate::cli::GlobalArgs;
use crate::cmd::plan::load_project;
use crate::exit;
use crate::fetch::{self, Download, Outcome};
use crate::{output, signals};

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Report unknown keys in kerblam.toml as warnings instead of errors.
    #[arg(long)]
    pub allow_unknown: bool,
}

pub fn run(global: &GlobalArgs, args: FetchArgs) -> miette::Result<u8> {
    signals::install()?;
    let project = load_project(global, args.allow_unknown)?;
    // Files left swapped by a killed profile run would look present (or be fetched over).
    crate::profile::recover(&project)?;
    let inventory = kerblam_compiler::discover::data(&project)?;
    if let Some(target) = project.manifest.data.remote.get("_") {
        output::info(format!(
            "{target} cannot be fetched (its URL is `_`): it is precious data"
        ));
    }
    if inventory.remote.is_empty() {
        output::info("no remote files to fetch");
        return Ok(exit::OK);
    }
    let agent = fetch::agent();
    let progress = output::progress_enabled();
    // A read may block for long: on Ctrl-C, remove the partial file and exit at once.
    let _exit_scope = signals::exit_on_signal();
    let (mut fetched, mut present, mut failed) = (0, 0, 0);
    for remote in &inventory.remote {
        let target = project.abs(&remote.path);
        let d = Download {
            url: remote.url.clone(),
            shown: display_path(&target),
            target,
        };
        match fetch::fetch(&agent, &d, progress) {
            Ok(Outcome::Present) => {
                present += 1;
                output::info(format!("{} is already present", d.shown));
            }
            Ok(Outcome::Fetched(bytes)) => {
                fetched += 1;
                output::info(format!("fetched {} ({bytes} bytes)", d.shown));
            }
            Err(e) => {
                failed += 1;
                errln!("error: {e}");
            }
        }
    }
    signals::check()?;
    output::info(format!(
        "{fetched} fetched, {present} already present, {failed} failed"
    ));
    Ok(if failed > 0 { exit::FAILURE } else { exit::OK })
}

//! The host side of executing a plan: find the plan's backend plugin, check it can carry the plan
//! out, send it an `ExecuteRequest`, and turn its answer into kerblam's exit codes.
//!
//! - Plugins are discovered on the standard search path (`--backend-path` / `KERBLAM_BACKEND_PATH`,
//!   the executable's directory and `../lib/kerblam/backends`, the user's data dir), see
//!   [`crate::cmd::backends::find`].
//! - The request's `paths.root` is the project root (for a replay: the replay directory) and
//!   `paths.kerblam` this very executable, which `package` bakes into the image.
//! - The plugin's log lines go to stderr through [`crate::output`]; its progress reports draw an
//!   indicatif bar on a terminal (nothing otherwise). Ctrl-C sets the flag of [`crate::signals`],
//!   which the plugin sees through the host's `is_cancelled` callback.
//! - Errors: `invalid-input` and `unsupported` (and capability refusals) exit 2, `cancelled`
//!   `128 + signo` (130 for Ctrl-C), anything else 1.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressStyle};
use kerblam_backend_api::host::{CallError, HostCallbacks};
use kerblam_backend_api::{
    Action, ErrorKind, ExecuteOptions, ExecuteRequest, ExecuteResult, Paths, log_level,
};
use kerblam_compiler::Project;
use kerblam_plan::PackagePlan;

use crate::cli::GlobalArgs;
use crate::exit::{self, Exit};
use crate::{output, signals};

/// Executes `action` on `plan` with its backend plugin, `root` being where the plan's relative paths
/// point. Returns the plugin's result, or an error carrying the exit code.
pub fn execute(
    global: &GlobalArgs,
    action: Action,
    plan: &PackagePlan,
    root: &Path,
    options: ExecuteOptions,
) -> miette::Result<ExecuteResult> {
    signals::install()?;
    let plugin = crate::cmd::backends::find(global, &plan.backend)?;
    let root = absolute(root)?;
    let kerblam = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| miette::miette!("cannot find the kerblam executable: {e}"))?;
    let paths = Paths {
        root: root.to_string_lossy().into_owned(),
        kerblam: kerblam.to_string_lossy().into_owned(),
        output_dir: root.to_string_lossy().into_owned(),
        temp_dir: std::env::temp_dir().to_string_lossy().into_owned(),
    };
    let mut request = ExecuteRequest::new(action, plan.clone(), paths);
    request.options = options;
    let callbacks = Arc::new(CliProgress::default());
    let result = plugin.execute_watched(
        &request,
        callbacks.clone(),
        cancel_grace(),
        global.backend_timeout,
    );
    callbacks.clear();
    if let Err(e @ (CallError::Unresponsive { .. } | CallError::TimedOut { .. })) = &result {
        return Err(call_error(e).into());
    }
    signals::check()?;
    result.map_err(|e| call_error(&e).into())
}

/// `kerblam run` of a pipe with a recipe: build the run image (action `package` of the run plan,
/// which only produces the engine image), then run it (action `run`) with `extra_args` appended to
/// the pipe command. Returns the pipe's exit code.
pub fn run_in_container(
    global: &GlobalArgs,
    project: &Project,
    plan: &PackagePlan,
    extra_args: &[String],
    no_cache: bool,
) -> miette::Result<u8> {
    let build = ExecuteOptions {
        no_cache,
        ..ExecuteOptions::default()
    };
    execute(global, Action::Package, plan, &project.root, build)?;
    let run = ExecuteOptions {
        args: extra_args.to_vec(),
        ..ExecuteOptions::default()
    };
    let result = execute(global, Action::Run, plan, &project.root, run)?;
    Ok(exit_code(&result))
}

/// How long a backend may take to stop once cancelled (Ctrl-C) before kerblam gives up on it:
/// `KERBLAM_CANCEL_GRACE` seconds, default 10 (a container engine may need that to stop a build).
fn cancel_grace() -> std::time::Duration {
    std::env::var("KERBLAM_CANCEL_GRACE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
        .unwrap_or(std::time::Duration::from_secs(10))
}

/// The container's exit code from a `run` result, clamped to a process exit code.
pub fn exit_code(result: &ExecuteResult) -> u8 {
    match result.exit_code {
        Some(c) => c.clamp(0, 255) as u8,
        None => exit::FAILURE,
    }
}

fn absolute(p: &Path) -> miette::Result<PathBuf> {
    p.canonicalize()
        .map_err(|e| miette::miette!("cannot resolve {}: {e}", p.display()))
}

/// A failed call as an [`Exit`] with the right code.
fn call_error(e: &CallError) -> Exit {
    let code = match e {
        CallError::Missing { .. } | CallError::Request(_) => exit::INVALID,
        CallError::Failed { error, .. } => match error.kind {
            ErrorKind::InvalidInput | ErrorKind::Unsupported => exit::INVALID,
            ErrorKind::Cancelled => {
                signals::code_for_signal(signals::interrupted().unwrap_or(libc::SIGINT))
            }
            ErrorKind::Backend | ErrorKind::Panic => exit::FAILURE,
        },
        CallError::Unresponsive { .. } => {
            signals::code_for_signal(signals::interrupted().unwrap_or(libc::SIGINT))
        }
        CallError::BadOutput { .. } | CallError::TimedOut { .. } => exit::FAILURE,
    };
    Exit {
        code,
        message: e.to_string(),
    }
}

/// Host callbacks: log lines through [`output`], progress as an indicatif bar on a terminal, and
/// cancellation from the signal flag.
#[derive(Default)]
struct CliProgress {
    bar: Mutex<Option<(String, ProgressBar)>>,
}

impl CliProgress {
    fn clear(&self) {
        if let Some((_, bar)) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            bar.finish_and_clear();
        }
    }

    fn suspend(&self, f: impl FnOnce()) {
        match &*self.bar.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((_, bar)) => bar.suspend(f),
            None => f(),
        }
    }
}

impl HostCallbacks for CliProgress {
    fn log(&self, level: i32, message: &str) {
        self.suspend(|| match level {
            log_level::ERROR => errln!("error: {message}"),
            log_level::WARN => output::warn(message),
            log_level::INFO => output::info(message),
            log_level::DEBUG if output::verbose(1) => errln!("{message}"),
            l if l >= log_level::TRACE && output::verbose(2) => errln!("{message}"),
            _ => {}
        })
    }

    fn progress(&self, done: u64, total: u64, what: &str) {
        if !output::progress_enabled() {
            return;
        }
        let mut slot = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        let label: String = what.split(" (").next().unwrap_or(what).to_string();
        let same = matches!(&*slot, Some((l, _)) if *l == label);
        if !same {
            if let Some((_, old)) = slot.take() {
                old.finish_and_clear();
            }
            let bar = if total > 0 {
                ProgressBar::new(total).with_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                )
            } else {
                ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {msg} {binary_bytes}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                )
            };
            *slot = Some((label, bar));
        }
        if let Some((_, bar)) = &*slot {
            bar.set_message(what.to_string());
            bar.set_position(done);
            if total > 0 && done >= total {
                bar.finish_and_clear();
                *slot = None;
            }
        }
    }

    fn is_cancelled(&self) -> bool {
        signals::interrupted().is_some()
    }
}

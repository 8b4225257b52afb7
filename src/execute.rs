//! The host side of carrying out a plan: find the plan's backend plugin, ask it for its part of
//! the plan, run the checks kerblam can run itself, send it an `ExecuteRequest`, hold its answer to
//! the plan, and turn the outcome into kerblam's exit codes.
//!
//! - Plugins are discovered on the standard search path (`--backend-path` / `KERBLAM_BACKEND_PATH`,
//!   the executable's directory and `../lib/kerblam/backends`, the user's data dir), see
//!   [`crate::cmd::backends::find`].
//! - [`complete`] writes the backend's part into a plan the compiler made (artifacts, checks,
//!   rendered files, usage); from then on the plan is the contract.
//! - The request's `paths.root` is the project root (for a replay: the replay directory) and
//!   `paths.kerblam` this very executable, which `package` bakes into the image.
//! - The plugin's log lines go to stderr through [`crate::output`]; its progress reports draw an
//!   indicatif bar on a terminal (nothing otherwise). Ctrl-C sets the flag of [`crate::signals`],
//!   which the plugin sees through the host's `is_cancelled` callback, as does an [`Abort`] raised
//!   by work kerblam does beside it (the replay archive).
//! - After `execute`, [`contract::result_problems`] must find nothing: every planned artifact
//!   exists with its kind and the result names nothing else. Otherwise the planned files the call
//!   wrote are removed and kerblam exits 1 naming the backend.
//! - Exit codes of a backend's status: 0 ok → 0; 1 `backend` → 1; 2 `invalid-input` and 5
//!   `unsupported` (and capability refusals) → 2; 3 `cancelled` → `128 + signo` (130 for Ctrl-C)
//!   when kerblam asked it to stop, else 1 (a backend may not cancel on its own); 4 `panic` → 1;
//!   any other status, or a status whose error kind disagrees with it → 1 (an invalid reply).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kerblam_backend_api::host::{CallError, HostCallbacks, Plugin, contract};
use kerblam_backend_api::ownership::Snapshot;
use kerblam_backend_api::{
    Action, ErrorKind, ExecuteOptions, ExecuteRequest, ExecuteResult, Owner, Paths, PlanRequest,
    log_level,
};
use kerblam_compiler::Project;
use kerblam_plan::PackagePlan;

use crate::cli::GlobalArgs;
use crate::exit::{self, Exit};
use crate::{output, progress, signals};

/// A flag kerblam raises when work it does beside the backend failed, so the backend is asked to
/// stop (through `is_cancelled`) without that being a Ctrl-C.
pub type Abort = Arc<AtomicBool>;

/// The plugin named `name`.
pub fn load(global: &GlobalArgs, name: &str) -> miette::Result<Plugin> {
    crate::cmd::backends::find(global, name)
}

/// `--push` needs a backend that can push: refused before any work otherwise.
pub fn require_push(plugin: &Plugin) -> Result<(), Exit> {
    let d = plugin.describe();
    if d.capabilities.push {
        return Ok(());
    }
    Err(Exit::invalid(format!(
        "the {} backend cannot push to a registry (--push)\nhelp: use --backend docker, podman or tarball (`kerblam backends` shows which backends can push), or push what it made yourself with `skopeo copy` or `oras push`",
        d.name
    )))
}

/// Running needs an engine that sees this machine's files (the plan's mounts): a backend whose
/// engine service may be on another machine (`DOCKER_HOST=tcp://...`, `ssh://...`) is refused
/// before anything is unpacked or started.
pub fn require_local_engine(plugin: &Plugin) -> Result<(), Exit> {
    let d = plugin.describe();
    let Some(engine) = d.engine.as_ref().filter(|e| e.remote) else {
        return Ok(());
    };
    let var = if engine.name == "podman" {
        "CONTAINER_HOST"
    } else {
        "DOCKER_HOST"
    };
    Err(Exit::invalid(format!(
        "the {} backend talks to the engine at {}, which may be on another machine: it cannot mount this machine's data directories, so kerblam does not run pipes there\nhelp: unset {var} to run with the local engine, or run kerblam on the engine's machine; `kerblam package` and `kerblam freeze` do work with a remote engine (the build context is streamed to it)",
        d.name, engine.address
    )))
}

/// The absolute paths of one execution rooted at `root`: the root, this executable, the output
/// directory (the root) and the system temporary directory.
pub fn paths(root: &Path) -> miette::Result<Paths> {
    let root = absolute(root)?;
    let kerblam = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| miette::miette!("cannot find the kerblam executable: {e}"))?;
    Ok(Paths {
        root: root.to_string_lossy().into_owned(),
        kerblam: kerblam.to_string_lossy().into_owned(),
        output_dir: root.to_string_lossy().into_owned(),
        temp_dir: std::env::temp_dir().to_string_lossy().into_owned(),
    })
}

/// Asks `plugin` for its part of `plan` (made by the compiler, its backend part empty) for
/// `action` with `options`, and writes it in.
pub fn complete(
    plugin: &Plugin,
    plan: &mut PackagePlan,
    action: Action,
    paths: &Paths,
    options: &ExecuteOptions,
) -> miette::Result<()> {
    // The backend's part names the files it writes, which leave the build context; if some were
    // there (an earlier package), the part was made from a context holding them (its room
    // figures count them), so it is asked again for the context without them. Its artifacts'
    // paths do not depend on the context, so the second answer is the last.
    for _ in 0..2 {
        let request = PlanRequest {
            request: kerblam_backend_api::PLAN_REQUEST_TAG.to_string(),
            action,
            plan: plan.neutral(),
            paths: paths.clone(),
            options: options.clone(),
        };
        plan.backend = plugin.plan(&request).map_err(|e| call_error(&e, false))?;
        if !plan.exclude_backend_artifacts() {
            return Ok(());
        }
    }
    Ok(())
}

/// Runs, before any work, every check of the plan on the filesystem kerblam can run itself: room,
/// writable directories, files that must exist, disk-space checks on one filesystem added up. Not
/// those at a container engine's own directories, nor the tools a backend runs, which only the
/// backend knows how to find (`KERBLAM_DOCKER` may name another program than `docker`); it runs
/// every check again itself.
pub fn host_preflight(plan: &PackagePlan, paths: &Paths) -> miette::Result<()> {
    use kerblam_plan::Preflight;
    let checks: Vec<_> = plan
        .all_preflight()
        .filter(|c| !kerblam_backend_api::preflight::names_engine_dir(c))
        .filter(|c| !matches!(c, Preflight::Tool { .. }))
        .cloned()
        .collect();
    kerblam_backend_api::preflight::check_list(&checks, paths).map_err(|e| {
        let help = e.help.map(|h| format!("\nhelp: {h}")).unwrap_or_default();
        Exit::failure(format!("{}{help}", e.message)).into()
    })
}

/// A failed execution: why, and which of the files the backend wrote for a `package` kerblam
/// removed again (a package without all its parts is no package).
#[derive(Debug)]
pub struct Failed {
    /// Why, with its exit code.
    pub exit: Exit,
    /// ` (kerblam removed what it wrote: …)`, or empty.
    pub removed: String,
}

impl From<Failed> for miette::Report {
    fn from(f: Failed) -> miette::Report {
        // After a list of problems, the note goes on a line of its own.
        let message = match (f.removed.as_str(), f.exit.message.contains('\n')) {
            ("", _) => f.exit.message,
            (removed, true) => format!("{}\n{}", f.exit.message, removed.trim_start()),
            (removed, false) => format!("{}{removed}", f.exit.message),
        };
        Exit {
            code: f.exit.code,
            message,
        }
        .into()
    }
}

/// Executes `action` on `plan` (completed by [`complete`]) with `plugin`, then holds the result to
/// the plan. `abort`, when given, asks the backend to stop when raised. For `package`, whatever
/// goes wrong once the backend has returned (a broken promise, a stop kerblam asked for, Ctrl-C,
/// a failure) removes the planned files the call wrote; for `run`, nothing is removed (a replay's
/// plan comes from an archive, and its files are not the backend's).
pub fn execute(
    global: &GlobalArgs,
    plugin: &Plugin,
    action: Action,
    plan: &PackagePlan,
    paths: &Paths,
    options: ExecuteOptions,
    abort: Option<Abort>,
) -> Result<ExecuteResult, Failed> {
    let failed = |exit: Exit| Failed {
        exit,
        removed: String::new(),
    };
    let interrupted = |e: miette::Report| match signals::interrupted() {
        Some(sig) => signals::interrupted_error(sig),
        None => Exit::failure(e.to_string()),
    };
    signals::install().map_err(|e| failed(interrupted(e)))?;
    let mut request = ExecuteRequest::new(action, plan.clone(), paths.clone());
    request.options = options;
    let before = (action == Action::Package).then(|| contract::Before::take(plan, paths));
    let abort = abort.unwrap_or_default();
    let callbacks = Arc::new(CliProgress {
        abort: abort.clone(),
        works: Default::default(),
    });
    let result = plugin.execute_watched(
        &request,
        callbacks.clone(),
        cancel_grace(),
        global.backend_timeout,
    );
    progress::bars().clear(&callbacks.works.lock().unwrap_or_else(|p| p.into_inner()));
    judge(plugin, action, plan, paths, result, &abort).map_err(|exit| Failed {
        exit,
        removed: before
            .map(|b| remove(&b.written_since()))
            .unwrap_or_default(),
    })
}

/// The outcome of an execution: the backend's result when it carried out its plan and nobody
/// asked it to stop.
fn judge(
    plugin: &Plugin,
    action: Action,
    plan: &PackagePlan,
    paths: &Paths,
    result: Result<ExecuteResult, CallError>,
    abort: &Abort,
) -> Result<ExecuteResult, Exit> {
    let asked_to_stop = abort.load(Ordering::SeqCst) || signals::interrupted().is_some();
    if let Err(e @ (CallError::Unresponsive { .. } | CallError::TimedOut { .. })) = &result {
        return Err(call_error(e, asked_to_stop));
    }
    if let Some(sig) = signals::interrupted() {
        return Err(signals::interrupted_error(sig));
    }
    if abort.load(Ordering::SeqCst) {
        // The caller reports why it asked the backend to stop.
        return Err(Exit::failure(format!(
            "backend {:?} was stopped",
            plugin.name()
        )));
    }
    let result = result.map_err(|e| call_error(&e, asked_to_stop))?;
    let problems = contract::result_problems(plan, paths, action, &result);
    if !problems.is_empty() {
        return Err(call_error(
            &CallError::Broken {
                backend: plugin.name().to_string(),
                what: "it did not carry out its plan".into(),
                problems,
            },
            false,
        ));
    }
    Ok(result)
}

/// Tells the user what a `package` made: each file artifact on stdout (path and size), an image
/// on stderr, then the backend's notes, then its usage lines, which name files relative to the
/// output directory (plans name no machine's paths), so that directory is said first.
pub fn report(
    plan: &PackagePlan,
    paths: &Paths,
    result: &ExecuteResult,
    ids: &crate::citation::Identified,
) {
    use kerblam_plan::ArtifactKind;
    for a in &result.artifacts {
        match a.kind {
            ArtifactKind::EngineImage => match &ids.image {
                Some(img) => output::info(format!("built image {} (image ID {})", a.path, img.id)),
                None => output::info(format!("built image {}", a.path)),
            },
            _ => {
                let path = contract::artifact_path(paths, &a.path);
                match ids.of(&path) {
                    Some(d) => outln!(
                        "{} ({} bytes, {})",
                        a.path,
                        d.bytes.unwrap_or_default(),
                        d.sha256
                    ),
                    None => {
                        let size = a.bytes.map(|b| format!(" ({b} bytes)")).unwrap_or_default();
                        outln!("{}{size}", a.path);
                    }
                }
            }
        }
    }
    for n in &result.notes {
        output::info(n);
    }
    if !plan.backend.usage.is_empty() {
        let dir = match plan.output.dir.as_str() {
            "." => PathBuf::from(&paths.output_dir),
            other => contract::artifact_path(paths, other),
        };
        output::info(format!(
            "to use it, from {}:",
            kerblam_compiler::sh_quote(&dir.to_string_lossy())
        ));
        for u in &plan.backend.usage {
            output::info(format!("  {u}"));
        }
    }
}

/// Removes `files`, and says which went, for a message.
pub fn remove(files: &[PathBuf]) -> String {
    let gone: Vec<String> = files
        .iter()
        .filter(|f| std::fs::remove_file(f).is_ok())
        .map(|f| f.display().to_string())
        .collect();
    if gone.is_empty() {
        String::new()
    } else {
        format!(" (kerblam removed what it wrote: {})", gone.join(", "))
    }
}

/// `kerblam run` of a pipe with a recipe: complete the run plan with its backend, build the run
/// image (action `package`, which only produces the engine image), then run it (action `run`)
/// with `extra_args` appended to the pipe command. Returns the pipe's exit code.
pub fn run_in_container(
    global: &GlobalArgs,
    project: &Project,
    plan: &PackagePlan,
    extra_args: &[String],
    no_cache: bool,
) -> miette::Result<u8> {
    let plugin = load(global, &plan.backend.name)?;
    require_local_engine(&plugin)?;
    let paths = paths(&project.root)?;
    let build = ExecuteOptions {
        no_cache,
        ..ExecuteOptions::default()
    };
    let mut plan = plan.clone();
    complete(&plugin, &mut plan, Action::Package, &paths, &build)?;
    execute(global, &plugin, Action::Package, &plan, &paths, build, None)?;
    let owner = invoker(&project.root);
    hand_over(&project.root, &plan, owner, None)?;
    let run = ExecuteOptions {
        args: extra_args.to_vec(),
        owner: Some(owner),
        ..ExecuteOptions::default()
    };
    let result = execute(global, &plugin, Action::Run, &plan, &paths, run, None)?;
    Ok(exit_code(&result))
}

/// The user whose files a run's outputs must be: the one running kerblam; under `sudo` (kerblam
/// runs as root with `SUDO_UID` and `SUDO_GID` set), the user who called it, when `dir` (the
/// project, or the replay's destination) is theirs.
pub fn invoker(dir: &Path) -> Owner {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: getuid and getgid cannot fail.
    let me = unsafe {
        Owner {
            uid: libc::getuid(),
            gid: libc::getgid(),
        }
    };
    if !me.is_root() {
        return me;
    }
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u32>().ok());
    match (var("SUDO_UID"), var("SUDO_GID"), std::fs::metadata(dir)) {
        (Some(uid), Some(gid), Ok(m)) if uid != 0 && m.uid() == uid => Owner { uid, gid },
        _ => me,
    }
}

/// Whether kerblam runs as root for `owner`, another user (under `sudo`).
pub fn acting_for(owner: Owner) -> bool {
    // SAFETY: geteuid cannot fail.
    !owner.is_root() && unsafe { libc::geteuid() } == 0
}

/// Under `sudo` (see [`acting_for`]), what kerblam makes for a run under `root` is the owner's,
/// so that a container running as them can write there: the plan's mount directories it creates
/// now, and what `before` did not hold (a replay's unpacked data). Nothing else is touched. Does
/// nothing when kerblam runs as the owner.
pub fn hand_over(
    root: &Path,
    plan: &PackagePlan,
    owner: Owner,
    before: Option<&Snapshot>,
) -> miette::Result<()> {
    if !acting_for(owner) {
        return Ok(());
    }
    let give = |p: &Path| {
        std::os::unix::fs::lchown(p, Some(owner.uid), Some(owner.gid))
            .map_err(|e| miette::miette!("cannot give {} to {}: {e}", p.display(), owner.spec()))
    };
    for m in &plan.mounts {
        // Plain relative paths only (a replay's were checked; a run's come from the manifest).
        if kerblam_backend_api::confine::relative(root, &m.host).is_err() {
            continue;
        }
        let mut dir = root.to_path_buf();
        for c in Path::new(&m.host).components() {
            let std::path::Component::Normal(c) = c else {
                continue;
            };
            dir.push(c);
            if std::fs::symlink_metadata(&dir).is_err() {
                std::fs::create_dir(&dir)
                    .map_err(|e| miette::miette!("cannot create {}: {e}", dir.display()))?;
                give(&dir)?;
            }
        }
    }
    if let Some(before) = before {
        kerblam_backend_api::ownership::restore(&before.created(owner), owner)
            .map_err(|e| miette::miette!("{e}"))?;
    }
    Ok(())
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

/// A failed call as an [`Exit`] with the code of the table in the module docs. `asked_to_stop`:
/// kerblam asked the backend to stop (Ctrl-C, a timeout, an [`Abort`]).
fn call_error(e: &CallError, asked_to_stop: bool) -> Exit {
    let interrupted = || signals::code_for_signal(signals::interrupted().unwrap_or(libc::SIGINT));
    let code = match e {
        CallError::Missing { .. } | CallError::Request(_) => exit::INVALID,
        CallError::Failed { error, .. } => match error.kind {
            ErrorKind::InvalidInput | ErrorKind::Unsupported => exit::INVALID,
            ErrorKind::Cancelled if asked_to_stop => interrupted(),
            ErrorKind::Cancelled | ErrorKind::Backend | ErrorKind::Panic => exit::FAILURE,
        },
        CallError::Unresponsive { .. } => interrupted(),
        CallError::BadOutput { .. } | CallError::TimedOut { .. } | CallError::Broken { .. } => {
            exit::FAILURE
        }
    };
    let mut message = e.to_string();
    if let CallError::Failed { backend, error, .. } = e
        && error.kind == ErrorKind::Cancelled
        && !asked_to_stop
    {
        message = format!(
            "backend {backend:?} says it was cancelled, but kerblam did not ask it to stop: {}",
            error.message
        );
    }
    Exit { code, message }
}

/// Host callbacks: log lines through [`output`], progress as bars on a terminal
/// ([`crate::progress`]), and cancellation from the signal flag or the [`Abort`] flag.
struct CliProgress {
    abort: Abort,
    /// The works the backend reported progress of, whose bars go when the call returns.
    works: std::sync::Mutex<Vec<String>>,
}

impl HostCallbacks for CliProgress {
    fn log(&self, level: i32, message: &str) {
        progress::bars().suspend(|| match level {
            log_level::ERROR => errln!("error: {message}"),
            log_level::WARN => output::warn(message),
            log_level::INFO => output::info(message),
            log_level::DEBUG if output::verbose(1) => errln!("{message}"),
            l if l >= log_level::TRACE && output::verbose(2) => errln!("{message}"),
            _ => {}
        })
    }

    fn progress(&self, done: u64, total: u64, what: &str) {
        let label = what.split(" (").next().unwrap_or(what);
        let mut works = self.works.lock().unwrap_or_else(|p| p.into_inner());
        if !works.iter().any(|w| w == label) {
            works.push(label.to_string());
        }
        drop(works);
        progress::bars().update(done, total, what);
    }

    fn is_cancelled(&self) -> bool {
        signals::interrupted().is_some() || self.abort.load(Ordering::SeqCst)
    }
}

//! `kerblam replay <archive> [dest]`: verify a replay archive, unpack its data into `dest` at the
//! paths the packaged manifest names, write the packaged `kerblam.toml` there, and run the packaged
//! image (loading the embedded image first when the tag is missing) with `dest`'s data dirs mounted,
//! so the pipe's outputs land in `dest`. Exits with the pipe's exit code.
//!
//! Reads kerblam's own archives (`kerblam.replay/v2`, whose `plan.json` says how to run) and Kerblam!
//! 1.x's (no plan: the image's own entrypoint runs, with the data dirs mounted under the manifest's
//! `execution.workdir`). Everything the archive says is checked by `kerblam-archive` before anything
//! is written, and nothing is written outside `dest`.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use kerblam_archive::{ErrorKind, ExtractOptions, Layout, ReplayArchive};
use kerblam_backend_api::host::Plugin;
use kerblam_backend_api::ownership::Snapshot;
use kerblam_backend_api::{Action, ExecuteOptions};
use kerblam_compiler::{CheckOptions, Project};
use kerblam_plan::PackagePlan;

use crate::cli::GlobalArgs;
use crate::exit::invalid;
use crate::exit::{self, Exit};
use crate::{execute, output, signals};

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The replay archive (`<pipe>.kerblam.tar`, from kerblam or Kerblam! 1.x), or a package
    /// pushed with `kerblam package --push`, by its digest: REGISTRY/REPO@sha256:...
    pub archive: PathBuf,
    /// Where to unpack the data and run [default: the current directory, or -C DIR, as in
    /// Kerblam! 1.x].
    pub dest: Option<PathBuf>,
    /// Run this image instead of the one the archive names.
    #[arg(short, long)]
    pub tag: Option<String>,
    /// Run with this backend instead of the one the package was made for.
    #[arg(short, long)]
    pub backend: Option<String>,
    /// Do not unpack the data (dest already holds it).
    #[arg(short, long)]
    pub no_decompress: bool,
    /// Verify and unpack only: do not run the image (run it later with --no-decompress).
    #[arg(long, conflicts_with = "no_decompress")]
    pub no_run: bool,
    /// Replace files in dest that differ from the archive's.
    #[arg(long)]
    pub force: bool,
    /// The container's network: none, or host (to fetch remote data from this machine).
    #[arg(long, value_enum, default_value_t = NetworkArg::None)]
    pub network: NetworkArg,
    /// The image is your own: run it without the replay's confinement (dropped capabilities, no
    /// new privileges, read-only root filesystem, process limit, read-only inputs). The network
    /// stays as --network says.
    #[arg(long)]
    pub trust_image: bool,
    /// Arguments appended to the container's command.
    #[arg(last = true, allow_hyphen_values = true, value_name = "ARGS")]
    pub extra: Vec<String>,
}

/// The network a replayed container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkArg {
    /// No network.
    None,
    /// The host's network (reaches servers on 127.0.0.1).
    Host,
}

fn archive_error(e: kerblam_archive::Error) -> miette::Report {
    let code = match e.kind() {
        ErrorKind::InvalidArchive | ErrorKind::InvalidInput | ErrorKind::Conflict => exit::INVALID,
        _ => exit::FAILURE,
    };
    let mut message = e.message().to_string();
    if e.kind() == ErrorKind::Conflict {
        message.push_str("\nhelp: replay into an empty directory, or pass --force to replace them");
    }
    Exit { code, message }.into()
}

pub fn run(global: &GlobalArgs, args: ReplayArgs) -> miette::Result<u8> {
    signals::install()?;
    // Relative paths are relative to where kerblam was started (-C DIR or the working directory).
    let start = crate::cmd::plan::start_dir(global);
    let mut opened = Opened::open(global, &args, &start)?;
    signals::check()?;
    let dest = match &args.dest {
        Some(d) => start.join(d),
        None => start.clone(),
    };
    let (dest, owner) = unpack(&opened.archive, &dest, &args)?;
    signals::check()?;
    if args.no_run {
        output::info(format!(
            "not running (--no-run); run it later with: kerblam replay {} {} --no-decompress",
            opened.shown,
            dest.display()
        ));
        return Ok(exit::OK);
    }
    let mut plan = replay_plan(&opened, &dest, &args)?;
    let early = opened.plugin.take();
    let (plugin, paths) = backend_for(global, &args, early, &mut plan, &dest)?;
    let options = run_options(&args, &opened, &mut plan, owner);
    execute::hand_over(&dest, &plan, owner, None)?;
    let result = execute::execute(global, &plugin, Action::Run, &plan, &paths, options, None)?;
    let code = execute::exit_code(&result);
    if code != exit::OK {
        errln!("kerblam: the replayed pipe failed with exit code {code}");
    }
    Ok(code)
}

/// The replay archive, opened and verified before anything is written.
struct Opened {
    archive: ReplayArchive,
    /// Where it is read from: the file given, or the temporary file a registry's copy went to.
    path: PathBuf,
    /// How messages name it: its path, or the registry reference it came from.
    shown: String,
    /// The backend loaded (and checked for a local engine) before anything was unpacked.
    plugin: Option<Plugin>,
    /// Keeps the temporary file of a fetched archive until the replay is done.
    _fetched: Option<crate::publish::FetchedArchive>,
}

impl Opened {
    /// Opens and verifies `args.archive`: a file, or `REGISTRY/REPO@sha256:...` (no such file
    /// here), the package as `kerblam package --push` published it, fetched by digest into a
    /// temporary file and checked against the image it refers to. A backend whose engine cannot
    /// see this machine's files is refused here, before anything is unpacked.
    fn open(global: &GlobalArgs, args: &ReplayArgs, start: &Path) -> miette::Result<Opened> {
        let arg = args.archive.to_string_lossy().into_owned();
        let remote = crate::publish::as_reference(&arg, start);
        let fetched = match &remote {
            Some(r) => {
                output::info(format!("fetching {r}"));
                Some(crate::publish::fetch_archive(r)?)
            }
            None => None,
        };
        let path = match &fetched {
            Some(f) => f.file.path().to_path_buf(),
            None => std::path::absolute(start.join(&args.archive))
                .map_err(|e| invalid(format!("{}: {e}", args.archive.display())))?,
        };
        let shown = match &remote {
            Some(r) => r.to_string(),
            None => path.display().to_string(),
        };
        let archive = ReplayArchive::open(&path).map_err(archive_error)?;
        output::info(format!("verifying {shown}"));
        archive.verify(None).map_err(archive_error)?;
        if let (Some(r), Some(f)) = (&remote, &fetched) {
            crate::publish::check_subject(r, &f.fetched, archive.image_name())?;
        }
        let plugin = early_plugin(global, args, &archive)?;
        if !archive.verified() {
            output::warn(format!(
                "{shown} is a Kerblam! 1.x archive: it carries no checksums to verify"
            ));
        }
        Ok(Opened {
            archive,
            path,
            shown,
            plugin,
            _fetched: fetched,
        })
    }
}

/// Creates `dest` (and what leads to it), unpacks the data there and writes the packaged
/// manifest; under sudo, what it unpacked is the calling user's. Returns the destination,
/// resolved, and that user.
fn unpack(
    archive: &ReplayArchive,
    dest: &Path,
    args: &ReplayArgs,
) -> miette::Result<(PathBuf, kerblam_backend_api::Owner)> {
    let mut created = CreatedDirs::create(dest)
        .map_err(|e| miette::miette!("cannot create {}: {e}", dest.display()))?;
    let dest = dest
        .canonicalize()
        .map_err(|e| miette::miette!("cannot resolve {}: {e}", dest.display()))?;
    let manifest_path = dest.join("kerblam.toml");
    let manifest_differs = match std::fs::read(&manifest_path) {
        Ok(existing) => existing != archive.manifest(),
        Err(_) => false,
    };
    if manifest_differs && !args.force {
        return Err(invalid(format!(
            "{} holds a different kerblam.toml than the archive's\nhelp: replay into an empty directory, or pass --force to replace it",
            dest.display()
        )));
    }
    // Under sudo, what this replay unpacks is the calling user's (see execute::hand_over).
    let owner = execute::invoker(&dest);
    let before = execute::acting_for(owner).then(|| Snapshot::take(std::slice::from_ref(&dest)));
    if !args.no_decompress {
        let opts = ExtractOptions {
            force: args.force,
            ..ExtractOptions::default()
        };
        let report = archive
            .extract_data(&dest, &opts, None)
            .map_err(archive_error)?;
        output::info(format!(
            "unpacked {} data files into {} ({} already there)",
            report.written.len(),
            dest.display(),
            report.identical.len()
        ));
    }
    if manifest_differs || !manifest_path.exists() {
        crate::cmd::plan::write_atomic(&manifest_path, archive.manifest())?;
    }
    created.keep();
    if let Some(before) = &before {
        kerblam_backend_api::ownership::restore(&before.created(owner), owner)
            .map_err(|e| miette::miette!("{e}"))?;
    }
    Ok((dest, owner))
}

/// The plan to replay: the archive's (any version kerblam wrote, read as today's), or one made
/// for a Kerblam! 1.x archive; its image pinned by digest when the package was pushed, or the one
/// `--tag` names. The plan is the archive author's: before any backend sees it, every host path a
/// run of it uses (its mounts, a SIF to run) must lie inside the destination.
fn replay_plan(opened: &Opened, dest: &Path, args: &ReplayArgs) -> miette::Result<PackagePlan> {
    let archive = &opened.archive;
    let mut plan = match archive.layout() {
        Layout::V2 => {
            let bytes = archive.plan_json().unwrap_or_default();
            kerblam_plan::upgrade::from_json(bytes).map_err(|e| {
                invalid(format!(
                    "{}: plan.json is not a plan this kerblam can replay: {e}",
                    opened.shown
                ))
            })?
        }
        Layout::KerblamV1 { .. } => v1_plan(dest, archive)?,
    };
    // A pushed package names its image by digest (`kerblam package --push`): run exactly that
    // image, pulled by its digest when the engine does not hold it.
    if let Some(pinned) = archive
        .image_name()
        .filter(|n| kerblam_registry::Reference::parse_pinned(n).is_some())
    {
        plan.image.tag = pinned.to_string();
    }
    kerblam_backend_api::confine::check_plan(&plan, dest).map_err(|e| {
        invalid(format!(
            "{}: plan.json names a path outside {}: {e}; refusing to run it",
            opened.shown,
            dest.display()
        ))
    })?;
    if let Some(tag) = &args.tag {
        plan.image.tag = tag.clone();
    }
    Ok(plan)
}

/// The backend that runs the replay (`--backend`, else the package's when it can run images) and
/// the paths it runs with. Another backend than the package's fills in its own part of the plan,
/// for running, which must stay inside the destination too.
fn backend_for(
    global: &GlobalArgs,
    args: &ReplayArgs,
    early: Option<Plugin>,
    plan: &mut PackagePlan,
    dest: &Path,
) -> miette::Result<(Plugin, kerblam_backend_api::Paths)> {
    let backend = match &args.backend {
        Some(backend) => backend.clone(),
        None => runner(global, early.as_ref(), &plan.backend.name, dest),
    };
    // The plugin loaded before unpacking, when it is the one that runs; else load this one now.
    let plugin = match early.filter(|p| p.describe().name == backend) {
        Some(p) => p,
        None => {
            let p = execute::load(global, &backend)?;
            execute::require_local_engine(&p)?;
            p
        }
    };
    let paths = execute::paths(dest)?;
    if backend != plan.backend.name {
        plan.backend.name = backend;
        execute::complete(
            &plugin,
            plan,
            Action::Run,
            &paths,
            &ExecuteOptions::default(),
        )?;
        kerblam_backend_api::confine::check_plan(plan, dest).map_err(|e| {
            invalid(format!(
                "the {} backend would run a path outside {}: {e}",
                plan.backend.name,
                dest.display()
            ))
        })?;
    }
    Ok((plugin, paths))
}

/// How the image runs: confined unless `--trust-image` (the inputs' mount read-only where the
/// plan allows it), on the network asked for, as the user, with the pipe's extra arguments, and
/// with the embedded image to load when the engine lacks it.
fn run_options(
    args: &ReplayArgs,
    opened: &Opened,
    plan: &mut PackagePlan,
    owner: kerblam_backend_api::Owner,
) -> ExecuteOptions {
    let network = match args.network {
        NetworkArg::None => "none",
        NetworkArg::Host => "host",
    };
    let confine = !args.trust_image;
    if confine {
        inputs_read_only(plan);
    } else {
        output::warn(format!(
            "--trust-image: {} runs {} with the engine's default capabilities, may gain privileges through set-user-ID programs, and has a writable root filesystem, no process limit and writable inputs (its network stays {network})",
            plan.backend.name, plan.image.tag,
        ));
    }
    // A package plan's entrypoint is kerblam's replay script, which hands its arguments to
    // `kerblam run PIPE --local`; that takes the pipe's extra arguments after `--`.
    let mut extra = args.extra.clone();
    if plan.purpose == kerblam_plan::Purpose::Package && !extra.is_empty() {
        extra.insert(0, "--".to_string());
    }
    ExecuteOptions {
        args: extra,
        image_archive: (opened.archive.has_image() && args.tag.is_none())
            .then(|| opened.path.to_string_lossy().into_owned()),
        network: Some(network.to_string()),
        owner: Some(owner),
        confine,
        ..ExecuteOptions::default()
    }
}

/// The backend the replay will most likely run with (the one asked for, or the package's own),
/// loaded before anything is unpacked: a replay needs an engine that sees this machine's files,
/// so one whose engine is remote is refused here. `None` when it cannot be known yet (a Kerblam!
/// 1.x archive) or is not installed; [`backend_for`] then loads the one it picks.
fn early_plugin(
    global: &GlobalArgs,
    args: &ReplayArgs,
    archive: &ReplayArchive,
) -> miette::Result<Option<Plugin>> {
    let named = match &args.backend {
        Some(b) => Some(b.clone()),
        None => archive
            .plan_json()
            .and_then(|bytes| kerblam_plan::upgrade::from_json(bytes).ok())
            .map(|plan| plan.backend.name),
    };
    let Some(plugin) = named.and_then(|b| execute::load(global, &b).ok()) else {
        return Ok(None);
    };
    execute::require_local_engine(&plugin)?;
    Ok(Some(plugin))
}

/// Makes the input data directory's mount read-only where the plan allows it: the pipe has no
/// remote files (the replay's `kerblam data fetch` writes them there), and the input directory is
/// neither the output nor the intermediate directory (one inside another is fine: the engines
/// mount the deeper one over the other). A Kerblam! 1.x plan, whose image's own entrypoint may
/// write anywhere in its data, keeps its mounts writable.
fn inputs_read_only(plan: &mut PackagePlan) {
    let Some(pipe) = &plan.pipe else {
        return;
    };
    let d = &pipe.data;
    if !pipe.remote.is_empty() || d.input == d.output || d.input == d.intermediate {
        return;
    }
    for m in plan.mounts.iter_mut().filter(|m| m.host == d.input) {
        m.read_only = true;
    }
}

/// The backend to replay with: the package's, unless that one cannot run images (a package made
/// by the tarball backend, whose image was built elsewhere from its context archive); then the
/// packaged manifest's `execution.backend` (default docker).
fn runner(global: &GlobalArgs, early: Option<&Plugin>, packaged: &str, dest: &Path) -> String {
    let runs = |p: &Plugin| p.describe().capabilities.actions.contains(&Action::Run);
    let can_run = match early.filter(|p| p.describe().name == packaged) {
        Some(p) => runs(p),
        None => crate::cmd::backends::registry(global)
            .get(packaged)
            .map(runs)
            .unwrap_or(true),
    };
    if can_run {
        return packaged.to_string();
    }
    let configured = Project::load(
        dest,
        CheckOptions {
            allow_unknown: true,
        },
    )
    .map(|p| p.manifest.execution.backend)
    .ok()
    .filter(|b| b != packaged)
    .unwrap_or_else(|| "docker".to_string());
    output::info(format!(
        "the {packaged} backend cannot run images; replaying with {configured} (choose another with --backend)"
    ));
    configured
}

/// A run plan for a Kerblam! 1.x archive: the image its `name` says, its own entrypoint, the data
/// dirs of the packaged manifest mounted under `execution.workdir`.
fn v1_plan(dest: &Path, archive: &ReplayArchive) -> miette::Result<PackagePlan> {
    let project = Project::load(
        dest,
        CheckOptions {
            allow_unknown: true,
        },
    )?;
    let m = &project.manifest;
    let dirs = archive.data_dirs();
    let tag = archive
        .image_name()
        .ok_or_else(|| invalid("the archive names no image (no `name` member)"))?
        .to_string();
    let workdir = m.execution.workdir.clone();
    let join = |d: &str| {
        let w = workdir.trim_end_matches('/');
        format!("{w}/{d}")
    };
    let mut mounts: Vec<kerblam_plan::Mount> = [&dirs.intermediate, &dirs.input, &dirs.output]
        .into_iter()
        .map(|d| kerblam_plan::Mount {
            host: d.clone(),
            container: join(d),
            read_only: false,
        })
        .collect();
    mounts.sort_by_key(|m| (m.container.matches('/').count(), m.container.clone()));
    mounts.dedup_by(|a, b| a.container == b.container);
    Ok(PackagePlan {
        schema: kerblam_plan::PLAN_SCHEMA.to_string(),
        source: kerblam_plan::Source {
            kind: kerblam_plan::SourceKind::Pipe,
            manifest: "kerblam.toml".into(),
            digest: String::new(),
        },
        root: ".".into(),
        name: tag.clone(),
        output: kerblam_plan::Output {
            dir: ".".into(),
            stem: tag.clone(),
        },
        purpose: kerblam_plan::Purpose::Run,
        image: kerblam_plan::Image {
            tag,
            labels: Default::default(),
        },
        base: kerblam_plan::Base::Scratch,
        context: kerblam_plan::Context {
            root: ".".into(),
            excluded: vec![],
            files: vec![],
            total_bytes: 0,
        },
        layers: vec![],
        mounts,
        workdir,
        env: vec![],
        entrypoint: vec![],
        artifacts: vec![],
        metadata: kerblam_plan::Metadata {
            author: None,
            version: None,
            description: None,
            kerblam_version: env!("CARGO_PKG_VERSION").into(),
            created: None,
        },
        preflight: vec![],
        pipe: None,
        freeze: None,
        backend: kerblam_plan::BackendPlan::named(m.execution.backend.clone()),
    })
}

/// The directories a replay created for its destination, removed again (when still empty) unless
/// the data and manifest landed: a refused archive leaves the area around the destination as it
/// was, a destination that did not exist included.
struct CreatedDirs(Vec<PathBuf>);

impl CreatedDirs {
    fn create(dest: &Path) -> std::io::Result<CreatedDirs> {
        let missing: Vec<PathBuf> = dest
            .ancestors()
            .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
            .map(Path::to_path_buf)
            .collect();
        std::fs::create_dir_all(dest)?;
        Ok(CreatedDirs(missing))
    }

    fn keep(&mut self) {
        self.0.clear();
    }
}

impl Drop for CreatedDirs {
    fn drop(&mut self) {
        // Deepest first; remove_dir refuses a directory that is not empty.
        for dir in &self.0 {
            if std::fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}

//! `kerblam package <pipe>`: compile the package plan, have the backend plugin fill in its part and
//! carry it out (build the image, kerblam and a replay script baked in), and write
//! `<pipe>.kerblam.tar` (or `-o PATH`) meanwhile: the replay archive is kerblam's own.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use clap::Args;
use kerblam_backend_api::{Action, ExecuteOptions};
use kerblam_compiler::PipeOptions;
use kerblam_plan::ArtifactKind;

use crate::cli::GlobalArgs;
use crate::cmd::plan::{PipeArgs, ReplayFormatArg, compile, load_project};
use crate::exit::invalid;
use crate::exit::{self, Exit};
use crate::{citation, execute, output, replay_archive};

#[derive(Debug, Args)]
pub struct PackageArgs {
    /// The pipe to package (without it: list the pipes, as Kerblam! 1.x does).
    pub pipe: Option<String>,
    #[command(flatten)]
    pub pipe_opts: PipeArgs,
    /// Where to write the replay archive [default: <pipe>.kerblam.tar in the project root].
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<String>,
    /// The replay archive layout: kerblam's own, or Kerblam! 1.x's (replayable by Kerblam! 1.x).
    #[arg(long, value_enum, default_value_t = ReplayFormatArg::Kerblam)]
    pub format: ReplayFormatArg,
    /// Also save the image into the replay archive, so a replay needs no registry.
    #[arg(long)]
    pub embed_image: bool,
    /// Write signature.json (git user name and email, time) into the replay archive.
    #[arg(long)]
    pub sign: bool,
    /// Build the image without the engine's build cache.
    #[arg(long = "no-build-cache")]
    pub no_build_cache: bool,
    /// Replace files at the output paths that kerblam did not write (what an earlier package
    /// wrote is replaced without it).
    #[arg(long)]
    pub force: bool,
    /// The author to cite in CITATION.cff and the RO-Crate, as "Name <email>" [default: git's
    /// user.name and user.email].
    #[arg(short, long)]
    pub author: Option<String>,
    /// tarball backend: also write the image as an OCI image layout archive `<pipe>.oci.tar`
    /// (`oci` and `oci+gzip`: gzip layers; `oci+zstd`: zstd layers).
    #[arg(long, value_name = "FORMAT", value_parser = ["oci", "oci+gzip", "oci+zstd"])]
    pub image_format: Option<String>,
    /// tarball and apptainer backends: the base image, an OCI or docker archive file (e.g. from
    /// `docker save` or `podman save --format oci-archive`) [default: scratch for the OCI archive;
    /// the recipe's FROM image, saved from a local engine, for a native SIF].
    #[arg(long, value_name = "FILE")]
    pub base: Option<PathBuf>,
    /// Push the image to this registry repository (REGISTRY/REPO[:TAG]) and the replay archive
    /// beside it as an OCI artifact; print the package's digest-pinned reference last.
    /// Credentials come from `docker login` / `podman login` (docker's config.json,
    /// REGISTRY_AUTH_FILE).
    #[arg(long, value_name = "REGISTRY/REPO[:TAG]")]
    pub push: Option<String>,
    /// apptainer backend: assemble the SIF without apptainer (mksquashfs only), even when
    /// apptainer is installed.
    #[arg(long)]
    pub native: bool,
}

pub fn run(global: &GlobalArgs, args: PackageArgs) -> miette::Result<u8> {
    let project = load_project(global, args.pipe_opts.allow_unknown)?;
    let Some(pipe) = args.pipe.clone() else {
        return crate::cmd::run::list_pipes(&project, "package");
    };
    let choices = Choices::check(&args, &project)?;
    crate::signals::install()?;
    let _lock = crate::lock::lock_project(&project.root.join(kerblam_compiler::MANIFEST_FILE))?;
    let mut job = Job::prepare(global, &project, &pipe, &args, choices)?;
    let mut archive = replay_archive::Pending::start(
        &job.plan,
        &job.artifact,
        &project.root,
        job.options.force,
        args.sign,
        job.push.is_some(),
    )?;
    // The image the backend saves for --embed-image: a temporary file of kerblam's.
    let saved = args
        .embed_image
        .then(|| {
            tempfile::Builder::new()
                .prefix("kerblam-image-")
                .suffix(".tar")
                .tempfile()
        })
        .transpose()
        .map_err(|e| miette::miette!("cannot create a temporary file for the image: {e}"))?;
    job.options.save_image = saved
        .as_ref()
        .map(|f| f.path().to_string_lossy().into_owned());
    let result = build_and_archive(global, &job, &project, &mut archive)?;
    kerblam_archive::fault::point("host/archived");
    let undo = |e: Exit| {
        let removed = execute::remove(&planned_files(&job.plan, &job.paths, &result));
        miette::Report::new(Exit {
            message: format!("{}{removed}", e.message),
            ..e
        })
    };
    let pushed = crate::publish::check_pushed(&job.plan.backend.name, job.push.as_ref(), &result)
        .map_err(undo)?;
    if let Some(p) = &pushed {
        archive
            .set_image_name(&p.reference.to_string())
            .map_err(undo)?;
    }
    let ids = citation::identify(&job.plan.backend.name, &job.paths, &result).map_err(undo)?;
    if let Some(saved) = &saved {
        saved_image(&job.plan.backend.name, saved.path()).map_err(undo)?;
    }
    let author = author(&args);
    let (written, inputs) =
        finish_archive(&job.plan, archive, saved.as_ref(), &author).map_err(undo)?;
    outln!(
        "{} ({} bytes, {})",
        written.path.display(),
        written.bytes,
        written.sha256
    );
    execute::report(&job.plan, &job.paths, &result, &ids);
    record(&job, &written, inputs, &ids, pushed.as_ref(), author)?;
    Ok(exit::OK)
}

/// Records the package beside its replay archive (RO-Crate and CITATION.cff), after pushing the
/// archive beside the pushed image; prints how to replay it, and last, on its own line, the
/// reference of a pushed package: the one to cite.
fn record(
    job: &Job,
    written: &kerblam_archive::WrittenArchive,
    inputs: Vec<citation::Digested>,
    ids: &citation::Identified,
    pushed: Option<&crate::publish::PushedImage>,
    author: Option<citation::Person>,
) -> miette::Result<()> {
    let mut work = citation::Work::of_plan(&job.plan, citation::date_of(&job.plan), author);
    work.image = ids.image.clone();
    work.inputs = inputs;
    work.artifacts = vec![citation::Digested {
        path: written.path.to_string_lossy().into_owned(),
        bytes: Some(written.bytes),
        sha256: written.sha256.clone(),
        media_type: Some("application/x-tar"),
    }];
    work.artifacts.extend(ids.files.iter().cloned());
    let published = match (&job.push, pushed) {
        (Some(asked), Some(image)) => Some(publish(&written.path, asked, image, &mut work)?),
        _ => None,
    };
    let dir = written.path.parent().unwrap_or(Path::new("."));
    let recorded = citation::record_beside(&work, dir);
    output::info(format!(
        "replay it with: kerblam replay {}",
        kerblam_compiler::sh_quote(&written.path.to_string_lossy())
    ));
    citation::say_recorded(&recorded, &written.path);
    if let Some(package) = published {
        output::info(format!(
            "replay it anywhere with: kerblam replay {package}; cite it as:"
        ));
        outln!("{package}");
    }
    Ok(())
}

/// What the user chose, checked before any work: how the compiler is to make the plan, the base
/// archive and the registry to push to.
struct Choices {
    compile: PipeOptions,
    pipe_opts: PipeArgs,
    base_archive: Option<String>,
    push: Option<kerblam_registry::Reference>,
}

impl Choices {
    fn check(args: &PackageArgs, project: &kerblam_compiler::Project) -> miette::Result<Choices> {
        let compile = PipeOptions {
            output: args
                .output
                .as_deref()
                .map(|o| output_path(&project.root, o)),
            replay_format: args.format.into(),
            embed_image: args.embed_image,
            sign: args.sign,
            ..Default::default()
        };
        let v1 = args.format == ReplayFormatArg::KerblamV1;
        if args.embed_image && v1 {
            return Err(invalid(
                "--embed-image needs kerblam's own archive format; Kerblam! 1.x archives cannot hold an image",
            ));
        }
        let base_archive = args.base.as_deref().map(base_archive).transpose()?;
        let push = args
            .push
            .as_deref()
            .map(crate::publish::target)
            .transpose()?;
        if push.is_some() && v1 {
            return Err(invalid(
                "--push needs kerblam's own archive format: a Kerblam! 1.x archive names its image by tag",
            ));
        }
        let mut pipe_opts = args.pipe_opts.clone();
        if pipe_opts.backend.is_none() && !project.sets_backend() && !engine_available() {
            output::info(
                "no container engine found (no podman, and no docker with a daemon socket): packaging \
                 with the tarball backend; set execution.backend or pass --backend to choose",
            );
            pipe_opts.backend = Some("tarball".into());
        }
        Ok(Choices {
            compile,
            pipe_opts,
            base_archive,
            push,
        })
    }
}

/// A package about to be carried out: the plan with the backend's part, checked on this machine.
struct Job {
    plan: kerblam_plan::PackagePlan,
    plugin: kerblam_backend_api::host::Plugin,
    paths: kerblam_backend_api::Paths,
    options: ExecuteOptions,
    push: Option<kerblam_registry::Reference>,
    /// The plan's replay archive.
    artifact: kerblam_plan::Artifact,
}

impl Job {
    /// Compiles the plan, loads its backend, has it fill in its part, and runs the host's
    /// preflight checks.
    fn prepare(
        global: &GlobalArgs,
        project: &kerblam_compiler::Project,
        pipe: &str,
        args: &PackageArgs,
        choices: Choices,
    ) -> miette::Result<Job> {
        let mut plan = compile(project, pipe, &choices.pipe_opts, choices.compile)?;
        let plugin = execute::load(global, &plan.backend.name)?;
        if choices.push.is_some() {
            execute::require_push(&plugin)?;
        }
        let paths = execute::paths(&project.root)?;
        let mut options = ExecuteOptions {
            no_cache: args.no_build_cache,
            embed_image: args.embed_image,
            force: args.force,
            native: args.native,
            base_archive: choices.base_archive,
            format: args.image_format.clone(),
            push: choices.push.as_ref().map(|p| p.to_string()),
            ..ExecuteOptions::default()
        };
        execute::complete(&plugin, &mut plan, Action::Package, &paths, &options)?;
        kerblam_archive::fault::point("host/compiled");
        execute::host_preflight(&plan, &paths)?;
        let Some(artifact) = plan.artifact(ArtifactKind::ReplayArchive).cloned() else {
            return Err(invalid(format!(
                "the plan of {} has no replay archive",
                plan.name
            )));
        };
        // A second package replaces what the first wrote; a file kerblam did not write stays.
        options.force = crate::replace::decide(&plan, &paths, args.force)?;
        Ok(Job {
            plan,
            plugin,
            paths,
            options,
            push: choices.push,
            artifact,
        })
    }
}

/// The backend builds while kerblam archives the precious data: one keeps the engine busy, the
/// other the cores (zstd). A failure on either side stops the other, and is what is reported
/// (not the stop it caused). A package without its replay archive is no package, so what the
/// backend wrote goes too: `execute` removed it when the backend failed or was stopped; here
/// when it finished anyway.
fn build_and_archive(
    global: &GlobalArgs,
    job: &Job,
    project: &kerblam_compiler::Project,
    archive: &mut replay_archive::Pending,
) -> miette::Result<kerblam_backend_api::ExecuteResult> {
    let stop: execute::Abort = Default::default();
    let (result, archived) = std::thread::scope(|s| {
        let backend = s.spawn(|| {
            let result = execute::execute(
                global,
                &job.plugin,
                Action::Package,
                &job.plan,
                &job.paths,
                job.options.clone(),
                Some(stop.clone()),
            );
            if result.is_err() {
                stop.store(true, Ordering::SeqCst);
            }
            result
        });
        let archived = archive.add_data(&job.plan, &project.root, &stop);
        if matches!(archived, Err(Some(_))) {
            stop.store(true, Ordering::SeqCst);
        }
        let result = backend.join().unwrap_or_else(|_| {
            Err(execute::Failed {
                exit: Exit::failure("the backend's thread panicked"),
                removed: String::new(),
            })
        });
        (result, archived)
    });
    kerblam_archive::fault::point("host/executed");
    let why = match archived {
        Ok(()) => return Ok(result?),
        Err(Some(why)) => why,
        // Stopped because it was asked to: by the backend's failure (report that), or by a
        // signal while the backend finished.
        Err(None) => {
            if result.is_err() {
                return Ok(result?);
            }
            match crate::signals::interrupted() {
                Some(sig) => crate::signals::interrupted_error(sig),
                None => Exit::failure("archiving the precious data stopped before it was done"),
            }
        }
    };
    let removed = match &result {
        Ok(r) => execute::remove(&planned_files(&job.plan, &job.paths, r)),
        Err(f) => f.removed.clone(),
    };
    Err(Exit {
        message: format!("{}{removed}", why.message),
        ..why
    }
    .into())
}

/// Finishes the replay archive: the image saved for `--embed-image`, and the crate inside it,
/// whose members are its data entities and whose inputs are the manifest and the precious data.
/// It holds only what the archive's bytes follow from, dated like its members, so that packages
/// of one tree stay byte-identical: not the image ID nor the backend's files (engine builds are
/// not reproducible). Returns the archive and the inputs it holds.
fn finish_archive(
    plan: &kerblam_plan::PackagePlan,
    archive: replay_archive::Pending,
    saved: Option<&tempfile::NamedTempFile>,
    author: &Option<citation::Person>,
) -> Result<(kerblam_archive::WrittenArchive, Vec<citation::Digested>), Exit> {
    let mut inputs = Vec::new();
    let written = archive.finish(saved.map(|f| f.path()), |sums| {
        inputs = replay_archive::inputs(sums, plan);
        let date = kerblam_compiler::time::iso_date(replay_archive::mtime() as i64);
        let mut inner = citation::Work::of_plan(plan, date, author.clone());
        inner.inputs = inputs.clone();
        inner.artifacts = replay_archive::members(sums);
        citation::crate_json(&inner, None, None)
    })?;
    Ok((written, inputs))
}

/// Pushes the replay archive beside the pushed image and records both in `work`: the package's
/// reference, the one to cite.
fn publish(
    archive: &Path,
    asked: &kerblam_registry::Reference,
    image: &crate::publish::PushedImage,
    work: &mut citation::Work,
) -> Result<kerblam_registry::Reference, Exit> {
    outln!("pushed image {}", image.reference);
    let package = crate::publish::push_archive(archive, asked, image)?;
    work.published = vec![
        (
            image.reference.to_string(),
            "the image, in its registry".into(),
        ),
        (
            package.to_string(),
            "the package: the replay archive as an OCI artifact that refers to the image".into(),
        ),
    ];
    Ok(package)
}

/// The image a backend saved for `--embed-image` must be an image archive (`docker save` or OCI),
/// not an empty or unrelated file, before it goes into the replay archive.
fn saved_image(backend: &str, path: &Path) -> Result<(), Exit> {
    kerblam_backend_api::host::contract::sniff(path, ArtifactKind::ImageArchive).map_err(|what| {
        Exit::failure(format!(
                "backend {backend:?} was asked to save its image into {} (--embed-image), but that file {what}\nhelp: this is a bug in the backend plugin; package without --embed-image, or with another backend",
                path.display()
            ))
    })
}

/// The author to cite: `--author`, else git's `user.name` and `user.email` when both are set.
fn author(args: &PackageArgs) -> Option<citation::Person> {
    match &args.author {
        Some(a) => citation::Person::parse(a),
        None => kerblam_archive::Signature::from_git(0)
            .ok()
            .and_then(|s| citation::Person::parse(&format!("{} <{}>", s.name, s.email))),
    }
}

/// The files a successful backend wrote: removed again when the package cannot be completed.
fn planned_files(
    plan: &kerblam_plan::PackagePlan,
    paths: &kerblam_backend_api::Paths,
    result: &kerblam_backend_api::ExecuteResult,
) -> Vec<PathBuf> {
    result
        .artifacts
        .iter()
        .filter(|a| a.kind.is_file())
        .filter(|a| plan.backend.artifacts.iter().any(|p| p.kind == a.kind))
        .map(|a| kerblam_backend_api::host::contract::artifact_path(paths, &a.path))
        .collect()
}

/// `-o PATH` as the user meant it: relative to where kerblam was started (not the project root).
/// Inside the project it becomes root-relative, so the plan stored in the archive names no
/// machine-specific path; elsewhere it stays absolute.
fn output_path(root: &Path, o: &str) -> String {
    let p = Path::new(o);
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        match std::env::current_dir() {
            Ok(d) => d.join(p),
            Err(_) => return o.to_string(),
        }
    };
    let abs = match (abs.parent(), abs.file_name()) {
        (Some(dir), Some(name)) => dir
            .canonicalize()
            .map(|d| d.join(name))
            .unwrap_or(abs.clone()),
        _ => abs,
    };
    match abs.strip_prefix(root) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy().into_owned(),
        _ => abs.to_string_lossy().into_owned(),
    }
}

/// `--base FILE` as an absolute path (relative to where kerblam was started); it must be a file.
pub fn base_archive(file: &Path) -> miette::Result<String> {
    let abs = std::env::current_dir()
        .map(|d| d.join(file))
        .unwrap_or_else(|_| file.to_path_buf());
    match std::fs::metadata(&abs) {
        Ok(m) if m.is_file() => Ok(abs.to_string_lossy().into_owned()),
        Ok(_) => Err(invalid(format!(
            "--base {}: not a file (give an OCI or docker archive, e.g. from `docker save`)",
            file.display()
        ))),
        Err(e) => Err(invalid(format!("--base {}: {e}", abs.display()))),
    }
}

/// Whether a container engine can be used here: podman on `PATH` (it needs no daemon), or docker
/// on `PATH` with a daemon to talk to (`DOCKER_HOST`, or the default socket). A docker client with
/// no daemon is not an engine.
fn engine_available() -> bool {
    let found = |var: &str, name: &str| {
        let program = std::env::var(var).unwrap_or_else(|_| name.to_string());
        kerblam_backend_api::preflight::find_tool(&program).is_some()
    };
    let docker_daemon =
        std::env::var_os("DOCKER_HOST").is_some() || Path::new("/var/run/docker.sock").exists();
    found("KERBLAM_PODMAN", "podman") || (found("KERBLAM_DOCKER", "docker") && docker_daemon)
}

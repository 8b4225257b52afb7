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
    let output = args
        .output
        .as_deref()
        .map(|o| output_path(&project.root, o));
    let opts = PipeOptions {
        output,
        replay_format: args.format.into(),
        embed_image: args.embed_image,
        sign: args.sign,
        ..Default::default()
    };
    if args.embed_image && args.format == ReplayFormatArg::KerblamV1 {
        return Err(invalid(
            "--embed-image needs kerblam's own archive format; Kerblam! 1.x archives cannot hold an image"
                .into(),
        ));
    }
    let base_archive = args.base.as_deref().map(base_archive).transpose()?;
    let push = args
        .push
        .as_deref()
        .map(crate::publish::target)
        .transpose()?;
    if push.is_some() && args.format == ReplayFormatArg::KerblamV1 {
        return Err(invalid(
            "--push needs kerblam's own archive format: a Kerblam! 1.x archive names its image by tag"
                .into(),
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
    crate::signals::install()?;
    let _lock = crate::lock::lock_project(&project.root.join(kerblam_compiler::MANIFEST_FILE))?;
    let mut plan = compile(&project, &pipe, &pipe_opts, opts)?;
    let plugin = execute::load(global, &plan.backend.name)?;
    if push.is_some() {
        execute::require_push(&plugin)?;
    }
    let paths = execute::paths(&project.root)?;
    let mut options = ExecuteOptions {
        no_cache: args.no_build_cache,
        embed_image: args.embed_image,
        force: args.force,
        native: args.native,
        base_archive,
        format: args.image_format.clone(),
        push: push.as_ref().map(|p| p.to_string()),
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
    let mut archive = replay_archive::Pending::start(
        &plan,
        &artifact,
        &project.root,
        options.force,
        args.sign,
        push.is_some(),
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
    options.save_image = saved
        .as_ref()
        .map(|f| f.path().to_string_lossy().into_owned());

    // The backend builds while kerblam archives the precious data: one keeps the engine busy,
    // the other the cores (zstd). A failure on either side stops the other.
    let stop: execute::Abort = Default::default();
    let (result, archived) = std::thread::scope(|s| {
        let backend = s.spawn(|| {
            let result = execute::execute(
                global,
                &plugin,
                Action::Package,
                &plan,
                &paths,
                options,
                Some(stop.clone()),
            );
            if result.is_err() {
                stop.store(true, Ordering::SeqCst);
            }
            result
        });
        let archived = archive.add_data(&plan, &project.root, &stop);
        if matches!(archived, Err(Some(_))) {
            stop.store(true, Ordering::SeqCst);
        }
        let result = backend.join().unwrap_or_else(|_| {
            Err(execute::Failed {
                exit: Exit {
                    code: exit::FAILURE,
                    message: "the backend's thread panicked".into(),
                },
                removed: String::new(),
            })
        });
        (result, archived)
    });
    kerblam_archive::fault::point("host/executed");
    // A failure on one side stopped the other: report the failure, not the stop it caused. A
    // package without its replay archive is no package, so what the backend wrote goes too:
    // `execute` removed it when the backend failed or was stopped; here when it finished anyway.
    match archived {
        Err(Some(why)) => {
            let removed = match &result {
                Ok(r) => execute::remove(&planned_files(&plan, &paths, r)),
                Err(f) => f.removed.clone(),
            };
            return Err(Exit {
                message: format!("{}{removed}", why.message),
                ..why
            }
            .into());
        }
        Err(None) => {
            let result = result?;
            let removed = execute::remove(&planned_files(&plan, &paths, &result));
            let why = match crate::signals::interrupted() {
                Some(sig) => crate::signals::interrupted_error(sig),
                None => Exit {
                    code: exit::FAILURE,
                    message: "archiving the precious data stopped before it was done".into(),
                },
            };
            return Err(Exit {
                message: format!("{}{removed}", why.message),
                ..why
            }
            .into());
        }
        Ok(()) => {}
    }
    let result = result?;
    kerblam_archive::fault::point("host/archived");
    let undo = |e: Exit| {
        let removed = execute::remove(&planned_files(&plan, &paths, &result));
        miette::Report::new(Exit {
            message: format!("{}{removed}", e.message),
            ..e
        })
    };
    let pushed =
        crate::publish::check_pushed(&plan.backend.name, push.as_ref(), &result).map_err(undo)?;
    if let Some(p) = &pushed {
        archive
            .set_image_name(&p.reference.to_string())
            .map_err(undo)?;
    }
    let ids = citation::identify(&plan.backend.name, &paths, &result).map_err(undo)?;
    if let Some(saved) = &saved {
        saved_image(&plan.backend.name, saved.path()).map_err(undo)?;
    }
    let author = author(&args);
    let mut inputs = Vec::new();
    let written = archive
        .finish(saved.as_ref().map(|f| f.path()), |sums| {
            // The crate inside the archive: its members are its data entities, its inputs the
            // manifest and the precious data. It holds only what the archive's bytes follow
            // from, dated like its members, so that packages of one tree stay byte-identical:
            // not the image ID nor the backend's files (engine builds are not reproducible).
            inputs = replay_archive::inputs(sums, &plan);
            let date = kerblam_compiler::time::iso_date(replay_archive::mtime() as i64);
            let mut inner = citation::Work::of_plan(&plan, date, author.clone());
            inner.inputs = inputs.clone();
            inner.artifacts = replay_archive::members(sums);
            citation::crate_json(&inner, None, None)
        })
        .map_err(undo)?;
    let mut work = citation::Work::of_plan(&plan, citation::date_of(&plan), author);
    work.image = ids.image.clone();
    outln!(
        "{} ({} bytes, {})",
        written.path.display(),
        written.bytes,
        written.sha256
    );
    execute::report(&plan, &paths, &result, &ids);
    work.inputs = inputs;
    work.artifacts = vec![citation::Digested {
        path: written.path.to_string_lossy().into_owned(),
        bytes: Some(written.bytes),
        sha256: written.sha256.clone(),
        media_type: Some("application/x-tar"),
    }];
    work.artifacts.extend(ids.files.iter().cloned());
    let published = match (&push, &pushed) {
        (Some(asked), Some(image)) => {
            outln!("pushed image {}", image.reference);
            let package = crate::publish::push_archive(&written.path, asked, image)?;
            work.published = vec![
                (
                    image.reference.to_string(),
                    "the image, in its registry".into(),
                ),
                (
                    package.to_string(),
                    "the package: the replay archive as an OCI artifact that refers to the image"
                        .into(),
                ),
            ];
            Some(package)
        }
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
    Ok(exit::OK)
}

/// The image a backend saved for `--embed-image` must be an image archive (`docker save` or OCI),
/// not an empty or unrelated file, before it goes into the replay archive.
fn saved_image(backend: &str, path: &Path) -> Result<(), Exit> {
    kerblam_backend_api::host::contract::sniff(path, ArtifactKind::ImageArchive).map_err(|what| {
        Exit {
            code: exit::FAILURE,
            message: format!(
                "backend {backend:?} was asked to save its image into {} (--embed-image), but that file {what}\nhelp: this is a bug in the backend plugin; package without --embed-image, or with another backend",
                path.display()
            ),
        }
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

fn invalid(message: String) -> miette::Report {
    exit::Exit {
        code: exit::INVALID,
        message,
    }
    .into()
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

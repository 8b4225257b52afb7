//! `kerblam freeze`: freeze a loaded EESSI software environment into an image or a tarball.
//!
//! `kerblam freeze --from-env` reads the live environment (`EESSI_*`, `LOADEDMODULES`, `LMOD_RC`,
//! `EBROOT*`) into a freeze spec, `--write-spec FILE` saves it so it can be checked in and rebuilt
//! with `kerblam freeze FILE`. Either way the spec is compiled into a plan (`--no-build` stops
//! there, before any plugin is loaded: writing a spec needs no backend), the backend plugin adds
//! its part, the plan's preflight checks run on the host (checks at the engine's storage are left
//! to the docker/podman backend, which knows where it is), and the plugin carries it out.
//!
//! The options of EESSI's freeze script keep their spelling: `-a/--author` (mandatory), `-n/--name`,
//! `-v/--version` (a suffix after the ISO date), `-d/--destination`, `-g/--generic`. Because `-v`
//! is the version here, the global `-v` (verbose) is not available after `freeze`: use
//! `kerblam -v freeze ...` or `kerblam freeze --verbose ...`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use kerblam_backend_api::{Action, ExecuteOptions, Paths};
use kerblam_compiler::freeze::{self, FreezeOptions, FreezeSpec};
use kerblam_compiler::render::{self, Format};
use kerblam_compiler::{CheckOptions, SourceFile, display_path, read_text};
use kerblam_plan::PackagePlan;

use crate::cli::GlobalArgs;
use crate::exit::invalid;
use crate::exit::{self, Exit};
use crate::{citation, execute, output};

#[derive(Debug, Args)]
pub struct FreezeArgs {
    /// The freeze spec to compile and carry out (a freeze.toml).
    #[arg(required_unless_present = "from_env", conflicts_with = "from_env")]
    pub spec: Option<PathBuf>,
    /// Infer the spec from the loaded EESSI environment (EESSI_*, LOADEDMODULES, LMOD_RC, EBROOT*).
    #[arg(long)]
    pub from_env: bool,
    /// Write the spec (as inferred and overridden) to FILE, so it can be checked in and rebuilt.
    #[arg(long, value_name = "FILE")]
    pub write_spec: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: FreezeOverrides,
    /// Print the plan (JSON) instead of carrying it out.
    #[arg(long)]
    pub plan: bool,
    /// Stop after writing the spec (--write-spec) or printing the plan: build nothing.
    #[arg(long)]
    pub no_build: bool,
    /// Replace files at the output paths that kerblam did not write (what an earlier freeze wrote
    /// is replaced without it).
    #[arg(long)]
    pub force: bool,
    /// Build without the engine's cache.
    #[arg(long = "no-build-cache")]
    pub no_build_cache: bool,
    /// apptainer: assemble the SIF without apptainer (mksquashfs only).
    #[arg(long)]
    pub native: bool,
    /// Push the frozen image to this registry repository (REGISTRY/REPO[:TAG]) and print its
    /// digest-pinned reference last (docker, podman; tarball with an OCI image). Credentials
    /// come from `docker login` / `podman login`.
    #[arg(long, value_name = "REGISTRY/REPO[:TAG]")]
    pub push: Option<String>,
    /// apptainer: the base image as an OCI or docker archive file (e.g. from `docker save`),
    /// instead of the spec's base image reference.
    #[arg(long, value_name = "FILE")]
    pub base: Option<PathBuf>,
    /// Report unknown keys in the spec as warnings instead of errors.
    #[arg(long)]
    pub allow_unknown: bool,
    /// Print more (here `-v` is the version suffix; `kerblam -v freeze` also works).
    #[arg(long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The options of EESSI's freeze script, which override the spec.
#[derive(Debug, Args, Clone, Default)]
pub struct FreezeOverrides {
    /// Author (you) of the image. Mandatory (in the spec or here).
    #[arg(short, long)]
    pub author: Option<String>,
    /// The image name [default: EESSI_<last loaded module, / replaced by _>].
    #[arg(short, long)]
    pub name: Option<String>,
    /// A suffix appended to the version, which always starts with the ISO date (SOURCE_DATE_EPOCH
    /// when set).
    #[arg(short = 'v', long = "version", value_name = "SUFFIX")]
    pub version_suffix: Option<String>,
    /// Where the SIF or tarball lands [default: the system temporary directory].
    #[arg(short, long, value_name = "DIR")]
    pub destination: Option<String>,
    /// Freeze the generic builds instead of the CPU-specific ones.
    #[arg(short, long)]
    pub generic: bool,
    /// The backend: apptainer, docker, podman, tarball, or another installed plugin.
    #[arg(long)]
    pub backend: Option<String>,
    /// tarball backend: also write an OCI image archive of the freeze (`oci`, `oci+gzip`,
    /// `oci+zstd`), one layer per tree.
    #[arg(long, value_name = "FORMAT", value_parser = ["oci", "oci+gzip", "oci+zstd"])]
    pub image_format: Option<String>,
}

impl FreezeOverrides {
    /// Apply the options given on the command line to `spec`.
    pub fn apply(&self, spec: &mut FreezeSpec) {
        if let Some(a) = &self.author {
            spec.author = a.clone();
        }
        if let Some(n) = &self.name {
            spec.name = Some(n.clone());
        }
        if let Some(v) = &self.version_suffix {
            spec.version = Some(v.clone());
        }
        if let Some(d) = &self.destination {
            spec.destination = Some(absolute_from_cwd(d));
        }
        if self.generic {
            spec.generic = true;
        }
        if let Some(b) = &self.backend {
            spec.backend = b.clone();
        }
    }

    fn any(&self) -> bool {
        self.author.is_some()
            || self.name.is_some()
            || self.version_suffix.is_some()
            || self.destination.is_some()
            || self.generic
            || self.backend.is_some()
    }
}

/// A destination given on the command line is relative to where kerblam was started.
fn absolute_from_cwd(d: &str) -> String {
    let p = Path::new(d);
    if p.is_absolute() {
        return d.to_string();
    }
    std::env::current_dir()
        .map(|c| c.join(p).to_string_lossy().into_owned())
        .unwrap_or_else(|_| d.to_string())
}

/// The freeze time: `SOURCE_DATE_EPOCH` when set, else today at 00:00 UTC (so plans printed on the
/// same day are identical).
pub fn freeze_epoch() -> i64 {
    kerblam_compiler::time::source_date_epoch().unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        now - now.rem_euclid(86_400)
    })
}

/// A compiled freeze: the plan and the directory its relative paths are relative to.
pub struct Compiled {
    /// The plan.
    pub plan: PackagePlan,
    /// The plan root: the spec's directory (or the working directory for `--from-env`).
    pub root: PathBuf,
}

/// Check a spec's text (as given, with CLI overrides applied on top) and compile it.
fn compile_source(
    source: SourceFile,
    overrides: &FreezeOverrides,
    root: &Path,
    allow_unknown: bool,
) -> miette::Result<Compiled> {
    let (mut spec, warnings) = freeze::parse(source.clone(), CheckOptions { allow_unknown })?;
    for w in warnings {
        output::print_report(&miette::Report::new(w));
    }
    if overrides.any() {
        overrides.apply(&mut spec);
        // Check the overridden spec, so a bad -n/-v/--backend is refused like a bad spec; its
        // findings point into the spec as the options rewrote it.
        let with = SourceFile::new("command-line options applied to the spec", spec.to_toml());
        spec = freeze::parse(with, CheckOptions::default())?.0;
    }
    let name = source.name.clone();
    let opts = FreezeOptions {
        epoch: freeze_epoch(),
        base_dir: root.to_path_buf(),
        temp_dir: std::env::temp_dir(),
        manifest: manifest_name(&name),
    };
    let plan = freeze::compile_freeze(&spec, &source, &opts)?;
    Ok(Compiled {
        plan,
        root: root.to_path_buf(),
    })
}

fn manifest_name(display: &str) -> String {
    let base = display.split(" (").next().unwrap_or(display);
    Path::new(base)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| base.to_string())
}

/// Compile a spec file (for `kerblam freeze SPEC` and `kerblam plan --freeze SPEC`).
pub fn compile_file(
    global: &GlobalArgs,
    spec: &Path,
    overrides: &FreezeOverrides,
    allow_unknown: bool,
) -> miette::Result<Compiled> {
    let path = match &global.directory {
        Some(dir) if spec.is_relative() => dir.join(spec),
        _ => spec.to_path_buf(),
    };
    let text = read_text(&path)?;
    let root = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .canonicalize()
        .map_err(|e| miette::miette!("cannot resolve the directory of {}: {e}", path.display()))?;
    compile_source(
        SourceFile::new(display_path(&path), text),
        overrides,
        &root,
        allow_unknown,
    )
}

/// Infer a spec from `env`, apply the overrides, and return its TOML text.
pub fn spec_text_from_env(
    env: &BTreeMap<String, String>,
    overrides: &FreezeOverrides,
) -> miette::Result<String> {
    let author = overrides.author.clone().unwrap_or_default();
    if author.trim().is_empty() {
        return Err(miette::Report::new(Exit::invalid(
            "the author is mandatory: pass -a/--author \"Your Name <you@example.org>\"",
        )));
    }
    let mut spec = freeze::spec_from_env(env, &author)
        .map_err(|e| invalid(format!("{e}\nhelp: {}", e.help())))?;
    overrides.apply(&mut spec);
    Ok(spec.to_toml())
}

/// `--from-env`: the spec inferred from the loaded environment, compiled, and written to
/// `--write-spec` once it compiled (an invalid spec is never left under its name).
fn compile_from_env(args: &FreezeArgs) -> miette::Result<Compiled> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let text = spec_text_from_env(&env, &args.overrides)?;
    let name = match &args.write_spec {
        Some(p) => display_path(p),
        None => "freeze spec inferred from the environment".into(),
    };
    let root = std::env::current_dir()
        .map_err(|e| miette::miette!("cannot read the working directory: {e}"))?;
    // Check (and compile) before writing, so an invalid spec is never left under its name.
    // The freeze-script options are in the inferred text already.
    let compiled = compile_source(
        SourceFile::new(name, text.clone()),
        &FreezeOverrides::default(),
        &root,
        false,
    )?;
    if let Some(p) = &args.write_spec {
        super::plan::write_atomic(p, text.as_bytes())?;
        output::info(format!(
            "wrote {}; rebuild with `kerblam freeze {}`",
            p.display(),
            p.display()
        ));
    }
    Ok(compiled)
}

/// `SPEC`: the spec file, compiled with the command line's overrides.
fn compile_spec(global: &GlobalArgs, args: &FreezeArgs) -> miette::Result<Compiled> {
    let spec = args
        .spec
        .as_deref()
        .expect("clap requires SPEC without --from-env");
    let compiled = compile_file(global, spec, &args.overrides, args.allow_unknown)?;
    if let Some(p) = &args.write_spec {
        return Err(invalid(format!(
            "--write-spec {} only applies with --from-env; the spec is already {}",
            p.display(),
            spec.display()
        )));
    }
    Ok(compiled)
}

pub fn run(global: &GlobalArgs, args: FreezeArgs) -> miette::Result<u8> {
    let compiled = if args.from_env {
        compile_from_env(&args)?
    } else {
        compile_spec(global, &args)?
    };
    if args.no_build && !args.plan {
        // The spec is written (or checked): nothing needs the backend, which may not be
        // installed here at all.
        return Ok(exit::OK);
    }
    let mut compiled = compiled;
    let push = args
        .push
        .as_deref()
        .map(crate::publish::target)
        .transpose()?;
    let plugin = execute::load(global, &compiled.plan.backend.name)?;
    if push.is_some() {
        execute::require_push(&plugin)?;
    }
    let paths = paths(&compiled.root)?;
    let options = ExecuteOptions {
        no_cache: args.no_build_cache,
        force: args.force,
        native: args.native,
        base_archive: args
            .base
            .as_deref()
            .map(super::package::base_archive)
            .transpose()?,
        format: args.overrides.image_format.clone(),
        push: push.as_ref().map(|p| p.to_string()),
        ..ExecuteOptions::default()
    };
    execute::complete(
        &plugin,
        &mut compiled.plan,
        Action::Package,
        &paths,
        &options,
    )?;
    if args.plan {
        out!("{}", render::render(&compiled.plan, Format::Json));
    }
    if args.plan {
        return Ok(exit::OK);
    }
    carry_out(global, &plugin, &compiled, &paths, options, push.as_ref())
}

/// The paths of a freeze: its root (the spec's directory) is also where relative outputs go.
fn paths(root: &Path) -> miette::Result<Paths> {
    execute::paths(root)
}

/// The destination (`-d DIR`, or the spec's) is made when missing, as `mkdir -p` would, before
/// any work; where it cannot be, the freeze stops there, naming it.
fn create_destination(plan: &PackagePlan, paths: &Paths) -> miette::Result<()> {
    let dir = kerblam_backend_api::host::contract::artifact_path(paths, &plan.output.dir);
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(&dir).map_err(|e| {
        invalid(format!(
            "cannot create the destination {}: {e}\nhelp: choose a directory you can write to with -d DIR",
            dir.display()
        ))
    })
}

/// Run the plan's preflight checks on the host (but those at a container engine's directories,
/// which the backend runs), then have the backend plugin carry it out.
fn carry_out(
    global: &GlobalArgs,
    plugin: &kerblam_backend_api::host::Plugin,
    c: &Compiled,
    paths: &Paths,
    mut options: ExecuteOptions,
    push: Option<&kerblam_registry::Reference>,
) -> miette::Result<u8> {
    let plan = &c.plan;
    create_destination(plan, paths)?;
    // A second freeze replaces what the first wrote; a file kerblam did not write stays.
    options.force = crate::replace::decide(plan, paths, options.force)?;
    if let Some(f) = &plan.freeze {
        output::info(format!(
            "freezing {} ({} modules, {} trees, {} files, {} bytes after excludes) with {}",
            plan.image.tag,
            f.modules.len(),
            f.trees.len(),
            f.total_files,
            f.total_bytes,
            plan.backend.name
        ));
    }
    execute::host_preflight(plan, paths)?;
    let result = execute::execute(global, plugin, Action::Package, plan, paths, options, None)?;
    let pushed = crate::publish::check_pushed(&plan.backend.name, push, &result).map_err(|e| {
        let files = result
            .artifacts
            .iter()
            .filter(|a| a.kind.is_file())
            .map(|a| kerblam_backend_api::host::contract::artifact_path(paths, &a.path))
            .collect::<Vec<_>>();
        Exit {
            message: format!("{}{}", e.message, execute::remove(&files)),
            ..e
        }
    })?;
    let ids = citation::identify(&plan.backend.name, paths, &result)?;
    execute::report(plan, paths, &result, &ids);
    let mut work = work(plan, &c.root, &ids);
    if let Some(p) = &pushed {
        work.published = vec![(
            p.reference.to_string(),
            "the frozen image, in its registry".into(),
        )];
    }
    let dir = kerblam_backend_api::host::contract::artifact_path(paths, &plan.output.dir);
    let written = citation::record_beside(&work, &dir);
    if let Some(first) = ids.files.first() {
        citation::say_recorded(&written, Path::new(&first.path));
    }
    if let Some(p) = &pushed {
        output::info("pushed; cite it, or pull it anywhere, as:");
        outln!("{}", p.reference);
    }
    Ok(exit::OK)
}

/// The freeze as a work to cite: its author, its modules, its spec and what the backend made.
fn work(plan: &PackagePlan, root: &Path, ids: &citation::Identified) -> citation::Work {
    let author = plan
        .metadata
        .author
        .as_deref()
        .and_then(citation::Person::parse);
    let mut work = citation::Work::of_plan(plan, citation::date_of(plan), author);
    let spec = root.join(&plan.source.manifest);
    work.inputs.push(citation::Digested {
        path: plan.source.manifest.clone(),
        bytes: std::fs::metadata(&spec).ok().map(|m| m.len()),
        sha256: plan.source.digest.clone(),
        media_type: None,
    });
    work.artifacts = ids.files.clone();
    work.image = ids.image.clone();
    work
}

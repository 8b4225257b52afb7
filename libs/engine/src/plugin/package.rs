//! Action `package`: build `plan.image.tag` from a streamed build context, and, when the host asks
//! for it (`options.save_image`, for `--embed-image`), save the image into the file it names.
//!
//! The replay archive is the host's: it archives the precious data while the image builds here.
//!
//! The image is built in two stages when kerblam adds its own files (see [`build`]), so that the
//! user's `COPY . .` never copies the kerblam executable into the image a second time.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use kerblam_archive::{ExtraEntry, ExtraSource, TarOptions, write_build_context};
use kerblam_backend_api::plan::{ArtifactKind, Base, Context, LayerSource, PackagePlan};
use kerblam_backend_api::{ErrorMessage, ExecuteRequest, ExecuteResult, Host, ProducedArtifact};
use kerblam_render::{ContextEntry, EntrySource, Rendered};

use super::errors;
use super::pipe::pipe;
use crate::{BuildOptions, Engine, Flavor, Network};
use kerblam_backend_api::sdk::Reporter;

/// Where the generated Containerfile sits in the build context (passed to the engine with `-f`).
pub const CONTAINERFILE: &str = ".kerblam/Containerfile";

/// Carries out a package (or run-image) plan with `engine`.
pub fn package(
    engine: &Engine,
    req: &ExecuteRequest,
    host: &Host<'_>,
) -> Result<ExecuteResult, ErrorMessage> {
    let plan = &req.plan;
    let root = Path::new(&req.paths.root);
    let tar = TarOptions::from_env().map_err(errors::archive)?;
    let rendered = render(plan, root)?;
    engine.check_available().map_err(errors::engine)?;
    host.check_cancelled()?;
    kerblam_archive::fault::point("engine/before-build");
    build(engine, req, &rendered, tar, host)?;
    kerblam_archive::fault::point("engine/built");
    host.check_cancelled()?;
    if let Some(file) = &req.options.save_image {
        save_image(engine, &plan.image.tag, Path::new(file), host)?;
    }
    let pushed = super::push(engine, req, host)?;
    Ok(ExecuteResult {
        artifacts: built_image(engine, plan)?.into_iter().collect(),
        exit_code: None,
        notes: Vec::new(),
        pushed,
    })
}

/// The engine image the plan asks for, as built, with its image ID (a plan may ask for nothing
/// but a build).
pub(super) fn built_image(
    engine: &Engine,
    plan: &PackagePlan,
) -> Result<Option<ProducedArtifact>, ErrorMessage> {
    let Some(a) = plan.artifact(ArtifactKind::EngineImage) else {
        return Ok(None);
    };
    let id = engine.image_id(&a.path).map_err(errors::engine)?;
    Ok(Some(ProducedArtifact {
        kind: ArtifactKind::EngineImage,
        path: a.path.clone(),
        bytes: None,
        sha256: Some(id),
    }))
}

/// The Containerfile and the context entries it reads ([`super::plan::render`]). The text must be
/// the one the plan shows (`backend.rendered`): when the project changed since the plan was made,
/// the build would not be what the plan says, so it is refused.
pub(super) fn render(plan: &PackagePlan, root: &Path) -> Result<Rendered, ErrorMessage> {
    let rendered = super::plan::render(plan, root)?;
    if let Some(shown) = plan.backend.rendered(super::plan::RENDERED)
        && shown.text != rendered.containerfile
    {
        return Err(ErrorMessage::invalid_input(format!(
            "the Containerfile of {} is not the one its plan shows: the recipe changed since the plan was made",
            plan.name
        ))
        .with_help("make the plan again (kerblam plan) and carry out that one"));
    }
    Ok(rendered)
}

/// The line `kerblam-render` starts its own instructions with, after the user's recipe.
const KERBLAM_SECTION: &str = "\n# --- added by kerblam ";

/// Builds the image, streaming each build context into `engine build` with no temporary copy.
///
/// When the plan adds files that are not project files (the kerblam executable, the replay script),
/// the build has two stages, so that a recipe's `COPY . .` cannot copy them a second time into the
/// image: the user's recipe is built first from the project context alone (under a temporary tag),
/// then kerblam's instructions are built `FROM` it with a context holding only the files its `COPY`
/// lines read. The temporary tag is removed whatever happens. A plan adding only project files
/// (a `kerblam run` plan), or on a scratch or image base, is built in one go.
fn build(
    engine: &Engine,
    req: &ExecuteRequest,
    rendered: &Rendered,
    tar: TarOptions,
    host: &Host<'_>,
) -> Result<(), ErrorMessage> {
    let plan = &req.plan;
    let text = &rendered.containerfile;
    let network = build_network()?;
    let split = text.find(KERBLAM_SECTION);
    // Only a recipe of the user's can `COPY . .`; a scratch or image base has no first stage to
    // build (and docker's legacy builder refuses a Containerfile that is only `FROM scratch`).
    let recipe_base = matches!(plan.base, Base::Recipe { .. });
    let (Some(at), false, true) = (split, rendered.entries.is_empty(), recipe_base) else {
        return stream(
            engine,
            req,
            &plan.image.tag,
            &plan.context,
            text,
            &rendered.entries,
            Stream { tar, network },
            host,
        );
    };
    let (recipe, ours) = text.split_at(at + 1);
    remove_stale_stages(engine, host);
    static STAGES: AtomicU64 = AtomicU64::new(0);
    let stage = format!(
        "kerblam-stage-{}-{}",
        std::process::id(),
        STAGES.fetch_add(1, Ordering::Relaxed)
    );
    let stage_ref = match engine.flavor() {
        Flavor::Podman => format!("localhost/{stage}:latest"),
        Flavor::Docker => format!("{stage}:latest"),
    };
    let opts = Stream { tar, network };
    let result =
        stream(engine, req, &stage, &plan.context, recipe, &[], opts, host).and_then(|_| {
            kerblam_archive::fault::point("engine/stage-built");
            host.check_cancelled()?;
            let layers = layer_context(plan);
            let second = format!("FROM {stage_ref}\n{ours}");
            stream(
                engine,
                req,
                &plan.image.tag,
                &layers,
                &second,
                &rendered.entries,
                opts,
                host,
            )
        });
    untag(engine, &stage_ref);
    result
}

/// The part of the plan's context that its `context` layers copy.
fn layer_context(plan: &PackagePlan) -> Context {
    let wanted: Vec<&str> = plan
        .layers
        .iter()
        .filter_map(|l| match &l.from {
            LayerSource::Context { path } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    let files: Vec<_> = plan
        .context
        .files
        .iter()
        .filter(|f| {
            wanted.iter().any(|w| {
                f.path == *w
                    || *w == "."
                    || f.path
                        .strip_prefix(*w)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
        })
        .cloned()
        .collect();
    Context {
        root: plan.context.root.clone(),
        excluded: vec![],
        total_bytes: files.iter().map(|f| f.size).sum(),
        files,
    }
}

/// The network of `RUN` steps: `KERBLAM_BUILD_NETWORK` (`none` or `host`) when set, else the
/// engine's default. A Docker daemon started without a bridge (`--bridge=none`) needs one of them
/// for BuildKit `RUN` steps.
pub(super) fn build_network() -> Result<Option<Network>, ErrorMessage> {
    match std::env::var("KERBLAM_BUILD_NETWORK").ok().as_deref() {
        None | Some("") => Ok(None),
        Some("none") => Ok(Some(Network::None)),
        Some("host") => Ok(Some(Network::Host)),
        Some(other) => Err(ErrorMessage::invalid_input(format!(
            "KERBLAM_BUILD_NETWORK is {other:?}; expected \"none\" or \"host\""
        ))),
    }
}

/// Drops a temporary tag (the image stays as long as another image builds on it).
/// Untags the stage images (`kerblam-stage-<pid>-<n>`) of kerblam processes that no longer exist:
/// a run killed with SIGKILL between the two stages cannot remove its own.
fn remove_stale_stages(engine: &Engine, host: &Host<'_>) {
    let mut cmd = engine.command();
    cmd.args(["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let Ok(out) = crate::process::run_captured(&mut cmd, engine.name()) else {
        return;
    };
    for image in String::from_utf8_lossy(&out.stdout).lines() {
        let name = image.trim_start_matches("localhost/");
        let Some(rest) = name.strip_prefix("kerblam-stage-") else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<i32>().ok());
        if let Some(pid) = pid.filter(|p| *p > 0 && !kerblam_archive::process_alive(*p)) {
            host.info(&format!(
                "removing {image}, a stage image left by kerblam process {pid} (no longer running)"
            ));
            untag(engine, image);
        }
    }
}

fn untag(engine: &Engine, reference: &str) {
    let mut cmd = engine.command();
    match engine.flavor() {
        Flavor::Podman => cmd.args(["untag", reference]),
        Flavor::Docker => cmd.args(["image", "rm", reference]),
    };
    let _ = crate::process::run_captured(&mut cmd, engine.name());
}

/// How [`stream`] builds: the tar header options and the network of `RUN` steps.
#[derive(Clone, Copy)]
pub(super) struct Stream {
    /// Tar header normalisation.
    pub tar: TarOptions,
    /// The network of `RUN` steps; `None` is the engine's default.
    pub network: Option<Network>,
}

/// Streams one build context (`context` files, the Containerfile `text`, the generated `entries`)
/// into `engine build -t tag`. A host entry that is a directory (a frozen tree) is streamed whole,
/// minus its exclude patterns; one that is a file is streamed as a file.
#[allow(clippy::too_many_arguments)]
pub(super) fn stream(
    engine: &Engine,
    req: &ExecuteRequest,
    tag: &str,
    context: &Context,
    text: &str,
    entries: &[ContextEntry],
    how: Stream,
    host: &Host<'_>,
) -> Result<(), ErrorMessage> {
    let plan = &req.plan;
    let root = Path::new(&req.paths.root);
    let extras = extras(req, text, entries)?;
    let opts = BuildOptions {
        no_cache: req.options.no_cache,
        network: how.network,
        ..BuildOptions::default()
    };
    let tar = how.tar;
    let files = context.files.len() as u64 + extras.files;
    host.info(&format!(
        "building {tag} with {} ({files} context files)",
        engine.name(),
    ));
    let reporter = Reporter::new(
        host,
        "sending the build context",
        context.total_bytes + extras.bytes,
    );
    let extras = extras.entries;
    let cancelled = || host.is_cancelled();
    let (mut writer, mut reader) = pipe(&cancelled);
    std::thread::scope(|s| {
        let producer = s.spawn(move || {
            let callback = reporter.callback();
            match write_build_context(&mut writer, root, context, &extras, tar, Some(&callback)) {
                Ok((_, summary)) => {
                    reporter.done(summary.bytes, summary.files);
                    writer.finish();
                }
                Err(e) => writer.fail(e.message().to_string()),
            }
        });
        let built = engine.build(tag, CONTAINERFILE, &mut reader, &opts);
        drop(reader);
        let _ = producer.join();
        host.check_cancelled()?;
        built.map_err(|e| {
            let mut m = errors::engine(e);
            m.message = format!("building {} failed: {}", plan.image.tag, m.message);
            m
        })
    })
}

/// What [`stream`] adds to a build context besides the plan's context files, and what it weighs.
struct Extras<'a> {
    /// The Containerfile first, then one entry per generated entry.
    entries: Vec<ExtraEntry<'a>>,
    /// Bytes to send: the kerblam executable, the host files and the plan's figure for its trees.
    bytes: u64,
    /// Files to send: one per entry that is not a tree, and the plan's figure for the trees.
    files: u64,
}

/// The Containerfile `text` and the generated `entries` as extra entries of a build context,
/// looking at each file or tree on the host (in order) for its kind and size.
fn extras<'a>(
    req: &'a ExecuteRequest,
    text: &'a str,
    entries: &'a [ContextEntry],
) -> Result<Extras<'a>, ErrorMessage> {
    let plan = &req.plan;
    let mut extras: Vec<ExtraEntry<'_>> = Vec::with_capacity(entries.len() + 1);
    extras.push(ExtraEntry {
        path: CONTAINERFILE,
        source: ExtraSource::Bytes(text.as_bytes()),
        mode: 0o644,
    });
    // Bytes of the kerblam executable and the host entries (a file's size, the plan's figure for
    // its trees), files in trees.
    let (mut bytes, mut tree_files, mut trees) = (0, 0, 0);
    for e in entries {
        let (source, size) = extra_source(req, e)?;
        if matches!(source, ExtraSource::Tree { .. }) {
            trees += 1;
        }
        bytes += size;
        extras.push(ExtraEntry {
            path: &e.path,
            source,
            mode: e.mode,
        });
    }
    if trees > 0
        && let Some(f) = &plan.freeze
    {
        bytes += f.total_bytes;
        tree_files += f.total_files;
    }
    let files = (extras.len() - trees) as u64 + tree_files;
    Ok(Extras {
        entries: extras,
        bytes,
        files,
    })
}

/// Where the content of the generated entry `e` comes from, and its size in bytes when it is the
/// kerblam executable or a host file (0 for generated text and trees, whose size the plan gives).
fn extra_source<'a>(
    req: &'a ExecuteRequest,
    e: &'a ContextEntry,
) -> Result<(ExtraSource<'a>, u64), ErrorMessage> {
    match &e.source {
        EntrySource::Kerblam => {
            let kerblam = Path::new(&req.paths.kerblam);
            let size = std::fs::metadata(kerblam)
                .map_err(|err| {
                    ErrorMessage::backend(format!(
                        "cannot read the kerblam executable {}: {err}",
                        kerblam.display()
                    ))
                })?
                .len();
            Ok((ExtraSource::File(kerblam), size))
        }
        EntrySource::Generated(text) => Ok((ExtraSource::Bytes(text.as_bytes()), 0)),
        EntrySource::Host { path, exclude } => {
            let p = Path::new(path);
            // A symlink at the root of a host layer is followed (the engine copies what it
            // points to); symlinks inside a tree are kept.
            let meta = std::fs::metadata(p).map_err(|err| {
                ErrorMessage::invalid_input(format!("cannot read the host layer {path}: {err}"))
            })?;
            if meta.is_dir() {
                Ok((ExtraSource::Tree { path: p, exclude }, 0))
            } else if meta.is_file() {
                Ok((ExtraSource::File(p), meta.len()))
            } else {
                Err(ErrorMessage::unsupported(format!(
                    "the host layer {path} is not a file or a directory; the {} backend cannot copy it",
                    req.plan.backend.name
                )))
            }
        }
    }
}

/// Saves the image `tag` into `file` (a `docker save` archive), which the host created and will
/// put into the replay archive.
fn save_image(
    engine: &Engine,
    tag: &str,
    file: &Path,
    host: &Host<'_>,
) -> Result<(), ErrorMessage> {
    host.info(&format!("saving {tag} for the replay archive"));
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(file)
        .map_err(|e| {
            ErrorMessage::backend(format!(
                "cannot open {} to save the image into: {e}",
                file.display()
            ))
        })?;
    let reporter = Reporter::new(host, format!("saving {tag}"), 0);
    let callback = reporter.callback();
    let mut counting = Counting {
        inner: &mut out,
        written: 0,
        report: &callback,
    };
    engine.save(tag, &mut counting).map_err(errors::engine)?;
    host.check_cancelled()
}

/// A writer that reports how much went through it.
struct Counting<'a, W: std::io::Write> {
    inner: &'a mut W,
    written: u64,
    report: &'a dyn Fn(u64, u64),
}

impl<W: std::io::Write> std::io::Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        (self.report)(self.written, 0);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

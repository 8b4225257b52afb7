//! Lowering a pipe of a project into a [`PackagePlan`].

use std::collections::BTreeMap;

use kerblam_plan::{
    Artifact, ArtifactKind, BackendPlan, Base, DataPaths, EnvVar, ExclusionReason, Image, Layer,
    LayerSource, Metadata, Mount, Output, PLAN_SCHEMA, PackagePlan, PipeInfo, PipeKind, Preflight,
    Purpose, Source, SourceKind,
};

use crate::Error;
use crate::context::{ExcludedDir, build_context};
use crate::digest::{sha256_bytes, sha256_files};
use crate::discover::{self, DataInventory, Pipe, recipe_candidates};
use crate::manifest::Manifest;
use crate::paths::{container_join, normalize};
use crate::project::{MANIFEST_FILE, Project};
use crate::tag::{check_tag, default_tag};

/// The version of kerblam that compiles plans.
pub const KERBLAM_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where kerblam puts its own executable inside an image.
pub const KERBLAM_IN_IMAGE: &str = "/kerblam";
/// Where the replay script goes inside an image.
pub const REPLAY_SCRIPT_IN_IMAGE: &str = "/kerblam-replay.sh";

/// The layout of the replay archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplayFormat {
    /// kerblam's own layout: zstd data, plan and checksums.
    #[default]
    V2,
    /// Kerblam! 1.x's layout (`kerblam.toml`, `data.tar.gz`, `name`), replayable by 1.x.
    KerblamV1,
}

impl ReplayFormat {
    /// The identifier stored in the plan's artifact.
    pub fn id(self) -> &'static str {
        match self {
            ReplayFormat::V2 => "kerblam.replay/v2",
            ReplayFormat::KerblamV1 => "kerblam-v1",
        }
    }
}

/// What to compile, and how.
#[derive(Debug, Clone, Default)]
pub struct PipeOptions {
    /// The pipe's name.
    pub pipe: String,
    /// Package (default) or run.
    pub run: bool,
    /// The backend; defaults to the manifest's `execution.backend`.
    pub backend: Option<String>,
    /// The image tag; defaults to `<pipe>_exec` (package) or `<pipe>_kerblam_run` (run).
    pub tag: Option<String>,
    /// Where the replay archive goes (relative to the root, or absolute); default `<pipe>.kerblam.tar`.
    pub output: Option<String>,
    /// Hash every context and data file.
    pub digests: bool,
    /// The replay archive layout.
    pub replay_format: ReplayFormat,
    /// Also save the image into the replay archive.
    pub embed_image: bool,
    /// Write a signature into the replay archive.
    pub sign: bool,
    /// RFC 3339 creation time to record (from `SOURCE_DATE_EPOCH`); `None` keeps plans timeless.
    pub created: Option<String>,
}

/// Compile a pipe of `project` into a plan: everything that does not depend on the backend. The
/// plan's `backend` part holds only the backend's name; the host asks the backend for the rest.
// long: most of it is the one PackagePlan literal, a line per field; every decision is in a
// named helper below
pub fn compile_pipe(project: &Project, opts: &PipeOptions) -> Result<PackagePlan, Error> {
    let m = &project.manifest;
    let pipe = discover::find_pipe(project, &opts.pipe)?;
    let backend = opts
        .backend
        .clone()
        .unwrap_or_else(|| m.execution.backend.clone());
    let recipe = pipe.recipe.clone().ok_or_else(|| Error::NoRecipe {
        pipe: pipe.name.clone(),
        tried: recipe_candidates(&normalize(&m.code.env_dir), &pipe.name).to_vec(),
    })?;
    let tag = image_tag(opts, &pipe.name)?;
    let paths = &m.data.paths;
    let data = DataPaths {
        input: normalize(&paths.input),
        output: normalize(&paths.output),
        intermediate: normalize(&paths.intermediate),
    };
    let context = build_context(&project.root, &excluded_dirs(&data, m), opts.digests)?;
    let inventory = data_inventory(project, opts.digests)?;
    let workdir = m.execution.workdir.clone();
    let mounts = data_mounts(&workdir, &data);
    let (layers, entrypoint) = layers_and_entrypoint(&pipe, &workdir, opts.run);
    let archive_path = opts
        .output
        .clone()
        .unwrap_or_else(|| format!("{}.kerblam.tar", pipe.name));
    let mut artifacts = Vec::new();
    if !opts.run {
        artifacts.push(Artifact {
            kind: ArtifactKind::ReplayArchive,
            path: archive_path.clone(),
            format: Some(opts.replay_format.id().into()),
            contents: replay_contents(opts),
        });
    }
    let manifest_bytes = project.source.text.as_bytes();
    let digest = sha256_bytes(manifest_bytes);
    let labels = image_labels(&pipe, project, opts, &digest);
    let mut preflight = vec![Preflight::FileExists {
        path: recipe.path.clone(),
    }];
    if !opts.run {
        preflight.extend(archive_preflight(
            &archive_path,
            &inventory,
            manifest_bytes.len() as u64,
        ));
    }

    Ok(PackagePlan {
        schema: PLAN_SCHEMA.into(),
        source: Source {
            kind: SourceKind::Pipe,
            manifest: MANIFEST_FILE.into(),
            digest,
        },
        root: ".".into(),
        name: pipe.name.clone(),
        purpose: if opts.run {
            Purpose::Run
        } else {
            Purpose::Package
        },
        image: Image { tag, labels },
        base: Base::Recipe {
            path: recipe.path.clone(),
            default: recipe.default,
        },
        context,
        layers,
        mounts,
        workdir,
        env: Vec::<EnvVar>::new(),
        entrypoint,
        output: Output {
            dir: ".".into(),
            stem: pipe.name.clone(),
        },
        artifacts,
        metadata: Metadata {
            author: None,
            version: m.meta.version.clone(),
            description: pipe.description.as_ref().map(|d| d.full()),
            kerblam_version: KERBLAM_VERSION.into(),
            created: opts.created.clone(),
        },
        preflight,
        pipe: Some(PipeInfo {
            name: pipe.name.clone(),
            kind: pipe.kind,
            path: pipe.path.clone(),
            data,
            precious: inventory.precious,
            remote: inventory.remote,
            user: m.execution.user,
        }),
        freeze: None,
        backend: BackendPlan::named(backend),
    })
}

/// The image tag: `--tag` when it is a valid reference, else `<pipe>_exec` (package) or
/// `<pipe>_kerblam_run` (run).
fn image_tag(opts: &PipeOptions, pipe: &str) -> Result<String, Error> {
    match &opts.tag {
        Some(t) => {
            check_tag(t).map_err(|message| Error::InvalidOption {
                option: "--tag".into(),
                message,
                help: Some("use a Docker image reference such as `my_process_package` or `registry.example/lab/process:1`".into()),
            })?;
            Ok(t.clone())
        }
        None => Ok(default_tag(
            pipe,
            if opts.run { "_kerblam_run" } else { "_exec" },
        )),
    }
}

/// What the build context leaves out: the data directories and the environment directory.
fn excluded_dirs(data: &DataPaths, m: &Manifest) -> [ExcludedDir; 4] {
    [
        ExcludedDir {
            path: data.input.clone(),
            reason: ExclusionReason::InputData,
        },
        ExcludedDir {
            path: data.output.clone(),
            reason: ExclusionReason::OutputData,
        },
        ExcludedDir {
            path: data.intermediate.clone(),
            reason: ExclusionReason::IntermediateData,
        },
        ExcludedDir {
            path: normalize(&m.code.env_dir),
            reason: ExclusionReason::EnvDir,
        },
    ]
}

/// The project's data files, the precious ones hashed when `digests` is asked for.
fn data_inventory(project: &Project, digests: bool) -> Result<DataInventory, Error> {
    let mut inventory = discover::data(project)?;
    if digests {
        let abs: Vec<_> = inventory
            .precious
            .iter()
            .map(|f| project.abs(&f.path))
            .collect();
        for (f, sum) in inventory.precious.iter_mut().zip(sha256_files(&abs)?) {
            f.sha256 = Some(sum);
        }
    }
    Ok(inventory)
}

/// The data directories mounted read-write at their place under the workdir, outermost first, one
/// mount per container path.
fn data_mounts(workdir: &str, data: &DataPaths) -> Vec<Mount> {
    let mut mounts: Vec<Mount> = [&data.intermediate, &data.input, &data.output]
        .into_iter()
        .map(|d| Mount {
            host: d.clone(),
            container: container_join(workdir, d),
            read_only: false,
        })
        .collect();
    mounts.sort_by(|a, b| {
        depth(&a.container)
            .cmp(&depth(&b.container))
            .then(a.container.cmp(&b.container))
    });
    mounts.dedup_by(|a, b| a.container == b.container);
    mounts
}

/// The image's layers and entrypoint: a run image holds the pipe and runs it; a package image
/// also holds kerblam, the replay script and the manifest, and runs the replay script.
fn layers_and_entrypoint(pipe: &Pipe, workdir: &str, run: bool) -> (Vec<Layer>, Vec<String>) {
    let pipe_layer = Layer {
        from: LayerSource::Context {
            path: pipe.path.clone(),
        },
        to: container_join(workdir, &pipe.path),
        mode: 0o644,
    };
    if run {
        let pipe_cmd: Vec<String> = match pipe.kind {
            PipeKind::Make => vec!["make".into(), "-f".into(), pipe.path.clone()],
            PipeKind::Shell => vec!["bash".into(), pipe.path.clone()],
        };
        return (vec![pipe_layer], pipe_cmd);
    }
    let script = replay_script(workdir, &pipe.name);
    (
        vec![
            Layer {
                from: LayerSource::Kerblam,
                to: KERBLAM_IN_IMAGE.into(),
                mode: 0o755,
            },
            Layer {
                from: LayerSource::Generated { text: script },
                to: REPLAY_SCRIPT_IN_IMAGE.into(),
                mode: 0o755,
            },
            Layer {
                from: LayerSource::Context {
                    path: MANIFEST_FILE.into(),
                },
                to: container_join(workdir, MANIFEST_FILE),
                mode: 0o644,
            },
            pipe_layer,
        ],
        vec!["/bin/sh".into(), REPLAY_SCRIPT_IN_IMAGE.into()],
    )
}

/// The image labels: the OCI title, description, version and creation time the project gives,
/// and kerblam's own (pipe, kerblam version, manifest digest).
fn image_labels(
    pipe: &Pipe,
    project: &Project,
    opts: &PipeOptions,
    digest: &str,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert(
        "org.opencontainers.image.title".to_string(),
        pipe.name.clone(),
    );
    if let Some(d) = &pipe.description {
        labels.insert(
            "org.opencontainers.image.description".into(),
            d.header.clone(),
        );
    }
    if let Some(v) = &project.manifest.meta.version {
        labels.insert("org.opencontainers.image.version".into(), v.clone());
    }
    if let Some(c) = &opts.created {
        labels.insert("org.opencontainers.image.created".into(), c.clone());
    }
    labels.insert("dev.kerblam.pipe".into(), pipe.name.clone());
    labels.insert("dev.kerblam.version".into(), KERBLAM_VERSION.into());
    labels.insert("dev.kerblam.manifest-digest".into(), digest.to_string());
    labels
}

/// What a package needs before it starts: a writable directory for the replay archive, with room
/// for the precious data stored uncompressed, the manifest and 1 MiB more.
fn archive_preflight(
    archive_path: &str,
    inventory: &DataInventory,
    manifest_len: u64,
) -> [Preflight; 2] {
    let out_dir = parent_dir(archive_path);
    let precious: u64 = inventory.precious.iter().map(|f| f.size).sum();
    let bytes = precious + manifest_len + 1024 * 1024;
    let why = format!(
        "the replay archive holds {precious} bytes of precious data, stored at most uncompressed, plus the manifest and 1 MiB for the plan, names and checksums"
    );
    [
        Preflight::Writable {
            path: out_dir.clone(),
        },
        Preflight::DiskSpace {
            path: out_dir,
            bytes,
            why,
        },
    ]
}

fn replay_contents(opts: &PipeOptions) -> Vec<String> {
    let mut c: Vec<String> = match opts.replay_format {
        ReplayFormat::V2 => vec![
            "kerblam.toml".into(),
            "name".into(),
            "plan.json".into(),
            "data.tar.zst".into(),
        ],
        ReplayFormat::KerblamV1 => vec!["kerblam.toml".into(), "data.tar.gz".into(), "name".into()],
    };
    if opts.embed_image {
        c.push("image.tar".into());
    }
    if opts.sign {
        c.push("signature.json".into());
    }
    if opts.replay_format == ReplayFormat::V2 {
        c.push("SHA256SUMS".into());
    }
    c
}

fn parent_dir(path: &str) -> String {
    match path.rsplit_once('/') {
        Some(("", _)) => "/".into(),
        Some((dir, _)) => dir.into(),
        None => ".".into(),
    }
}

fn depth(p: &str) -> usize {
    p.split('/').filter(|s| !s.is_empty()).count()
}

/// The replay script baked into a package image: fetch remote data, then run the pipe locally.
pub fn replay_script(workdir: &str, pipe: &str) -> String {
    format!(
        "#!/bin/sh\n\
         # Generated by kerblam {KERBLAM_VERSION}: replays the pipe `{pipe}`.\n\
         set -e\n\
         cd {workdir}\n\
         {KERBLAM_IN_IMAGE} data fetch\n\
         exec {KERBLAM_IN_IMAGE} run {pipe} --local \"$@\"\n",
        workdir = sh_quote(workdir),
        pipe = sh_quote(pipe),
    )
}

/// Quote a string for POSIX sh.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

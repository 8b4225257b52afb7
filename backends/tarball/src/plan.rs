//! The tarball backend's part of a plan (`kerblam_backend_plan`): which files it writes, the room
//! they need, the Containerfile of a context archive, and how to use what it writes.
//!
//! - A pipe: `<stem>.context.tar` (a build context any engine builds the image from, its
//!   Containerfile rendered here), and with `--image-format` an OCI image archive
//!   `<stem>.oci.tar` (`oci` and `oci+gzip`: gzip layers, format `oci-archive`; `oci+zstd`: zstd
//!   layers, `oci-archive+zstd`).
//! - A freeze: `<stem>.tar.zst` (the trees, streamed through zstd), `<stem>.activate.sh` and the
//!   metadata JSON `<stem>.json`, plus the OCI archive when asked for.

use std::path::Path;

use kerblam_backend_api::plan::{
    Artifact, ArtifactKind, BackendPlan, FreezeInfo, PackagePlan, Preflight, Rendered, SourceKind,
};
use kerblam_backend_api::preflight::{SLACK_BYTES, TAR_BYTES_PER_ENTRY};
use kerblam_backend_api::{ErrorMessage, PlanRequest};

use crate::context_archive;

/// The values of `options.format` (`--image-format`) this backend accepts.
pub const FORMATS: &[&str] = &["oci", "oci+gzip", "oci+zstd"];

/// The name of the rendered Containerfile in the plan.
pub const RENDERED: &str = "Containerfile";

/// The OCI archive's artifact format for `--image-format`, if one is asked for.
fn oci_format(format: Option<&str>) -> Result<Option<&'static str>, ErrorMessage> {
    match format {
        None => Ok(None),
        Some("oci" | "oci+gzip") => Ok(Some("oci-archive")),
        Some("oci+zstd") => Ok(Some("oci-archive+zstd")),
        Some(other) => Err(ErrorMessage::invalid_input(format!(
            "unknown image format {other:?}; the tarball backend writes oci (gzip layers), oci+gzip or oci+zstd"
        ))),
    }
}

fn oci_artifact(plan: &PackagePlan, format: &str) -> Artifact {
    Artifact {
        kind: ArtifactKind::OciArchive,
        path: plan.output.file(".oci.tar"),
        format: Some(format.into()),
        contents: vec![
            "index.json".into(),
            "oci-layout".into(),
            "blobs/sha256/".into(),
        ],
    }
}

/// The backend's part of `req.plan`.
pub fn plan(req: &PlanRequest) -> Result<BackendPlan, ErrorMessage> {
    let mut oci = oci_format(req.options.format.as_deref())?;
    if req.options.push.is_some() && oci.is_none() {
        // --push pushes the OCI image archive: it is written (gzip layers) when not asked for.
        oci = Some("oci-archive");
    }
    match req.plan.source.kind {
        SourceKind::Pipe => pipe(req, oci),
        SourceKind::Freeze => Ok(freeze(&req.plan, oci)),
    }
}

fn pipe(req: &PlanRequest, oci: Option<&str>) -> Result<BackendPlan, ErrorMessage> {
    let plan = &req.plan;
    let context = Artifact {
        kind: ArtifactKind::ContextArchive,
        path: plan.output.file(".context.tar"),
        format: Some("docker-build-context".into()),
        contents: vec![
            "the build context".into(),
            context_archive::recipe_path(plan).into(),
            ".kerblam/kerblam".into(),
            ".kerblam/replay.sh".into(),
        ],
    };
    let entries = plan.context.files.len() as u64 + plan.layers.len() as u64 + 1;
    let bytes = plan.context.total_bytes + entries * TAR_BYTES_PER_ENTRY + SLACK_BYTES;
    let dir = plan.output.dir.clone();
    let mut part = BackendPlan {
        usage: ["docker", "podman"]
            .iter()
            .map(|engine| {
                format!(
                    "build the image with: {}",
                    context_archive::build_command(engine, plan, Path::new(&context.path))
                )
            })
            .collect(),
        preflight: vec![
            Preflight::Writable { path: dir.clone() },
            Preflight::DiskSpace {
                path: dir,
                bytes,
                why: format!(
                    "the context archive holds the {} bytes of the build context, {TAR_BYTES_PER_ENTRY} bytes of header per entry for {entries} entries and 1 MiB of slack, plus the kerblam executable",
                    plan.context.total_bytes
                ),
            },
        ],
        rendered: vec![Rendered {
            name: RENDERED.into(),
            text: context_archive::rendered(plan, Path::new(&req.paths.root))?.containerfile,
        }],
        artifacts: vec![context],
        ..BackendPlan::default()
    };
    if let Some(format) = oci {
        part.artifacts.push(oci_artifact(plan, format));
    }
    Ok(part)
}

fn freeze(plan: &PackagePlan, oci: Option<&str>) -> BackendPlan {
    let Some(f) = &plan.freeze else {
        return BackendPlan::default();
    };
    let tarball = plan.output.file(".tar.zst");
    let mut artifacts = freeze_artifacts(plan, &tarball);
    if let Some(format) = oci {
        artifacts.push(oci_artifact(plan, format));
    }
    BackendPlan {
        artifacts,
        preflight: freeze_preflight(plan, f, oci.is_some()),
        usage: freeze_usage(&tarball),
        ..BackendPlan::default()
    }
}

/// The three files of a freeze: the `tarball` of the trees (and `kerblam-freeze/enter.sh`), the
/// copy of its activate script, and the metadata JSON.
fn freeze_artifacts(plan: &PackagePlan, tarball: &str) -> Vec<Artifact> {
    let mut trees: Vec<String> = plan
        .layers
        .iter()
        .map(|l| l.to.trim_start_matches('/').to_string())
        .collect();
    trees.push(crate::enter::PATH.to_string());
    vec![
        Artifact {
            kind: ArtifactKind::Tarball,
            path: tarball.to_string(),
            format: Some("tar+zstd".into()),
            contents: trees,
        },
        Artifact {
            kind: ArtifactKind::ActivateScript,
            path: plan.output.file(".activate.sh"),
            format: None,
            contents: vec![
                "a copy of the kerblam-freeze/activate.sh inside the tarball: it loads the modules where the frozen trees are at their original paths".into(),
            ],
        },
        Artifact {
            kind: ArtifactKind::MetadataJson,
            path: plan.output.file(".json"),
            format: Some("kerblam.freeze/v1".into()),
            contents: vec!["the plan's `freeze`, `image.labels` and `metadata`".into()],
        },
    ]
}

/// The room a freeze `f` needs: the tarball streamed into the output directory and, with an OCI
/// archive (`oci`), its layers in the temporary directory and again at the destination.
fn freeze_preflight(plan: &PackagePlan, f: &FreezeInfo, oci: bool) -> Vec<Preflight> {
    let generated = plan.generated_bytes();
    let (total, entries, n_trees) = (f.total_bytes, f.entries, f.trees.len());
    let dest = plan.output.dir.clone();
    let overhead = entries * TAR_BYTES_PER_ENTRY;
    let streamed = total + overhead + generated * 2 + SLACK_BYTES;
    let mut preflight = vec![
        Preflight::Writable { path: dest.clone() },
        Preflight::DiskSpace {
            path: dest.clone(),
            bytes: streamed,
            why: format!(
                "the tarball is streamed through zstd straight into {dest}, so it needs at most the {total} bytes of the {n_trees} trees after excludes (uncompressed), plus {TAR_BYTES_PER_ENTRY} bytes of header per entry for {entries} entries ({overhead}), plus {} bytes of generated files and 1 MiB of slack; nothing is staged in the temporary directory",
                generated * 2
            ),
        },
    ];
    if oci {
        // Each layer blob is compressed into the temporary directory, then copied into the
        // archive at the destination: one more copy in each (checks on one filesystem are added
        // up).
        preflight.push(Preflight::DiskSpace {
            path: dest,
            bytes: streamed,
            why: format!(
                "the OCI archive holds one compressed layer per tree, at most the {total} bytes of the trees after excludes plus headers"
            ),
        });
        preflight.push(Preflight::DiskSpace {
            path: "$TMPDIR".into(),
            bytes: streamed,
            why: format!(
                "the OCI layer blobs are compressed into the temporary directory first, at most {total} bytes plus headers"
            ),
        });
    }
    preflight
}

/// How to use a frozen `tarball`: unpack it and enter it, or extract it at `/` as root.
fn freeze_usage(tarball: &str) -> Vec<String> {
    let name = Path::new(tarball)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    vec![
        format!("unpack it: mkdir -p DIR && tar -xf {name} -C DIR"),
        "run a command in it, no root needed (a private user namespace): DIR/kerblam-freeze/enter.sh COMMAND".into(),
        "or a shell: DIR/kerblam-freeze/enter.sh".into(),
        format!(
            "or, as root, with the trees at their original paths: tar -xf {name} -C / && source /kerblam-freeze/activate.sh"
        ),
    ]
}

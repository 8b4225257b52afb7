//! The apptainer backend's part of a plan (`kerblam_backend_plan`): the SIF it writes (or, for a
//! run, runs), the tools it needs, the room a freeze takes while its trees are staged and
//! squashed, and the definition file.
//!
//! The definition file shown in the plan names its `%files` sources under [`SHOWN_STAGE`]; a
//! build through apptainer stages them in a temporary directory of its own, and a native build
//! stores this very text in the SIF as the record of what the image means.

use std::path::Path;

use kerblam_backend_api::plan::{
    Artifact, ArtifactKind, BackendPlan, PackagePlan, Preflight, Rendered, SourceKind,
};
use kerblam_backend_api::preflight::{BLOCK_BYTES_PER_ENTRY, SLACK_BYTES, TAR_BYTES_PER_ENTRY};
use kerblam_backend_api::{Action, ErrorMessage, PlanRequest};

use crate::{def, escape, model};

/// The name of the rendered definition file in the plan.
pub const RENDERED: &str = "definition.def";

/// Where the shown definition file says its `%files` sources are staged.
pub const SHOWN_STAGE: &str = "/kerblam-stage";

/// The definition file of `plan`, as the plan shows it.
pub fn definition(
    plan: &PackagePlan,
    root: &Path,
    kerblam: &Path,
    base_archive: Option<&Path>,
) -> Result<String, crate::Error> {
    let model = model::build(
        plan,
        model::Inputs {
            root,
            kerblam,
            base_archive,
        },
    )?;
    def::definition(&model, SHOWN_STAGE).map(|r| r.text)
}

/// The backend's part of `req.plan`.
pub fn plan(req: &PlanRequest) -> Result<BackendPlan, ErrorMessage> {
    let plan = &req.plan;
    let sif = Artifact {
        kind: ArtifactKind::Sif,
        path: plan.output.file(".sif"),
        format: Some("sif".into()),
        contents: vec![
            "squashfs root filesystem".into(),
            "definition file".into(),
            "labels".into(),
        ],
    };
    let shown = escape::sh_word(&sif.path).unwrap_or_else(|_| sif.path.clone());
    if req.action == Action::Run {
        // The image a run starts: the SIF `package` wrote. Running writes nothing.
        return Ok(BackendPlan {
            artifacts: vec![sif],
            ..BackendPlan::default()
        });
    }
    let text = definition(
        plan,
        Path::new(&req.paths.root),
        Path::new(&req.paths.kerblam),
        req.options.base_archive.as_deref().map(Path::new),
    )?;
    let tools: Vec<String> = if req.options.native {
        vec!["mksquashfs".into()]
    } else {
        // apptainer (or singularity) builds; without either, the SIF is assembled natively.
        vec![
            "apptainer".into(),
            "singularity".into(),
            "mksquashfs".into(),
        ]
    };
    let dir = plan.output.dir.clone();
    let mut preflight = vec![
        Preflight::Tool { names: tools },
        Preflight::Writable { path: dir.clone() },
    ];
    let usage = match plan.source.kind {
        SourceKind::Freeze => {
            preflight.extend(freeze_room(plan, &dir));
            vec![
                format!("apptainer run {shown}            # a shell with the modules loaded"),
                format!("apptainer run {shown} COMMAND    # run COMMAND in the environment"),
                "(`apptainer shell` and `exec` skip the start script: give them --cleanenv, or the host's environment comes in)".into(),
            ]
        }
        SourceKind::Pipe => vec![format!("run it with: apptainer run {shown}")],
    };
    Ok(BackendPlan {
        artifacts: vec![sif],
        preflight,
        rendered: vec![Rendered {
            name: RENDERED.into(),
            text,
        }],
        usage,
        ..BackendPlan::default()
    })
}

/// The room a freeze needs: its trees staged as a root filesystem and squashed in the temporary
/// directory (two copies), and the SIF at the destination. A base image is added by the backend
/// when it runs, which alone knows its size.
fn freeze_room(plan: &PackagePlan, destination: &str) -> Vec<Preflight> {
    let Some(f) = &plan.freeze else {
        return Vec::new();
    };
    let generated = plan.generated_bytes();
    let (total, entries, n_trees) = (f.total_bytes, f.entries, f.trees.len());
    let copy = total + entries * BLOCK_BYTES_PER_ENTRY + generated;
    let staged = 2 * copy;
    let staged_why = format!(
        "the temporary directory holds 2 copies of the trees: the root filesystem staged from them (hard links on one filesystem, a copy across filesystems, as from CVMFS) and the squashfs made of it; one copy is the {total} bytes of the {n_trees} trees after excludes plus up to {BLOCK_BYTES_PER_ENTRY} bytes of block rounding per entry for {entries} entries plus {generated} bytes of generated files ({copy} bytes); a base image is added by the backend"
    );
    let sif = total + entries * TAR_BYTES_PER_ENTRY + generated * 2 + SLACK_BYTES;
    let sif_why = format!(
        "the SIF holds a squashfs of the trees, at most their {total} bytes after excludes plus {TAR_BYTES_PER_ENTRY} bytes per entry for {entries} entries, plus generated files and 1 MiB"
    );
    vec![
        Preflight::DiskSpace {
            path: "$TMPDIR".into(),
            bytes: staged,
            why: staged_why,
        },
        Preflight::DiskSpace {
            path: destination.to_string(),
            bytes: sif,
            why: sif_why,
        },
    ]
}

//! The docker and podman backends' part of a plan (`kerblam_backend_plan`): the image they build,
//! the engine they need, the room a freeze takes in the engine's storage, and the Containerfile.
//!
//! A freeze streams the trees into `build -` and stages nothing, but the engine holds several
//! copies of them at once while it builds. Measured on this project's CI machine (a 400 MB tree
//! of incompressible files, peak disk use sampled during the build):
//!
//! - docker 20.10, overlay2, legacy builder and BuildKit: 1.2 GB peak in its root dir (the context
//!   it unpacks under `<root>/tmp`, the container layer `COPY` writes, the image layer committed
//!   from it), 0.4 GB after: [`DOCKER_COPIES`];
//! - podman 4.3, overlay: 0.8 GB in its graph root (the working container's layer and the
//!   committed layer, [`PODMAN_STORAGE_COPIES`]) and 1.2 GB in its temp dir (`$TMPDIR`, else
//!   `/var/tmp`: the context unpacked twice and the layer blob written while committing,
//!   [`PODMAN_TMPDIR_COPIES`]).
//!
//! One copy is the trees' bytes after excludes plus a block per entry and the generated files.

use std::path::Path;

use kerblam_backend_api::plan::{
    Artifact, ArtifactKind, BackendPlan, Base, ENGINE_STORAGE, ENGINE_TMPDIR, PackagePlan,
    Preflight, Rendered as RenderedFile, SourceKind,
};
use kerblam_backend_api::preflight::{BLOCK_BYTES_PER_ENTRY, SLACK_BYTES};
use kerblam_backend_api::{Action, ErrorMessage, PlanRequest};
use kerblam_render::Rendered;

use crate::{Engine, Flavor};

/// Copies of the trees docker holds at once in its root dir while it builds a freeze image.
pub const DOCKER_COPIES: u64 = 3;
/// Copies of the trees podman holds at once in its graph root while it builds a freeze image.
pub const PODMAN_STORAGE_COPIES: u64 = 2;
/// Copies of the trees podman holds at once in its temporary directory while it builds.
pub const PODMAN_TMPDIR_COPIES: u64 = 3;

/// The name of the rendered Containerfile in the plan.
pub const RENDERED: &str = "Containerfile";

/// The backend's part of `req.plan` for `engine`.
pub fn plan(engine: &Engine, req: &PlanRequest) -> Result<BackendPlan, ErrorMessage> {
    let plan = &req.plan;
    let mut part = BackendPlan::default();
    if req.action == Action::Run {
        // Running builds nothing; the engine checks itself before it starts.
        return Ok(part);
    }
    let rendered = render(plan, Path::new(&req.paths.root))?;
    part.rendered.push(RenderedFile {
        name: RENDERED.into(),
        text: rendered.containerfile,
    });
    part.artifacts.push(Artifact {
        kind: ArtifactKind::EngineImage,
        path: plan.image.tag.clone(),
        format: None,
        contents: vec![format!(
            "{} + {} layers",
            base_name(&plan.base),
            plan.layers.len()
        )],
    });
    part.preflight.push(Preflight::Tool {
        names: vec![engine.name().to_string()],
    });
    if plan.source.kind == SourceKind::Freeze {
        part.preflight.extend(freeze_room(engine.flavor(), plan));
        let (e, tag) = (engine.name(), &plan.image.tag);
        part.usage = vec![
            format!("{e} run --rm -it {tag}            # a shell with the modules loaded"),
            format!("{e} run --rm {tag} COMMAND      # run COMMAND in the environment"),
        ];
    }
    Ok(part)
}

fn base_name(base: &Base) -> &str {
    match base {
        Base::Recipe { path, .. } => path,
        Base::Image { reference } => reference,
        Base::Archive { path } => path,
        Base::Scratch => "scratch",
    }
}

/// The Containerfile and the context entries its `COPY` lines read: the recipe's text (read from
/// the project) followed by kerblam's lines.
pub fn render(plan: &PackagePlan, root: &Path) -> Result<Rendered, ErrorMessage> {
    let recipe = match &plan.base {
        Base::Recipe { path, .. } => {
            let p = root.join(path);
            let text = std::fs::read_to_string(&p).map_err(|e| {
                ErrorMessage::invalid_input(format!("cannot read the recipe {}: {e}", p.display()))
            })?;
            Some(text)
        }
        Base::Archive { path } => {
            return Err(ErrorMessage::unsupported(format!(
                "the {} backend cannot start from the base archive {path}; load it into the engine and use an image base",
                plan.backend.name
            )));
        }
        _ => None,
    };
    kerblam_render::render(plan, recipe.as_deref()).map_err(|e| {
        ErrorMessage::invalid_input(format!(
            "cannot write the Containerfile of {}: {e}",
            plan.name
        ))
    })
}

/// The room a freeze needs in the engine's storage while it builds (see the module docs).
fn freeze_room(flavor: Flavor, plan: &PackagePlan) -> Vec<Preflight> {
    let Some(f) = &plan.freeze else {
        return Vec::new();
    };
    let generated = plan.generated_bytes();
    let (total, entries, n_trees) = (f.total_bytes, f.entries, f.trees.len());
    let copy = total + entries * BLOCK_BYTES_PER_ENTRY + generated;
    let one = format!(
        "one copy is the {total} bytes of the {n_trees} trees after excludes, plus up to {BLOCK_BYTES_PER_ENTRY} bytes of block rounding per entry for {entries} entries, plus {generated} bytes of generated files ({copy} bytes), and 1 MiB of slack; kerblam streams the trees into the build and stages nothing itself"
    );
    match flavor {
        Flavor::Docker => vec![Preflight::DiskSpace {
            path: ENGINE_STORAGE.into(),
            bytes: DOCKER_COPIES * copy + SLACK_BYTES,
            why: format!(
                "while building, docker holds {DOCKER_COPIES} copies of the trees in its root dir (the unpacked build context, the container layer COPY writes, the committed image layer); {one}"
            ),
        }],
        Flavor::Podman => vec![
            Preflight::DiskSpace {
                path: ENGINE_STORAGE.into(),
                bytes: PODMAN_STORAGE_COPIES * copy + SLACK_BYTES,
                why: format!(
                    "while building, podman holds {PODMAN_STORAGE_COPIES} copies of the trees in its graph root (the working container's layer, the committed image layer); {one}"
                ),
            },
            Preflight::DiskSpace {
                path: ENGINE_TMPDIR.into(),
                bytes: PODMAN_TMPDIR_COPIES * copy + SLACK_BYTES,
                why: format!(
                    "while building, podman holds {PODMAN_TMPDIR_COPIES} copies of the trees in its temporary directory (the build context, unpacked twice, and the layer blob it commits); {one}"
                ),
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use kerblam_backend_api::{ExecuteOptions, Paths};
    use kerblam_compiler::freeze::synthetic;

    use super::*;

    fn part(engine: Engine, dir: &Path) -> (PackagePlan, BackendPlan) {
        let s = synthetic::create(&dir.join("eessi"), false);
        let plan = s.plan(engine.name(), &dir.join("dest"));
        let s = |p: &Path| p.to_string_lossy().into_owned();
        let request = PlanRequest {
            request: kerblam_backend_api::PLAN_REQUEST_TAG.into(),
            action: Action::Package,
            plan: plan.clone(),
            paths: Paths {
                root: s(dir),
                kerblam: "kerblam".into(),
                output_dir: s(dir),
                temp_dir: s(dir),
            },
            options: ExecuteOptions::default(),
        };
        (plan.clone(), super::plan(&engine, &request).unwrap())
    }

    fn disk(part: &BackendPlan) -> Vec<(String, u64, String)> {
        part.preflight
            .iter()
            .filter_map(|p| match p {
                Preflight::DiskSpace { path, bytes, why } => {
                    Some((path.clone(), *bytes, why.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// The disk-space checks of an engine freeze: in the engine's own directories (kerblam stages
    /// nothing), as many copies of the trees after excludes as the engine was measured to hold;
    /// the image is the one artifact, and the engine the one tool.
    #[test]
    fn engine_freezes_check_room_in_the_engine_dirs_for_the_copies_it_holds() {
        let t = tempfile::tempdir().unwrap();
        let (plan, docker) = part(Engine::docker(), t.path());
        let f = plan.freeze.as_ref().unwrap();
        assert_eq!(docker.artifacts.len(), 1);
        assert_eq!(docker.artifacts[0].kind, ArtifactKind::EngineImage);
        assert_eq!(docker.artifacts[0].path, plan.image.tag);
        assert!(docker.preflight.contains(&Preflight::Tool {
            names: vec!["docker".into()]
        }));
        let checks = disk(&docker);
        assert_eq!(checks.len(), 1, "{checks:?}");
        let (path, bytes, why) = &checks[0];
        assert_eq!(path, ENGINE_STORAGE);
        // Three copies, each at least the trees' bytes plus a block per file, at most 4 MiB more.
        let low = f.total_bytes + f.total_files * BLOCK_BYTES_PER_ENTRY;
        assert!(*bytes >= DOCKER_COPIES * low, "{bytes}");
        assert!(*bytes < DOCKER_COPIES * (low + 4 * 1024 * 1024), "{bytes}");
        assert!(why.contains("docker holds 3 copies"), "{why}");
        assert!(
            why.contains(&format!(
                "{} bytes of the 5 trees after excludes",
                f.total_bytes
            )),
            "{why}"
        );
        assert!(why.contains("stages nothing"), "{why}");
        assert_eq!(docker.rendered[0].name, RENDERED);
        assert!(docker.usage[0].starts_with("docker run --rm -it "));

        let (_, podman) = part(Engine::podman(), t.path());
        let checks = disk(&podman);
        let paths: Vec<&str> = checks.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(paths, [ENGINE_STORAGE, ENGINE_TMPDIR]);
        assert!(checks[0].1 >= PODMAN_STORAGE_COPIES * low);
        assert!(checks[1].1 >= PODMAN_TMPDIR_COPIES * low);
        assert!(checks[1].1 > checks[0].1);
        assert!(
            checks[1].2.contains("temporary directory"),
            "{}",
            checks[1].2
        );
        // Nothing at the destination or kerblam's temp dir: nothing is written there.
        assert!(
            !podman
                .preflight
                .iter()
                .any(|p| matches!(p, Preflight::Writable { .. }))
        );
    }
}

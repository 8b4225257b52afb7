//! Test helpers: compile example projects (copied to temp dirs) into apptainer plans, build
//! requests, and find the local base image archive.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use kerblam_backend_api::plan::PackagePlan;
use kerblam_backend_api::{Action, ExecuteRequest, Paths};
use kerblam_backend_apptainer::Settings;
use kerblam_backend_apptainer::tool::Identity;
use kerblam_compiler::{CheckOptions, PipeOptions, Project};

/// The workspace's `examples/` dir.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Copy a directory tree (files and dirs only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let mut entries: Vec<_> = std::fs::read_dir(from).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

/// A copy of `examples/<name>` in a fresh temp dir; returns (guard, project root).
pub fn example(name: &str) -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join(name);
    copy_dir(&examples().join(name), &root);
    (t, root)
}

/// Compile `pipe` of the project at `root` for the apptainer backend.
pub fn plan(root: &Path, pipe: &str, run: bool) -> PackagePlan {
    let project = Project::discover(root, CheckOptions::default()).unwrap();
    kerblam_compiler::compile_pipe(
        &project,
        &PipeOptions {
            pipe: pipe.into(),
            run,
            backend: Some("apptainer".into()),
            ..Default::default()
        },
    )
    .unwrap()
}

/// A request for `plan` rooted at `root`, temp files in `tmp`, with `kerblam` as the executable.
/// A plan the compiler made (its backend part empty) gets the apptainer backend's part first, as
/// kerblam writes it in before anything runs.
pub fn request(
    action: Action,
    plan: PackagePlan,
    root: &Path,
    tmp: &Path,
    kerblam: &Path,
) -> ExecuteRequest {
    std::fs::create_dir_all(tmp).unwrap();
    let mut req = ExecuteRequest::new(
        action,
        plan,
        Paths {
            root: root.to_string_lossy().into(),
            kerblam: kerblam.to_string_lossy().into(),
            output_dir: root.to_string_lossy().into(),
            temp_dir: tmp.to_string_lossy().into(),
        },
    );
    if req.plan.backend == kerblam_backend_api::plan::BackendPlan::named("apptainer") {
        let asked = kerblam_backend_api::PlanRequest::for_execute(&req);
        req.plan.backend = kerblam_backend_apptainer::plan::plan(&asked).unwrap();
        req.plan.backend.name = "apptainer".into();
    }
    req
}

/// A fake kerblam executable that prints how it was called and where.
pub fn fake_kerblam(dir: &Path) -> PathBuf {
    let p = dir.join("fake-kerblam");
    std::fs::write(&p, "#!/bin/sh\necho \"kerblam $* (in $(pwd))\"\n").unwrap();
    chmod_x(&p);
    p
}

pub fn chmod_x(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Settings for a test: the given apptainer, uid, and a fixed time.
pub fn settings(apptainer: Option<PathBuf>, uid: u32, dir: &Path) -> Settings {
    Settings {
        apptainer,
        identity: Identity {
            uid,
            user: if uid == 0 {
                "root".into()
            } else {
                "alice".into()
            },
            subuid: dir.join("subuid"),
            subgid: dir.join("subgid"),
        },
        time: 1_700_000_000,
    }
}

fn ok(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|o| o.status.success())
}

/// `docker save`/`podman save` of `kerblam-test-base:latest` into `dir`, or why it cannot be made
/// (give that to `kerblam_test_support::require`, which fails under `KERBLAM_REQUIRE_ENGINES=1`).
/// `KERBLAM_TEST_BASE_ARCHIVE` names such an archive directly (e.g. to run as an unprivileged
/// user without access to an engine).
pub fn base_archive(dir: &Path) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("KERBLAM_TEST_BASE_ARCHIVE") {
        return Ok(PathBuf::from(p));
    }
    let out = dir.join("base.tar");
    for (engine, tag) in [
        ("docker", "kerblam-test-base:latest"),
        ("podman", "localhost/kerblam-test-base:latest"),
    ] {
        if ok(Command::new(engine).args(["image", "inspect", tag]))
            && ok(Command::new(engine).args(["save", "-o"]).arg(&out).arg(tag))
        {
            return Ok(out);
        }
    }
    Err("no engine has kerblam-test-base:latest (run `bash scripts/engines.sh base-image`)".into())
}

/// Whether the `tools` a native SIF test needs are all on PATH; `None` (a skip, or a failure under
/// `KERBLAM_REQUIRE_ENGINES=1`) when one is missing.
pub fn require_tools(tools: &[&str]) -> Option<()> {
    kerblam_test_support::require_tools(
        tools,
        "the native SIF is built and checked with them; bash scripts/engines.sh install",
    )
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    kerblam_backend_api::preflight::find_tool(program).is_some()
}

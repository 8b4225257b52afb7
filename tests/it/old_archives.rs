//! What the previous kerblam wrote, read by today's: `tests/fixtures/v1/` holds a replay archive
//! and a checked-in plan made at the last commit whose plans are `kerblam.plan/v1` (its README
//! says how). The archive unpacks, and runs through a backend (a stub, so no engine is needed);
//! the plan is stale, and `kerblam plan --check` prints the command that regenerates it.

use crate::support;

use std::path::{Path, PathBuf};

use kerblam_backend_api::host::testing;
use support::project::{TestProject, show_joined};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/v1")
        .join(name)
}

#[test]
fn the_fixture_is_what_the_previous_kerblam_wrote() {
    let archive = kerblam_archive::ReplayArchive::open(&fixture("process.kerblam.tar")).unwrap();
    archive.verify(None).unwrap();
    let plan: serde_json::Value = serde_json::from_slice(archive.plan_json().unwrap()).unwrap();
    assert_eq!(plan["schema"], "kerblam.plan/v1");
    assert_eq!(
        plan["backend"], "tarball",
        "v1 names its backend as a string"
    );
    let checked_in = std::fs::read(fixture("process.plan.json")).unwrap();
    assert_eq!(archive.plan_json().unwrap(), checked_in.as_slice());
}

#[test]
fn a_replay_archive_of_the_previous_kerblam_unpacks() {
    let p = TestProject::new("");
    let archive = fixture("process.kerblam.tar");
    let dest = p.path("replayed");
    let o = p.kerblam(&[
        "replay",
        archive.to_str().unwrap(),
        dest.to_str().unwrap(),
        "--no-run",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show_joined(&o));
    assert!(
        show_joined(&o).contains("not running (--no-run)"),
        "{}",
        show_joined(&o)
    );
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/process");
    for file in [
        "kerblam.toml",
        "data/in/precious.txt",
        "data/in/test_precious.txt",
    ] {
        assert_eq!(
            std::fs::read(dest.join(file)).unwrap(),
            std::fs::read(example.join(file)).unwrap(),
            "{file}"
        );
    }
}

/// The replay reads the v1 plan as today's (`kerblam_plan::upgrade`), holds it to the
/// destination, and has a backend run it: here a stub C plugin that claims everything and answers
/// a run with exit code 3, which kerblam exits with.
#[test]
fn a_replay_archive_of_the_previous_kerblam_runs_through_a_backend() {
    let t = tempfile::tempdir().unwrap();
    testing::c_fixture(
        t.path(),
        "libcstub.so",
        &["NAME=\"cstub\"", "CLAIM_ALL", "EXIT_CODE=3"],
    );
    let p = TestProject::new("");
    let archive = fixture("process.kerblam.tar");
    let dest = p.path("replayed");
    let o = p.kerblam(&[
        "--backend-path",
        t.path().to_str().unwrap(),
        "replay",
        archive.to_str().unwrap(),
        dest.to_str().unwrap(),
        "--backend",
        "cstub",
    ]);
    let msg = show_joined(&o);
    assert_eq!(o.status.code(), Some(3), "{msg}");
    assert!(
        msg.contains("the replayed pipe failed with exit code 3"),
        "{msg}"
    );
    assert!(dest.join("data/in/precious.txt").is_file(), "{msg}");
}

/// A plan checked in by the previous kerblam is stale (today's plans are v2): `--check` shows the
/// difference and the command that writes today's plan, which then checks clean.
#[test]
fn a_plan_checked_in_by_the_previous_kerblam_is_stale_with_the_command_to_regenerate_it() {
    let plugins = testing::build_workspace_packages(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"),
        &["kerblam-backend-tarball"],
    )
    .expect("cargo build of the tarball plugin");
    let p = TestProject::example("process");
    std::fs::copy(fixture("process.plan.json"), p.path("v1.plan.json")).unwrap();
    let dir = plugins.to_str().unwrap();
    let args = |last: &[&str]| {
        let mut a = vec![
            "--backend-path",
            dir,
            "plan",
            "process",
            "--backend",
            "tarball",
        ];
        a.extend_from_slice(last);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let check = args(&["--check", "v1.plan.json"]);
    let check: Vec<&str> = check.iter().map(String::as_str).collect();
    let o = p.command(&check).current_dir(p.root()).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}", show_joined(&o));
    assert!(
        stdout.starts_with("--- v1.plan.json\n+++ (generated)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n-  \"schema\": \"kerblam.plan/v1\",\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n+  \"schema\": \"kerblam.plan/v2\",\n"),
        "{stdout}"
    );
    let regenerate = format!(
        "kerblam -C {} --backend-path {dir} plan process --backend tarball -o v1.plan.json",
        p.root().display()
    );
    assert!(
        stderr.contains(&format!(
            "error: v1.plan.json is stale; regenerate it with `{regenerate}`"
        )),
        "{stderr}"
    );

    // The command it prints, run as printed, writes today's plan, which checks clean.
    let words: Vec<&str> = regenerate.split(' ').skip(3).collect();
    let o = p.command(&words).current_dir(p.root()).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show_joined(&o));
    let o = p.command(&check).current_dir(p.root()).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show_joined(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("v1.plan.json is up to date"));
}

//! `kerblam package --backend tarball` end to end: the CLI loads the real tarball plugin, which
//! writes the context and replay archives next to the project and prints the build commands; with
//! `-q` and off a terminal nothing but the paths is printed; a destination under a file is refused
//! with its path and nothing is written.

mod support;

use std::path::{Path, PathBuf};

use kerblam_backend_api::host::testing;
use support::project::{TestProject, show};

fn plugin_dir() -> PathBuf {
    testing::build_workspace_packages(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"),
        &["kerblam-backend-tarball"],
    )
    .expect("cargo build of the tarball plugin")
}

fn package(p: &TestProject, extra: &[&str]) -> std::process::Output {
    let dir = plugin_dir();
    let mut args = vec![
        "--backend-path",
        dir.to_str().unwrap(),
        "package",
        "process",
        "--backend",
        "tarball",
    ];
    args.extend_from_slice(extra);
    p.kerblam(&args)
}

#[test]
fn kerblam_package_with_the_tarball_backend_writes_both_archives() {
    let p = TestProject::example("process");
    let o = package(&p, &[]);
    assert!(o.status.success(), "{}", show(&o));
    let root = p.root().canonicalize().unwrap();
    let ctx = root.join("process.context.tar");
    let replay = root.join("process.kerblam.tar");
    assert!(ctx.is_file() && replay.is_file(), "{}", show(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains(&ctx.display().to_string()), "{}", show(&o));
    assert!(
        stdout.contains(&replay.display().to_string()),
        "{}",
        show(&o)
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(&format!(
            "docker build -t process_exec - < {}",
            ctx.display()
        )),
        "{}",
        show(&o)
    );
    assert!(stderr.contains(&format!(
        "podman build -t process_exec - < {}",
        ctx.display()
    )));
    // Not a terminal: no progress output.
    assert!(!stderr.contains("files)"), "{}", show(&o));
    let archive = kerblam_archive::ReplayArchive::open(&replay).unwrap();
    assert_eq!(archive.image_name(), Some("process_exec"));
}

#[test]
fn quiet_prints_only_the_paths() {
    let p = TestProject::example("process");
    let o = package(&p, &["-q"]);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "", "{}", show(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().count(),
        2,
        "{}",
        show(&o)
    );
}

#[test]
fn a_destination_under_a_file_is_refused_and_nothing_is_written() {
    let p = TestProject::example("process");
    p.write("blocker", "not a directory");
    let out = p.path("blocker/sub/process.kerblam.tar");
    let o = package(&p, &["-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    // miette wraps long lines as "\n  | ": join them again.
    let stderr = String::from_utf8_lossy(&o.stderr).replace("\n  | ", " ");
    assert!(stderr.contains("is not a directory"), "{}", show(&o));
    assert!(stderr.contains("blocker"), "{}", show(&o));
    assert!(!p.exists("process.context.tar"), "{}", show(&o));
    assert_eq!(p.read("blocker"), "not a directory");
}

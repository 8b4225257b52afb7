//! `kerblam package --backend apptainer` and `kerblam replay --backend apptainer` through the real
//! plugin library, with a recording stand-in for the `apptainer` executable on `PATH`: Apptainer
//! cannot be installed on these machines (it is not packaged for this Debian).

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::project::{TestProject, show};

/// The workspace plugins these tests load (built by `support::plugin_dir`).
const PLUGINS: &[&str] = &["kerblam-backend-apptainer"];

/// A stand-in `apptainer` in `dir/bin` that records its argv in `dir/argv` and writes a dummy SIF.
fn stand_in(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        "#!/bin/sh\n# Stand-in for apptainer, which cannot be installed here.\nprintf '%s\\n' \"$@\" > '{}'\nfor a in \"$@\"; do dest=\"$def\"; def=\"$a\"; done\n[ \"$1\" = build ] && printf '%032dSIF_MAGIC\\000stand-in' 0 > \"$dest\"\necho \"stand-in apptainer $1\"\n",
        dir.join("argv").display()
    );
    let p = bin.join("apptainer");
    std::fs::write(&p, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn with_env(mut c: Command, plugins: &Path, bin: &Path) -> Command {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    c.env("KERBLAM_BACKEND_PATH", plugins).env("PATH", path);
    c
}

#[test]
fn package_and_replay_through_the_apptainer_plugin_with_a_recording_stand_in() {
    let plugins = support::plugin_dir(PLUGINS);
    let p = TestProject::example("process");
    let rec = tempfile::tempdir().unwrap();
    let bin = stand_in(rec.path());
    let out = with_env(
        p.command(&["package", "process", "--backend", "apptainer"]),
        &plugins,
        &bin,
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        show(&out).contains("stand-in apptainer build"),
        "the build output streams: {}",
        show(&out)
    );
    assert_eq!(
        std::fs::read(p.path("process.sif")).unwrap(),
        b"00000000000000000000000000000000SIF_MAGIC\0stand-in"
    );
    assert!(p.exists("process.kerblam.tar"));
    let argv = std::fs::read_to_string(rec.path().join("argv")).unwrap();
    let argv: Vec<&str> = argv.lines().collect();
    assert_eq!(argv[0], "build");
    assert!(
        argv[argv.len() - 2].contains("process.sif.tmp-"),
        "{argv:?}"
    );
    assert!(argv[argv.len() - 1].ends_with("process.def"), "{argv:?}");

    // Replay elsewhere, with the SIF copied next to the data: apptainer run binds the data dirs.
    let dest = tempfile::tempdir().unwrap();
    std::fs::copy(p.path("process.sif"), dest.path().join("process.sif")).unwrap();
    let archive = p.path("process.kerblam.tar");
    let mut c = Command::new(env!("CARGO_BIN_EXE_kerblam"));
    c.arg("replay")
        .arg(&archive)
        .arg(dest.path())
        .args(["--", "extra arg"]);
    let out = with_env(c, &plugins, &bin).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let argv = std::fs::read_to_string(rec.path().join("argv")).unwrap();
    let d = dest.path().display();
    assert!(argv.starts_with("run\n"), "{argv}");
    assert!(
        argv.contains(&format!("--bind\n{d}/data/in:/data/in\n")),
        "{argv}"
    );
    assert!(
        argv.contains(&format!("--bind\n{d}/data/out:/data/out\n")),
        "{argv}"
    );
    // The image, then the host's arguments for the entrypoint (the CLI may put `--` first).
    let after_image = argv
        .split(&format!("{d}/process.sif\n"))
        .nth(1)
        .expect("the image is run");
    assert!(after_image.ends_with("extra arg\n"), "{argv}");
    assert_eq!(
        std::fs::read(dest.path().join("data/in/precious.txt")).unwrap(),
        std::fs::read(p.path("data/in/precious.txt")).unwrap()
    );
}

/// Without apptainer on `PATH`, `kerblam package --backend apptainer` assembles the SIF itself;
/// the recipe's base comes from the local engine (`kerblam-test-base`, never pulled).
#[test]
fn package_without_apptainer_writes_a_native_sif() {
    // The base comes from whichever engine runs (docker first); it is imported here, so this test
    // does not depend on another test binary having built it.
    let Some(engine) = ["docker", "podman"]
        .into_iter()
        .find_map(support::engines::engine_if_running)
    else {
        support::unavailable::<()>(
            "neither docker nor podman is running (scripts/engines.sh start)",
        );
        return;
    };
    let base =
        support::engines::ensure_base_image(&engine, Path::new(env!("CARGO_BIN_EXE_kerblam")));
    if support::require_tool(
        "mksquashfs",
        "the native SIF's squashfs; bash scripts/engines.sh install",
    )
    .is_none()
    {
        return;
    }
    let plugins = support::plugin_dir(PLUGINS);
    let p = TestProject::example("minimal");
    p.write(
        "src/dockerfiles/default.dockerfile",
        format!("FROM {base}\nCOPY . .\n"),
    );
    let empty = tempfile::tempdir().unwrap();
    // With SOURCE_DATE_EPOCH set (mksquashfs refuses it next to its own time options, so the
    // backend must not pass it on), twice: once with no apptainer on PATH (native automatically),
    // once with a stand-in apptainer on PATH and --native (which must not run it). The SIFs are
    // byte-identical.
    let rec = tempfile::tempdir().unwrap();
    let package = |bin: &Path, extra: &[&str]| {
        let mut args = vec!["package", "hello", "--backend", "apptainer", "--force"];
        args.extend_from_slice(extra);
        let out = with_env(p.command(&args), &plugins, bin)
            .env(
                "PATH",
                format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display()),
            )
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        if extra.is_empty() {
            assert!(show(&out).contains("assembled natively"), "{}", show(&out));
        }
        std::fs::read(p.path("hello.sif")).unwrap()
    };
    let sif = package(empty.path(), &[]);
    assert_eq!(&sif[32..42], b"SIF_MAGIC\0");
    assert_eq!(
        i64::from_le_bytes(sif[64..72].try_into().unwrap()),
        1_700_000_000,
        "the SIF's creation time is SOURCE_DATE_EPOCH"
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = package(&stand_in(rec.path()), &["--native"]);
    assert!(
        !rec.path().join("argv").exists(),
        "--native must not run apptainer"
    );
    assert!(again == sif, "two packages with SOURCE_DATE_EPOCH differ");
    assert!(p.exists("hello.kerblam.tar"));
}

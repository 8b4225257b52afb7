//! The native SIF path (no apptainer, no root needed, no fakeroot): checked with Debian's
//! `siftool` and `unsquashfs`, and by running the image's runscript from the unpacked tree under
//! `chroot` with the env scripts sourced. The base is `kerblam-test-base:latest` (busybox sh,
//! bash, make) saved with `docker save`/`podman save`; without an engine the tests skip.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use kerblam_backend_api::plan::{Artifact, ArtifactKind};
use kerblam_backend_api::{Action, Host};
use kerblam_backend_apptainer::execute_with;

fn require_tools() -> Option<()> {
    common::require_tools(&["mksquashfs", "unsquashfs", "siftool", "chroot"])
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Unpack the SIF's partition (via `siftool dump`) into `dir/rootfs`; returns the rootfs.
fn unpack(sif: &Path, id: u32, dir: &Path) -> PathBuf {
    let part = dir.join("part.squashfs");
    let bytes = Command::new("siftool")
        .args(["dump", &id.to_string()])
        .arg(sif)
        .output()
        .unwrap();
    assert!(bytes.status.success());
    std::fs::write(&part, &bytes.stdout).unwrap();
    let listing = run(Command::new("unsquashfs").arg("-l").arg(&part));
    for p in [
        "squashfs-root/.singularity.d/runscript",
        "squashfs-root/.singularity.d/env/90-environment.sh",
        "squashfs-root/.singularity.d/labels.json",
        "squashfs-root/.singularity.d/actions/run",
        "squashfs-root/bin",
    ] {
        assert!(listing.lines().any(|l| l == p), "{p} not in:\n{listing}");
    }
    // gzip, which every squashfs reader an Apptainer runs on has (src/squash.rs says why).
    let superblock = run(Command::new("unsquashfs").arg("-s").arg(&part));
    assert!(
        superblock.lines().any(|l| l.trim() == "Compression gzip"),
        "{superblock}"
    );
    let rootfs = dir.join("rootfs");
    run(Command::new("unsquashfs").arg("-d").arg(&rootfs).arg(&part));
    rootfs
}

/// Run the runscript under chroot with the env scripts sourced, as `apptainer run` does.
fn chroot_run(rootfs: &Path, args: &str) -> String {
    run(Command::new("chroot").arg(rootfs).args([
        "/bin/sh",
        "-c",
        &format!(
            "for s in /.singularity.d/env/*.sh; do . \"$s\"; done; exec /.singularity.d/runscript {args}"
        ),
    ]))
}

#[test]
fn native_sif_passes_siftool_and_its_runscript_runs_under_chroot() {
    if require_tools().is_none() {
        return;
    }
    let (t, root) = common::example("process");
    let work = t.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let Some(base) = kerblam_test_support::require(common::base_archive(&work)) else {
        return;
    };
    let kerblam = common::fake_kerblam(&work);
    let mut plan = common::plan(&root, "process", false);
    plan.env.push(kerblam_backend_api::plan::EnvVar {
        name: "GREETING".into(),
        value: "it's \"$quoted\"".into(),
    });
    plan.image
        .labels
        .insert("dev.kerblam.test".into(), "a b $c".into());
    let mut req = common::request(Action::Package, plan, &root, &work.join("tmp"), &kerblam);
    req.options.base_archive = Some(base.to_string_lossy().into());
    // No apptainer: the native path is taken automatically.
    let settings = common::settings(None, 1000, &work);
    let res = execute_with(&req, &Host::none(), &settings).unwrap();
    assert!(
        res.notes.iter().any(|n| n.contains("assembled natively")),
        "{:?}",
        res.notes
    );
    let sif = root.join("process.sif");
    assert_eq!(res.artifacts[0].path, sif.to_string_lossy());

    let list = run(Command::new("siftool").arg("list").arg(&sif));
    eprintln!("siftool list:\n{list}");
    assert!(list.contains("Def.FILE"), "{list}");
    assert!(list.contains("JSON.Labels"), "{list}");
    assert!(
        list.contains("FS (Squashfs/*System/amd64)") || list.contains("Squashfs"),
        "{list}"
    );
    let header = run(Command::new("siftool").arg("header").arg(&sif));
    assert!(
        header.contains("amd64") || header.contains("x86_64"),
        "{header}"
    );
    let info = run(Command::new("siftool").args(["info", "3"]).arg(&sif));
    eprintln!("siftool header:\n{header}\nsiftool info 3:\n{info}");
    assert!(
        info.contains("Squashfs") && info.contains("System"),
        "{info}"
    );
    let def = run(Command::new("siftool").args(["dump", "1"]).arg(&sif));
    assert!(def.contains("Bootstrap: docker-archive"), "{def}");
    assert!(def.contains(&format!("From: {}", base.display())), "{def}");
    let labels: serde_json::Value =
        serde_json::from_str(&run(Command::new("siftool").args(["dump", "2"]).arg(&sif))).unwrap();
    assert_eq!(labels["dev.kerblam.pipe"], "process");
    assert_eq!(labels["dev.kerblam.test"], "a b $c");

    let rootfs = unpack(&sif, 3, &work);
    // The runscript does what the docker entrypoint does: the replay script, in the workdir,
    // calling kerblam with the arguments passed to `apptainer run`.
    let out = chroot_run(&rootfs, "--profile 'test it'");
    assert_eq!(
        out,
        "kerblam data fetch (in /)\nkerblam run process --local --profile test it (in /)\n"
    );
    let greeting = run(Command::new("chroot").arg(&rootfs).args([
        "/bin/sh",
        "-c",
        ". /.singularity.d/env/90-environment.sh; printf %s \"$GREETING\"",
    ]));
    assert_eq!(greeting, "it's \"$quoted\"");
    let in_image_labels =
        std::fs::read_to_string(rootfs.join(".singularity.d/labels.json")).unwrap();
    assert!(
        in_image_labels.contains("\"dev.kerblam.test\": \"a b $c\""),
        "{in_image_labels}"
    );
    assert!(rootfs.join("src/workflows/process.makefile").is_file());
    assert!(rootfs.join("kerblam-replay.sh").is_file());
    assert_eq!(
        std::fs::read(rootfs.join("kerblam")).unwrap(),
        std::fs::read(&kerblam).unwrap()
    );
    assert!(
        !rootfs.join("data/in/precious.txt").exists(),
        "input data stays out of the image"
    );
}

#[test]
fn native_sif_is_byte_identical_across_runs() {
    if require_tools().is_none() {
        return;
    }
    let (t, root) = common::example("minimal");
    let work = t.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let Some(base) = kerblam_test_support::require(common::base_archive(&work)) else {
        return;
    };
    let kerblam = common::fake_kerblam(&work);
    let plan = common::plan(&root, "hello", false);
    let mut req = common::request(Action::Package, plan, &root, &work.join("tmp"), &kerblam);
    req.options.base_archive = Some(base.to_string_lossy().into());
    req.options.native = true;
    req.options.force = true;
    // --native is honoured even when apptainer is present: the stand-in must not run.
    let fake = work.join("apptainer-must-not-run");
    std::fs::write(&fake, "#!/bin/sh\ntouch \"$0.ran\"\nexit 1\n").unwrap();
    common::chmod_x(&fake);
    let settings = common::settings(Some(fake.clone()), 0, &work);
    let a = execute_with(&req, &Host::none(), &settings).unwrap();
    let first = std::fs::read(root.join("hello.sif")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = execute_with(&req, &Host::none(), &settings).unwrap();
    let second = std::fs::read(root.join("hello.sif")).unwrap();
    assert!(!work.join("apptainer-must-not-run.ran").exists());
    assert_eq!(a.artifacts[0].sha256, b.artifacts[0].sha256);
    assert!(first == second, "two native builds differ");
    // The fixed time is in the SIF header (created/modified at offsets 64 and 72).
    assert_eq!(
        i64::from_le_bytes(first[64..72].try_into().unwrap()),
        1_700_000_000
    );
}

#[test]
fn a_real_pipe_runs_from_the_native_sif() {
    if require_tools().is_none() {
        return;
    }
    let (t, root) = common::example("process");
    let work = t.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let Some(base) = kerblam_test_support::require(common::base_archive(&work)) else {
        return;
    };
    // The run plan of `shout` (entrypoint: bash src/workflows/shout.sh), written as a SIF.
    let mut plan = common::plan(&root, "shout", true);
    plan.artifacts = vec![Artifact {
        kind: ArtifactKind::Sif,
        path: "shout.sif".into(),
        format: Some("sif".into()),
        contents: vec![],
    }];
    let mut req = common::request(
        Action::Package,
        plan,
        &root,
        &work.join("tmp"),
        Path::new("/k"),
    );
    req.options.base_archive = Some(base.to_string_lossy().into());
    execute_with(&req, &Host::none(), &common::settings(None, 0, &work)).unwrap();
    let rootfs = unpack(&root.join("shout.sif"), 3, &work);
    // What `--bind data/in:/data/in` would provide.
    std::fs::create_dir_all(rootfs.join("data/in")).unwrap();
    std::fs::copy(
        root.join("data/in/precious.txt"),
        rootfs.join("data/in/precious.txt"),
    )
    .unwrap();
    chroot_run(&rootfs, "");
    let shout = std::fs::read_to_string(rootfs.join("data/out/shout.txt")).unwrap();
    let expected = std::fs::read_to_string(root.join("data/in/precious.txt"))
        .unwrap()
        .to_uppercase();
    assert_eq!(shout, expected);
}

/// The native path needs no root: as root, re-run the determinism test above as `nobody` (uid
/// 65534, no groups) through `setpriv`, with the base archive handed over by path.
#[test]
fn native_sif_builds_as_an_unprivileged_user() {
    if require_tools().is_none() {
        return;
    }
    if !kerblam_test_support::is_root() || !common::have("setpriv") {
        kerblam_test_support::skip(
            "needs root and setpriv to drop to an unprivileged user (as a normal user, the other tests already are that)",
        );
        return;
    }
    if std::env::var_os("KERBLAM_TEST_BASE_ARCHIVE").is_some() {
        return; // already the unprivileged child
    }
    let t = tempfile::tempdir().unwrap();
    let Some(base) = kerblam_test_support::require(common::base_archive(t.path())) else {
        return;
    };
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "native_sif::native_sif_is_byte_identical_across_runs",
            "--nocapture",
        ])
        .env("KERBLAM_TEST_BASE_ARCHIVE", &base)
        .env("HOME", "/tmp")
        .current_dir("/tmp")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
    assert!(!text.contains("skipping"), "{text}");
}

/// An OCI archive (`podman save --format oci-archive`) as the base: `Bootstrap: oci-archive` in
/// the definition file, and the layers read through `index.json`.
#[test]
fn native_sif_from_an_oci_archive_base() {
    if require_tools().is_none() {
        return;
    }
    let (t, root) = common::example("minimal");
    let work = t.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let oci = work.join("base-oci.tar");
    let saved = Command::new("podman")
        .args(["save", "--format", "oci-archive", "-o"])
        .arg(&oci)
        .arg("localhost/kerblam-test-base:latest")
        .output();
    if !saved.is_ok_and(|o| o.status.success()) {
        kerblam_test_support::unavailable::<()>(
            "podman cannot save localhost/kerblam-test-base:latest as an OCI archive",
        );
        return;
    }
    let mut plan = common::plan(&root, "hello", true);
    plan.artifacts = vec![Artifact {
        kind: ArtifactKind::Sif,
        path: "hello.sif".into(),
        format: Some("sif".into()),
        contents: vec![],
    }];
    let mut req = common::request(
        Action::Package,
        plan,
        &root,
        &work.join("tmp"),
        Path::new("/k"),
    );
    req.options.base_archive = Some(oci.to_string_lossy().into());
    execute_with(&req, &Host::none(), &common::settings(None, 0, &work)).unwrap();
    let sif = root.join("hello.sif");
    let def = run(Command::new("siftool").args(["dump", "1"]).arg(&sif));
    assert!(def.contains("Bootstrap: oci-archive"), "{def}");
    let rootfs = unpack(&sif, 3, &work);
    chroot_run(&rootfs, "");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("data/out/hello.txt")).unwrap(),
        "hello from a minimal project\n"
    );
}

/// Without --base, a base image a local engine already has is saved from it (never pulled).
#[test]
fn native_sif_takes_a_local_engine_image_as_base() {
    if require_tools().is_none() {
        return;
    }
    let (t, root) = common::example("minimal");
    let work = t.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    if kerblam_test_support::require(common::base_archive(&work)).is_none() {
        return;
    }
    if std::env::var_os("KERBLAM_TEST_BASE_ARCHIVE").is_some() {
        return;
    }
    let docker_has_it = Command::new("docker")
        .args(["image", "inspect", "kerblam-test-base:latest"])
        .output()
        .is_ok_and(|o| o.status.success());
    let reference = if docker_has_it {
        "kerblam-test-base:latest"
    } else {
        "localhost/kerblam-test-base:latest"
    };
    let mut plan = common::plan(&root, "hello", true);
    plan.base = kerblam_backend_api::plan::Base::Image {
        reference: reference.into(),
    };
    plan.artifacts = vec![Artifact {
        kind: ArtifactKind::Sif,
        path: "hello.sif".into(),
        format: Some("sif".into()),
        contents: vec![],
    }];
    let req = common::request(
        Action::Package,
        plan,
        &root,
        &work.join("tmp"),
        Path::new("/k"),
    );
    execute_with(&req, &Host::none(), &common::settings(None, 0, &work)).unwrap();
    let rootfs = unpack(&root.join("hello.sif"), 3, &work);
    chroot_run(&rootfs, "");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("data/out/hello.txt")).unwrap(),
        "hello from a minimal project\n"
    );
}

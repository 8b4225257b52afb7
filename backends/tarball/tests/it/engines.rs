//! The tarball backend's archives against real engines (skipped with a reason when an engine is
//! missing, failing instead with `KERBLAM_REQUIRE_ENGINES=1`):
//!
//! - the printed `docker build -t TAG - < <pipe>.context.tar` (and `podman build`) builds the
//!   image, and replaying the replay archive against it (its data unpacked by kerblam-archive, the
//!   plan's mounts bound, the image's own entrypoint: the replay script running the pipe with the
//!   real kerblam) writes the pipe's outputs;
//! - the OCI archive, on a base saved with `podman save --format oci-archive` or `docker save`, is
//!   read by `skopeo inspect oci-archive:` and `podman load`, and a command runs in the loaded image.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kerblam_backend_api::plan::PackagePlan;
use support::engines::{self, EngineHandle};
use support::*;

fn sh(cmd: &str) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(out: &std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Packages `examples/process` with its recipe on the local base image; returns (plan, out dir).
fn package(
    e: &EngineHandle,
    dir: &Path,
    tag: &str,
    oci: bool,
    base: Option<&Path>,
) -> (PackagePlan, PathBuf) {
    let kerblam = kerblam_bin();
    let base_tag = engines::ensure_base_image(e, &kerblam);
    let root = process_project(dir, Some(&base_tag));
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let plan = plan(&root, tag, oci);
    let mut req = request(plan.clone(), &root, &out, &kerblam);
    req.options.base_archive = base.map(|b| b.to_string_lossy().into_owned());
    execute(&req).0.unwrap_or_else(|err| panic!("{err}"));
    let printed = plan
        .backend
        .usage
        .iter()
        .find_map(|n| n.strip_prefix(&format!("build the image with: {} ", e.name)))
        .unwrap_or_else(|| panic!("no {} command in {:?}", e.name, plan.backend.usage))
        .to_string();
    assert_eq!(printed, format!("build -t {tag} - < process.context.tar"));
    (plan, out)
}

/// Puts the plan's precious data into `replay` (as a replay archive would: kerblam's own, tested
/// elsewhere) and runs the image as a replay does: the plan's mounts, network none, the image's
/// entrypoint (the replay script).
fn replay(e: &EngineHandle, plan: &PackagePlan, root: &Path, replay: &Path, image: &str) {
    for f in &plan.pipe.as_ref().unwrap().precious {
        let to = replay.join(&f.path);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root.join(&f.path), &to).unwrap();
    }
    assert!(replay.join("data/in/precious.txt").is_file());
    // The remote input as an earlier `kerblam data fetch` left it (fetch skips existing files), so
    // the container needs no network.
    let remote =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/process/data-server/remote.txt");
    std::fs::copy(remote, replay.join("data/in/remote.txt")).unwrap();
    let mut cmd = e.command();
    cmd.args(["run", "--rm", "--network", "none"]);
    for m in &plan.mounts {
        let host = replay.join(&m.host);
        std::fs::create_dir_all(&host).unwrap();
        cmd.arg("-v")
            .arg(format!("{}:{}", host.display(), m.container));
    }
    cmd.arg(image);
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    ok(&out, &format!("{} run {image} (the replay)", e.name));
    let merged = std::fs::read_to_string(replay.join("data/out/merged.txt")).unwrap();
    assert_eq!(
        merged,
        "alpha from the remote\nbeta precious line\ndelta precious line\ngamma from the remote\n"
    );
    assert_eq!(
        std::fs::read_to_string(replay.join("data/out/count.txt")).unwrap(),
        "lines: 4\n"
    );
}

/// The text of the plan's replay script layer.
fn replay_script(plan: &PackagePlan) -> String {
    use kerblam_backend_api::plan::LayerSource;
    plan.layers
        .iter()
        .find_map(|l| match &l.from {
            LayerSource::Generated { text } if l.to == "/kerblam-replay.sh" => Some(text.clone()),
            _ => None,
        })
        .expect("a replay script layer")
}

fn context_archive_builds_and_replays(name: &str) {
    let Some(e) = engines::engine(name) else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let tag = format!("kerblam-tarball-ctx-{name}:1");
    e.remove_image(&tag);
    let (plan, out) = package(&e, t.path(), &tag, false, None);
    // The exact printed command, with this engine's program.
    let cmd = format!(
        "{} build -t {tag} - < {}",
        e.program,
        out.join("process.context.tar").display()
    );
    ok(&sh(&cmd), &cmd);
    let image = e.local_tag(&tag);
    assert!(e.image_exists(&image));
    // The replay script is the plan's, kerblam runs in the image.
    let script = ok(
        &e.output(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "cat",
            &image,
            "/kerblam-replay.sh",
        ]),
        "cat",
    );
    assert_eq!(script, replay_script(&plan));
    replay(
        &e,
        &plan,
        &t.path().join("project"),
        &t.path().join("replay"),
        &image,
    );
    e.remove_image(&image);
}

#[test]
fn the_context_archive_builds_on_docker_and_replays() {
    context_archive_builds_and_replays("docker");
}

#[test]
fn the_context_archive_builds_on_podman_and_replays() {
    context_archive_builds_and_replays("podman");
}

fn skopeo() -> Option<()> {
    kerblam_test_support::require_tool(
        "skopeo",
        "it copies the OCI archive into the engine; bash scripts/engines.sh install",
    )
    .map(|_| ())
}

/// Packages with an OCI archive on `base`, inspects it with skopeo, loads it into podman, runs a
/// command and the replay in it.
fn oci_on_base(base_kind: &str) {
    // podman 4.3 loses track of layers ("layer not known") when two loads that share base layers
    // run at once; these two tests share the base image's layers, so they take turns.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let Some(p) = engines::engine("podman") else {
        return;
    };
    let Some(()) = skopeo() else { return };
    let t = tempfile::tempdir().unwrap();
    let kerblam = kerblam_bin();
    let base_tag = engines::ensure_base_image(&p, &kerblam);
    let base = t.path().join("base.tar");
    match base_kind {
        "oci" => {
            let out = p.output(&[
                "save",
                "--format",
                "oci-archive",
                "-o",
                &base.to_string_lossy(),
                &base_tag,
            ]);
            ok(&out, "podman save --format oci-archive");
        }
        _ => {
            let Some(d) = engines::engine("docker") else {
                return;
            };
            let docker_base = engines::ensure_base_image(&d, &kerblam);
            let out = d.output(&["save", "-o", &base.to_string_lossy(), &docker_base]);
            ok(&out, "docker save");
        }
    }
    let tag = format!("kerblam-tarball-oci-{base_kind}:1");
    let (plan, out) = package(&p, &t.path().join("w"), &tag, true, Some(&base));
    let oci = out.join("process.oci.tar");

    let inspect = ok(
        &Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci-archive:{}", oci.display()))
            .output()
            .unwrap(),
        "skopeo inspect",
    );
    let info: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(info["Labels"]["dev.kerblam.pipe"], "process", "{info}");
    assert_eq!(info["Labels"]["org.opencontainers.image.title"], "process");
    assert_eq!(info["Os"], "linux");
    let base_layers = {
        let out = Command::new("skopeo")
            .arg("inspect")
            .arg(format!(
                "{}:{}",
                if base_kind == "oci" {
                    "oci-archive"
                } else {
                    "docker-archive"
                },
                base.display()
            ))
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&ok(&out, "skopeo inspect base")).unwrap();
        v["Layers"].as_array().unwrap().len()
    };
    assert_eq!(
        info["Layers"].as_array().unwrap().len(),
        base_layers + 1 + plan.layers.len()
    );

    let loaded = ok(
        &p.output(&["load", "-i", &oci.to_string_lossy()]),
        "podman load",
    );
    let image = loaded
        .lines()
        .find_map(|l| {
            l.strip_prefix("Loaded image: ")
                .or_else(|| l.strip_prefix("Loaded image(s): "))
        })
        .unwrap_or_else(|| panic!("podman load said: {loaded}"))
        .trim()
        .to_string();
    assert!(image.contains(&tag), "loaded as {image}");
    let script = ok(
        &p.output(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "/bin/sh",
            &image,
            "-c",
            "test -x /kerblam && cat /kerblam-replay.sh",
        ]),
        "podman run of a command in the loaded image",
    );
    assert_eq!(script, replay_script(&plan));
    replay(
        &p,
        &plan,
        &t.path().join("w/project"),
        &t.path().join("replay"),
        &image,
    );
    p.remove_image(&image);
}

#[test]
fn the_oci_archive_on_a_podman_oci_base_loads_and_runs_in_podman() {
    oci_on_base("oci");
}

#[test]
fn the_oci_archive_on_a_docker_save_base_loads_and_runs_in_podman() {
    oci_on_base("docker");
}

/// dockerd 20.10 cannot `docker load` an OCI archive, so docker gets it through a docker-archive
/// export (`skopeo copy oci-archive:… docker-archive:…`), loads it and runs a command in it.
#[test]
fn the_oci_archive_exported_as_a_docker_archive_loads_and_runs_in_docker() {
    let Some(d) = engines::engine("docker") else {
        return;
    };
    let Some(()) = skopeo() else { return };
    let t = tempfile::tempdir().unwrap();
    let kerblam = kerblam_bin();
    let base_tag = engines::ensure_base_image(&d, &kerblam);
    let base = t.path().join("base.tar");
    ok(
        &d.output(&["save", "-o", &base.to_string_lossy(), &base_tag]),
        "docker save",
    );
    let tag = "kerblam-tarball-oci-docker:1";
    d.remove_image(tag);
    let (plan, out) = package(&d, &t.path().join("w"), tag, true, Some(&base));
    let exported = t.path().join("docker-archive.tar");
    let copy = Command::new("skopeo")
        .arg("copy")
        .arg(format!(
            "oci-archive:{}",
            out.join("process.oci.tar").display()
        ))
        .arg(format!("docker-archive:{}:{tag}", exported.display()))
        .output()
        .unwrap();
    ok(&copy, "skopeo copy oci-archive: docker-archive:");
    ok(
        &d.output(&["load", "-i", &exported.to_string_lossy()]),
        "docker load",
    );
    let script = ok(
        &d.output(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "/bin/sh",
            tag,
            "-c",
            "test -x /kerblam && cat /kerblam-replay.sh",
        ]),
        "docker run of a command in the loaded image",
    );
    assert_eq!(script, replay_script(&plan));
    d.remove_image(tag);
}

//! Freeze plans (built by hand here, as the freeze compiler will emit them): the compressed
//! tarball of the trees (excludes honoured), an `activate.sh` that works from the unpacked copy and
//! at the original prefix, and the metadata JSON.

use crate::support;

use std::path::Path;

use kerblam_backend_api::plan::PackagePlan;
use support::*;

fn write(p: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A fake EESSI prefix under `dir` and a freeze plan for it.
fn freeze_plan(dir: &Path, tarball: &str) -> PackagePlan {
    let prefix = dir.join("cvmfs/repo/versions/2021.12");
    let p = prefix.to_string_lossy().into_owned();
    let sw = format!("{p}/software/linux/x86_64/generic/software/Hello/1.0");
    write(&prefix.join("compat/bin/env-helper"), "helper\n", 0o755);
    write(&prefix.join("compat/cache/junk.pyc"), "junk\n", 0o644);
    write(
        &Path::new(&sw).join("bin/hello"),
        "#!/bin/sh\necho hello from the freeze\n",
        0o755,
    );
    write(
        &Path::new(&sw).join("lib/libhello.so"),
        "not really a library\n",
        0o644,
    );
    write(
        &prefix.join("software/linux/x86_64/generic/modules/all/Hello/1.0.lua"),
        "-- module\n",
        0o644,
    );
    std::os::unix::fs::symlink("env-helper", prefix.join("compat/bin/helper-link")).unwrap();
    let modules = format!("{p}/software/linux/x86_64/generic/modules/all");
    let plan = serde_json::json!({
        "schema": "kerblam.plan/v1",
        "source": {"kind": "freeze", "manifest": "freeze.toml", "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000"},
        "root": ".",
        "name": "hello-freeze",
        "backend": "tarball",
        "purpose": "package",
        "image": {"tag": "hello-freeze:2021.12", "labels": {"org.opencontainers.image.title": "hello-freeze"}},
        "base": {"kind": "scratch"},
        "context": {"root": ".", "excluded": [], "files": [], "total_bytes": 0},
        "layers": [
            {"from": {"kind": "host", "path": format!("{p}/compat"), "exclude": ["*.pyc"]}, "to": format!("{p}/compat"), "mode": 493},
            {"from": {"kind": "host", "path": modules}, "to": modules, "mode": 493},
            {"from": {"kind": "host", "path": sw}, "to": sw, "mode": 493},
            {"from": {"kind": "generated", "text": "# the plan's activate.sh\n"}, "to": "/kerblam-freeze/activate.sh", "mode": 420}
        ],
        "mounts": [],
        "workdir": "/",
        "env": [],
        "entrypoint": ["/bin/sh"],
        "artifacts": [
            {"kind": "tarball", "path": tarball, "contents": ["the frozen trees"]},
            {"kind": "activate-script", "path": "hello-freeze-activate.sh", "contents": ["activate.sh"]},
            {"kind": "metadata-json", "path": "hello-freeze.json", "contents": ["metadata"]}
        ],
        "metadata": {"author": "A. Researcher <a@example.org>", "version": "2021.12-1", "kerblam_version": "0.1.0"},
        "preflight": [],
        "freeze": {
            "prefix": p,
            "cpu_target": "x86_64/generic",
            "generic": true,
            "modules": [{"name": "Hello/1.0", "root": sw}],
            "trees": [
                {"path": format!("{p}/compat"), "role": "compat layer", "files": 2, "bytes": 12},
                {"path": modules, "role": "module files", "files": 1, "bytes": 10},
                {"path": sw, "role": "software of Hello/1.0", "files": 2, "bytes": 60}
            ],
            "total_bytes": 82,
            "total_files": 5,
            "help": "Run `hello`."
        }
    });
    // Written as kerblam.plan/v1 did, with the artifacts at paths of the test's choosing: read
    // the way a replay reads an old archive's plan (the artifacts become the backend's part).
    kerblam_backend_api::plan::upgrade::from_value(plan).unwrap()
}

fn names_in(tarball: &Path) -> Vec<String> {
    let bytes = std::fs::read(tarball).unwrap();
    let plain = if tarball.to_string_lossy().ends_with(".gz") {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes.as_slice()), &mut v)
            .unwrap();
        v
    } else {
        zstd::decode_all(bytes.as_slice()).unwrap()
    };
    let mut a = tar::Archive::new(plain.as_slice());
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_freeze_plan_gives_a_tarball_an_activate_script_and_metadata() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let plan = freeze_plan(&src, "hello-freeze.tar.zst");
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let kerblam = fake_kerblam(t.path());
    let req = request(plan.clone(), t.path(), &out, &kerblam);
    let result = execute(&req).0.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        listing(&out),
        [
            "hello-freeze-activate.sh",
            "hello-freeze.json",
            "hello-freeze.tar.zst"
        ]
    );
    assert_eq!(result.artifacts.len(), 3);

    let prefix = plan
        .freeze
        .as_ref()
        .unwrap()
        .prefix
        .trim_start_matches('/')
        .to_string();
    let names = names_in(&out.join("hello-freeze.tar.zst"));
    assert!(
        names.contains(&format!("{prefix}/compat/bin/env-helper")),
        "{names:?}"
    );
    assert!(
        names.contains(&format!("{prefix}/compat/bin/helper-link")),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.ends_with(".pyc")),
        "excluded: {names:?}"
    );
    assert!(names.iter().any(|n| n.ends_with("Hello/1.0/bin/hello")));

    // Metadata: author, version, modules, CPU target, the tarball's digest.
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("hello-freeze.json")).unwrap()).unwrap();
    assert_eq!(meta["format"], "kerblam.freeze/v1");
    assert_eq!(meta["metadata"]["author"], "A. Researcher <a@example.org>");
    assert_eq!(meta["metadata"]["version"], "2021.12-1");
    assert_eq!(meta["freeze"]["cpu_target"], "x86_64/generic");
    assert_eq!(meta["freeze"]["modules"][0]["name"], "Hello/1.0");
    assert_eq!(
        meta["labels"]["org.opencontainers.image.title"],
        "hello-freeze"
    );
    let tar_artifact = result
        .artifacts
        .iter()
        .find(|a| a.path.ends_with(".tar.zst"))
        .unwrap();
    assert_eq!(
        meta["tarball"]["sha256"].as_str(),
        tar_artifact.sha256.as_deref()
    );

    // The activate script beside the tarball is the plan's own, which is in the tarball too; the
    // tarball also carries enter.sh, which mounts each tree at its original path (tested end to
    // end in tests/it/freeze_cli.rs).
    assert_eq!(
        std::fs::read_to_string(out.join("hello-freeze-activate.sh")).unwrap(),
        "# the plan's activate.sh\n"
    );
    assert!(names.contains(&"kerblam-freeze/activate.sh".to_string()));
    assert_eq!(
        names.last().map(String::as_str),
        Some("kerblam-freeze/enter.sh")
    );
    let enter = member_of(&out.join("hello-freeze.tar.zst"), "kerblam-freeze/enter.sh");
    for tree in &plan.freeze.as_ref().unwrap().trees {
        assert!(enter.contains(&format!("'{}'", tree.path)), "{}", tree.path);
    }
    assert!(enter.contains("unshare --user --mount --map-root-user"));
}

/// The text and mode of member `name` of a zstd tarball.
fn member_of(tarball: &Path, name: &str) -> String {
    use std::io::Read;
    let bytes = zstd::decode_all(std::fs::read(tarball).unwrap().as_slice()).unwrap();
    let mut a = tar::Archive::new(bytes.as_slice());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == name {
            assert_eq!(e.header().mode().unwrap(), 0o755, "{name}");
            let mut text = String::new();
            e.read_to_string(&mut text).unwrap();
            return text;
        }
    }
    panic!("no {name} in {}", tarball.display())
}

#[test]
fn gzip_on_request() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let plan = freeze_plan(&src, "hello-freeze.tar.gz");
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let req = request(plan, t.path(), &out, &fake_kerblam(t.path()));
    execute(&req).0.unwrap_or_else(|e| panic!("{e}"));
    let names = names_in(&out.join("hello-freeze.tar.gz"));
    assert!(names.iter().any(|n| n.ends_with("bin/hello")), "{names:?}");
    assert!(
        names.iter().any(|n| n == "kerblam-freeze/enter.sh"),
        "{names:?}"
    );
}

#[test]
fn the_plans_own_activate_script_is_copied_and_generated_files_are_in_the_tarball() {
    let t = tempfile::tempdir().unwrap();
    let mut plan = freeze_plan(&t.path().join("src"), "hello-freeze.tar.zst");
    let text = "# the compiler's activate.sh\nexport FROM_THE_PLAN=1\n";
    plan.layers.retain(|l| !l.to.ends_with("/activate.sh"));
    plan.layers.push(kerblam_backend_api::plan::Layer {
        from: kerblam_backend_api::plan::LayerSource::Generated { text: text.into() },
        to: "/.kerblam-freeze/activate.sh".into(),
        mode: 0o644,
    });
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let req = request(plan, t.path(), &out, &fake_kerblam(t.path()));
    execute(&req).0.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        std::fs::read_to_string(out.join("hello-freeze-activate.sh")).unwrap(),
        text
    );
    let names = names_in(&out.join("hello-freeze.tar.zst"));
    assert!(
        names.contains(&".kerblam-freeze/activate.sh".to_string()),
        "{names:?}"
    );
}

#[test]
fn a_file_that_changes_while_it_is_read_is_reported_and_nothing_is_left() {
    // /proc files say they are empty and then yield bytes: exactly what a file growing while it is
    // archived looks like.
    let t = tempfile::tempdir().unwrap();
    let mut plan = freeze_plan(&t.path().join("src"), "hello-freeze.tar.zst");
    plan.layers.push(kerblam_backend_api::plan::Layer {
        from: kerblam_backend_api::plan::LayerSource::Host {
            path: "/proc/version".into(),
            exclude: vec![],
        },
        to: "/proc-version".into(),
        mode: 0o644,
    });
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let req = request(plan, t.path(), &out, &fake_kerblam(t.path()));
    let err = execute(&req).0.unwrap_err().to_string();
    assert!(err.contains("/proc/version"), "{err}");
    assert!(err.contains("not archiving a half-written file"), "{err}");
    assert!(listing(&out).is_empty(), "{:?}", listing(&out));
}

#[test]
fn a_freeze_oci_archive_has_one_layer_per_tree_with_excludes_honoured() {
    let t = tempfile::tempdir().unwrap();
    let mut plan = freeze_plan(&t.path().join("src"), "hello-freeze.tar.zst");
    plan.artifacts.push(kerblam_backend_api::plan::Artifact {
        kind: kerblam_backend_api::plan::ArtifactKind::OciArchive,
        path: "hello-freeze.oci.tar".into(),
        format: Some("oci-archive".into()),
        contents: vec![],
    });
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let req = request(plan.clone(), t.path(), &out, &fake_kerblam(t.path()));
    execute(&req).0.unwrap_or_else(|e| panic!("{e}"));
    let oci = out.join("hello-freeze.oci.tar");
    let index: serde_json::Value = serde_json::from_slice(&tar_member(&oci, "index.json")).unwrap();
    let blob = |d: &str| {
        tar_member(
            &oci,
            &format!("blobs/sha256/{}", d.trim_start_matches("sha256:")),
        )
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(
        layers.len(),
        plan.layers.len(),
        "no context layer for a freeze, one per tree"
    );
    let mut all = Vec::new();
    for l in layers {
        let gz = blob(l["digest"].as_str().unwrap());
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(gz.as_slice()));
        for e in a.entries().unwrap() {
            all.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(
        all.iter().any(|n| n.ends_with("compat/bin/env-helper")),
        "{all:?}"
    );
    assert!(
        all.iter().any(|n| n.ends_with("Hello/1.0/bin/hello")),
        "{all:?}"
    );
    assert!(!all.iter().any(|n| n.ends_with(".pyc")), "{all:?}");
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.authors"],
        "A. Researcher <a@example.org>"
    );
}

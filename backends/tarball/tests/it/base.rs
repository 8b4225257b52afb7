//! OCI archives on top of a base archive, without an engine: an OCI layout (one the plugin wrote
//! itself) and a docker archive (`docker save` layout, built by hand here). The base's blobs are
//! kept below the plan's layers and its configuration carried over.

use crate::support;

use std::path::{Path, PathBuf};

use support::*;

fn member_json(tar: &Path, name: &str) -> serde_json::Value {
    serde_json::from_slice(&tar_member(tar, name)).unwrap()
}

fn blob(tar: &Path, digest: &str) -> serde_json::Value {
    member_json(
        tar,
        &format!("blobs/sha256/{}", digest.trim_start_matches("sha256:")),
    )
}

/// (manifest, config) of an OCI archive.
fn image(tar: &Path) -> (serde_json::Value, serde_json::Value) {
    let index = member_json(tar, "index.json");
    let manifest = blob(tar, index["manifests"][0]["digest"].as_str().unwrap());
    let config = blob(tar, manifest["config"]["digest"].as_str().unwrap());
    (manifest, config)
}

fn package(root: &Path, out: &Path, kerblam: &Path, tag: &str, base: Option<&Path>) -> PathBuf {
    std::fs::create_dir_all(out).unwrap();
    let mut req = request(plan(root, tag, true), root, out, kerblam);
    req.options.base_archive = base.map(|b| b.to_string_lossy().into_owned());
    execute(&req).0.unwrap_or_else(|e| panic!("{e}"));
    out.join("process.oci.tar")
}

#[test]
fn an_oci_base_is_kept_below_the_plan_layers() {
    let t = tempfile::tempdir().unwrap();
    let root = process_project(t.path(), None);
    let base_kerblam = t.path().join("base-kerblam");
    std::fs::write(&base_kerblam, "base").unwrap();
    let base = package(&root, &t.path().join("b"), &base_kerblam, "base:1", None);
    let kerblam = fake_kerblam(t.path());
    let oci = package(&root, &t.path().join("o"), &kerblam, "top:2", Some(&base));
    let (bm, bc) = image(&base);
    let (m, c) = image(&oci);
    let base_layers = bm["layers"].as_array().unwrap();
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2 * base_layers.len());
    assert_eq!(&layers[..base_layers.len()], base_layers.as_slice());
    let base_ids = bc["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(
        &c["rootfs"]["diff_ids"].as_array().unwrap()[..base_ids.len()],
        base_ids.as_slice()
    );
    assert_eq!(
        c["history"].as_array().unwrap().len(),
        2 * base_layers.len()
    );
    let index = member_json(&base, "index.json");
    assert_eq!(
        m["annotations"]["org.opencontainers.image.base.digest"],
        index["manifests"][0]["digest"]
    );
    assert_eq!(
        m["annotations"]["org.opencontainers.image.base.name"],
        "base:1"
    );
    let top = member_json(&oci, "index.json");
    assert_eq!(
        top["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "top:2"
    );
}

#[test]
fn a_docker_archive_base_is_kept_below_the_plan_layers() {
    let t = tempfile::tempdir().unwrap();
    let root = process_project(t.path(), None);
    // A docker archive: manifest.json, <config>.json, <id>/layer.tar (plain tar layers).
    let mut layer = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_cksum();
    layer
        .append_data(&mut h, "etc/motd", &b"hello\n"[..])
        .unwrap();
    let layer = layer.into_inner().unwrap();
    let hex = kerblam_archive::hex(&<sha2::Sha256 as sha2::Digest>::digest(&layer));
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin", "KEEP=1"], "Cmd": ["/bin/sh"], "Labels": {"from.base": "yes"}},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{hex}")]},
        "history": [{"created_by": "base layer"}],
        "docker_version": "20.10.24"
    });
    let config = serde_json::to_vec(&config).unwrap();
    let manifest = serde_json::json!([
        {"Config": "cfg.json", "RepoTags": ["docker-base:latest"], "Layers": ["abc/layer.tar"]}
    ]);
    let base = t.path().join("docker-base.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&base).unwrap());
    for (name, data) in [
        ("manifest.json", serde_json::to_vec(&manifest).unwrap()),
        ("cfg.json", config),
        ("abc/layer.tar", layer.clone()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    b.finish().unwrap();
    drop(b);

    let kerblam = fake_kerblam(t.path());
    let oci = package(&root, &t.path().join("o"), &kerblam, "top:2", Some(&base));
    let (m, c) = image(&oci);
    let first = &m["layers"][0];
    assert_eq!(first["mediaType"], "application/vnd.oci.image.layer.v1.tar");
    assert_eq!(first["digest"], format!("sha256:{hex}"));
    assert_eq!(tar_member(&oci, &format!("blobs/sha256/{hex}")), layer);
    assert_eq!(c["rootfs"]["diff_ids"][0], format!("sha256:{hex}"));
    // The base's env is kept, its Cmd dropped (the plan's entrypoint runs alone), labels merged.
    assert_eq!(
        c["config"]["Env"],
        serde_json::json!(["PATH=/bin", "KEEP=1"])
    );
    assert!(c["config"].get("Cmd").is_none(), "{c}");
    assert_eq!(c["config"]["Labels"]["from.base"], "yes");
    assert_eq!(c["config"]["Labels"]["dev.kerblam.pipe"], "process");
    assert_eq!(
        m["annotations"]["org.opencontainers.image.base.name"],
        "docker-base:latest"
    );
}

#[test]
fn zstd_layers_on_request() {
    let t = tempfile::tempdir().unwrap();
    let root = process_project(t.path(), None);
    let kerblam = fake_kerblam(t.path());
    let out = t.path().join("o");
    std::fs::create_dir(&out).unwrap();
    // The plan decides the layer compression (`--image-format oci+zstd`).
    let plan = plan_with_image_format(&root, "z:1", Some("oci+zstd"));
    assert_eq!(
        plan.backend.artifacts[1].format.as_deref(),
        Some("oci-archive+zstd"),
        "{:?}",
        plan.backend.artifacts
    );
    let req = request(plan, &root, &out, &kerblam);
    execute(&req).0.unwrap_or_else(|e| panic!("{e}"));
    let oci = out.join("process.oci.tar");
    let (m, _) = image(&oci);
    let l = &m["layers"][1];
    assert_eq!(
        l["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    let data = tar_member(
        &oci,
        &format!(
            "blobs/sha256/{}",
            l["digest"].as_str().unwrap().trim_start_matches("sha256:")
        ),
    );
    let plain = zstd::decode_all(data.as_slice()).unwrap();
    let mut a = tar::Archive::new(plain.as_slice());
    let names: Vec<_> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["kerblam"]);
}

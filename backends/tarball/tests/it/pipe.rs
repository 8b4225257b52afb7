//! Packaging a pipe with the real tarball plugin: the context archive and the OCI archive it
//! writes (the replay archive is kerblam's), what they hold, and the progress it reports.

use crate::support;

use std::path::Path;

use kerblam_backend_api::plan::ArtifactKind;
use support::*;

#[test]
fn a_pipe_plan_gives_a_context_archive_and_leaves_the_replay_archive_to_kerblam() {
    let t = tempfile::tempdir().unwrap();
    let root = process_project(t.path(), None);
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let kerblam = fake_kerblam(t.path());
    let plan = plan(&root, "process_exec", false);
    let req = request(plan.clone(), &root, &out, &kerblam);
    let (result, rec) = execute(&req);
    let result = result.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listing(&out), ["process.context.tar"]);

    // The result lists what the backend's part of the plan names, with sizes and digests of the
    // files on disk.
    let kinds: Vec<_> = result.artifacts.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, [ArtifactKind::ContextArchive]);
    let planned: Vec<_> = plan.backend.artifacts.iter().map(|a| a.kind).collect();
    assert_eq!(planned, kinds);
    for a in &result.artifacts {
        let bytes = std::fs::read(&a.path).unwrap();
        assert_eq!(a.bytes, Some(bytes.len() as u64));
        let hex = kerblam_archive::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        assert_eq!(a.sha256.as_deref(), Some(format!("sha256:{hex}").as_str()));
    }

    // The context: the project without data or recipes, the Containerfile at the root as
    // `Dockerfile`, kerblam and the replay script under .kerblam/.
    let ctx = out.join("process.context.tar");
    let names = tar_names(&ctx);
    assert_eq!(
        names,
        [
            ".kerblam/kerblam",
            ".kerblam/kerblam-replay.sh",
            "Dockerfile",
            "data-server/remote.txt",
            "kerblam.toml",
            "src/workflows/listing.sh",
            "src/workflows/process.makefile",
            "src/workflows/shout.sh",
        ]
    );
    let dockerfile = String::from_utf8(tar_member(&ctx, "Dockerfile")).unwrap();
    let recipe = std::fs::read_to_string(root.join("src/dockerfiles/process.dockerfile")).unwrap();
    assert!(dockerfile.starts_with(&recipe), "{dockerfile}");
    assert_eq!(
        dockerfile,
        kerblam_render::render(&plan, Some(&recipe))
            .unwrap()
            .containerfile,
        "the context archive carries the shared rendering"
    );
    assert_eq!(
        plan.backend.rendered("Containerfile").unwrap().text,
        dockerfile,
        "the plan shows the Containerfile the archive holds"
    );
    assert!(dockerfile.contains("COPY [\".kerblam/kerblam\", \"/kerblam\"]\n"));
    assert!(dockerfile.contains("ENTRYPOINT [\"/bin/sh\",\"/kerblam-replay.sh\"]\nCMD []\n"));
    assert_eq!(
        tar_member(&ctx, ".kerblam/kerblam"),
        std::fs::read(&kerblam).unwrap()
    );
    let mut a = tar::Archive::new(std::fs::File::open(&ctx).unwrap());
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let want = if name.starts_with(".kerblam/") {
            0o755
        } else {
            0o644
        };
        assert_eq!(h.mode().unwrap(), want, "{name}");
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
    }

    // The command the plan's usage gives needs no -f; it names the archive in the output dir.
    let cmd = "docker build -t process_exec - < process.context.tar";
    assert!(
        plan.backend
            .usage
            .contains(&format!("build the image with: {cmd}")),
        "{:?}",
        plan.backend.usage
    );

    // Progress was reported for the context, with bytes and file counts.
    let progress = rec.progress.lock().unwrap().clone();
    let last_ctx = progress
        .iter()
        .rev()
        .find(|p| p.2.starts_with("writing process.context.tar"))
        .unwrap();
    assert_eq!(last_ctx.2, "writing process.context.tar (8 files)");
    assert!(last_ctx.0 >= plan.context.total_bytes);
}

#[test]
fn a_project_with_its_own_dockerfile_gets_the_recipe_under_kerblam() {
    let t = tempfile::tempdir().unwrap();
    let root = process_project(t.path(), None);
    std::fs::write(root.join("Dockerfile"), "FROM nothing\n").unwrap();
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let kerblam = fake_kerblam(t.path());
    let req = request(plan(&root, "p:1", false), &root, &out, &kerblam);
    execute(&req).0.unwrap_or_else(|e| panic!("{e}"));
    let ctx = out.join("process.context.tar");
    assert_eq!(tar_member(&ctx, "Dockerfile"), b"FROM nothing\n");
    assert!(
        String::from_utf8(tar_member(&ctx, ".kerblam/Containerfile"))
            .unwrap()
            .contains("ENTRYPOINT")
    );
    let cmd = "podman build -t p:1 -f .kerblam/Containerfile - < process.context.tar";
    assert!(
        req.plan
            .backend
            .usage
            .contains(&format!("build the image with: {cmd}")),
        "{:?}",
        req.plan.backend.usage
    );
}

#[test]
fn an_oci_archive_has_the_plan_layers_on_scratch() {
    let t = tempfile::tempdir().unwrap();
    let root = process_project(t.path(), None);
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let kerblam = fake_kerblam(t.path());
    let plan = plan(&root, "process_exec", true);
    let req = request(plan.clone(), &root, &out, &kerblam);
    let result = execute(&req).0.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listing(&out), ["process.context.tar", "process.oci.tar"]);
    let oci = out.join("process.oci.tar");
    check_oci_layout(&oci);
    let index: serde_json::Value = serde_json::from_slice(&tar_member(&oci, "index.json")).unwrap();
    let m = &index["manifests"][0];
    assert_eq!(
        m["annotations"]["org.opencontainers.image.ref.name"],
        "process_exec"
    );
    let digest = m["digest"].as_str().unwrap();
    assert!(
        result.notes.iter().any(|n| n.contains(digest)),
        "{:?}",
        result.notes
    );
    let manifest = blob_json(&oci, digest);
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.title"],
        "process"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.version"],
        "1.0.0"
    );
    let layers = manifest["layers"].as_array().unwrap();
    // The context, then one per plan layer.
    assert_eq!(layers.len(), 1 + plan.layers.len());
    for l in layers {
        assert_eq!(
            l["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
    }
    let config = blob_json(&oci, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/bin/sh", "/kerblam-replay.sh"])
    );
    assert_eq!(config["config"]["WorkingDir"], "/");
    assert_eq!(config["config"]["Labels"]["dev.kerblam.pipe"], "process");
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().unwrap().len(),
        layers.len()
    );
    assert_eq!(config["os"], "linux");

    // Layer 2 is kerblam at /kerblam, 0755; layer 1 has the context under the workdir.
    let kerblam_layer = layer_entries(&oci, layers[1]["digest"].as_str().unwrap());
    assert_eq!(
        kerblam_layer,
        [(
            "kerblam".to_string(),
            0o755,
            std::fs::read(&kerblam).unwrap()
        )]
    );
    let ctx_layer = layer_entries(&oci, layers[0]["digest"].as_str().unwrap());
    let names: Vec<_> = ctx_layer.iter().map(|e| e.0.as_str()).collect();
    assert!(
        names.contains(&"src/workflows/process.makefile"),
        "{names:?}"
    );
}

/// Every blob is named by its sha256, and the layout marker is right.
pub fn check_oci_layout(oci: &Path) {
    use std::io::Read;
    let mut a = tar::Archive::new(std::fs::File::open(oci).unwrap());
    let mut blobs = 0;
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            let got = kerblam_archive::hex(&<sha2::Sha256 as sha2::Digest>::digest(&v));
            assert_eq!(got, hex, "blob {name}");
            blobs += 1;
        }
    }
    assert!(blobs >= 3);
    assert_eq!(
        tar_member(oci, "oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#
    );
}

/// A JSON blob of an OCI archive.
pub fn blob_json(oci: &Path, digest: &str) -> serde_json::Value {
    let hex = digest.strip_prefix("sha256:").unwrap();
    serde_json::from_slice(&tar_member(oci, &format!("blobs/sha256/{hex}"))).unwrap()
}

/// The (name, mode, content) of the entries of a gzip layer.
pub fn layer_entries(oci: &Path, digest: &str) -> Vec<(String, u32, Vec<u8>)> {
    use std::io::Read;
    let hex = digest.strip_prefix("sha256:").unwrap();
    let blob = tar_member(oci, &format!("blobs/sha256/{hex}"));
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(blob.as_slice()));
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            (
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().mode().unwrap(),
                v,
            )
        })
        .collect()
}

//! With `SOURCE_DATE_EPOCH` set, two runs on the same tree (even at different paths) write
//! byte-identical context and OCI archives, with the same OCI manifest digest; every header
//! has the fixed mtime, uid/gid 0 and no user names.
//!
//! This binary holds one test because it sets `SOURCE_DATE_EPOCH` in the process environment (the
//! plugin runs in-process and reads it), which must not race with other tests.

mod support;

use std::path::Path;

use support::*;

const EPOCH: u64 = 1_700_000_000;

fn run(dir: &Path) -> (Vec<(String, Vec<u8>)>, String) {
    let root = process_project(dir, None);
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let kerblam = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let mut req = request(plan(&root, "process_exec", true), &root, &out, &kerblam);
    req.paths.temp_dir = dir.to_string_lossy().into_owned();
    let result = execute(&req).0.unwrap_or_else(|e| panic!("{e}"));
    let files = listing(&out).into_iter().map(|n| {
        let bytes = std::fs::read(out.join(&n)).unwrap();
        (n, bytes)
    });
    let index: serde_json::Value =
        serde_json::from_slice(&tar_member(&out.join("process.oci.tar"), "index.json")).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(result.notes.iter().any(|n| n.contains(&digest)));
    (files.collect(), digest)
}

fn check_headers(path: &Path) {
    let mut a = tar::Archive::new(std::fs::File::open(path).unwrap());
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        assert_eq!(h.mtime().unwrap(), EPOCH, "{} {name}", path.display());
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0), "{name}");
        assert_eq!(h.username().unwrap(), Some(""), "{name}");
        assert_eq!(h.groupname().unwrap(), Some(""), "{name}");
    }
}

#[test]
fn two_runs_with_source_date_epoch_are_byte_identical() {
    // SAFETY: the only test of this binary, before any other thread reads the environment.
    unsafe { std::env::set_var("SOURCE_DATE_EPOCH", EPOCH.to_string()) };
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (files_a, digest_a) = run(a.path());
    let (files_b, digest_b) = run(&b.path().join("elsewhere/deeper"));
    assert_eq!(digest_a, digest_b);
    let names: Vec<_> = files_a.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(names, ["process.context.tar", "process.oci.tar"]);
    for ((na, ba), (nb, bb)) in files_a.iter().zip(&files_b) {
        assert_eq!(na, nb);
        assert!(ba == bb, "{na} differs between the two runs");
    }
    let out = a.path().join("out");
    for (name, _) in &files_a {
        check_headers(&out.join(name));
    }
    // The layers inside the OCI archive carry the same mtime.
    let oci = out.join("process.oci.tar");
    let index: serde_json::Value = serde_json::from_slice(&tar_member(&oci, "index.json")).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&tar_member(
        &oci,
        &format!("blobs/sha256/{}", digest_a.trim_start_matches("sha256:")),
    ))
    .unwrap();
    assert_eq!(index["manifests"][0]["digest"], digest_a.as_str());
    for l in m["layers"].as_array().unwrap() {
        let hex = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
        let blob = tar_member(&oci, &format!("blobs/sha256/{hex}"));
        let mut t = tar::Archive::new(flate2::read::GzDecoder::new(blob.as_slice()));
        for e in t.entries().unwrap() {
            let e = e.unwrap();
            assert_eq!(e.header().mtime().unwrap(), EPOCH);
            assert_eq!(e.header().uid().unwrap(), 0);
        }
    }
}

//! Bad inputs: a destination that is not writable or lacks room, existing outputs, a base archive
//! that is not an image, a corrupt base, files that changed or vanished since the plan. Each is
//! refused with a message naming the path, and nothing is left under a final name (nor a
//! temporary one).

use crate::support;

use std::path::{Path, PathBuf};

use kerblam_backend_api::ErrorKind;
use kerblam_backend_api::host::CallError;
use kerblam_backend_api::plan::Preflight;
use kerblam_test_support::tmpfs::Tmpfs;
use support::*;

struct Setup {
    t: tempfile::TempDir,
    root: PathBuf,
    out: PathBuf,
    kerblam: PathBuf,
}

fn setup() -> Setup {
    let t = tempfile::tempdir().unwrap();
    let root = process_project(t.path(), None);
    let out = t.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let kerblam = fake_kerblam(t.path());
    Setup {
        t,
        root,
        out,
        kerblam,
    }
}

/// The plugin's error (kind and message) for `req`.
fn failure(req: &kerblam_backend_api::ExecuteRequest) -> (ErrorKind, String) {
    match execute(req).0 {
        Ok(r) => panic!("expected a failure, got {r:?}"),
        Err(CallError::Failed { error, .. }) => (error.kind, error.to_string()),
        Err(other) => panic!("expected a plugin error, got {other:?}"),
    }
}

#[test]
fn a_destination_under_a_file_is_refused_before_writing() {
    let s = setup();
    let file = s.t.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = file.join("sub");
    let req = request(plan(&s.root, "p", true), &s.root, &out, &s.kerblam);
    let (kind, msg) = failure(&req);
    assert_eq!(kind, ErrorKind::Backend);
    assert!(
        msg.contains(&format!("{} is not a directory", file.display())),
        "{msg}"
    );
    assert!(msg.contains("nothing was written"), "{msg}");
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

#[test]
fn a_read_only_destination_is_refused_before_writing() {
    let s = setup();
    let out = s.t.path().join("ro");
    let Some(_fs) = Tmpfs::mount(&out, "ro,size=1m") else {
        return;
    };
    let req = request(plan(&s.root, "p", false), &s.root, &out, &s.kerblam);
    let (_, msg) = failure(&req);
    assert!(
        msg.contains(&format!("{} is not writable", out.display())),
        "{msg}"
    );
    assert!(
        msg.contains("choose a destination you can write to"),
        "{msg}"
    );
    assert!(listing(&out).is_empty());
}

#[test]
fn a_destination_without_room_is_refused_before_writing() {
    let s = setup();
    let out = s.t.path().join("small");
    let Some(_fs) = Tmpfs::mount(&out, "size=64k") else {
        return;
    };
    let req = request(plan(&s.root, "p", true), &s.root, &out, &s.kerblam);
    let (kind, msg) = failure(&req);
    assert_eq!(kind, ErrorKind::Backend);
    assert!(
        msg.contains(&format!("not enough disk space at {}", out.display())),
        "{msg}"
    );
    assert!(
        msg.contains("bytes needed") && msg.contains("available"),
        "{msg}"
    );
    assert!(
        msg.contains("free some space there, or write elsewhere"),
        "{msg}"
    );
    assert!(listing(&out).is_empty(), "{:?}", listing(&out));
}

#[test]
fn the_plans_disk_space_preflight_is_enforced_with_its_numbers() {
    let s = setup();
    let mut plan = plan(&s.root, "p", false);
    plan.preflight.push(Preflight::DiskSpace {
        path: ".".into(),
        bytes: 1 << 60,
        why: "a test asking for an exbibyte".into(),
    });
    let req = request(plan, &s.root, &s.out, &s.kerblam);
    let (_, msg) = failure(&req);
    assert!(msg.contains("not enough disk space at"), "{msg}");
    assert!(
        msg.contains("(1152921504606846976 bytes) needed (a test asking for an exbibyte)"),
        "{msg}"
    );
    assert!(listing(&s.out).is_empty());
}

#[test]
fn a_base_archive_bigger_than_the_free_space_is_refused_before_writing() {
    let s = setup();
    let base = s.t.path().join("huge-base.tar");
    let f = std::fs::File::create(&base).unwrap();
    // Sparse: takes no room, but the OCI archive would have to copy 4 TiB.
    if f.set_len(1 << 42).is_err() {
        kerblam_test_support::skip("this filesystem cannot hold a 4 TiB sparse file");
        return;
    }
    let mut req = request(plan(&s.root, "p", true), &s.root, &s.out, &s.kerblam);
    req.options.base_archive = Some(base.to_string_lossy().into_owned());
    let (_, msg) = failure(&req);
    assert!(
        msg.contains(&format!("not enough disk space at {}", s.out.display())),
        "{msg}"
    );
    assert!(msg.contains("process.oci.tar (OciArchive) up to"), "{msg}");
    assert!(listing(&s.out).is_empty());
}

#[test]
fn existing_outputs_are_kept_without_force_and_replaced_with_it() {
    let s = setup();
    let old = s.out.join("process.context.tar");
    std::fs::write(&old, "old").unwrap();
    let mut req = request(plan(&s.root, "p", false), &s.root, &s.out, &s.kerblam);
    let (kind, msg) = failure(&req);
    assert_eq!(kind, ErrorKind::InvalidInput);
    assert!(
        msg.contains(&format!("{} already exists", old.display())),
        "{msg}"
    );
    assert!(msg.contains("--force"), "{msg}");
    assert_eq!(listing(&s.out), ["process.context.tar"]);
    assert_eq!(std::fs::read(&old).unwrap(), b"old");
    req.options.force = true;
    execute(&req).0.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listing(&s.out), ["process.context.tar"]);
    assert_ne!(std::fs::read(&old).unwrap(), b"old");
}

fn with_base(s: &Setup, base: &Path) -> (ErrorKind, String) {
    let mut req = request(plan(&s.root, "p", true), &s.root, &s.out, &s.kerblam);
    req.options.base_archive = Some(base.to_string_lossy().into_owned());
    let r = failure(&req);
    assert!(listing(&s.out).is_empty(), "{:?}", listing(&s.out));
    r
}

fn write_tar(path: &Path, members: &[(&str, &[u8])]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.finish().unwrap();
}

#[test]
fn a_base_archive_that_is_not_an_image_gets_a_clear_error() {
    let s = setup();
    let text = s.t.path().join("notes.txt");
    std::fs::write(
        &text,
        "just some notes, not a tar archive at all\n".repeat(40),
    )
    .unwrap();
    let (kind, msg) = with_base(&s, &text);
    assert_eq!(kind, ErrorKind::InvalidInput);
    assert!(
        msg.contains(&format!(
            "the base archive {} is not a usable OCI or docker image archive",
            text.display()
        )),
        "{msg}"
    );
    assert!(msg.contains("podman save --format oci-archive"), "{msg}");

    let other = s.t.path().join("other.tar");
    write_tar(&other, &[("hello.txt", b"hi")]);
    let (_, msg) = with_base(&s, &other);
    assert!(
        msg.contains("neither index.json (OCI) nor manifest.json (docker)"),
        "{msg}"
    );
    assert!(msg.contains(&other.display().to_string()), "{msg}");

    let missing = s.t.path().join("missing.tar");
    let (_, msg) = with_base(&s, &missing);
    assert!(
        msg.contains(&format!(
            "cannot open the base archive {}",
            missing.display()
        )),
        "{msg}"
    );

    let broken = s.t.path().join("broken-oci.tar");
    write_tar(
        &broken,
        &[
            ("oci-layout", b"{}"),
            ("index.json", b"{\"schemaVersion\": 2, \"manifests\": ["),
        ],
    );
    let (_, msg) = with_base(&s, &broken);
    assert!(msg.contains("index.json:"), "{msg}");
}

/// An OCI archive written by the plugin itself (scratch base), to use as a base.
fn own_oci(s: &Setup, tag: &str) -> PathBuf {
    let dir = s.t.path().join(format!("base-{}", tag.replace(':', "-")));
    std::fs::create_dir(&dir).unwrap();
    // Its own kerblam, so that its kerblam layer is not one the new image has too.
    let kerblam = dir.join("base-kerblam");
    std::fs::write(&kerblam, format!("#!/bin/sh\necho base {tag}\n")).unwrap();
    let req = request(plan(&s.root, tag, true), &s.root, &dir, &kerblam);
    execute(&req).0.unwrap_or_else(|e| panic!("{e}"));
    dir.join("process.oci.tar")
}

#[test]
fn a_corrupt_base_layer_is_refused() {
    let s = setup();
    let base = own_oci(&s, "base:1");
    // Flip one byte inside the base's kerblam layer (layer 1; layer 0, the context, is identical
    // to the new image's and is taken from it).
    let index: serde_json::Value =
        serde_json::from_slice(&tar_member(&base, "index.json")).unwrap();
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest: serde_json::Value = serde_json::from_slice(&tar_member(
        &base,
        &format!("blobs/sha256/{}", mdigest.trim_start_matches("sha256:")),
    ))
    .unwrap();
    let layer = manifest["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let mut a = tar::Archive::new(std::fs::File::open(&base).unwrap());
    let offset = a
        .entries_with_seek()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().to_string_lossy().ends_with(&layer))
        .unwrap()
        .raw_file_position();
    let mut bytes = std::fs::read(&base).unwrap();
    bytes[offset as usize + 20] ^= 0xff;
    std::fs::write(&base, bytes).unwrap();
    let (kind, msg) = with_base(&s, &base);
    assert_eq!(kind, ErrorKind::InvalidInput);
    assert!(
        msg.contains(&format!(
            "the base archive {} is corrupt: blob sha256:{layer}",
            base.display()
        )),
        "{msg}"
    );
}

#[test]
fn a_context_file_changed_since_the_plan_is_reported_and_nothing_is_left() {
    for oci in [false, true] {
        let s = setup();
        let plan = plan(&s.root, "p", oci);
        let changed = s.root.join("src/workflows/shout.sh");
        std::fs::write(&changed, "echo changed after planning, and longer\n").unwrap();
        let req = request(plan, &s.root, &s.out, &s.kerblam);
        let (_, msg) = failure(&req);
        assert!(
            msg.contains(&format!(
                "{} changed since the plan was made",
                changed.display()
            )),
            "{msg}"
        );
        assert!(listing(&s.out).is_empty(), "{:?}", listing(&s.out));
    }
}

#[test]
fn a_context_file_that_vanished_is_reported_and_nothing_is_left() {
    let s = setup();
    let plan = plan(&s.root, "p", false);
    let gone = s.root.join("src/workflows/listing.sh");
    std::fs::remove_file(&gone).unwrap();
    let req = request(plan, &s.root, &s.out, &s.kerblam);
    let (_, msg) = failure(&req);
    assert!(msg.contains(&gone.display().to_string()), "{msg}");
    assert!(listing(&s.out).is_empty(), "{:?}", listing(&s.out));
}

#[test]
fn cancelling_midway_leaves_nothing_behind() {
    // Cancel at the first, second, ... progress report: each stage stops and cleans up.
    for after in [1, 2, 3, 5, 8] {
        let s = setup();
        let req = request(plan(&s.root, "p", true), &s.root, &s.out, &s.kerblam);
        match execute_cancelling(&req, after) {
            Err(CallError::Failed { error, .. }) => {
                assert_eq!(error.kind, ErrorKind::Cancelled, "after {after}: {error}")
            }
            other => panic!("after {after}: expected a cancellation, got {other:?}"),
        }
        assert!(
            listing(&s.out).is_empty(),
            "after {after}: {:?}",
            listing(&s.out)
        );
    }
}

//! Bad inputs: unrepresentable values, missing or corrupt base archives, too little disk space.
//! Each is a clear error naming what is wrong, before anything is written.

use crate::common;

use std::io::Write;
use std::path::Path;

use kerblam_backend_api::plan::EnvVar;
use kerblam_backend_api::{Action, ErrorKind, ExecuteRequest, Host};
use kerblam_backend_apptainer::execute_with;

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Run a native package request and check it fails with `kind` and a message containing every
/// one of `expect`, leaving the project and the temp dir as they were.
fn refused(req: &ExecuteRequest, work: &Path, kind: ErrorKind, expect: &[&str]) {
    let root = Path::new(&req.paths.root);
    let before = entries(root);
    let e = execute_with(req, &Host::none(), &common::settings(None, 1000, work)).unwrap_err();
    assert_eq!(e.kind, kind, "{e}");
    for x in expect {
        assert!(e.message.contains(x), "expected {x:?} in: {e}");
    }
    assert_eq!(entries(root), before, "nothing is written on failure");
    assert!(entries(Path::new(&req.paths.temp_dir)).is_empty());
}

fn setup(pipe_example: (&str, &str)) -> (tempfile::TempDir, std::path::PathBuf, ExecuteRequest) {
    let (t, root) = common::example(pipe_example.0);
    let work = t.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let kerblam = common::fake_kerblam(&work);
    let plan = common::plan(&root, pipe_example.1, false);
    let req = common::request(Action::Package, plan, &root, &work.join("tmp"), &kerblam);
    (t, work, req)
}

#[test]
fn unrepresentable_env_value_or_label_is_invalid_input() {
    let (_t, work, mut req) = setup(("minimal", "hello"));
    req.plan.env.push(EnvVar {
        name: "BAD NAME".into(),
        value: "x".into(),
    });
    refused(
        &req,
        &work,
        ErrorKind::InvalidInput,
        &["\"BAD NAME\"", "not a shell variable name"],
    );
    let (_t, work, mut req) = setup(("minimal", "hello"));
    req.plan
        .image
        .labels
        .insert("note".into(), "two\nlines".into());
    refused(
        &req,
        &work,
        ErrorKind::InvalidInput,
        &["the label note", "one line"],
    );
}

#[test]
fn missing_base_archive_is_a_clear_error() {
    let (_t, work, mut req) = setup(("minimal", "hello"));
    let missing = work.join("no-such-base.tar");
    req.options.base_archive = Some(missing.to_string_lossy().into());
    refused(
        &req,
        &work,
        ErrorKind::InvalidInput,
        &[&missing.display().to_string(), "cannot be read"],
    );
}

#[test]
fn corrupt_base_archives_are_clear_errors() {
    let (_t, work, mut req) = setup(("minimal", "hello"));
    // Not a tar at all.
    let junk = work.join("junk.tar");
    std::fs::write(&junk, vec![b'A'; 2048]).unwrap();
    req.options.base_archive = Some(junk.to_string_lossy().into());
    refused(
        &req,
        &work,
        ErrorKind::InvalidInput,
        &[&junk.display().to_string(), "not a valid tar archive"],
    );

    // A compressed archive.
    let gz = work.join("base.tar.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0]).unwrap();
    req.options.base_archive = Some(gz.to_string_lossy().into());
    refused(
        &req,
        &work,
        ErrorKind::InvalidInput,
        &[
            &gz.display().to_string(),
            "is compressed; decompress it first",
        ],
    );

    // A tar, but no image in it.
    let plain = work.join("plain.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&plain).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "hello.txt", &b"hi"[..]).unwrap();
    b.into_inner().unwrap().flush().unwrap();
    req.options.base_archive = Some(plain.to_string_lossy().into());
    refused(
        &req,
        &work,
        ErrorKind::InvalidInput,
        &["neither manifest.json", "nor index.json"],
    );

    // A docker archive whose layer is garbage: found while unpacking, before the SIF exists.
    let bad_layer = work.join("bad-layer.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&bad_layer).unwrap());
    for (name, data) in [
        (
            "manifest.json",
            br#"[{"Config":"c.json","Layers":["l/layer.tar"]}]"#.to_vec(),
        ),
        ("c.json", b"{}".to_vec()),
        ("l/layer.tar", vec![b'Z'; 1024]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.into_inner().unwrap().flush().unwrap();
    req.options.base_archive = Some(bad_layer.to_string_lossy().into());
    refused(
        &req,
        &work,
        ErrorKind::InvalidInput,
        &[
            "corrupt layer l/layer.tar",
            &bad_layer.display().to_string(),
        ],
    );
}

#[test]
fn too_little_disk_space_is_refused_before_writing() {
    let (_t, work, mut req) = setup(("minimal", "hello"));
    // The plan says the build context is 1 PiB: no disk here holds that.
    req.plan.context.total_bytes = 1 << 50;
    // Both places are named (as one group when they share a filesystem, as here).
    let tmp = req.paths.temp_dir.clone();
    let dest = req.paths.output_dir.clone();
    refused(
        &req,
        &work,
        ErrorKind::Backend,
        &[
            "preflight failed",
            "not enough disk space at",
            &tmp,
            &dest,
            "bytes of build context",
            "available",
        ],
    );
}

#[test]
fn native_without_base_archive_cannot_pull() {
    let (_t, work, req) = setup(("process", "process"));
    refused(
        &req,
        &work,
        ErrorKind::InvalidInput,
        &[
            "cannot pull the base image docker.io/library/buildpack-deps:bookworm",
            "--base FILE",
        ],
    );
}

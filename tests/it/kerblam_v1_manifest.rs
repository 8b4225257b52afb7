//! A `--format kerblam-v1` replay archive never carries a manifest Kerblam! 1.x cannot read: a
//! `kerblam.toml` in TOML 1.1 syntax is refused when the project is loaded, and again when the
//! manifest goes into the archive (it can have changed in between), with the located finding and
//! nothing written. Run with the tarball backend, which needs no container engine.

use crate::support;

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::project::{TestProject, show};

/// Added to the example's manifest: `\e` is a TOML 1.1 escape.
const TOML_1_1: &str = "\n[execution]\nworkdir = \"/work\\e\"\n";

/// The workspace plugins these tests load (built by `support::plugin_dir`).
const PLUGINS: &[&str] = &["kerblam-backend-tarball"];

fn args(dir: &Path) -> Vec<String> {
    [
        "--color",
        "never",
        "--backend-path",
        dir.to_str().unwrap(),
        "package",
        "process",
        "--backend",
        "tarball",
        "--format",
        "kerblam-v1",
    ]
    .map(String::from)
    .to_vec()
}

/// The files of the project root whose name says they are a replay or context archive (final or
/// temporary).
fn archives(p: &TestProject) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(p.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".kerblam.tar") || n.contains(".context.tar"))
        .collect();
    out.sort();
    out
}

/// The line and column of `\e` in the manifest, as a finding names them.
fn escape_location(manifest: &str) -> String {
    let line = manifest.lines().position(|l| l.contains("\\e")).unwrap();
    let col = manifest.lines().nth(line).unwrap().find("\\e").unwrap();
    format!("kerblam.toml:{}:{}", line + 1, col + 1)
}

fn assert_refused_as_toml_1_1(stderr: &str, manifest: &str) {
    assert!(
        stderr
            .contains("TOML 1.1 syntax; Kerblam! 1.x and editors read TOML 1.0: the escape `\\e`"),
        "{stderr}"
    );
    assert!(stderr.contains(&escape_location(manifest)), "{stderr}");
}

#[test]
fn a_toml_1_1_manifest_is_refused_before_anything_is_written() {
    let p = TestProject::example("process");
    let manifest = format!("{}{TOML_1_1}", p.read("kerblam.toml"));
    p.write("kerblam.toml", &manifest);
    let dir = support::plugin_dir(PLUGINS);
    let args = args(&dir);
    let o = p.kerblam(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert_refused_as_toml_1_1(&String::from_utf8_lossy(&o.stderr), &manifest);
    assert!(archives(&p).is_empty(), "{:?}", archives(&p));
    // The same project in TOML 1.0 packages.
    p.write("kerblam.toml", manifest.replace("\\e", "\\u001B"));
    let o = p.kerblam(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", show(&o));
    assert!(p.exists("process.kerblam.tar"), "{:?}", archives(&p));
}

/// The manifest is rewritten in TOML 1.1 while kerblam pauses after compiling the plan (the
/// `host/compiled` fault point), before the archive is opened: the bytes that would go into the
/// archive are checked, and refused.
#[test]
fn a_manifest_changed_to_toml_1_1_after_loading_is_not_archived() {
    let p = TestProject::example("process");
    let tmp = tempfile::tempdir().unwrap();
    let reached = tmp.path().join("reached");
    let dir = support::plugin_dir(PLUGINS);
    let args = args(&dir);
    let mut child = p
        .command(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .env("KERBLAM_FAULT_PAUSE", "host/compiled")
        .env("KERBLAM_FAULT_FILE", &reached)
        .env("KERBLAM_FAULT_SECS", "60")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !std::fs::read_to_string(&reached).is_ok_and(|s| !s.is_empty()) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("kerblam ended ({status}) before host/compiled");
        }
        assert!(start.elapsed() < Duration::from_secs(120), "not reached");
        std::thread::sleep(Duration::from_millis(10));
    }
    let manifest = format!("{}{TOML_1_1}", p.read("kerblam.toml"));
    p.write("kerblam.toml", &manifest);
    std::fs::write(tmp.path().join("reached.continue"), "").unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert_refused_as_toml_1_1(&stderr, &manifest);
    assert!(archives(&p).is_empty(), "{:?}", archives(&p));
}

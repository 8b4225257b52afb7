//! What an editor makes of kerblam's manifests through the committed JSON Schemas: taplo (the
//! engine of the Even Better TOML extension) accepts every example and valid manifest, and rejects
//! as many of the bad-manifest corpus as the README says, beside `kerblam validate`, which rejects
//! them all.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn schema(file: &Path) -> PathBuf {
    let name = if file.to_string_lossy().ends_with(".freeze.toml") {
        "freeze.json"
    } else {
        "kerblam.toml.json"
    };
    repo().join("schemas").join(name)
}

fn files(dir: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    out.sort();
    out
}

#[test]
fn taplo_accepts_the_examples_and_valid_manifests() {
    let Some(taplo) = support::taplo::taplo() else {
        return;
    };
    let mut good: Vec<PathBuf> = files("tests/fixtures/valid")
        .into_iter()
        .filter(|p| !p.ends_with("allow-unknown.toml"))
        .collect();
    for e in std::fs::read_dir(repo().join("examples")).unwrap() {
        let m = e.unwrap().path().join("kerblam.toml");
        if m.is_file() {
            good.push(m);
        }
    }
    assert!(good.len() >= 7, "{good:?}");
    let rejected = support::taplo::rejected(&taplo, &schema(&good[0]), &good);
    assert!(rejected.is_empty(), "taplo rejects {rejected:?}");
}

#[test]
fn taplo_rejects_what_the_readme_says_of_the_bad_corpus() {
    let Some(taplo) = support::taplo::taplo() else {
        return;
    };
    let bad = files("tests/fixtures/invalid");
    let (freeze, manifests): (Vec<PathBuf>, Vec<PathBuf>) = bad
        .iter()
        .cloned()
        .partition(|p| p.to_string_lossy().ends_with(".freeze.toml"));
    let mut rejected = support::taplo::rejected(&taplo, &schema(&manifests[0]), &manifests);
    rejected.extend(support::taplo::rejected(
        &taplo,
        &schema(&freeze[0]),
        &freeze,
    ));
    let mut accepted = Vec::new();
    for file in &bad {
        if !rejected.contains(file) {
            accepted.push(file.file_name().unwrap().to_string_lossy().into_owned());
        }
        // kerblam rejects every one of them (tests/it/validate_corpus.rs shows how).
        let k = Command::new(env!("CARGO_BIN_EXE_kerblam"))
            .arg("validate")
            .arg(file)
            .output()
            .unwrap();
        assert_eq!(k.status.code(), Some(2), "{}", file.display());
    }
    let (n, rejected) = (bad.len(), bad.len() - accepted.len());
    println!("taplo rejects {rejected} of the {n} bad files; it accepts {accepted:?}");
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let figure = format!(
        "taplo with these schemas rejects {rejected} of the {n} files of `tests/fixtures/invalid/`, and `kerblam validate` all {n}"
    );
    assert!(
        readme.replace('\n', " ").contains(&figure),
        "README.md should say: {figure}"
    );
}

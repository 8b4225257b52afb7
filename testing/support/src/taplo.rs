//! taplo, the TOML toolkit behind the Even Better TOML editor extension (npm `@taplo/cli`), for
//! checking what editors make of kerblam's schemas. `KERBLAM_TAPLO` names it (`scripts/test.sh`
//! installs one in `target/test-tools`); else `taplo` on PATH is tried. Without it the tests that
//! need it skip with the reason, unless `KERBLAM_REQUIRE_ENGINES=1` (CI), where they fail.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The taplo to run, or `None` (reason printed) when the test should skip.
pub fn taplo() -> Option<PathBuf> {
    let taplo = std::env::var_os("KERBLAM_TAPLO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("taplo"));
    // (`taplo --version` prints its version and exits 1.)
    if Command::new(&taplo)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).starts_with("taplo "))
    {
        return Some(taplo);
    }
    crate::unavailable(format!(
        "{} does not run (npm install @taplo/cli@0.7.0, or run bash scripts/test.sh)",
        taplo.display()
    ))
}

/// The files of `files` that one `taplo lint` run against `schema` rejects (it names each on a line
/// `ERROR ... path="FILE"`), however many: one run is seconds, a run per file minutes.
pub fn rejected(taplo: &Path, schema: &Path, files: &[PathBuf]) -> BTreeSet<PathBuf> {
    if files.is_empty() {
        return BTreeSet::new();
    }
    let o = Command::new(taplo)
        .args(["lint", "--no-auto-config", "--colors", "never", "--schema"])
        .arg(format!("file://{}", schema.display()))
        .args(files)
        .env("RUST_LOG", "error")
        .output()
        .expect("run taplo");
    let text =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    let out: BTreeSet<PathBuf> = text
        .lines()
        .filter(|l| l.contains("invalid file"))
        .filter_map(|l| l.split("path=\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .map(PathBuf::from)
        .collect();
    assert_eq!(out.is_empty(), o.status.success(), "{text}");
    out
}

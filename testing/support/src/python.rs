//! A Python with the readers of what kerblam writes for citation: ro-crate-py (`rocrate`) and
//! `cffconvert`. `KERBLAM_PYTHON` names it (`scripts/test.sh` makes one in `target/test-tools`);
//! else `python3` is tried. Without it the tests that need it skip with the reason, unless
//! `KERBLAM_REQUIRE_ENGINES=1` (CI), where they fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The Python that imports `rocrate` and `cffconvert`, or `None` (reason printed) when the test
/// should skip.
pub fn citation_readers() -> Option<PathBuf> {
    let python = std::env::var_os("KERBLAM_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let ok = Command::new(&python)
        .args(["-c", "import rocrate, cffconvert"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    crate::unavailable(format!(
        "{} cannot import rocrate and cffconvert (pip install rocrate cffconvert, or run bash scripts/test.sh)",
        python.display()
    ))
}

/// Runs `python -c SCRIPT ARGS...`.
pub fn run(python: &Path, script: &str, args: &[&Path]) -> Output {
    Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python")
}

//! A pseudo-terminal for the tests of what kerblam does on one: `script` (util-linux) runs a
//! command on a pty. Where it is missing those tests skip with the reason, unless
//! `KERBLAM_REQUIRE_ENGINES=1` (CI), where they fail instead of passing without testing anything.
#![allow(dead_code)]

use std::process::Command;

/// Whether `script` runs here; when it does not, says so (or panics under
/// `KERBLAM_REQUIRE_ENGINES=1`) and the caller skips.
pub fn available() -> bool {
    if Command::new("script").arg("--version").output().is_ok() {
        return true;
    }
    let reason = "`script` (util-linux) is not installed: no pseudo-terminal to test on";
    if super::engines::engines_required() {
        panic!("KERBLAM_REQUIRE_ENGINES=1 but {reason}");
    }
    eprintln!("skipping: {reason}");
    false
}

//! A pseudo-terminal for the tests of what kerblam does on one: `script` (util-linux) runs a
//! command on a pty. Where it is missing those tests skip with the reason, unless
//! `KERBLAM_REQUIRE_ENGINES=1` (CI), where they fail instead of passing without testing anything.
#![allow(dead_code)]

use std::process::Command;

/// Whether `script` runs here; when it does not, says so (or panics under
/// `KERBLAM_REQUIRE_ENGINES=1`) and the caller skips.
pub fn available() -> bool {
    kerblam_test_support::require_script().is_some()
}

/// `kerblam -C DIR ARGS` on a pseudo-terminal, typing `input`, with `NO_COLOR=1` and, when given,
/// `path` as its `PATH`; `None` (the reason said) where `script` is missing. Its stdin stays open
/// until kerblam exits: closing it would end the terminal's session.
pub fn kerblam(
    dir: &std::path::Path,
    args: &str,
    input: &str,
    path: Option<&str>,
) -> Option<std::process::Output> {
    use std::io::Write;
    use std::process::Stdio;
    let script = kerblam_test_support::require_script()?;
    let cmd = format!(
        "{} -C {} {args}",
        env!("CARGO_BIN_EXE_kerblam"),
        dir.display()
    );
    // Found on the test's PATH: a Command given another PATH would look the program up there.
    let mut command = Command::new(script);
    command
        .args(["-qec", &cmd, "/dev/null"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    Some(out)
}

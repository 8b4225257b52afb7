//! CLI conventions every subcommand follows: `--help` (found by walking `kerblam --help`, so new
//! subcommands are covered as they are added), `--version`, `-q`, `--color never|always`, and the exit
//! codes: 0 ok, 1 failure, 2 usage or validation error.

use crate::support;

use support::text;

use std::path::Path;
use std::process::{Command, Output};

fn kerblam(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kerblam"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("KERBLAM_BACKEND_PATH")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap()
}

fn no_panic(out: &Output) {
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The subcommand names listed in the `Commands:` section of a help text.
fn subcommands(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if line.trim_end() == "Commands:" {
            inside = true;
            continue;
        }
        if inside {
            if line.trim().is_empty() || !line.starts_with(' ') {
                break;
            }
            // A name is indented by two spaces; wrapped description lines by more.
            if line.starts_with("  ") && !line.starts_with("   ") {
                let name = line.split_whitespace().next().unwrap().to_string();
                if name != "help" {
                    out.push(name);
                }
            }
        }
    }
    out
}

#[test]
fn help_works_on_every_subcommand() {
    let top = kerblam(&["--help"]);
    assert_eq!(top.status.code(), Some(0));
    let top_help = text(&top.stdout);
    assert!(top_help.contains("Usage: kerblam"), "{top_help}");
    let mut todo: Vec<Vec<String>> = subcommands(&top_help)
        .into_iter()
        .map(|c| vec![c])
        .collect();
    for want in ["plan", "validate", "schema"] {
        assert!(
            todo.iter().any(|c| c[0] == want),
            "`{want}` missing from:\n{top_help}"
        );
    }
    let mut seen = 0;
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = kerblam(&args);
        no_panic(&out);
        let help = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let usage = format!("Usage: kerblam {}", path.join(" "));
        assert!(help.contains(&usage), "{args:?}: no `{usage}` in\n{help}");
        // The global options are accepted everywhere.
        for opt in ["--quiet", "--color <WHEN>", "--directory <DIR>"] {
            assert!(help.contains(opt), "{args:?}: no {opt} in\n{help}");
        }
        // `kerblam help <cmd>` prints the same.
        let mut help_args = vec!["help"];
        help_args.extend(path.iter().map(String::as_str));
        let out = kerblam(&help_args);
        assert_eq!(out.status.code(), Some(0), "{help_args:?}");
        assert_eq!(text(&out.stdout), help, "{help_args:?}");
        // `-h` is the short help: it works too.
        args.pop();
        args.push("-h");
        let out = kerblam(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        for sub in subcommands(&help) {
            let mut p = path.clone();
            p.push(sub);
            todo.push(p);
        }
        seen += 1;
    }
    assert!(seen >= 6, "only {seen} subcommands");
}

#[test]
fn version_is_printed_by_every_command() {
    let want = format!("kerblam {}\n", env!("CARGO_PKG_VERSION"));
    for args in [&["--version"][..], &["-V"], &["plan", "--version"]] {
        let out = kerblam(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let stdout = text(&out.stdout);
        assert!(
            stdout == want || stdout.ends_with(&format!(" {}\n", env!("CARGO_PKG_VERSION"))),
            "{args:?}: {stdout:?}"
        );
    }
    assert_eq!(text(&kerblam(&["--version"]).stdout), want);
}

#[test]
fn usage_errors_exit_2() {
    let cases: &[&[&str]] = &[
        &[],
        &["no-such-command"],
        &["--no-such-flag", "schema", "--list"],
        &["plan"],
        &["plan", "process", "--format", "yaml"],
        &["--color", "sometimes", "schema", "--list"],
        &["-q", "-v", "schema", "--list"],
        &["schema"],
        &["schema", "--write", "a", "--check", "b"],
        &["validate", "--no-such-flag"],
    ];
    for args in cases {
        let out = kerblam(args);
        no_panic(&out);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("Usage:") || stderr.contains("error"),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    }
}

#[test]
fn invalid_input_exits_2_and_failures_exit_1() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().to_str().unwrap();
    // No kerblam.toml anywhere above: invalid input, with a hint.
    let out = kerblam(&["-C", dir, "plan", "x"]);
    no_panic(&out);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no kerblam.toml found"), "{stderr}");
    // A manifest with findings: 2.
    std::fs::write(t.path().join("kerblam.toml"), "[executon]\n").unwrap();
    let out = kerblam(&["-C", dir, "plan", "x"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // A file that cannot be read is a failure: 1, naming the path.
    let missing = t.path().join("missing.toml");
    let out = kerblam(&["validate", missing.to_str().unwrap()]);
    no_panic(&out);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("missing.toml"), "{stderr}");
    // A stale checked file is a failure: 1.
    let schemas = t.path().join("schemas");
    std::fs::create_dir(&schemas).unwrap();
    let out = kerblam(&["schema", "--check", schemas.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

#[test]
fn quiet_silences_information_but_not_errors() {
    let valid = "tests/fixtures/valid/full.toml";
    let out = kerblam(&["validate", valid]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("ok"), "{}", text(&out.stderr));
    for q in ["-q", "--quiet"] {
        let out = kerblam(&[q, "validate", valid]);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(text(&out.stderr), "", "{q}");
        // After the subcommand too (a global option).
        let out = kerblam(&["validate", q, valid]);
        assert_eq!(text(&out.stderr), "", "{q} after the subcommand");
    }
    let bad = "tests/fixtures/invalid/unknown-execution-worddir.toml";
    let out = kerblam(&["-q", "--color", "never", "validate", bad]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown key `worddir`"),
        "{}",
        text(&out.stderr)
    );
    // -v is accepted (and repeatable).
    let out = kerblam(&["-vv", "validate", valid]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn color_never_and_always_are_obeyed() {
    let bad = "tests/fixtures/invalid/unknown-execution-worddir.toml";
    let never = kerblam(&["--color", "never", "validate", bad]);
    assert_eq!(never.status.code(), Some(2));
    assert!(!never.stderr.contains(&0x1b), "{}", text(&never.stderr));
    let always = kerblam(&["--color", "always", "validate", bad]);
    assert_eq!(always.status.code(), Some(2));
    assert!(
        text(&always.stderr).contains("\x1b["),
        "no ANSI colour with --color always:\n{}",
        text(&always.stderr)
    );
    // auto, with stderr not a terminal: no colour.
    let auto = kerblam(&["validate", bad]);
    assert!(!auto.stderr.contains(&0x1b), "{}", text(&auto.stderr));
    // The same findings either way.
    let strip = |s: &str| {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    };
    let always_text = strip(&text(&always.stderr));
    for want in ["unknown key `worddir`", "did you mean `workdir`?", "3:1"] {
        assert!(always_text.contains(want), "{want}: {always_text}");
    }
}

#[test]
fn json_output_is_machine_readable() {
    let bad = "tests/fixtures/invalid/combined-typo-path-url.toml";
    let out = kerblam(&["validate", "--json", bad]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.as_array().is_some_and(|a| a.len() == 3), "{v}");
    assert!(Path::new(v[0]["file"].as_str().unwrap()).ends_with("combined-typo-path-url.toml"));
    let out = kerblam(&["validate", "--json", "tests/fixtures/valid/full.toml"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
}

/// Runs kerblam with stdout and/or stderr on a pipe whose reader is already gone (as in
/// `kerblam plan x 2>&1 | head` once head has quit): every write fails with a broken pipe.
fn with_closed(args: &[&str], stdout: bool, stderr: bool) -> Output {
    let closed = || {
        use std::os::fd::{FromRawFd, OwnedFd};
        let mut fds = [0; 2];
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: pipe(2) just returned these two descriptors, owned by nothing else.
        let (reader, writer) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        drop(reader);
        std::process::Stdio::from(writer)
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerblam"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .env_remove("KERBLAM_BACKEND_PATH")
        .env_remove("SOURCE_DATE_EPOCH");
    if stdout {
        cmd.stdout(closed());
    }
    if stderr {
        cmd.stderr(closed());
    }
    cmd.output().unwrap()
}

#[test]
fn a_reader_that_goes_away_ends_the_output_but_not_the_exit_code() {
    let process = ["-C", "examples/process"];
    for (args, code) in [
        (vec!["schema", "plan"], 0),
        (vec!["plan", "process"], 0),
        (vec!["plan", "process", "--backend", "apptainer"], 0),
        (vec!["backends"], 0),
        (vec!["plan", "no-such-pipe"], 2),
        (vec!["plan", "process", "--check", "no-such-plan.json"], 1),
    ] {
        let args: Vec<&str> = process.iter().copied().chain(args).collect();
        for (stdout, stderr) in [(true, false), (false, true), (true, true)] {
            let out = with_closed(&args, stdout, stderr);
            no_panic(&out);
            assert_eq!(
                out.status.code(),
                Some(code),
                "kerblam {args:?} (stdout closed: {stdout}, stderr closed: {stderr}): {}",
                text(&out.stderr)
            );
        }
    }
}

#[test]
fn a_stdout_that_cannot_be_written_is_an_error_naming_it() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kerblam"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["schema", "plan"])
        .stdout(full)
        .output()
        .unwrap();
    no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot write to stdout") && stderr.contains("No space left"),
        "{stderr}"
    );
}

//! `kerblam run` on the host: make and shell pipes, exit codes, extra arguments, the pipe list, and
//! signals forwarded to the pipe.

use crate::support;

use std::time::Duration;

use support::project::{TestProject, alive, kill, show, wait_timeout};

fn code(o: &std::process::Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

#[test]
fn example_make_and_shell_pipes_produce_outputs() {
    let p = TestProject::example("process");
    // No server here: put the remote file in place as `data fetch` would.
    p.write("data/in/remote.txt", p.read("data-server/remote.txt"));

    let o = p.kerblam(&["run", "process", "--local"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let merged = p.read("data/out/merged.txt");
    let mut expected: Vec<String> = p
        .read("data/in/precious.txt")
        .lines()
        .chain(p.read("data/in/remote.txt").lines())
        .map(String::from)
        .collect();
    expected.sort();
    assert_eq!(merged.lines().collect::<Vec<_>>(), expected);
    assert_eq!(
        p.read("data/out/count.txt").trim(),
        format!("lines: {}", expected.len())
    );

    let o = p.kerblam(&["run", "shout", "--local"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(
        p.read("data/out/shout.txt"),
        p.read("data/in/precious.txt").to_uppercase()
    );
}

#[test]
fn a_pipe_without_recipe_runs_locally_from_the_root() {
    let p = TestProject::new("");
    p.write("src/workflows/where.sh", "pwd > data/out/pwd.txt\n");
    p.write("data/out/.keep", "");
    let o = p.kerblam(&["run", "where"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let pwd = p.read("data/out/pwd.txt");
    assert_eq!(
        std::fs::canonicalize(pwd.trim()).unwrap(),
        std::fs::canonicalize(p.root()).unwrap()
    );
    // From a sub-directory, kerblam finds the root and still runs there.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_kerblam"))
        .args(["run", "where"])
        .current_dir(p.path("data/out"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", show(&o));
}

#[test]
fn the_pipe_exit_code_becomes_kerblams() {
    let p = TestProject::new("");
    p.write("src/workflows/three.sh", "exit 3\n");
    p.write("src/workflows/fails.makefile", "all:\n\tfalse\n");
    p.write("src/workflows/term.sh", "kill -TERM $$\n");
    let o = p.kerblam(&["run", "three"]);
    assert_eq!(code(&o), 3, "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("exit code 3"));
    // make exits 2 when a recipe fails.
    let o = p.kerblam(&["run", "fails"]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    // A pipe killed by a signal: 128 + signo.
    let o = p.kerblam(&["run", "term"]);
    assert_eq!(code(&o), 128 + 15, "{}", show(&o));
}

#[test]
fn extra_arguments_are_appended() {
    let p = TestProject::new("");
    p.write(
        "src/workflows/args.sh",
        "mkdir -p data/out\nprintf '%s\\n' \"$@\" > data/out/args.txt\n",
    );
    p.write(
        "src/workflows/targets.makefile",
        "all:\n\techo all > data/out/target.txt\nother:\n\tmkdir -p data/out\n\techo other $(WHO) > data/out/target.txt\n",
    );
    let o = p.kerblam(&["run", "args", "--", "one", "--two", "three four"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(p.read("data/out/args.txt"), "one\n--two\nthree four\n");
    let o = p.kerblam(&["run", "targets", "--", "other", "WHO=me"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(p.read("data/out/target.txt"), "other me\n");
}

#[test]
fn without_a_pipe_the_pipes_are_listed() {
    let p = TestProject::example("process");
    let o = p.kerblam(&["run"]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for name in ["listing", "process", "shout"] {
        assert!(out.contains(name), "{name} not listed:\n{}", show(&o));
    }
    assert!(out.contains("List the input files"), "{}", show(&o));

    let o = p.kerblam(&["run", "nope"]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("nope") && err.contains("shout"),
        "{}",
        show(&o)
    );
}

#[test]
fn desc_prints_the_description() {
    let p = TestProject::example("process");
    let o = p.kerblam(&["run", "process", "--desc"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("Merge the precious and the remote input"),
        "{out}"
    );
    assert!(out.contains("data/out/merged.txt"), "{out}");
}

#[test]
fn a_missing_interpreter_is_a_clear_error() {
    let p = TestProject::new("");
    p.write("src/workflows/x.makefile", "all:\n\ttrue\n");
    let o = p
        .command(&["run", "x"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot run `make"),
        "{}",
        show(&o)
    );
}

#[test]
fn sigint_and_sigterm_stop_the_pipe_and_its_children() {
    for (sig, expected) in [(2, 130), (15, 143)] {
        let p = TestProject::new("");
        p.write(
            "src/workflows/sleepy.sh",
            "mkdir -p data/out\nsleep 60 &\necho $! > data/out/sleep.pid\nwait\n",
        );
        let mut child = p
            .command(&["run", "sleepy"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        p.wait_for("data/out/sleep.pid", Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(100));
        let sleep_pid: i64 = p.read("data/out/sleep.pid").trim().parse().unwrap();
        kill(child.id() as i64, sig);
        let status = wait_timeout(&mut child, Duration::from_secs(20));
        assert_eq!(status.code(), Some(expected), "signal {sig}");
        // The pipe's own child got the signal too (it was in the pipe's process group).
        std::thread::sleep(Duration::from_millis(200));
        assert!(!alive(sleep_pid), "sleep {sleep_pid} survived signal {sig}");
    }
}

#[test]
fn on_a_terminal_a_signal_sent_to_kerblam_alone_reaches_the_pipe() {
    // On a terminal the pipe shares kerblam's process group (so Ctrl-C reaches it directly); a
    // signal sent to kerblam alone must still reach the pipe and its children, quickly (not after
    // the 10 s grace period).
    if !support::terminal::available() {
        return;
    }
    let p = TestProject::new("");
    p.write(
        "src/workflows/tty.sh",
        "mkdir -p data/out\n[ -t 0 ] && echo tty > data/out/tty.txt\necho $PPID > data/out/kerblam.pid\nsleep 60\necho after > data/out/after.txt\n",
    );
    let cmdline = format!(
        "{} -C {} run tty",
        env!("CARGO_BIN_EXE_kerblam"),
        p.root().display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    p.wait_for("data/out/kerblam.pid", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        p.exists("data/out/tty.txt"),
        "the pipe did not run on a terminal"
    );
    let kerblam: i64 = p.read("data/out/kerblam.pid").trim().parse().unwrap();
    let start = std::time::Instant::now();
    kill(kerblam, 2);
    let status = wait_timeout(&mut child, Duration::from_secs(30));
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(status.code(), Some(130));
    assert!(!p.exists("data/out/after.txt"));
}

/// The pipe list of `kerblam run` (and `kerblam package`) without a pipe, with Kerblam! 1.x's
/// marks and order, and the profiles; `--desc` prints the pipe's line and its long description.
#[test]
fn the_pipe_list_and_descriptions_look_as_in_kerblam_1() {
    let p = TestProject::new("[data.profiles.alt]\n\"a.txt\" = \"b.txt\"\n");
    p.write(
        "src/workflows/a.sh",
        "#? Title of a\n#?\n#? The long part.\necho a\n",
    )
    .write("src/dockerfiles/a.dockerfile", "FROM scratch\n")
    .write("src/workflows/b.makefile", "all:\n\ttrue\n")
    .write("src/workflows/c.sh", "#? Only a title\n")
    .write("src/dockerfiles/default.dockerfile", "FROM scratch\n")
    .write("data/in/x.txt", "x")
    .write("data/in/test_x.txt", "t");
    for cmd in ["run", "package"] {
        let o = p.kerblam(&[cmd]);
        assert_eq!(code(&o), 2, "{}", show(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "Available pipes in src/workflows/:\n    \
             🐟◾ c :: Only a title\n    \
             🐟◾ b\n    \
             🐋📜 a :: Title of a\n\
             Available profiles: alt, test (inferred from test_* files).\n",
            "{}",
            show(&o)
        );
        let hint = format!("`kerblam {cmd} NAME`");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(&hint),
            "{}",
            show(&o)
        );
    }
    let o = p.kerblam(&["run", "a", "-d"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "🐋📜 a :: Title of a\nThe long part.\n"
    );
    let o = p.kerblam(&["run", "b", "--desc"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "No description found.\n"
    );

    // No pipe with a recipe, no profile: ◾ marks and 1.x's words.
    let p = TestProject::new("");
    p.write("src/workflows/only.sh", "true\n");
    let o = p.kerblam(&["run"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "Available pipes in src/workflows/:\n    ◾◾ only\nAvailable profiles: No profiles defined.\n"
    );
}

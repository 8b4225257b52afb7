//! Side by side with Kerblam! 1.2.1: the same commands on two copies of the same project, one run
//! by Kerblam! 1.2.1 and one by kerblam, must leave the same files behind (`data clean` and its
//! flags, `data pack`'s contents, `new`'s layout, `ignore`'s .gitignore, a failed profile run's
//! input files) and list the pipes with the same marks.
//!
//! Kerblam! 1.2.1 is looked for in `KERBLAM1` (a path), then at /tmp/kerblam1/bin/kerblam (where
//! `cargo install kerblam --version 1.2.1 --root /tmp/kerblam1` puts it); where it is not found,
//! each test prints why and passes, unless `KERBLAM_REQUIRE_KERBLAM1=1`. 1.x is never given a
//! language name (it would download from GitHub) and always gets its answers on standard input
//! (off a terminal it reads them there, and asks for ever at the end of its input).

use crate::support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::project::{TestProject, show, wait_timeout};

/// Kerblam! 1.2.1, or `None` (with the reason printed; a failure under `KERBLAM_REQUIRE_KERBLAM1=1`).
fn kerblam1() -> Option<PathBuf> {
    support::require_kerblam1()
}

/// Run Kerblam! 1.x in `dir` with `input` on its standard input (a private HOME: it keeps its
/// profile cache there). Killed after a minute: 1.x asks for ever once its input is over.
fn run1(bin: &Path, dir: &Path, home: &Path, args: &[&str], input: &str) -> Output {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(bin);
    // Kerblam! 1.x's Ctrl-C handler (the ctrlc crate) refuses to start, and 1.x panics, when
    // SIGINT is ignored, which an exec keeps: as it is in a background job of a shell without job
    // control, where a test run may have been started. Give it the default, as a terminal would.
    // SAFETY: signal(2) is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = command
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("RUST_BACKTRACE", "0")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let readers = (
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = out.read_to_end(&mut b);
            b
        }),
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = err.read_to_end(&mut b);
            b
        }),
    );
    let status = wait_timeout(&mut child, Duration::from_secs(60));
    Output {
        status,
        stdout: readers.0.join().unwrap(),
        stderr: readers.1.join().unwrap(),
    }
}

/// A project after a run: outputs, intermediate files, fetched remote input, precious input,
/// hidden files, an empty dir, a link.
fn after_a_run() -> TestProject {
    let p = TestProject::new("[data.remote]\n\"https://example.invalid/ref.txt\" = \"ref.txt\"\n");
    p.write("data/in/precious.txt", "precious\n")
        .write("data/in/ref.txt", "fetched\n")
        .write("data/in/.gitignore", "*\n")
        .write("data/.gitignore", "*\n")
        .write("data/out/.gitignore", "*\n")
        .write("data/out/result.txt", "2\n")
        .write("data/out/plots/p1.txt", "plot\n")
        .write("data/out/.cache/c.bin", "cache")
        .write("data/step2.txt", "2\n")
        .write("data/tmp/deeper/step1.txt", "precious\nfetched\n")
        .write("src/workflows/analyse.sh", "true\n");
    std::fs::create_dir_all(p.path("data/out/empty/too")).unwrap();
    std::os::unix::fs::symlink("../in/precious.txt", p.path("data/out/latest.txt")).unwrap();
    p
}

#[test]
fn data_clean_and_its_flags_leave_what_kerblam_1_leaves() {
    let Some(k1) = kerblam1() else { return };
    let home = tempfile::tempdir().unwrap();
    for flags in [
        &[][..],
        &["-r"][..],
        &["--preserve-output"][..],
        &["-d"][..],
        &["--dry-run"][..],
        &["-r", "--preserve-output", "-d"][..],
    ] {
        let (theirs, ours) = (after_a_run(), after_a_run());
        let args1 = [&["data", "clean"][..], flags].concat();
        let o1 = run1(&k1, theirs.root(), home.path(), &args1, "y\n");
        let args = [&["data", "clean", "--yes"][..], flags].concat();
        let o = ours.kerblam(&args);
        assert_eq!(o.status.code(), Some(0), "{flags:?}: {}", show(&o));
        assert_eq!(
            support::files::tree(ours.root(), "data"),
            support::files::tree(theirs.root(), "data"),
            "{flags:?}\n--- Kerblam! 1.2.1:\n{}\n--- kerblam:\n{}",
            show(&o1),
            show(&o)
        );
        println!("data clean {flags:?}: same files as Kerblam! 1.2.1");
    }
}

#[test]
fn data_pack_packs_what_kerblam_1_packs() {
    let Some(k1) = kerblam1() else { return };
    let home = tempfile::tempdir().unwrap();
    for flags in [&[][..], &["-o"][..]] {
        let (theirs, ours) = (after_a_run(), after_a_run());
        let args = [&["data", "pack"][..], flags].concat();
        let o1 = run1(&k1, theirs.root(), home.path(), &args, "");
        assert!(o1.status.success(), "{}", show(&o1));
        let o = ours.kerblam(&args);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        let default = "data/data_export.tar.gz";
        assert_eq!(
            support::files::tar_gz(&ours.path(default)),
            support::files::tar_gz(&theirs.path(default)),
            "{flags:?}"
        );
        println!("data pack {flags:?}: same entries and contents as Kerblam! 1.2.1");
    }
}

#[test]
fn new_lays_out_what_kerblam_1_lays_out() {
    let Some(k1) = kerblam1() else { return };
    let home = tempfile::tempdir().unwrap();
    let (theirs, ours) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // 1.x's four questions, answered no (kerblam takes those defaults off a terminal).
    let o1 = run1(
        &k1,
        theirs.path(),
        home.path(),
        &["new", "proj"],
        "n\nn\nn\nn\n",
    );
    assert!(o1.status.success(), "{}", show(&o1));
    let o = Command::new(env!("CARGO_BIN_EXE_kerblam"))
        .args(["new", "proj"])
        .current_dir(ours.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(
        support::files::tree(ours.path(), "proj"),
        support::files::tree(theirs.path(), "proj")
    );
    println!("new: same layout and files as Kerblam! 1.2.1");
}

#[test]
fn ignore_writes_the_gitignore_kerblam_1_writes() {
    let Some(k1) = kerblam1() else { return };
    let home = tempfile::tempdir().unwrap();
    let start = "# mine\nenv\n\n\n   \ndata\n*.log  \nenv\n# mine\n";
    let steps: &[&[&str]] = &[
        &["./data/out/"],
        &["data/in", "--compress"],
        &["src/"],
        &["env", "--compress"],
    ];
    let (theirs, ours) = (TestProject::new(""), TestProject::new(""));
    for p in [&theirs, &ours] {
        p.write(".gitignore", start);
        std::fs::create_dir_all(p.path("data/out")).unwrap();
        std::fs::create_dir_all(p.path("data/in")).unwrap();
        std::fs::create_dir_all(p.path("src")).unwrap();
        std::fs::create_dir_all(p.path("env")).unwrap();
    }
    for step in steps {
        let o1 = run1(
            &k1,
            theirs.root(),
            home.path(),
            &[&["ignore"][..], step].concat(),
            "",
        );
        assert!(o1.status.success(), "{}", show(&o1));
        let o = ours.kerblam(&[&["ignore"][..], step].concat());
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        assert_eq!(
            ours.read(".gitignore"),
            theirs.read(".gitignore"),
            "after {step:?}"
        );
    }
    // Several names at once: the same as one 1.x run for each.
    let names = ["./data/out/", "data/in", "src/", "env"];
    let (theirs, ours) = (TestProject::new(""), TestProject::new(""));
    for p in [&theirs, &ours] {
        p.write(".gitignore", start);
        for d in ["data/out", "data/in", "src", "env"] {
            std::fs::create_dir_all(p.path(d)).unwrap();
        }
    }
    for name in names {
        let o1 = run1(
            &k1,
            theirs.root(),
            home.path(),
            &["ignore", name, "--compress"],
            "",
        );
        assert!(o1.status.success(), "{}", show(&o1));
    }
    let o = ours.kerblam(&[&["ignore"][..], &names, &["--compress"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(ours.read(".gitignore"), theirs.read(".gitignore"));
    println!("ignore: the same .gitignore as Kerblam! 1.2.1, step by step");
}

#[test]
fn a_failed_profile_run_restores_the_input_as_kerblam_1_does() {
    let Some(k1) = kerblam1() else { return };
    let home = tempfile::tempdir().unwrap();
    let make = || {
        let p = TestProject::new("[data.profiles.small]\n\"big.csv\" = \"small.csv\"\n");
        p.write("data/in/big.csv", "a,b\n1,2\n3,4\n")
            .write("data/in/small.csv", "a,b\n1,2\n")
            .write(
                "src/workflows/fails.sh",
                "mkdir -p data/out\ncp data/in/big.csv data/out/seen.csv\nexit 3\n",
            );
        p
    };
    let (theirs, ours) = (make(), make());
    let o1 = run1(
        &k1,
        theirs.root(),
        home.path(),
        &["run", "fails", "--profile", "small"],
        "",
    );
    assert!(!o1.status.success(), "{}", show(&o1));
    let o = ours.kerblam(&["run", "fails", "--profile", "small"]);
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
    // Same data afterwards: the pipe saw the small file, and the input is back as it was.
    let strip = |t: BTreeMap<String, String>| -> BTreeMap<String, String> {
        t.into_iter()
            .filter(|(k, _)| !k.contains(".kerblam"))
            .collect()
    };
    assert_eq!(
        strip(support::files::tree(ours.root(), "data")),
        strip(support::files::tree(theirs.root(), "data")),
        "{}\n{}",
        show(&o1),
        show(&o)
    );
    assert_eq!(ours.read("data/out/seen.csv"), "a,b\n1,2\n");
    println!("run --profile that fails: same input restored as Kerblam! 1.2.1");
}

#[test]
fn the_pipe_list_has_kerblam_1_marks() {
    let Some(k1) = kerblam1() else { return };
    let home = tempfile::tempdir().unwrap();
    let p = TestProject::new("");
    p.write(
        "src/workflows/a.sh",
        "#? Title of a\n#?\n#? The long part.\n",
    )
    .write("src/workflows/b.makefile", "all:\n\ttrue\n")
    .write("src/workflows/c.sh", "#? Only a title\n")
    .write("src/workflows/d.sh", "true\n")
    .write("src/dockerfiles/a.dockerfile", "FROM scratch\n")
    .write("src/dockerfiles/default.dockerfile", "FROM scratch\n");
    let pipes = |text: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(text)
            .lines()
            .filter(|l| l.starts_with("    "))
            .map(str::to_string)
            .collect()
    };
    let o1 = run1(&k1, p.root(), home.path(), &["run"], "");
    let o = p.kerblam(&["run"]);
    assert_eq!(
        pipes(&o.stdout),
        pipes(&o1.stderr),
        "{}\n{}",
        show(&o1),
        show(&o)
    );
    assert_eq!(pipes(&o.stdout).len(), 4);
    for pipe in ["a", "d"] {
        let o1 = run1(&k1, p.root(), home.path(), &["run", pipe, "--desc"], "");
        let o = p.kerblam(&["run", pipe, "--desc"]);
        let first = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .lines()
                .next()
                .map(str::to_string)
        };
        assert_eq!(
            first(&o.stdout),
            first(&o1.stdout),
            "{}\n{}",
            show(&o1),
            show(&o)
        );
    }
    println!("run: the same pipe list and --desc titles as Kerblam! 1.2.1");
}

#[test]
fn data_summary_prints_what_kerblam_1_prints() {
    let Some(k1) = kerblam1() else { return };
    let home = tempfile::tempdir().unwrap();
    let p = after_a_run();
    p.write("data/in/big.bin", vec![0u8; 3000])
        .write("data/out/big.bin", vec![1u8; 5000]);
    let o1 = run1(&k1, p.root(), home.path(), &["data"], "");
    assert!(o1.status.success(), "{}", show(&o1));
    let o = p.kerblam(&["data"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    // kerblam's summary is 1.x's, then the status of each remote file.
    let theirs = String::from_utf8_lossy(&o1.stdout).into_owned();
    let ours = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        ours.starts_with(&theirs),
        "--- Kerblam! 1.2.1:\n{theirs}--- kerblam:\n{ours}"
    );
    println!("data: the same summary as Kerblam! 1.2.1");
}

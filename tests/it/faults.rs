//! `kerblam package` killed at named points of its work, with SIGINT and with SIGKILL.
//!
//! Each point is reached through the test hook of `kerblam_archive::fault` (`KERBLAM_FAULT_PAUSE`):
//! kerblam reports the point in a file and waits there; the test sends its signal, lets it go on,
//! and then checks what is on disk:
//!
//! - never a partial file under a final name: each of `process.kerblam.tar`, `process.context.tar`
//!   and `process.oci.tar` is absent or complete (it parses, and the replay archive verifies);
//! - after SIGINT: exit 130 (or 0 when the work was already done), no temporary file in the
//!   project, nothing left in the private `TMPDIR`, and (docker) no stage image;
//! - after SIGKILL: the next `kerblam package --force` succeeds and removes the temporaries the
//!   killed run left (they belong to a dead process).
//!
//! Points of the docker backend run only with docker (required in CI).

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::engines::{self, EngineHandle};
use support::project::{TestProject, kill, show, stripped_kerblam, wait_timeout};

const SIGINT: i32 = 2;
const SIGKILL: i32 = 9;

/// The points of a tarball-backend package, `NAME` or `NAME@N`, and whether the package also
/// writes an OCI archive (`--image-format oci`). The plugin commits the context archive, (the OCI
/// archive); kerblam, which archives the data while the plugin works, commits the replay archive
/// last. The plugin links its own copy of the fault hook, so it counts its own points: its
/// `atomic/*-rename@1` is the context archive, `@2` the OCI archive; kerblam's `@1` is the replay
/// archive, and whichever of the two comes first stops.
const TARBALL_POINTS: &[(&str, bool)] = &[
    ("host/compiled", false),
    ("tarball/start", false),
    ("context/file@1", false),
    ("context/file@4", false),
    ("tarball/context-written", false),
    ("tarball/oci-written", true),
    ("replay/created", false),
    ("replay/data-file@1", false),
    ("replay/data-file@3", false),
    ("replay/before-sums", false),
    ("replay/read-back", false),
    ("tarball/before-commit", false),
    ("atomic/before-rename@1", false),
    ("atomic/after-rename@1", false),
    ("tarball/after-commit@2", true),
    ("atomic/before-rename@2", true),
    ("atomic/after-rename@2", true),
    ("host/executed", false),
    ("host/archived", false),
];

/// The points of a docker-backend package.
const DOCKER_POINTS: &[&str] = &[
    "engine/before-build",
    "context/file@2",
    "engine/stage-built",
    "engine/built",
    "replay/data-file@2",
];

const FINAL_NAMES: &[&str] = &[
    "process.kerblam.tar",
    "process.context.tar",
    "process.oci.tar",
];

/// The workspace plugins these tests load (built by `support::plugin_dir`).
const PLUGINS: &[&str] = &["kerblam-backend-tarball", "kerblam-backend-docker"];

/// The process example with three precious files (so data points can be hit more than once).
fn project(base: Option<&str>) -> TestProject {
    let p = TestProject::example("process");
    p.write("data/in/second.txt", "second precious file\n");
    p.write("data/in/third.txt", "third precious file\n");
    if let Some(base) = base {
        p.write(
            "src/dockerfiles/process.dockerfile",
            format!("FROM {base}\nWORKDIR /\nCOPY . .\n"),
        );
    }
    p
}

struct Run {
    child: Child,
    reached: PathBuf,
}

fn start(p: &TestProject, tmp: &Path, point: &str, backend_args: &[&str]) -> Run {
    let dir = support::plugin_dir(PLUGINS);
    let reached = tmp.parent().unwrap().join("reached");
    let _ = std::fs::remove_file(&reached);
    let _ = std::fs::remove_file(continue_file(&reached));
    let mut args = vec![
        "--backend-path",
        dir.to_str().unwrap(),
        "package",
        "process",
    ];
    args.extend_from_slice(backend_args);
    let child = p
        .command_of(&stripped_kerblam(), &args)
        .env("TMPDIR", tmp)
        .env("KERBLAM_FAULT_PAUSE", point)
        .env("KERBLAM_FAULT_FILE", &reached)
        .env("KERBLAM_FAULT_SECS", "60")
        .env("KERBLAM_BUILD_NETWORK", "none")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Run { child, reached }
}

fn continue_file(reached: &Path) -> PathBuf {
    let mut s = reached.as_os_str().to_owned();
    s.push(".continue");
    PathBuf::from(s)
}

/// Waits until kerblam reports `point`; panics (with its output) if it ends first.
fn wait_reached(run: &mut Run, point: &str) {
    let start = Instant::now();
    loop {
        if std::fs::read_to_string(&run.reached).is_ok_and(|s| !s.is_empty()) {
            return;
        }
        if let Some(status) = run.child.try_wait().unwrap() {
            let out = wait_output(run);
            panic!("{point}: kerblam ended ({status}) before reaching the point\n{out}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{point}: not reached within 120 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_output(run: &mut Run) -> String {
    use std::io::Read;
    let mut out = String::new();
    if let Some(mut o) = run.child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = run.child.stderr.take() {
        let _ = e.read_to_string(&mut out);
    }
    out
}

/// Every file under `dir` whose name holds a kerblam temporary marker.
fn temporaries(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains(".tmp-") || name.starts_with(".kerblam-replay-") {
                found.push(e.path().display().to_string());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    found
}

/// Each final name is absent or a complete archive.
fn finals_complete(p: &TestProject, what: &str) {
    for name in FINAL_NAMES {
        let path = p.path(name);
        if !path.exists() {
            continue;
        }
        if *name == "process.kerblam.tar" {
            kerblam_archive::ReplayArchive::open(&path)
                .unwrap_or_else(|e| panic!("{what}: {name} is not a complete replay archive: {e}"));
        } else {
            let mut a = tar::Archive::new(std::fs::File::open(&path).unwrap());
            let mut n = 0;
            for e in a.entries().unwrap() {
                let mut e = e.unwrap_or_else(|e| panic!("{what}: {name} is truncated: {e}"));
                std::io::copy(&mut e, &mut std::io::sink())
                    .unwrap_or_else(|e| panic!("{what}: {name} is truncated: {e}"));
                n += 1;
            }
            assert!(n > 0, "{what}: {name} is empty");
        }
    }
}

/// The stage images (`kerblam-stage-<pid>-<n>`) the engine still has of the kerblam processes
/// `pids`: other tests build on the same engine at the same time, so only this test's own kerblam
/// processes are looked at.
fn stage_images(engine: &EngineHandle, pids: &[u32]) -> Vec<String> {
    let out = engine.output(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            let name = l.trim_start_matches("localhost/");
            pids.iter()
                .any(|p| name.starts_with(&format!("kerblam-stage-{p}-")))
        })
        .map(String::from)
        .collect()
}

/// One point, one signal: run, kill there, check.
fn kill_at(
    point: &str,
    sig: i32,
    base: Option<&str>,
    args: &[&str],
    engine: Option<&EngineHandle>,
) {
    let what = format!("{point} / signal {sig}");
    let p = project(base);
    let work = tempfile::tempdir().unwrap();
    let tmp = work.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut run = start(&p, &tmp, point, args);
    wait_reached(&mut run, point);
    kill(i64::from(run.child.id()), sig);
    std::fs::write(continue_file(&run.reached), "").unwrap();
    let status = wait_timeout(&mut run.child, Duration::from_secs(120));
    let out = wait_output(&mut run);
    finals_complete(&p, &what);
    use std::os::unix::process::ExitStatusExt;
    if sig == SIGINT {
        assert!(
            matches!(status.code(), Some(130) | Some(0)),
            "{what}: exit {status}\n{out}"
        );
        assert_eq!(temporaries(p.root()), Vec::<String>::new(), "{what}\n{out}");
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "{what}: left in TMPDIR: {left:?}\n{out}");
        if let Some(e) = engine {
            assert_eq!(
                stage_images(e, &[run.child.id()]),
                Vec::<String>::new(),
                "{what}\n{out}"
            );
        }
    } else {
        assert_eq!(status.signal(), Some(SIGKILL), "{what}: {status}\n{out}");
        // The next run cleans up after the killed one and succeeds.
        let dir = support::plugin_dir(PLUGINS);
        let mut again = vec![
            "--backend-path",
            dir.to_str().unwrap(),
            "package",
            "process",
        ];
        again.extend_from_slice(args);
        again.push("--force");
        let next = p
            .command_of(&stripped_kerblam(), &again)
            .env("TMPDIR", &tmp)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pids = [run.child.id(), next.id()];
        let o = next.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "{what}: the next run failed\n{}",
            show(&o)
        );
        assert_eq!(
            temporaries(p.root()),
            Vec::<String>::new(),
            "{what}: after the next run"
        );
        finals_complete(&p, &what);
        assert!(p.exists("process.kerblam.tar"), "{what}");
        if let Some(e) = engine {
            assert_eq!(
                stage_images(e, &pids),
                Vec::<String>::new(),
                "{what}: after the next run"
            );
        }
    }
}

#[test]
fn package_killed_at_every_point_of_the_tarball_backend_leaves_nothing_partial() {
    let mut tally = support::Tally::default();
    for (point, oci) in TARBALL_POINTS {
        let args: &[&str] = if *oci {
            &["--backend", "tarball", "--image-format", "oci"]
        } else {
            &["--backend", "tarball"]
        };
        for sig in [SIGINT, SIGKILL] {
            tally.case(&format!("{point} {sig}"), || {
                kill_at(point, sig, None, args, None)
            });
        }
    }
    tally.report("fault points survived (tarball)", "");
}

#[test]
fn package_killed_at_every_point_of_the_docker_backend_leaves_nothing_partial() {
    let Some(docker) = engines::engine("docker") else {
        return;
    };
    let base = engines::ensure_base_image(&docker, Path::new(env!("CARGO_BIN_EXE_kerblam")));
    let args = ["--backend", "docker", "--tag", "kerblam-faults-test:1"];
    let mut tally = support::Tally::default();
    for point in DOCKER_POINTS {
        for sig in [SIGINT, SIGKILL] {
            tally.case(&format!("{point} {sig}"), || {
                kill_at(point, sig, Some(&base), &args, Some(&docker))
            });
        }
    }
    docker.remove_image("kerblam-faults-test:1");
    tally.report("fault points survived (docker)", "");
}

/// Two `kerblam package` runs of one project at once: the second waits for the first (a lock on
/// kerblam.toml, no lock file), then both succeed; the archive is whole.
#[test]
fn two_packages_at_once_take_turns() {
    let p = project(None);
    let work = tempfile::tempdir().unwrap();
    let tmp = work.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let args = ["--backend", "tarball", "--force"];
    let mut first = start(&p, &tmp, "replay/created", &args);
    wait_reached(&mut first, "replay/created");
    let dir = support::plugin_dir(PLUGINS);
    let mut second = p
        .command_of(
            &stripped_kerblam(),
            &[
                "--backend-path",
                dir.to_str().unwrap(),
                "package",
                "process",
                "--backend",
                "tarball",
                "--force",
            ],
        )
        .env("TMPDIR", &tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The second says it waits, and does.
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        second.try_wait().unwrap().is_none(),
        "the second run did not wait"
    );
    std::fs::write(continue_file(&first.reached), "").unwrap();
    let s1 = wait_timeout(&mut first.child, Duration::from_secs(60));
    let out1 = wait_output(&mut first);
    let s2 = wait_timeout(&mut second, Duration::from_secs(60));
    let mut err2 = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut err2).unwrap();
    assert!(s1.success(), "{out1}");
    assert!(s2.success(), "{err2}");
    assert!(
        err2.contains("waiting for another kerblam package"),
        "{err2}"
    );
    finals_complete(&p, "two at once");
    assert_eq!(temporaries(p.root()), Vec::<String>::new());
    // The lock is the manifest itself: no file was added for it.
    assert!(!p.exists("kerblam.toml.lock"));
}

/// The disk fills up while the replay archive's data is written (after the preflight found room:
/// another program took it): a clear "no space" error naming the file, exit 1, and nothing left
/// on the full disk but what was there.
#[test]
fn a_disk_that_fills_up_while_packaging_gives_a_no_space_error_and_leaves_nothing() {
    let work = tempfile::tempdir().unwrap();
    let Some(disk) = support::tmpfs::Tmpfs::mount(&work.path().join("disk"), "size=4m") else {
        return;
    };
    let p = project(None);
    // 2 MiB of incompressible precious data.
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let data: Vec<u8> = (0..2 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    p.write("data/in/big.bin", &data);
    let tmp = work.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let archive = disk.path().join("process.kerblam.tar");
    let archive_arg = archive.to_str().unwrap().to_string();
    let mut run = start(
        &p,
        &tmp,
        "replay/data-file@1",
        &["--backend", "tarball", "-o", &archive_arg],
    );
    wait_reached(&mut run, "replay/data-file@1");
    // Someone else takes the room the preflight saw.
    let filler = disk.path().join("filler");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=64k", "count=60"])
        .arg(format!("of={}", filler.display()))
        .output();
    std::fs::write(continue_file(&run.reached), "").unwrap();
    let status = wait_timeout(&mut run.child, Duration::from_secs(60));
    let out = wait_output(&mut run);
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(out.contains("No space left on device"), "{out}");
    // It names the file being written, as the user named it, never its temporary name.
    assert!(
        out.contains(&format!("{archive_arg}:")) || out.contains(&format!("{archive_arg} ")),
        "the error names the file: {out}"
    );
    assert!(!out.contains(".tmp-"), "a temporary name is shown: {out}");
    assert!(out.contains("help:"), "{out}");
    let left: Vec<_> = std::fs::read_dir(disk.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["filler"], "{out}");
    assert!(!p.exists("process.context.tar"), "{out}");
    assert_eq!(temporaries(p.root()), Vec::<String>::new());
}

/// The engine dies in the middle of a build (a docker CLI killed by SIGKILL after it read part of
/// the context): a clear error naming the engine and how it died, exit 1, nothing left behind.
#[test]
fn an_engine_that_dies_mid_build_is_a_clear_error() {
    let Some(docker) = engines::engine("docker") else {
        return;
    };
    let base = engines::ensure_base_image(&docker, Path::new(env!("CARGO_BIN_EXE_kerblam")));
    let real = testing_which(&docker.program);
    let work = tempfile::tempdir().unwrap();
    let fake = work.path().join("docker");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\n# docker, except that `build` dies half-way\nif [ \"$1\" = build ]; then\n  head -c 4096 >/dev/null\n  echo 'Step 1/3 : FROM {base}'\n  kill -KILL $$\nfi\nexec '{}' \"$@\"\n",
            real.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = project(Some(&base));
    let tmp = work.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let dir = support::plugin_dir(PLUGINS);
    let o = p
        .command_of(
            &stripped_kerblam(),
            &[
                "--backend-path",
                dir.to_str().unwrap(),
                "package",
                "process",
                "--backend",
                "docker",
                "--tag",
                "kerblam-dies-test:1",
            ],
        )
        .env("KERBLAM_DOCKER", &fake)
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let text = show(&o).replace("\n  | ", " ");
    eprintln!("{text}");
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("docker build"), "{text}");
    assert!(
        text.contains("signal 9") || text.contains("SIGKILL"),
        "{text}"
    );
    assert!(
        text.contains("Step 1/3"),
        "the engine's output is shown: {text}"
    );
    for name in FINAL_NAMES {
        assert!(!p.exists(name), "{name}: {text}");
    }
    assert_eq!(temporaries(p.root()), Vec::<String>::new());
    assert!(std::fs::read_dir(&tmp).unwrap().next().is_none());
    assert!(!docker.image_exists("kerblam-dies-test:1"));
}

/// The absolute path of `program` (on PATH unless it has a slash).
fn testing_which(program: &str) -> PathBuf {
    if program.contains('/') {
        return PathBuf::from(program);
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
}

/// kerblam archives the precious data itself, while the backend writes its own files: a precious
/// file that vanished after the plan was made stops the package with an error naming it (exit 1),
/// and leaves neither a replay archive nor the backend's context archive under a final name.
#[test]
fn a_precious_file_that_vanished_stops_the_package_and_leaves_nothing() {
    let p = project(None);
    let work = tempfile::tempdir().unwrap();
    let tmp = work.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut run = start(&p, &tmp, "host/compiled", &["--backend", "tarball"]);
    wait_reached(&mut run, "host/compiled");
    let gone = p.path("data/in/second.txt");
    std::fs::remove_file(&gone).unwrap();
    std::fs::write(continue_file(&run.reached), "").unwrap();
    let status = wait_timeout(&mut run.child, Duration::from_secs(60));
    let out = wait_output(&mut run);
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(out.contains("data/in/second.txt"), "{out}");
    for name in FINAL_NAMES {
        assert!(!p.exists(name), "{name} was left:\n{out}");
    }
    assert_eq!(temporaries(p.root()), Vec::<String>::new(), "{out}");
}

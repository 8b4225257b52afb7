//! `kerblam run --profile`: the swap is visible to the pipe and always undone — after success, after
//! failure, after SIGINT/SIGTERM, and (from the journal, on the next run) after SIGKILL at any point.

use crate::support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::project::{TestProject, alive, kill, show, wait_timeout};

const MANIFEST: &str = r#"
[data.profiles.alt]
"input.txt" = "alt_input.txt"
"sub/config.txt" = "sub/alt_config.txt"
"gone.txt" = "_"
"added.txt" = "alt_added.txt"
"#;

/// A project whose `look` pipe records what it sees of the input files.
fn project() -> TestProject {
    let p = TestProject::new(MANIFEST);
    p.write("data/in/input.txt", "real input\n")
        .write("data/in/alt_input.txt", "alt input\n")
        .write("data/in/sub/config.txt", "real config\n")
        .write("data/in/sub/alt_config.txt", "alt config\n")
        .write("data/in/gone.txt", "present normally\n")
        .write("data/in/alt_added.txt", "added by the profile\n")
        .write(
            "src/workflows/look.sh",
            r#"set -eu
mkdir -p data/out
{
  cat data/in/input.txt data/in/sub/config.txt
  if [ -e data/in/gone.txt ]; then echo "gone.txt present"; else echo "gone.txt absent"; fi
  if [ -e data/in/added.txt ]; then cat data/in/added.txt; else echo "added.txt absent"; fi
  echo "profile=${KERBLAM_PROFILE:-none}"
  ls data/in
} > data/out/seen.txt
exit "${EXIT_WITH:-0}"
"#,
        )
        .write(
            "src/workflows/sleepy.sh",
            "mkdir -p data/out\ncat data/in/input.txt > data/out/seen.txt\necho $$ > data/out/pipe.pid\nsleep 60\n",
        )
        .write("src/workflows/noop.sh", "true\n");
    p
}

fn input_state(p: &TestProject) -> BTreeMap<String, Vec<u8>> {
    let mut s = p.snapshot("data/in");
    // Remembering the last profile is expected; it is not input data.
    s.remove(".kerblam-last-profile");
    s
}

fn assert_restored(p: &TestProject, before: &BTreeMap<String, Vec<u8>>, when: &str) {
    let after = input_state(p);
    assert_eq!(
        &after,
        before,
        "input dir not restored {when}: before {:?} after {:?}",
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
}

#[test]
fn the_pipe_sees_the_profile_and_the_files_come_back() {
    let p = project();
    let before = input_state(&p);
    let o = p.kerblam(&["run", "look", "--profile", "alt"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let seen = p.read("data/out/seen.txt");
    assert!(
        seen.starts_with(
            "alt input\nalt config\ngone.txt absent\nadded by the profile\nprofile=alt\n"
        ),
        "{seen}"
    );
    // The replacements stand in for the originals: they are not visible under their own names.
    assert!(
        !seen.contains("alt_input.txt") && !seen.contains("alt_added.txt"),
        "{seen}"
    );
    assert_restored(&p, &before, "after success");

    // Without a profile the pipe sees the real data.
    let o = p.kerblam(&["run", "look"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let seen = p.read("data/out/seen.txt");
    assert!(
        seen.starts_with(
            "real input\nreal config\ngone.txt present\nadded.txt absent\nprofile=none\n"
        ),
        "{seen}"
    );
}

#[test]
fn the_files_come_back_after_a_failure() {
    let p = project();
    let before = input_state(&p);
    let o = p
        .command(&["run", "look", "--profile", "alt"])
        .env("EXIT_WITH", "5")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5), "{}", show(&o));
    assert!(p.read("data/out/seen.txt").starts_with("alt input\n"));
    assert_restored(&p, &before, "after a failing pipe");
}

#[test]
fn the_files_come_back_after_sigint_and_sigterm() {
    for (sig, expected) in [(2, 130), (15, 143)] {
        let p = project();
        let before = input_state(&p);
        let mut child = p
            .command(&["run", "sleepy", "--profile", "alt"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        p.wait_for("data/out/pipe.pid", Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(p.read("data/out/seen.txt"), "alt input\n");
        assert!(
            p.exists("data/in/.kerblam-profile.lock"),
            "no journal during the run"
        );
        kill(child.id() as i64, sig);
        let status = wait_timeout(&mut child, Duration::from_secs(20));
        assert_eq!(status.code(), Some(expected), "signal {sig}");
        assert_restored(&p, &before, &format!("after signal {sig}"));
    }
}

#[test]
fn after_sigkill_the_next_run_restores_from_the_journal() {
    let p = project();
    let before = input_state(&p);
    let mut child = p
        .command(&["run", "sleepy", "--profile", "alt"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    p.wait_for("data/out/pipe.pid", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(100));
    let pipe_pid: i64 = p.read("data/out/pipe.pid").trim().parse().unwrap();
    kill(child.id() as i64, 9);
    wait_timeout(&mut child, Duration::from_secs(20));
    // The orphaned pipe (its own process group) is ours to stop.
    kill(-pipe_pid, 9);
    assert!(p.exists("data/in/.kerblam-profile.lock"));
    assert_eq!(
        p.read("data/in/input.txt"),
        "alt input\n",
        "still swapped after SIGKILL"
    );

    let o = p.kerblam(&["run", "look"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("restored the input files of profile `alt`"),
        "{}",
        show(&o)
    );
    assert!(
        p.read("data/out/seen.txt")
            .starts_with("real input\nreal config\ngone.txt present\nadded.txt absent\n")
    );
    assert_restored(&p, &before, "by the next run");
}

#[test]
fn a_run_interrupted_at_any_point_of_the_swap_is_restored() {
    // Each file operation of the swap and of the restore sleeps STEP ms; kill kerblam at points
    // spread over both. SIGKILL: the next run restores; SIGINT: kerblam restores before exiting.
    const STEP: u64 = 100;
    let points: Vec<u64> = (0..14).map(|i| 30 + i * STEP).collect();
    let mut tally = support::Tally::default();
    for sig in [9, 2] {
        for &at in &points {
            tally.case(&format!("signal {sig} at {at} ms"), || {
                interrupt_at(sig, at, STEP)
            });
        }
    }
    tally.report(
        "interrupted profile runs restored",
        &format!(" ({} points x SIGINT and SIGKILL)", points.len()),
    );
}

/// One run of the `alt` profile killed with `sig` `at` ms in, each file operation taking `step`
/// ms; the input is as it was, after kerblam exits (SIGINT) or after the next run (SIGKILL).
fn interrupt_at(sig: i32, at: u64, step: u64) {
    let p = project();
    let before = input_state(&p);
    let mut child = p
        .command(&["run", "noop", "--profile", "alt"])
        .env("KERBLAM_TEST_PROFILE_STEP_DELAY_MS", step.to_string())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(at));
    let _ = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status();
    wait_timeout(&mut child, Duration::from_secs(30));
    if sig == 9 {
        let o = p.kerblam(&["run", "noop"]);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    }
    assert_restored(&p, &before, &format!("after signal {sig} at {at} ms"));
}

#[test]
fn the_implicit_test_profile_swaps_test_files() {
    let p = TestProject::example("process");
    let before = input_state(&p);
    let o = p.kerblam(&["run", "shout", "--local", "--profile", "test"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(
        p.read("data/out/shout.txt"),
        p.read("data/in/test_precious.txt").to_uppercase()
    );
    assert_ne!(
        p.read("data/in/test_precious.txt"),
        p.read("data/in/precious.txt")
    );
    assert_restored(&p, &before, "after the test profile");
}

#[test]
fn a_declared_test_profile_replaces_the_inferred_one() {
    let p = TestProject::new("[data.profiles.test]\n\"a.txt\" = \"other.txt\"\n");
    p.write("data/in/a.txt", "a\n")
        .write("data/in/test_a.txt", "test a\n")
        .write("data/in/other.txt", "other\n")
        .write(
            "src/workflows/show.sh",
            "mkdir -p data/out\ncat data/in/a.txt > data/out/a.txt\n",
        );
    let o = p.kerblam(&["run", "show", "--profile", "test"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(p.read("data/out/a.txt"), "other\n");
}

#[test]
fn make_rebuilds_when_the_profile_changes() {
    // make compares modification times: swapped-in files are touched when the profile changes, and
    // the originals when going back to no profile, so each run reflects its data.
    let p = TestProject::example("process");
    p.write("data/in/remote.txt", "remote line\n");
    p.write("data/in/test_remote.txt", "test remote line\n");
    let merged = |p: &TestProject| p.read("data/out/merged.txt");
    let run = |args: &[&str]| {
        let o = p.kerblam(args);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    };
    run(&["run", "process", "--local"]);
    assert!(merged(&p).contains("remote line") && !merged(&p).contains("test remote"));
    std::thread::sleep(Duration::from_millis(20));
    run(&["run", "process", "--local", "--profile", "test"]);
    assert!(merged(&p).contains("test remote line"), "{}", merged(&p));
    std::thread::sleep(Duration::from_millis(20));
    run(&["run", "process", "--local"]);
    assert!(!merged(&p).contains("test remote line"), "{}", merged(&p));
}

#[test]
fn bad_profiles_are_refused_before_anything_moves() {
    let p = project();
    let before = input_state(&p);
    let o = p.kerblam(&["run", "look", "--profile", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no profile named `nope`") && err.contains("alt"),
        "{err}"
    );

    std::fs::remove_file(p.path("data/in/sub/alt_config.txt")).unwrap();
    let before_missing = input_state(&p);
    let o = p.kerblam(&["run", "look", "--profile", "alt"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("data/in/sub/alt_config.txt"),
        "{}",
        show(&o)
    );
    assert_restored(&p, &before_missing, "after a refused profile");
    assert!(!p.exists("data/out/seen.txt"), "the pipe ran");
    drop(before);
}

#[test]
fn a_second_run_is_refused_while_a_profile_is_swapped() {
    let p = project();
    let mut child = p
        .command(&["run", "sleepy", "--profile", "alt"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    p.wait_for("data/out/pipe.pid", Duration::from_secs(20));
    let o = p.kerblam(&["run", "look"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("pid {}", child.id())) && err.contains("--profile alt"),
        "{err}"
    );
    assert!(!p.exists("data/out/seen.txt") || p.read("data/out/seen.txt") == "alt input\n");
    kill(child.id() as i64, 2);
    let status = wait_timeout(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(130));
    let pid: i64 = p.read("data/out/pipe.pid").trim().parse().unwrap();
    assert!(!alive(pid));
}

/// This test process's start time, as the journal records it.
fn own_start_time() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    stat.rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap()
}

/// Leave `input.txt` swapped as a killed run would, with a journal naming `pid`/`start`.
fn half_swapped(p: &TestProject, pid: u32, start: u64) {
    std::fs::rename(
        p.path("data/in/input.txt"),
        p.path("data/in/.input.txt.kerblam-original"),
    )
    .unwrap();
    std::fs::rename(p.path("data/in/alt_input.txt"), p.path("data/in/input.txt")).unwrap();
    p.write(
        "data/in/.kerblam-profile.lock",
        format!(
            r#"{{"format": "kerblam.profile-journal/v1", "profile": "alt", "pid": {pid}, "start_time": {start},
  "entries": [{{"original": "input.txt", "target": "alt_input.txt", "stash": ".input.txt.kerblam-original"}}]}}"#
        ),
    );
}

#[test]
fn a_journal_binds_only_while_the_run_that_wrote_it_lives() {
    // A live process with the journal's pid and start time: the swap is in use, refuse.
    let p = project();
    let before = input_state(&p);
    half_swapped(&p, std::process::id(), own_start_time());
    let o = p.kerblam(&["run", "look"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert_eq!(
        p.read("data/in/input.txt"),
        "alt input\n",
        "touched a swap in use"
    );

    // Same pid, other start time: the pid was reused after the run died, so recover.
    std::fs::remove_file(p.path("data/in/.kerblam-profile.lock")).unwrap();
    p.write(
        "data/in/.kerblam-profile.lock",
        format!(
            r#"{{"format": "kerblam.profile-journal/v1", "profile": "alt", "pid": {}, "start_time": {},
  "entries": [{{"original": "input.txt", "target": "alt_input.txt", "stash": ".input.txt.kerblam-original"}}]}}"#,
            std::process::id(),
            own_start_time() + 1
        ),
    );
    let o = p.kerblam(&["run", "look"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(p.read("data/out/seen.txt").starts_with("real input\n"));
    assert_restored(&p, &before, "after recovering from a reused pid");
}

#[test]
fn a_corrupt_journal_or_a_stale_stash_stops_the_run_untouched() {
    let p = project();
    p.write("data/in/.kerblam-profile.lock", "{ not json");
    let before = input_state(&p);
    let o = p.kerblam(&["run", "look", "--profile", "alt"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(".kerblam-profile.lock is not readable"),
        "{}",
        show(&o)
    );
    assert_restored(&p, &before, "with a corrupt journal");
    assert!(!p.exists("data/out/seen.txt"));

    // A journal that points outside the input dir is refused as well.
    p.write(
        "data/in/.kerblam-profile.lock",
        r#"{"format": "kerblam.profile-journal/v1", "profile": "x", "pid": 1, "entries": [{"original": "../../kerblam.toml", "target": null, "stash": "s"}]}"#,
    );
    let o = p.kerblam(&["run", "look"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(p.exists("kerblam.toml"));

    std::fs::remove_file(p.path("data/in/.kerblam-profile.lock")).unwrap();
    p.write("data/in/sub/.config.txt.kerblam-original", "stale\n");
    let before = input_state(&p);
    let o = p.kerblam(&["run", "look", "--profile", "alt"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("data/in/sub/.config.txt.kerblam-original exists"),
        "{}",
        show(&o)
    );
    assert_restored(&p, &before, "with a stale stash");
}

#[test]
fn a_swap_that_fails_half_way_is_undone() {
    // `zz` is a file, so `zz/x.txt` cannot be created: the swap fails after `a.txt` moved.
    let p = TestProject::new(
        "[data.profiles.bad]\n\"a.txt\" = \"alt_a.txt\"\n\"zz/x.txt\" = \"y.txt\"\n",
    );
    p.write("data/in/a.txt", "a\n")
        .write("data/in/alt_a.txt", "alt a\n")
        .write("data/in/y.txt", "y\n")
        .write("data/in/zz", "a file\n")
        .write(
            "src/workflows/noop.sh",
            "mkdir -p data/out\ntouch data/out/ran\n",
        );
    let before = input_state(&p);
    let o = p.kerblam(&["run", "noop", "--profile", "bad"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("cannot move data/in/y.txt to data/in/zz/x.txt"),
        "{}",
        show(&o)
    );
    assert_restored(&p, &before, "after a failed swap");
    assert!(!p.exists("data/out/ran"), "the pipe ran");
}

#[test]
fn a_restore_that_cannot_decide_keeps_everything_and_says_so() {
    // The pipe writes a new file where the replacement was: kerblam cannot tell which file is which,
    // so it moves nothing, exits 1, and keeps the journal (the next run refuses until fixed by hand).
    let p = project();
    p.write(
        "src/workflows/clobber.sh",
        "echo 'new file' > data/in/alt_input.txt\n",
    );
    let o = p.kerblam(&["run", "clobber", "--profile", "alt"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("alt_input.txt was created during the run")
            && err.contains("was not fully swapped back"),
        "{err}"
    );
    assert_eq!(p.read("data/in/input.txt"), "alt input\n");
    assert_eq!(p.read("data/in/alt_input.txt"), "new file\n");
    assert_eq!(
        p.read("data/in/.input.txt.kerblam-original"),
        "real input\n"
    );
    // The other entries were restored.
    assert_eq!(p.read("data/in/sub/config.txt"), "real config\n");
    assert!(p.exists("data/in/.kerblam-profile.lock"));
    let o = p.kerblam(&["run", "look"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("fix them by hand"),
        "{}",
        show(&o)
    );
}

/// The profile is swapped on the host before the data dirs are mounted, so a container run sees it
/// too; the container's exit code comes back through the backend plugin.
#[test]
fn the_profile_applies_to_container_runs() {
    use support::engines::{engine, ensure_base_image};
    let engines: Vec<_> = ["docker", "podman"]
        .into_iter()
        .filter_map(engine)
        .collect();
    if engines.is_empty() {
        return;
    }
    let plugins = kerblam_backend_api::host::testing::build_workspace_packages(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"),
        &["kerblam-backend-docker", "kerblam-backend-podman"],
    )
    .expect("cargo build of the plugins");
    for eng in engines {
        let name = eng.name.clone();
        let base = ensure_base_image(&eng, std::path::Path::new(env!("CARGO_BIN_EXE_kerblam")));
        let p = project();
        p.write(
            "kerblam.toml",
            format!("{MANIFEST}\n[execution]\nbackend = \"{name}\"\n"),
        )
        .write(
            "src/dockerfiles/default.dockerfile",
            format!("FROM {base}\n"),
        )
        .write("src/workflows/four.sh", "exit 4\n");
        let before = input_state(&p);
        let tag = format!("kerblam-profile-test-{name}-{}", std::process::id());
        let run = |pipe: &str| {
            let mut cmd = p.command(&["--backend-path"]);
            cmd.arg(&plugins)
                .args(["run", pipe, "--profile", "alt", "--tag", &tag]);
            cmd.output().unwrap()
        };
        let look = run("look");
        let four = run("four");
        eng.remove_image(&tag);
        eng.remove_image(&eng.local_tag(&tag));
        assert_eq!(look.status.code(), Some(0), "{name}: {}", show(&look));
        let seen = p.read("data/out/seen.txt");
        assert!(
            seen.starts_with(
                "alt input\nalt config\ngone.txt absent\nadded by the profile\nprofile=none\n"
            ),
            "{name}: {seen}"
        );
        assert_eq!(four.status.code(), Some(4), "{name}: {}", show(&four));
        assert_restored(&p, &before, &format!("after {name} runs"));
    }
}

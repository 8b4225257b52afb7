//! Bad inputs to `kerblam package` and `kerblam replay` get clear errors, a non-zero exit, and leave
//! nothing behind: a pipe with no recipe, an engine that is not installed, a failing build, a replay
//! into a directory holding different data, a hostile or corrupt archive.
//!
//! Only the build failure needs a running engine (docker); the rest run everywhere. Archives for the
//! replay tests are made by the tarball backend (same replay archive writer, no engine needed).

use crate::support;

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Output;

use support::engines::{engine, ensure_base_image};
use support::project::{TestProject, show};

/// The workspace plugins these tests load (built by `support::plugin_dir`).
const PLUGINS: &[&str] = &[
    "kerblam-backend-docker",
    "kerblam-backend-podman",
    "kerblam-backend-tarball",
];

fn kerblam(p: &TestProject, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = p.command(&[]);
    c.arg("--backend-path")
        .arg(support::plugin_dir(PLUGINS))
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run kerblam")
}

/// stderr with miette's line wrapping undone both ways (a break inside a word or between words), so
/// a needle matches however the message was wrapped.
fn stderr(o: &Output) -> String {
    let raw = String::from_utf8_lossy(&o.stderr);
    format!(
        "{}\n{}",
        raw.replace("\n  | ", ""),
        raw.replace("\n  | ", " ")
    )
}

/// Files directly in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn package_of_a_pipe_without_recipe_names_the_recipes_tried() {
    let p = TestProject::example("process");
    std::fs::remove_file(p.path("src/dockerfiles/default.dockerfile")).unwrap();
    let before = listing(p.root());
    let o = kerblam(&p, &["package", "shout"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = stderr(&o);
    assert!(
        err.contains("src/dockerfiles/shout.dockerfile")
            && err.contains("src/dockerfiles/default.dockerfile"),
        "{}",
        show(&o)
    );
    assert_eq!(listing(p.root()), before, "package left files behind");
}

#[test]
fn package_with_a_missing_engine_says_which_and_how_to_get_it() {
    let p = TestProject::example("process");
    let before = listing(p.root());
    let o = kerblam(
        &p,
        &["package", "process", "--backend", "docker"],
        &[("KERBLAM_DOCKER", "/nonexistent/kerblam-test/docker")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = stderr(&o);
    for needle in [
        "docker is not installed",
        "/nonexistent/kerblam-test/docker",
        "apt-get install docker.io",
    ] {
        assert!(err.contains(needle), "{needle:?} missing:\n{}", show(&o));
    }
    assert_eq!(listing(p.root()), before, "package left files behind");

    let o = kerblam(
        &p,
        &["package", "process", "--backend", "podman"],
        &[("KERBLAM_PODMAN", "/nonexistent/kerblam-test/podman")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        stderr(&o).contains("podman is not installed")
            && stderr(&o).contains("/nonexistent/kerblam-test/podman"),
        "{}",
        show(&o)
    );
}

#[test]
fn failing_build_shows_the_engine_output_and_leaves_nothing() {
    let Some(docker) = engine("docker") else {
        return;
    };
    let base = ensure_base_image(&docker, Path::new(env!("CARGO_BIN_EXE_kerblam")));
    let p = TestProject::example("process");
    let tag = format!("kerblam-err-build-{}", std::process::id());
    p.write(
        "src/dockerfiles/process.dockerfile",
        format!(
            "FROM {base}\nLABEL kerblam.test.build-failure={tag}\nCOPY . .\nRUN echo kerblam-build-marker && exit 3\n"
        ),
    );
    let before = listing(p.root());
    let tmp = tempfile::tempdir().unwrap();
    let o = kerblam(
        &p,
        &["package", "process", "--backend", "docker", "--tag", &tag],
        &[
            ("DOCKER_BUILDKIT", "0"),
            ("TMPDIR", tmp.path().to_str().unwrap()),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = stderr(&o);
    assert!(err.contains("kerblam-build-marker"), "{}", show(&o));
    assert!(
        err.contains("building") && err.contains("failed"),
        "{}",
        show(&o)
    );
    assert_eq!(
        listing(p.root()),
        before,
        "a failed build left files behind (a partial archive?)"
    );
    assert!(
        listing(tmp.path()).is_empty(),
        "temporary files left: {:?}",
        listing(tmp.path())
    );
    assert!(!docker.image_exists(&tag));
    let left = docker.output(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("label=kerblam.test.build-failure={tag}"),
    ]);
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "the failed build left a container behind"
    );
}

/// A replay archive of `process` made by the tarball backend, and its project.
fn archive() -> (TestProject, PathBuf) {
    let p = TestProject::example("process");
    let o = kerblam(&p, &["package", "process", "--backend", "tarball"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let a = p.path("process.kerblam.tar");
    assert!(a.is_file());
    (p, a)
}

fn replay(p: &TestProject, archive: &Path, dest: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["replay", archive.to_str().unwrap(), dest.to_str().unwrap()];
    args.extend_from_slice(extra);
    kerblam(p, &args, &[])
}

#[test]
fn replay_refuses_a_dest_holding_different_data() {
    let (p, archive) = archive();
    let dest = tempfile::tempdir().unwrap();
    let mine = dest.path().join("data/in/precious.txt");
    std::fs::create_dir_all(mine.parent().unwrap()).unwrap();
    std::fs::write(&mine, "my own precious data\n").unwrap();
    let o = replay(&p, &archive, dest.path(), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = stderr(&o);
    assert!(
        err.contains("precious.txt") && err.contains("--force"),
        "{}",
        show(&o)
    );
    assert_eq!(
        std::fs::read_to_string(&mine).unwrap(),
        "my own precious data\n"
    );
    assert!(!dest.path().join("kerblam.toml").exists());

    let other = tempfile::tempdir().unwrap();
    std::fs::write(
        other.path().join("kerblam.toml"),
        "[meta]\nversion = \"9\"\n",
    )
    .unwrap();
    let o = replay(&p, &archive, other.path(), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        stderr(&o).contains("different kerblam.toml"),
        "{}",
        show(&o)
    );
    assert_eq!(listing(other.path()), ["kerblam.toml"]);

    // With --force both are replaced by the archive's (the run that follows is refused here: the
    // tarball backend cannot run images, which is after the unpacking this checks).
    for dest in [dest.path(), other.path()] {
        let o = replay(&p, &archive, dest, &["--force", "--backend", "tarball"]);
        assert!(stderr(&o).contains("unpacked 2 data files"), "{}", show(&o));
        assert_eq!(
            std::fs::read(dest.join("data/in/precious.txt")).unwrap(),
            std::fs::read(p.path("data/in/precious.txt")).unwrap()
        );
        assert_eq!(
            std::fs::read(dest.join("kerblam.toml")).unwrap(),
            std::fs::read(p.path("kerblam.toml")).unwrap()
        );
    }
}

#[test]
fn replay_refuses_an_archive_whose_data_fails_its_checksum() {
    let (p, archive) = archive();
    // Flip one byte inside the data.tar.zst member.
    let offset = {
        let mut a = tar::Archive::new(std::fs::File::open(&archive).unwrap());
        let e = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_string_lossy() == "data.tar.zst")
            .expect("data.tar.zst member");
        e.raw_file_position() + e.size() / 2
    };
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&archive)
        .unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut b = [0u8];
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&[b[0] ^ 0xff]).unwrap();
    drop(f);
    let parent = tempfile::tempdir().unwrap();
    let dest = parent.path().join("dest");
    let o = replay(&p, &archive, &dest, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        stderr(&o).contains("data.tar.zst") && stderr(&o).to_lowercase().contains("checksum"),
        "{}",
        show(&o)
    );
    assert!(!dest.exists(), "replay wrote into dest before verifying");
}

#[test]
fn replay_refuses_a_hostile_archive_and_writes_nothing_outside_dest() {
    let p = TestProject::new("");
    // A Kerblam! 1.x-layout archive whose data tar climbs out with `..`.
    let mut inner = tar::Builder::new(Vec::new());
    let body = b"escaped\n";
    let mut h = tar::Header::new_gnu();
    let name = b"../../escape.txt";
    h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    inner.append(&h, &body[..]).unwrap();
    let inner = inner.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&inner).unwrap();
    let gz = gz.finish().unwrap();
    let mut outer = tar::Builder::new(Vec::new());
    for (n, data) in [
        ("kerblam.toml", &b""[..]),
        ("data.tar.gz", &gz[..]),
        ("name", &b"hostile_exec"[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        outer.append_data(&mut h, n, data).unwrap();
    }
    let parent = tempfile::tempdir().unwrap();
    let archive = parent.path().join("hostile.kerblam.tar");
    std::fs::write(&archive, outer.into_inner().unwrap()).unwrap();
    let dest = parent.path().join("a/b/dest");
    std::fs::create_dir_all(&dest).unwrap();
    let o = replay(&p, &archive, &dest, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(stderr(&o).contains(".."), "{}", show(&o));
    assert!(!parent.path().join("a/escape.txt").exists());
    assert!(!parent.path().join("escape.txt").exists());
    assert!(listing(&dest).is_empty(), "{:?}", listing(&dest));
}

#[test]
fn package_output_is_relative_to_where_kerblam_was_started() {
    let p = TestProject::example("process");
    let cwd = tempfile::tempdir().unwrap();
    std::fs::create_dir(cwd.path().join("out")).unwrap();
    let mut c = p.command(&[]);
    c.current_dir(cwd.path())
        .arg("--backend-path")
        .arg(support::plugin_dir(PLUGINS))
        .args([
            "package",
            "process",
            "--backend",
            "tarball",
            "-o",
            "out/mine.kerblam.tar",
        ]);
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(cwd.path().join("out/mine.kerblam.tar").is_file());
    assert!(!p.path("process.kerblam.tar").exists());
    assert!(!p.path("out").exists());

    // Packaging again replaces the archive the first package wrote there, as Kerblam! 1.x does.
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(stderr(&o).contains("replacing"), "{}", show(&o));
    kerblam_archive::ReplayArchive::open(&cwd.path().join("out/mine.kerblam.tar")).unwrap();

    // A file kerblam did not write is refused without --force, and kept.
    std::fs::write(cwd.path().join("out/mine.kerblam.tar"), "mine").unwrap();
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(stderr(&o).contains("--force"), "{}", show(&o));
    assert_eq!(
        std::fs::read(cwd.path().join("out/mine.kerblam.tar")).unwrap(),
        b"mine"
    );
}

/// `replay --no-run` verifies and unpacks, then stops: the data and the manifest are in dest, no
/// backend is loaded (the archive's docker is not needed), and the exit code is 0.
#[test]
fn replay_no_run_unpacks_and_stops() {
    let (p, archive) = archive();
    let dest = tempfile::tempdir().unwrap();
    let o = replay(&p, &archive, dest.path(), &["--no-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(stderr(&o).contains("--no-decompress"), "{}", show(&o));
    assert_eq!(
        std::fs::read(dest.path().join("data/in/precious.txt")).unwrap(),
        std::fs::read(p.path("data/in/precious.txt")).unwrap()
    );
    assert!(dest.path().join("kerblam.toml").is_file());
    let o = replay(&p, &archive, dest.path(), &["--no-run", "--no-decompress"]);
    assert_eq!(o.status.code(), Some(2), "the two conflict: {}", show(&o));
}

/// Packaging twice at the default paths: the second run replaces both archives (the replay
/// archive and the tarball backend's context archive) and exits 0, as Kerblam! 1.x's `package`
/// does; a file kerblam did not write at the backend's output path is refused without --force.
#[test]
fn package_twice_replaces_what_the_first_wrote_but_not_a_foreign_file() {
    let (p, archive) = archive();
    let context = p.path("process.context.tar");
    let first = std::fs::metadata(&archive).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let o = kerblam(&p, &["package", "process", "--backend", "tarball"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(std::fs::metadata(&archive).unwrap().modified().unwrap() > first);
    for f in [&archive, &context] {
        assert!(
            stderr(&o).contains(&format!("replacing {}", f.display())),
            "{}",
            show(&o)
        );
    }
    // No temporary is left beside them.
    assert!(
        !listing(p.root()).iter().any(|n| n.contains(".tmp")),
        "{:?}",
        listing(p.root())
    );

    std::fs::write(&context, "not an archive").unwrap();
    let before = std::fs::read(&archive).unwrap();
    let o = kerblam(&p, &["package", "process", "--backend", "tarball"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        stderr(&o).contains("process.context.tar (is not a tar archive)")
            && stderr(&o).contains("--force"),
        "{}",
        show(&o)
    );
    assert_eq!(std::fs::read_to_string(&context).unwrap(), "not an archive");
    assert_eq!(std::fs::read(&archive).unwrap(), before);
    let o = kerblam(
        &p,
        &["package", "process", "--backend", "tarball", "--force"],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
}

/// `kerblam replay ARCHIVE` with no destination replays into the current directory, as Kerblam!
/// 1.x does (and into DIR with `-C DIR`).
#[test]
fn replay_without_a_destination_unpacks_into_the_current_directory() {
    let (_p, archive) = archive();
    let here = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_kerblam"))
        .args(["replay", archive.to_str().unwrap(), "--no-run"])
        .current_dir(here.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(here.path().join("kerblam.toml").is_file());
    assert!(here.path().join("data/in/precious.txt").is_file());

    let there = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_kerblam"))
        .arg("-C")
        .arg(there.path())
        .args(["replay", archive.to_str().unwrap(), "--no-run"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(there.path().join("data/in/precious.txt").is_file());
}

/// Kerblam! 1.x's short flags of `replay`: -t (--tag), -b (--backend), -n (--no-decompress).
#[test]
fn replay_takes_the_short_flags_of_kerblam_1() {
    let (p, archive) = archive();
    let dest = tempfile::tempdir().unwrap();
    let o = replay(
        &p,
        &archive,
        dest.path(),
        &["--no-run", "-t", "mine:1", "-b", "podman"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    // -n runs on the data already there, with the backend -b names (none such here).
    let o = replay(&p, &archive, dest.path(), &["-n", "-b", "no-such-backend"]);
    let err = stderr(&o);
    assert!(!err.contains("unexpected argument"), "{}", show(&o));
    assert!(err.contains("no-such-backend"), "{}", show(&o));
}

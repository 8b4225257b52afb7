//! The round trip on real engines: `kerblam run` gives outputs, `kerblam package` then `kerblam
//! replay` into a fresh directory gives byte-identical outputs, with Docker (legacy builder and
//! BuildKit) and Podman, with `--embed-image` after the tag was removed from the engine; two packages
//! of one tree are byte-identical with SOURCE_DATE_EPOCH set.
//!
//! The project is a copy of `examples/process` (a make pipe with its own recipe, a shell pipe on the
//! default recipe, precious data, one remote file) whose recipes start `FROM` the local test base
//! image and whose remote URL points at a server this test runs on 127.0.0.1. Containers get no
//! network, except the replays, whose `kerblam data fetch` must reach that server (`--network host`).
//!
//! Without an engine the tests print why and return, unless `KERBLAM_REQUIRE_ENGINES=1`.

use crate::support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;

use support::engines::{EngineHandle, engine, ensure_base_image};
use support::project::{TestProject, show};

const REMOTE_BODY: &str = "gamma from the remote\nalpha from the remote\n";

/// Serves `REMOTE_BODY` at `/remote.txt` on 127.0.0.1 (ephemeral port) until the process ends.
fn server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    port
}

fn serve(mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = if path == "/remote.txt" {
        ("200 OK", REMOTE_BODY)
    } else {
        ("404 Not Found", "")
    };
    let _ = stream.write_all(
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
}

/// The workspace plugins these tests load (built by `support::plugin_dir`).
const PLUGINS: &[&str] = &[
    "kerblam-backend-docker",
    "kerblam-backend-podman",
    "kerblam-backend-tarball",
];

/// A copy of `examples/process` wired to the local base image and a loopback server.
struct Setup {
    project: TestProject,
    engine: EngineHandle,
    plugins: PathBuf,
    /// Names this test's image tags apart from other tests running at the same time.
    label: String,
    /// Image tags this test made, removed at the end.
    tags: Vec<String>,
    env: Vec<(String, String)>,
}

impl Setup {
    fn new(name: &str, label: &str) -> Option<Setup> {
        let engine = engine(name)?;
        let base = ensure_base_image(&engine, Path::new(env!("CARGO_BIN_EXE_kerblam")));
        let project = TestProject::example("process");
        for recipe in ["default", "process"] {
            let rel = format!("src/dockerfiles/{recipe}.dockerfile");
            let text = project.read(&rel);
            let rewritten: String = text
                .lines()
                .map(|l| {
                    if l.starts_with("FROM ") {
                        format!("FROM {base}\n")
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            project.write(&rel, rewritten);
        }
        let port = server();
        let manifest = project
            .read("kerblam.toml")
            .replace("127.0.0.1:8731", &format!("127.0.0.1:{port}"))
            + &format!("\n[execution]\nbackend = \"{name}\"\n");
        project.write("kerblam.toml", manifest);
        Some(Setup {
            project,
            engine,
            plugins: support::plugin_dir(PLUGINS),
            label: label.to_string(),
            tags: Vec::new(),
            env: Vec::new(),
        })
    }

    /// A tag unique to this test process and purpose.
    fn tag(&mut self, what: &str) -> String {
        let t = format!(
            "kerblam-rt-{}-{}-{what}-{}",
            self.engine.name,
            self.label,
            std::process::id()
        );
        self.tags.push(t.clone());
        t
    }

    fn kerblam_in(&self, dir: &Path, args: &[&str]) -> Output {
        let mut c = self.project.command(&[]);
        c.current_dir(dir)
            .arg("--backend-path")
            .arg(&self.plugins)
            .args(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let _building = support::engines::building();
        c.output().expect("run kerblam")
    }

    fn kerblam(&self, args: &[&str]) -> Output {
        self.kerblam_in(self.project.root(), args)
    }

    fn ok(&self, args: &[&str]) -> Output {
        let o = self.kerblam(args);
        assert_eq!(o.status.code(), Some(0), "kerblam {args:?}:\n{}", show(&o));
        o
    }

    /// `kerblam replay ARCHIVE DEST --network host`, from outside the project.
    fn replay(&self, archive: &Path, dest: &Path, extra: &[&str]) -> Output {
        let mut args = vec![
            "replay",
            archive.to_str().unwrap(),
            dest.to_str().unwrap(),
            "--network",
            "host",
        ];
        args.extend_from_slice(extra);
        let elsewhere = tempfile::tempdir().unwrap();
        let o = self.kerblam_in(elsewhere.path(), &args);
        assert_eq!(o.status.code(), Some(0), "kerblam {args:?}:\n{}", show(&o));
        o
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        for t in &self.tags {
            self.engine.remove_image(t);
            self.engine.remove_image(&self.engine.local_tag(t));
        }
    }
}

/// Every file under `dir`, relative, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    if dir.is_dir() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

/// Run `pipe` in its container, package it, replay the archive into a fresh directory and compare
/// the outputs; with `embed`, the packaged tag is removed from the engine before the replay.
/// Returns the stderr of `kerblam package` (the engine's build output).
fn roundtrip(s: &mut Setup, pipe: &str, embed: bool) -> String {
    let run_tag = s.tag(&format!("{pipe}-run"));
    let pkg_tag = s.tag(&format!("{pipe}-pkg"));
    s.ok(&["data", "fetch"]);
    let out_dir = s.project.path("data/out");
    let _ = std::fs::remove_dir_all(&out_dir);
    s.ok(&["run", pipe, "--tag", &run_tag]);
    let ran = files(&out_dir);
    assert!(!ran.is_empty(), "kerblam run {pipe} wrote no outputs");
    assert!(
        s.engine.image_exists(&s.engine.local_tag(&run_tag)),
        "no run image {run_tag}"
    );

    let archive = s.project.path(&format!("{pipe}.kerblam.tar"));
    let _ = std::fs::remove_file(&archive);
    let mut args = vec!["package", pipe, "--tag", &pkg_tag];
    if embed {
        args.push("--embed-image");
    }
    let packaged = s.ok(&args);
    assert!(archive.is_file(), "no {}", archive.display());
    let members = archive_members(&archive);
    assert_eq!(
        members.contains(&"image.tar".to_string()),
        embed,
        "members: {members:?}"
    );
    if embed {
        s.engine.remove_image(&s.engine.local_tag(&pkg_tag));
        assert!(!s.engine.image_exists(&s.engine.local_tag(&pkg_tag)));
    }

    let fresh = tempfile::tempdir().unwrap();
    let dest = fresh.path().join("replay");
    let o = s.replay(&archive, &dest, &[]);
    if embed {
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("loading the image"),
            "{}",
            show(&o)
        );
    }
    let replayed = files(&dest.join("data/out"));
    assert_eq!(
        replayed,
        ran,
        "replayed outputs differ from kerblam run's:\n{}",
        show(&o)
    );
    assert_eq!(
        std::fs::read(dest.join("data/in/precious.txt")).unwrap(),
        std::fs::read(s.project.path("data/in/precious.txt")).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("data/in/remote.txt")).unwrap(),
        REMOTE_BODY,
        "the replay fetched the remote file"
    );
    assert_eq!(
        std::fs::read(dest.join("kerblam.toml")).unwrap(),
        std::fs::read(s.project.path("kerblam.toml")).unwrap()
    );
    String::from_utf8_lossy(&packaged.stderr).into_owned()
}

/// The diff IDs of the layers of `tag`, base first.
fn layers(s: &Setup, tag: &str) -> Vec<String> {
    let o = s.engine.output(&[
        "image",
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        &s.engine.local_tag(tag),
    ]);
    assert!(o.status.success(), "{}", show(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The packages of two pipes (different recipes, one project) share the layers whose bytes are
/// the same, the kerblam executable's and the manifest's, on top of their own recipe layers: ten
/// packaged pipes store kerblam once, in a registry as in the engine's layer store.
fn packages_share_the_kerblam_layer(s: &Setup) {
    let tag = |pipe: &str| {
        s.tags
            .iter()
            .find(|t| t.contains(&format!("-{pipe}-pkg-")))
            .unwrap()
            .clone()
    };
    let base = layers(
        s,
        &ensure_base_image(&s.engine, Path::new(env!("CARGO_BIN_EXE_kerblam"))),
    );
    let (a, b) = (layers(s, &tag("process")), layers(s, &tag("shout")));
    assert!(
        a.starts_with(&base) && b.starts_with(&base),
        "{base:?}\n{a:?}\n{b:?}"
    );
    let shared: Vec<&String> = a[base.len()..]
        .iter()
        .filter(|l| b[base.len()..].contains(l))
        .collect();
    assert!(
        shared.len() >= 2,
        "the packages share {shared:?} above the base:\n{a:#?}\n{b:#?}"
    );
}

fn archive_members(path: &Path) -> Vec<String> {
    let mut a = tar::Archive::new(std::fs::File::open(path).unwrap());
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn docker_legacy_builder_roundtrip_make_and_shell_pipes() {
    let Some(mut s) = Setup::new("docker", "legacy") else {
        return;
    };
    s.env.push(("DOCKER_BUILDKIT".into(), "0".into()));
    let built = roundtrip(&mut s, "process", false);
    assert!(
        built.contains("Step 1/"),
        "not the legacy builder:\n{built}"
    );
    roundtrip(&mut s, "shout", false);
    packages_share_the_kerblam_layer(&s);
}

#[test]
fn docker_buildkit_roundtrip() {
    let Some(mut s) = Setup::new("docker", "buildkit") else {
        return;
    };
    s.env.push(("DOCKER_BUILDKIT".into(), "1".into()));
    let built = roundtrip(&mut s, "process", false);
    assert!(built.contains("#1 [internal]"), "not BuildKit:\n{built}");
}

#[test]
fn podman_roundtrip_make_and_shell_pipes() {
    let Some(mut s) = Setup::new("podman", "plain") else {
        return;
    };
    roundtrip(&mut s, "process", false);
    roundtrip(&mut s, "shout", false);
    packages_share_the_kerblam_layer(&s);
}

#[test]
fn docker_embedded_image_replays_after_rmi() {
    let Some(mut s) = Setup::new("docker", "embed") else {
        return;
    };
    roundtrip(&mut s, "process", true);
}

#[test]
fn podman_embedded_image_replays_after_rmi() {
    let Some(mut s) = Setup::new("podman", "embed") else {
        return;
    };
    roundtrip(&mut s, "process", true);
}

#[test]
fn two_packages_of_one_tree_are_byte_identical_with_source_date_epoch() {
    let Some(mut s) = Setup::new("docker", "repro") else {
        return;
    };
    s.env
        .push(("SOURCE_DATE_EPOCH".into(), "1700000000".into()));
    let tag = s.tag("repro");
    let archive = s.project.path("process.kerblam.tar");
    s.ok(&["package", "process", "--tag", &tag]);
    let first = std::fs::read(&archive).unwrap();
    std::fs::remove_file(&archive).unwrap();
    s.ok(&["package", "process", "--tag", &tag, "--no-build-cache"]);
    let second = std::fs::read(&archive).unwrap();
    assert!(first == second, "two packages differ");
    let mut a = tar::Archive::new(first.as_slice());
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        assert_eq!(e.header().mtime().unwrap(), 1_700_000_000);
        assert_eq!(e.header().uid().unwrap(), 0);
    }
}

#[test]
fn docker_kerblam_v1_signed_archive_replays() {
    let Some(mut s) = Setup::new("docker", "v1") else {
        return;
    };
    for (k, v) in [
        ("GIT_CONFIG_COUNT", "2"),
        ("GIT_CONFIG_KEY_0", "user.name"),
        ("GIT_CONFIG_VALUE_0", "Ada Tester"),
        ("GIT_CONFIG_KEY_1", "user.email"),
        ("GIT_CONFIG_VALUE_1", "ada@example.invalid"),
    ] {
        s.env.push((k.into(), v.into()));
    }
    let run_tag = s.tag("run");
    let tag = s.tag("pkg");
    s.ok(&["data", "fetch"]);
    s.ok(&["run", "process", "--tag", &run_tag]);
    let ran = files(&s.project.path("data/out"));
    s.ok(&[
        "package",
        "process",
        "--tag",
        &tag,
        "--format",
        "kerblam-v1",
        "--sign",
    ]);
    let archive = s.project.path("process.kerblam.tar");
    assert_eq!(
        archive_members(&archive),
        ["kerblam.toml", "data.tar.gz", "name", "signature.json"]
    );
    let mut a = tar::Archive::new(std::fs::File::open(&archive).unwrap());
    let sig = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().to_string_lossy() == "signature.json")
        .map(|mut e| {
            let mut t = String::new();
            std::io::Read::read_to_string(&mut e, &mut t).unwrap();
            t
        })
        .unwrap();
    assert!(
        sig.contains("\"name\":\"Ada Tester\"") && sig.contains("ada@example.invalid"),
        "{sig}"
    );
    let fresh = tempfile::tempdir().unwrap();
    let dest = fresh.path().join("replay");
    let o = s.replay(&archive, &dest, &[]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Kerblam! 1.x archive"),
        "{}",
        show(&o)
    );
    assert_eq!(files(&dest.join("data/out")), ran, "{}", show(&o));

    // Again into the same dest without unpacking: the (changed) data already there is used, and
    // not refused as different from the archive's.
    std::fs::remove_dir_all(dest.join("data/out")).unwrap();
    std::fs::write(dest.join("data/in/precious.txt"), "zeta edited line\n").unwrap();
    let o = s.replay(&archive, &dest, &["--no-decompress"]);
    let merged = std::fs::read_to_string(dest.join("data/out/merged.txt")).unwrap();
    assert!(
        merged.contains("zeta edited line"),
        "{merged}\n{}",
        show(&o)
    );
}

/// `-- extra args` reach the pipe, and the pipe's exit code becomes kerblam's, under `run` and
/// under `replay`.
fn pipe_exit_code_and_extra_args_pass_through_run_and_replay(engine: &str) {
    let Some(mut s) = Setup::new(engine, "args") else {
        return;
    };
    s.project.write(
        "src/workflows/args.sh",
        "#!/usr/bin/env bash\n#? Record the arguments, then fail with 7\nmkdir -p data/out\necho \"$@\" > data/out/args.txt\nexit 7\n",
    );
    let run_tag = s.tag("run");
    let tag = s.tag("pkg");
    let o = s.kerblam(&["run", "args", "--tag", &run_tag, "--", "one", "two"]);
    assert_eq!(o.status.code(), Some(7), "{}", show(&o));
    assert_eq!(s.project.read("data/out/args.txt"), "one two\n");

    s.ok(&["package", "args", "--tag", &tag]);
    let fresh = tempfile::tempdir().unwrap();
    let dest = fresh.path().join("replay");
    let archive = s.project.path("args.kerblam.tar");
    let o = s.kerblam_in(
        fresh.path(),
        &[
            "replay",
            archive.to_str().unwrap(),
            dest.to_str().unwrap(),
            "--network",
            "host",
            "--",
            "three",
        ],
    );
    assert_eq!(o.status.code(), Some(7), "{}", show(&o));
    assert_eq!(
        std::fs::read_to_string(dest.join("data/out/args.txt")).unwrap(),
        "three\n"
    );
}

#[test]
fn docker_pipe_exit_code_and_extra_args_pass_through_run_and_replay() {
    pipe_exit_code_and_extra_args_pass_through_run_and_replay("docker");
}

#[test]
fn podman_pipe_exit_code_and_extra_args_pass_through_run_and_replay() {
    pipe_exit_code_and_extra_args_pass_through_run_and_replay("podman");
}

/// `kerblam run --no-build-cache` rebuilds every step of the recipe: a step that writes a random
/// stamp gives the same stamp on a cached second run, and a new one without the cache.
fn run_without_build_cache_rebuilds_the_recipe(engine: &str) {
    let Some(mut s) = Setup::new(engine, "nocache") else {
        return;
    };
    let base = s.project.read("src/dockerfiles/default.dockerfile");
    let from = base
        .lines()
        .find(|l| l.starts_with("FROM "))
        .unwrap()
        .to_string();
    s.project.write(
        "src/dockerfiles/stamp.dockerfile",
        format!("{from}\nRUN cat /proc/sys/kernel/random/uuid > /stamp\nWORKDIR /\nCOPY . .\n"),
    );
    s.project.write(
        "src/workflows/stamp.sh",
        "#!/usr/bin/env bash\n#? Copy the build's stamp into the output\nmkdir -p data/out\ncp /stamp data/out/stamp.txt\n",
    );
    let tag = s.tag("stamp");
    let stamp = |extra: &[&str]| {
        let mut args = vec!["run", "stamp", "--tag", tag.as_str()];
        args.extend_from_slice(extra);
        s.ok(&args);
        let text = s.project.read("data/out/stamp.txt");
        assert_eq!(text.trim().len(), 36, "not a uuid: {text:?}");
        text
    };
    let first = stamp(&[]);
    let cached = stamp(&[]);
    assert_eq!(first, cached, "the second run did not use the build cache");
    let rebuilt = stamp(&["--no-build-cache"]);
    assert_ne!(cached, rebuilt, "--no-build-cache reused the cached step");
}

#[test]
fn docker_run_without_build_cache_rebuilds_the_recipe() {
    run_without_build_cache_rebuilds_the_recipe("docker");
}

#[test]
fn podman_run_without_build_cache_rebuilds_the_recipe() {
    run_without_build_cache_rebuilds_the_recipe("podman");
}

#[test]
fn docker_ctrl_c_during_package_leaves_no_archive() {
    let Some(mut s) = Setup::new("docker", "sigint") else {
        return;
    };
    let tag = s.tag("pkg");
    let before = files(s.project.root())
        .into_iter()
        .map(|(n, _)| n)
        .collect::<Vec<_>>();
    s.env.push(("DOCKER_BUILDKIT".into(), "0".into()));
    let (status, err) = interrupt_after(
        &s,
        &["package", "process", "--tag", &tag, "--no-build-cache"],
        "building ",
    );
    assert_eq!(status.code(), Some(130), "{err}");
    let after = files(s.project.root())
        .into_iter()
        .map(|(n, _)| n)
        .collect::<Vec<_>>();
    assert_eq!(after, before, "Ctrl-C left files behind:\n{err}");
}

/// Spawns `kerblam ARGS` in the project, waits for a stderr line containing `marker`, sends SIGINT
/// to kerblam alone, and returns its exit status and everything it printed on stderr.
fn interrupt_after(s: &Setup, args: &[&str], marker: &str) -> (std::process::ExitStatus, String) {
    let mut c = s.project.command(&[]);
    c.arg("--backend-path")
        .arg(&s.plugins)
        .args(args)
        .stderr(std::process::Stdio::piped());
    for (k, v) in &s.env {
        c.env(k, v);
    }
    let _building = support::engines::building();
    let mut child = c.spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
        if line.contains(marker) {
            support::project::kill(child.id() as i64, 2);
            break;
        }
    }
    let rest = std::thread::spawn(move || {
        let mut t = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut t);
        t
    });
    let status = support::project::wait_timeout(&mut child, std::time::Duration::from_secs(120));
    (status, seen + &rest.join().unwrap())
}

/// Ctrl-C while `kerblam run` runs a long pipe in a container stops the container promptly.
fn ctrl_c_stops_a_running_container(engine: &str) {
    let Some(mut s) = Setup::new(engine, "stop") else {
        return;
    };
    s.project.write(
        "src/workflows/sleeper.sh",
        "#!/usr/bin/env bash\n#? Sleep for a long time\nsleep 300\n",
    );
    let tag = s.tag("run");
    let start = std::time::Instant::now();
    let (status, err) = interrupt_after(&s, &["run", "sleeper", "--tag", &tag], "running ");
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(90),
        "took {:?}",
        start.elapsed()
    );
    let ps = s
        .engine
        .output(&["ps", "-q", "--filter", &format!("ancestor={tag}")]);
    assert!(
        String::from_utf8_lossy(&ps.stdout).trim().is_empty(),
        "a container of {tag} is still running"
    );
}

#[test]
fn docker_ctrl_c_stops_a_running_container() {
    ctrl_c_stops_a_running_container("docker");
}

#[test]
fn podman_ctrl_c_stops_a_running_container() {
    ctrl_c_stops_a_running_container("podman");
}

/// A tar of `(name, bytes, mode)` entries.
fn tar_of(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data, mode) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn docker_replays_an_archive_laid_out_by_kerblam_1x() {
    let Some(mut s) = Setup::new("docker", "onex") else {
        return;
    };
    let base = ensure_base_image(&s.engine, Path::new(env!("CARGO_BIN_EXE_kerblam")));
    let tag = s.tag("image");
    // An image as Kerblam! 1.x would have made it: its own entrypoint does the work, reading and
    // writing the data dirs mounted under the workdir `/`.
    let script = b"mkdir -p /data/out\ntr a-z A-Z < /data/in/precious.txt > /data/out/upper.txt\n";
    let recipe = format!("FROM {base}\nCOPY run.sh /run.sh\nENTRYPOINT [\"bash\", \"/run.sh\"]\n");
    let context = tar_of(&[
        ("Dockerfile", recipe.as_bytes(), 0o644),
        ("run.sh", script, 0o644),
    ]);
    let mut build = s.engine.command();
    build
        .args(["build", "-t", &tag, "-"])
        .env("DOCKER_BUILDKIT", "0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    let mut child = build.spawn().unwrap();
    child.stdin.take().unwrap().write_all(&context).unwrap();
    assert!(child.wait().unwrap().success(), "docker build of {tag}");

    // The 1.x layout: kerblam.toml, data.tar.gz (paths relative to the input dir), name.
    let data = tar_of(&[("precious.txt", b"one precious line\n", 0o644)]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&data).unwrap();
    let gz = gz.finish().unwrap();
    let manifest = b"[data.paths]\ninput = \"./data/in\"\noutput = \"./data/out\"\n";
    let archive_bytes = tar_of(&[
        ("kerblam.toml", manifest, 0o644),
        ("data.tar.gz", &gz, 0o644),
        ("name", tag.as_bytes(), 0o644),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("old.kerblam.tar");
    std::fs::write(&archive, archive_bytes).unwrap();
    let dest = dir.path().join("replay");
    let o = s.replay(&archive, &dest, &[]);
    assert_eq!(
        std::fs::read_to_string(dest.join("data/out/upper.txt")).unwrap(),
        "ONE PRECIOUS LINE\n",
        "{}",
        show(&o)
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("data/in/precious.txt")).unwrap(),
        "one precious line\n"
    );
    assert_eq!(std::fs::read(dest.join("kerblam.toml")).unwrap(), manifest);
}

#[test]
fn docker_package_image_holds_the_project_without_data_or_ignored_files() {
    let Some(mut s) = Setup::new("docker", "context") else {
        return;
    };
    s.project.write("notes.log", "ignored by .dockerignore\n");
    s.project.write("data/out/old-result.txt", "an output\n");
    let tag = s.tag("pkg");
    s.ok(&["package", "process", "--tag", &tag]);
    let probe = |path: &str| {
        s.engine
            .output(&[
                "run",
                "--rm",
                "--network",
                "none",
                "--entrypoint",
                "/bin/sh",
                &tag,
                "-c",
                &format!("test -e {path}"),
            ])
            .status
            .success()
    };
    for present in [
        "/kerblam",
        "/kerblam-replay.sh",
        "/kerblam.toml",
        "/src/workflows/process.makefile",
    ] {
        assert!(probe(present), "{present} missing from the image");
    }
    for absent in [
        "/notes.log",
        "/README.md",
        "/data/in/precious.txt",
        "/data/out/old-result.txt",
        "/src/dockerfiles/process.dockerfile",
        "/process.kerblam.tar",
        "/.kerblam/kerblam",
        "/.kerblam/kerblam-replay.sh",
    ] {
        assert!(!probe(absent), "{absent} should not be in the image");
    }
}

#[test]
fn podman_embedded_image_replays_with_docker() {
    let Some(mut s) = Setup::new("podman", "cross") else {
        return;
    };
    let Some(docker) = engine("docker") else {
        return;
    };
    let run_tag = s.tag("run");
    let tag = s.tag("pkg");
    s.ok(&["data", "fetch"]);
    s.ok(&["run", "process", "--tag", &run_tag]);
    let ran = files(&s.project.path("data/out"));
    s.ok(&["package", "process", "--tag", &tag, "--embed-image"]);
    docker.remove_image(&tag);
    let fresh = tempfile::tempdir().unwrap();
    let dest = fresh.path().join("replay");
    let archive = s.project.path("process.kerblam.tar");
    let o = s.replay(&archive, &dest, &["--backend", "docker"]);
    let done = docker.image_exists(&tag);
    docker.remove_image(&tag);
    docker.remove_image(&format!("localhost/{tag}"));
    assert!(done, "docker has no {tag} after the replay:\n{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("with docker"),
        "{}",
        show(&o)
    );
    assert_eq!(files(&dest.join("data/out")), ran, "{}", show(&o));
}

/// A data dir that is a symlink to another disk (common on clusters: `data/out -> /scratch/...`) is
/// mounted where it points, and the outputs land there.
#[test]
fn docker_run_follows_a_data_dir_symlinked_elsewhere() {
    let Some(mut s) = Setup::new("docker", "symlinked") else {
        return;
    };
    let elsewhere = tempfile::tempdir().unwrap();
    let out_dir = s.project.path("data/out");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::os::unix::fs::symlink(elsewhere.path(), &out_dir).unwrap();
    let tag = s.tag("run");
    s.ok(&["data", "fetch"]);
    s.ok(&["run", "process", "--tag", &tag]);
    let written = files(elsewhere.path());
    assert!(
        written.iter().any(|(name, _)| name == "merged.txt"),
        "no outputs where data/out points: {:?}",
        written.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
}

/// `replay --tag T` runs image T instead of the one the archive names, and does not load the
/// embedded image (T is the user's choice): package with an embedded image under one tag, keep
/// the image only under another, and replay with that one.
#[test]
fn docker_replay_with_tag_runs_that_image_and_loads_nothing() {
    let Some(mut s) = Setup::new("docker", "retag") else {
        return;
    };
    let Some(docker) = engine("docker") else {
        return;
    };
    let run_tag = s.tag("run");
    let tag = s.tag("pkg");
    let other = s.tag("other");
    s.ok(&["data", "fetch"]);
    s.ok(&["run", "process", "--tag", &run_tag]);
    let ran = files(&s.project.path("data/out"));
    s.ok(&["package", "process", "--tag", &tag, "--embed-image"]);
    let retag = docker.output(&["tag", &tag, &other]);
    assert!(retag.status.success(), "{}", show(&retag));
    docker.remove_image(&tag);
    let fresh = tempfile::tempdir().unwrap();
    let dest = fresh.path().join("replay");
    let archive = s.project.path("process.kerblam.tar");
    let o = s.replay(&archive, &dest, &["--backend", "docker", "--tag", &other]);
    let loaded = docker.image_exists(&tag);
    docker.remove_image(&tag);
    docker.remove_image(&other);
    assert!(
        !loaded,
        "replay --tag loaded the embedded image:\n{}",
        show(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("running {other}")),
        "{}",
        show(&o)
    );
    assert_eq!(files(&dest.join("data/out")), ran, "{}", show(&o));
}

#[test]
fn docker_replay_without_network_cannot_reach_the_remote_and_says_so() {
    let Some(mut s) = Setup::new("docker", "nonet") else {
        return;
    };
    let tag = s.tag("pkg");
    s.ok(&["package", "process", "--tag", &tag]);
    let archive = s.project.path("process.kerblam.tar");
    let fresh = tempfile::tempdir().unwrap();
    let dest = fresh.path().join("replay");
    // The default network is none: the container cannot reach the loopback server.
    let o = s.kerblam_in(
        fresh.path(),
        &["replay", archive.to_str().unwrap(), dest.to_str().unwrap()],
    );
    assert_ne!(o.status.code(), Some(0), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("/remote.txt") && err.contains("network none"),
        "{}",
        show(&o)
    );
    assert!(!dest.join("data/in/remote.txt").exists());
    assert!(!dest.join("data/out/merged.txt").exists());
}

#[test]
fn docker_buildkit_run_steps_get_the_build_network_kerblam_is_told() {
    let Some(mut s) = Setup::new("docker", "runstep") else {
        return;
    };
    let recipe = s.project.read("src/dockerfiles/process.dockerfile");
    s.project.write(
        "src/dockerfiles/process.dockerfile",
        format!("{recipe}RUN echo built-with-a-run-step > /run-step.txt\n"),
    );
    s.env.push(("DOCKER_BUILDKIT".into(), "1".into()));
    s.env.push(("KERBLAM_BUILD_NETWORK".into(), "none".into()));
    let tag = s.tag("pkg");
    s.ok(&["package", "process", "--tag", &tag]);
    let out = s.engine.output(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "cat",
        &tag,
        "/run-step.txt",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "built-with-a-run-step\n"
    );
    s.env.pop();
    s.env
        .push(("KERBLAM_BUILD_NETWORK".into(), "bridge".into()));
    let o = s.kerblam(&["package", "process", "--tag", &tag, "--force"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("KERBLAM_BUILD_NETWORK"),
        "{}",
        show(&o)
    );
}

#[test]
fn docker_replays_a_tarball_package_whose_image_was_built_from_its_context_archive() {
    let Some(mut s) = Setup::new("docker", "tarball") else {
        return;
    };
    let run_tag = s.tag("run");
    let tag = s.tag("pkg");
    s.ok(&["data", "fetch"]);
    s.ok(&["run", "process", "--tag", &run_tag]);
    let ran = files(&s.project.path("data/out"));
    s.ok(&["package", "process", "--backend", "tarball", "--tag", &tag]);
    // Build the image from the context archive as the tarball backend's note says.
    let context = std::fs::read(s.project.path("process.context.tar")).unwrap();
    let mut build = s.engine.command();
    build
        .args(["build", "-t", &tag, "-"])
        .env("DOCKER_BUILDKIT", "0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    let mut child = build.spawn().unwrap();
    child.stdin.take().unwrap().write_all(&context).unwrap();
    assert!(child.wait().unwrap().success(), "docker build of {tag}");

    let fresh = tempfile::tempdir().unwrap();
    let dest = fresh.path().join("replay");
    let o = s.replay(&s.project.path("process.kerblam.tar"), &dest, &[]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("replaying with docker"),
        "{}",
        show(&o)
    );
    assert_eq!(files(&dest.join("data/out")), ran, "{}", show(&o));
}

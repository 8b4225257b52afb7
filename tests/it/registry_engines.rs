//! Packages in OCI registries and builds on other engines, for real: Debian's `docker-registry` on
//! 127.0.0.1 (plain HTTP; without auth, and with basic auth from an htpasswd file), a second
//! dockerd on a unix socket of its own (`DOCKER_HOST`), and `podman system service` on another
//! (`CONTAINER_HOST`), both started by `scripts/engines.sh start`.
//!
//! Each test starts its own registry, on a port of its own with storage in its own temporary
//! directory, and pushes to a repository named after itself, so tests running at the same time
//! share nothing but the engines.
//!
//! Without docker-registry, htpasswd or an engine the tests print why and return, unless
//! `KERBLAM_REQUIRE_ENGINES=1`.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support;
use support::engines::{EngineHandle, ensure_base_image};
use support::project::{TestProject, show};
use support::{require_engine as engine, require_tool, unavailable};

const DOCKER2: &str = "unix:///run/kerblam-docker2.sock";
const PODMAN_SERVICE: &str = "unix:///run/kerblam-podman.sock";

/// `program` (from the Debian package `package`), or a skip (a failure under
/// `KERBLAM_REQUIRE_ENGINES=1`).
fn tool(program: &str, package: &str) -> Option<()> {
    require_tool(
        program,
        &format!("Debian package {package}; bash scripts/engines.sh install"),
    )
    .map(|_| ())
}

/// A docker-registry serving on 127.0.0.1, killed when dropped.
struct Registry {
    /// `127.0.0.1:PORT`.
    addr: String,
    dir: tempfile::TempDir,
    child: Child,
}

impl Registry {
    /// Starts one, with basic auth for `user:password` when given.
    fn start(auth: Option<(&str, &str)>) -> Option<Registry> {
        tool("docker-registry", "docker-registry")?;
        let dir = tempfile::tempdir().unwrap();
        let mut auth_conf = String::new();
        if let Some((user, password)) = auth {
            tool("htpasswd", "apache2-utils")?;
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .unwrap();
            assert!(out.status.success(), "htpasswd: {out:?}");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).unwrap();
            auth_conf = format!(
                "auth:\n  htpasswd:\n    realm: kerblam-test\n    path: {}\n",
                file.display()
            );
        }
        // A free port is only free until someone takes it: when the registry cannot bind it
        // (it exits), pick another.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let addr = format!("127.0.0.1:{port}");
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth_conf}",
                    dir.path().join("storage").display()
                ),
            )
            .unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
                .spawn()
                .expect("start docker-registry");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if TcpStream::connect(&addr).is_ok() {
                    return Some(Registry { addr, dir, child });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "docker-registry did not start:\n{}",
            std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
        );
    }

    /// Where the registry keeps the bytes of blob `digest`.
    fn blob(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A docker config directory (`DOCKER_CONFIG`) holding `user:password` for `registry`, as
/// `docker login` writes it.
fn docker_config(registry: &str, user: &str, password: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let auth = base64(&format!("{user}:{password}"));
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"auths":{{"{registry}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    dir
}

fn base64(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | (c as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The plugins, freshly built.
fn plugin_dir() -> PathBuf {
    support::plugin_dir(&[
        "kerblam-backend-docker",
        "kerblam-backend-podman",
        "kerblam-backend-tarball",
    ])
}

/// A one-pipe project (sort the precious words) on the local test base image, run and packaged
/// with `engine`.
struct Setup {
    project: TestProject,
    engine: EngineHandle,
    plugins: PathBuf,
    /// This test's image tag.
    tag: String,
    env: Vec<(String, String)>,
    /// Images to remove at the end.
    images: Vec<String>,
}

impl Setup {
    fn new(engine_name: &str, label: &str) -> Option<Setup> {
        let engine = engine(engine_name)?;
        let base = ensure_base_image(&engine, Path::new(env!("CARGO_BIN_EXE_kerblam")));
        let project = TestProject::new(&format!("[execution]\nbackend = \"{engine_name}\"\n"));
        project
            .write("src/dockerfiles/default.dockerfile", format!("FROM {base}\nCOPY . .\n"))
            .write(
                "src/workflows/sorter.sh",
                "#!/usr/bin/env bash\nset -eu\nmkdir -p data/out\nsort data/in/words.txt > data/out/sorted.txt\nwc -l < data/in/words.txt > data/out/count.txt\n",
            )
            .write("data/in/words.txt", format!("pear\napple\n{label}\nfig\n"));
        let tag = format!("kerblam-reg-{engine_name}-{label}-{}", std::process::id());
        Some(Setup {
            images: vec![tag.clone()],
            project,
            engine,
            plugins: plugin_dir(),
            tag,
            env: Vec::new(),
        })
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

    /// `kerblam package sorter --push TARGET`: the image's and the package's pinned references.
    fn push(&mut self, target: &str, extra: &[&str]) -> (String, String) {
        let mut args = vec!["package", "sorter", "--tag", &self.tag, "--push", target];
        args.extend_from_slice(extra);
        let o = self.ok(&args);
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        let image = stdout
            .lines()
            .find_map(|l| l.strip_prefix("pushed image "))
            .unwrap_or_else(|| panic!("no pushed image line:\n{}", show(&o)))
            .to_string();
        let package = stdout.lines().last().unwrap().to_string();
        let repo = target.rsplit_once(':').map(|(r, _)| r).unwrap_or(target);
        assert!(
            image.starts_with(&format!("{repo}@sha256:"))
                && package.starts_with(&format!("{repo}@sha256:")),
            "the references are not pinned in {repo}:\n{}",
            show(&o)
        );
        assert_ne!(image, package);
        self.images.push(target.to_string());
        self.images.push(image.clone());
        (image, package)
    }

    /// Removes every local copy of the image, so that a replay must pull it.
    fn forget_image(&self) {
        for i in &self.images {
            self.engine.remove_image(i);
            self.engine.remove_image(&self.engine.local_tag(i));
        }
        for i in &self.images {
            assert!(
                !self.engine.image_exists(i),
                "{i} is still in {}",
                self.engine.name
            );
        }
    }

    /// `kerblam replay WHAT DEST` from elsewhere.
    fn replay(&self, what: &str, dest: &Path) -> Output {
        let elsewhere = tempfile::tempdir().unwrap();
        self.kerblam_in(elsewhere.path(), &["replay", what, dest.to_str().unwrap()])
    }

    fn outputs(dir: &Path) -> (Vec<u8>, Vec<u8>) {
        (
            std::fs::read(dir.join("data/out/sorted.txt")).unwrap(),
            std::fs::read(dir.join("data/out/count.txt")).unwrap(),
        )
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        for i in &self.images {
            self.engine.remove_image(i);
            self.engine.remove_image(&self.engine.local_tag(i));
        }
    }
}

/// The round trip through a registry with `engine`: run, package with --push, forget the image,
/// replay the local archive (pulled by digest) and the pushed package by its reference; the
/// outputs are byte-identical to the run's every time. A tampered archive blob is then refused.
fn round_trip(engine_name: &str) {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let Some(mut s) = Setup::new(engine_name, "trip") else {
        return;
    };
    s.ok(&["run", "sorter", "--tag", &s.tag]);
    let ran = Setup::outputs(s.project.root());
    let target = format!("{}/lab/{engine_name}-trip:v1", registry.addr);
    let (image, package) = s.push(&target, &[]);
    let archive = s.project.path("sorter.kerblam.tar");
    let name = Command::new("tar")
        .args(["-xOf", archive.to_str().unwrap(), "name"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&name.stdout),
        image,
        "the archive names the pushed image by digest"
    );

    s.forget_image();
    let dest = tempfile::tempdir().unwrap();
    let o = s.replay(archive.to_str().unwrap(), &dest.path().join("local"));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("pulling it by its digest"),
        "{}",
        show(&o)
    );
    assert_eq!(Setup::outputs(&dest.path().join("local")), ran);

    if engine_name == "docker" {
        with_other_tools(&registry, &image, &package, &archive);
    }

    s.forget_image();
    let o = s.replay(&package, &dest.path().join("remote"));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(Setup::outputs(&dest.path().join("remote")), ran);

    // One byte of the archive changed in the registry's storage: refused, nothing written.
    let digest = format!("sha256:{}", sha256_hex(&std::fs::read(&archive).unwrap()));
    let blob = registry.blob(&digest);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[600] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let tampered = dest.path().join("tampered");
    let o = s.replay(&package, &tampered);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("does not match its digest") && err.contains(&digest),
        "{}",
        show(&o)
    );
    assert!(
        !tampered.exists(),
        "a refused replay wrote {}",
        tampered.display()
    );
}

/// What the README promises users of skopeo and oras: the package is tagged `<tag>.kerblam`, listed
/// under its image's referrers tag, copies with its digest unchanged, and comes out of `skopeo copy
/// ... dir:` as the archive itself.
fn with_other_tools(registry: &Registry, image: &str, package: &str, archive: &Path) {
    if tool("skopeo", "skopeo").is_none() {
        return;
    }
    let skopeo = |args: &[&str]| {
        let o = Command::new("skopeo").args(args).output().unwrap();
        assert!(o.status.success(), "skopeo {args:?}: {}", show(&o));
        o.stdout
    };
    let (_, package_digest) = package.split_once('@').unwrap();
    let (repo, image_digest) = image.split_once('@').unwrap();
    let tagged = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{repo}:v1.kerblam"),
    ]);
    assert_eq!(format!("sha256:{}", sha256_hex(&tagged)), package_digest);
    let referrers = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{repo}:{}", image_digest.replace(':', "-")),
    ]);
    assert!(
        String::from_utf8_lossy(&referrers).contains(package_digest),
        "the referrers tag does not list the package"
    );
    let mirror = format!("docker://{}/mirror/package:v1.kerblam", registry.addr);
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{package}"),
        &mirror,
    ]);
    let copied = skopeo(&["inspect", "--tls-verify=false", "--raw", &mirror]);
    assert_eq!(
        format!("sha256:{}", sha256_hex(&copied)),
        package_digest,
        "the copy changed the digest"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pkg");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{package}"),
        &format!("dir:{}", out.display()),
    ]);
    let bytes = std::fs::read(archive).unwrap();
    let file = out.join(sha256_hex(&bytes));
    assert_eq!(
        std::fs::read(&file).unwrap(),
        bytes,
        "dir: holds another archive"
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn docker_push_then_replay_by_digest_gives_the_runs_outputs() {
    round_trip("docker");
}

#[test]
fn podman_push_then_replay_by_digest_gives_the_runs_outputs() {
    round_trip("podman");
}

/// Basic auth: the credentials `docker login` keeps are used by the engine and by kerblam; a wrong
/// password is a clear error that leaves nothing behind.
#[test]
fn a_registry_with_basic_auth_takes_the_users_login_and_refuses_a_wrong_one() {
    let Some(registry) = Registry::start(Some(("alice", "s3cret"))) else {
        return;
    };
    let Some(mut s) = Setup::new("docker", "auth") else {
        return;
    };
    let target = format!("{}/lab/auth:v1", registry.addr);

    let wrong = docker_config(&registry.addr, "alice", "Wr0ngPa55");
    s.env = vec![("DOCKER_CONFIG".into(), wrong.path().display().to_string())];
    let before = s.project.snapshot(".");
    let o = s.kerblam(&["package", "sorter", "--tag", &s.tag, "--push", &target]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("unauthorized") || err.contains("authentication required"),
        "{}",
        show(&o)
    );
    assert!(
        !err.contains("Wr0ngPa55"),
        "the password is in the message:\n{}",
        show(&o)
    );
    assert_eq!(
        s.project.snapshot("."),
        before,
        "a refused push left files in the project"
    );

    let right = docker_config(&registry.addr, "alice", "s3cret");
    s.env = vec![("DOCKER_CONFIG".into(), right.path().display().to_string())];
    s.ok(&["run", "sorter", "--tag", &s.tag]);
    let ran = Setup::outputs(s.project.root());
    let (_, package) = s.push(&target, &[]);
    let archive = std::fs::read(s.project.path("sorter.kerblam.tar")).unwrap();
    assert!(
        !String::from_utf8_lossy(&archive).contains("s3cret"),
        "the password went into the archive"
    );
    s.forget_image();
    let dest = tempfile::tempdir().unwrap();
    let o = s.replay(&package, dest.path());
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(Setup::outputs(dest.path()), ran);

    // Without credentials, kerblam says what to do.
    let none = tempfile::tempdir().unwrap();
    s.env = vec![
        ("DOCKER_CONFIG".into(), none.path().display().to_string()),
        (
            "REGISTRY_AUTH_FILE".into(),
            none.path().join("auth.json").display().to_string(),
        ),
    ];
    let o = s.replay(&package, &dest.path().join("anon"));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("docker login") && err.contains(&registry.addr),
        "{}",
        show(&o)
    );
}

/// A registry that does not answer: a clear error naming it, nothing written.
#[test]
fn an_unreachable_registry_is_a_clear_error() {
    let Some(s) = Setup::new("docker", "gone") else {
        return;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let before = s.project.snapshot(".");
    let target = format!("127.0.0.1:{port}/lab/gone:v1");
    let o = s.kerblam(&["package", "sorter", "--tag", &s.tag, "--push", &target]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("127.0.0.1:{port}")),
        "{}",
        show(&o)
    );
    assert_eq!(s.project.snapshot("."), before);

    let dest = tempfile::tempdir().unwrap();
    let reference = format!("127.0.0.1:{port}/lab/gone@sha256:{}", "ab".repeat(32));
    let o = s.replay(&reference, &dest.path().join("d"));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("cannot reach the registry 127.0.0.1:{port}")),
        "{}",
        show(&o)
    );
    assert!(!dest.path().join("d").exists());
}

/// No engine at all: the tarball backend pushes its OCI archive through the registry API, and a
/// docker replay of the package pulls that image by digest.
#[test]
fn the_tarball_backend_pushes_without_an_engine() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let Some(mut s) = Setup::new("docker", "tar") else {
        return;
    };
    s.ok(&["run", "sorter", "--tag", &s.tag]);
    let ran = Setup::outputs(s.project.root());
    // The base image as an archive, for the OCI image's base layers.
    let base = s.project.path("base.tar");
    let saved = s
        .engine
        .command()
        .args([
            "save",
            "-o",
            base.to_str().unwrap(),
            &s.engine.local_tag(support::engines::BASE_TAG),
        ])
        .output()
        .unwrap();
    assert!(saved.status.success(), "{saved:?}");
    std::fs::write(s.project.path(".kerblamignore"), "base.tar\n").unwrap();
    let target = format!("{}/lab/tarball:v1", registry.addr);
    s.env = vec![("KERBLAM_DOCKER".into(), "/nonexistent/docker".into())];
    let (_, package) = s.push(
        &target,
        &["--backend", "tarball", "--base", base.to_str().unwrap()],
    );
    s.env.clear();
    s.forget_image();
    let dest = tempfile::tempdir().unwrap();
    let o = s.replay(&package, dest.path());
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(Setup::outputs(dest.path()), ran);
}

/// `DOCKER_HOST` naming another dockerd: the package is built there (the context is streamed) and
/// not in the default engine; `kerblam backends` says which engine it talks to.
#[test]
fn package_builds_on_the_engine_docker_host_names() {
    let Some(mut s) = Setup::new("docker", "remote") else {
        return;
    };
    if !second_engine_ready("docker", DOCKER2) {
        return;
    }
    // The second engine gets the base image from the first, through the sockets.
    let base = s.engine.local_tag(support::engines::BASE_TAG);
    let copy = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker save {base} | DOCKER_HOST={DOCKER2} docker load"
        ))
        .output()
        .unwrap();
    assert!(copy.status.success(), "{copy:?}");
    s.env = vec![("DOCKER_HOST".into(), DOCKER2.into())];
    let o = s.ok(&["backends"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("engine:    docker at {DOCKER2}")),
        "{}",
        show(&o)
    );
    s.ok(&["package", "sorter", "--tag", &s.tag]);
    let there = Command::new("docker")
        .env("DOCKER_HOST", DOCKER2)
        .args(["image", "inspect", &s.tag])
        .output()
        .unwrap();
    assert!(
        there.status.success(),
        "the image is not in the second engine"
    );
    assert!(
        !s.engine.image_exists(&s.tag),
        "the image was built in the default engine"
    );
    let _ = Command::new("docker")
        .env("DOCKER_HOST", DOCKER2)
        .args(["rmi", &s.tag])
        .output();
}

/// `CONTAINER_HOST` naming a podman service: podman works as a remote client of it.
#[test]
fn package_builds_through_the_podman_service_container_host_names() {
    let Some(s) = Setup::new("podman", "service") else {
        return;
    };
    if !second_engine_ready("podman", PODMAN_SERVICE) {
        return;
    }
    let mut s = s;
    s.env = vec![("CONTAINER_HOST".into(), PODMAN_SERVICE.into())];
    let o = s.ok(&["backends"]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains(&format!("engine:    podman at {PODMAN_SERVICE}")),
        "{}",
        show(&o)
    );
    let o = s.ok(&["package", "sorter", "--tag", &s.tag]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("built image"),
        "{}",
        show(&o)
    );
    let there = Command::new("podman")
        .env("CONTAINER_HOST", PODMAN_SERVICE)
        .args(["image", "exists", &s.tag])
        .status()
        .unwrap();
    assert!(there.success(), "the service does not hold the image");
}

/// An engine on another machine cannot mount this one's data: run and replay refuse before doing
/// anything, and say why and what to do.
#[test]
fn run_and_replay_refuse_a_remote_engine_before_doing_anything() {
    let Some(mut s) = Setup::new("docker", "far") else {
        return;
    };
    s.ok(&["package", "sorter", "--tag", &s.tag]);
    let archive = s.project.path("sorter.kerblam.tar");
    s.env = vec![("DOCKER_HOST".into(), "tcp://127.0.0.1:9".into())];
    let o = s.ok(&["backends"]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("docker at tcp://127.0.0.1:9 (remote: package and freeze only)"),
        "{}",
        show(&o)
    );
    let before = s.project.snapshot(".");
    let o = s.kerblam(&["run", "sorter", "--tag", &s.tag]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("tcp://127.0.0.1:9") && err.contains("unset DOCKER_HOST"),
        "{}",
        show(&o)
    );
    assert_eq!(s.project.snapshot("."), before);
    let dest = tempfile::tempdir().unwrap();
    let o = s.replay(archive.to_str().unwrap(), &dest.path().join("d"));
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        !dest.path().join("d").exists(),
        "the refused replay unpacked data"
    );
}

/// Whether the second engine `scripts/engines.sh start` starts answers at `address`.
fn second_engine_ready(engine: &str, address: &str) -> bool {
    let (var, args): (&str, &[&str]) = match engine {
        "docker" => ("DOCKER_HOST", &["info"]),
        _ => ("CONTAINER_HOST", &["--remote", "info"]),
    };
    let ok = Command::new(engine)
        .env(var, address)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return true;
    }
    unavailable::<()>(format!(
        "no {engine} service at {address} (bash scripts/engines.sh start starts it)"
    ));
    false
}

/// `kerblam freeze --push`: the frozen image goes to the registry, its digest-pinned reference is
/// printed last and recorded in CITATION.cff, and the registry serves exactly that manifest.
#[test]
fn a_freeze_is_pushed_and_cited_by_digest() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    if tool("skopeo", "skopeo").is_none() {
        return;
    }
    let Some(engine) = engine("docker") else {
        return;
    };
    let base = ensure_base_image(&engine, Path::new(env!("CARGO_BIN_EXE_kerblam")));
    let dir = tempfile::tempdir().unwrap();
    let eessi = kerblam_compiler::freeze::synthetic::create(&dir.path().join("eessi"), false);
    let name = format!("kerblam-reg-freeze-{}", std::process::id());
    let freeze = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kerblam"))
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .envs(&eessi.env)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "HOME",
                std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
            )
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap()
    };
    let o = freeze(&[
        "freeze",
        "--from-env",
        "-a",
        "Jane Doe",
        "-n",
        &name,
        "--backend",
        "docker",
        "--write-spec",
        "freeze.toml",
        "--no-build",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let spec = dir.path().join("freeze.toml");
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("base = \"debian:12\"", &format!("base = \"{base}\""));
    std::fs::write(&spec, text).unwrap();
    let target = format!("{}/lab/freeze:1", registry.addr);
    let plugins = plugin_dir();
    let o = freeze(&[
        "freeze",
        "freeze.toml",
        "--backend-path",
        plugins.to_str().unwrap(),
        "--push",
        &target,
        "-d",
        "out",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let pinned = stdout.lines().last().unwrap().to_string();
    assert!(
        pinned.starts_with(&format!("{}/lab/freeze@sha256:", registry.addr)),
        "{}",
        show(&o)
    );
    let inspected = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{pinned}"),
        ])
        .output()
        .unwrap();
    assert!(inspected.status.success(), "{inspected:?}");
    assert_eq!(
        format!("sha256:{}", sha256_hex(&inspected.stdout)),
        pinned.split_once('@').unwrap().1,
        "the registry's manifest is not the one the reference pins"
    );
    let cff = std::fs::read_to_string(dir.path().join("out/CITATION.cff")).unwrap();
    assert!(cff.contains(&pinned), "{cff}");
    let tag = format!("{name}:2023-11-14");
    engine.remove_image(&tag);
    engine.remove_image(&target);
    engine.remove_image(&pinned);
}

/// What `--push` refuses before any work, with exit 2 and nothing written: a backend that cannot
/// push, a reference that names no registry, a digest instead of a tag, and Kerblam! 1.x's archive
/// layout, which names its image by tag.
#[test]
fn push_refuses_what_cannot_work_before_doing_anything() {
    let project = TestProject::new("[execution]\nbackend = \"apptainer\"\n");
    project
        .write(
            "src/dockerfiles/default.dockerfile",
            "FROM scratch\nCOPY . .\n",
        )
        .write("src/workflows/sorter.sh", "#!/bin/sh\ntrue\n")
        .write("data/in/words.txt", "pear\n");
    let plugins = support::plugin_dir(&["kerblam-backend-apptainer", "kerblam-backend-tarball"]);
    let before = project.snapshot(".");
    let digest = format!("sha256:{}", "ab".repeat(32));
    for (args, said) in [
        (
            vec!["--push", "127.0.0.1:5000/lab/x:v1"],
            "the apptainer backend cannot push to a registry (--push)",
        ),
        (
            vec!["--backend", "tarball", "--push", "lab/x:v1"],
            "its first part is not a registry host",
        ),
        (
            vec![
                "--backend",
                "tarball",
                "--push",
                &format!("127.0.0.1:5000/lab/x@{digest}"),
            ],
            "the registry gives the digest",
        ),
        (
            vec![
                "--backend",
                "tarball",
                "--format",
                "kerblam-v1",
                "--push",
                "127.0.0.1:5000/lab/x",
            ],
            "--push needs kerblam's own archive format",
        ),
    ] {
        let mut c = project.command(&[]);
        c.arg("--backend-path")
            .arg(&plugins)
            .args(["package", "sorter"])
            .args(&args);
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", show(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(said),
            "{args:?}: {}",
            show(&o)
        );
        assert_eq!(project.snapshot("."), before, "{args:?} wrote files");
    }
}

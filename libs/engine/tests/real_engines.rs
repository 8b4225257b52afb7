//! kerblam-engine against the real docker and podman. They run when the engine answers; with
//! `KERBLAM_REQUIRE_ENGINES=1` a missing engine fails them instead of skipping.

use kerblam_test_support::engines;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use kerblam_engine::{BuildOptions, Builder, Engine, EngineError, Mount, Network, RunOptions};

/// The engine and the local tag of the base image, or `None` (skipped).
fn setup(name: &str) -> Option<(Engine, String)> {
    let handle = engines::engine(name)?;
    let base = engines::ensure_base_image_with(&handle, &[]);
    let engine = Engine::by_name(name).expect("docker or podman");
    engine
        .check_available()
        .expect("engine answered `info` a moment ago");
    Some((engine, base))
}

/// A tar stream of `files` (path, content, mode).
fn tar_of(files: &[(&str, &str, u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(*mode);
        h.set_mtime(0);
        h.set_cksum();
        b.append_data(&mut h, path, content.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

/// A context whose recipe is in a subdirectory and copies one source per `COPY` line (the legacy
/// builder rejects several sources into `.`).
fn app_context(base: &str) -> Vec<u8> {
    let containerfile = format!(
        "FROM {base}\n\
         COPY a.txt /app/\n\
         COPY dir/b.txt /app/\n\
         COPY run.sh /app/\n\
         RUN cat /app/a.txt /app/b.txt > /app/ab.txt\n\
         WORKDIR /app\n"
    );
    let script = "cp /app/ab.txt /out/result.txt\n\
                  cat /in/input.txt >> /out/result.txt\n\
                  if touch /in/forbidden 2>/dev/null; then echo writable; exit 99; fi\n\
                  exit \"${1:-0}\"\n";
    tar_of(&[
        ("env/app.dockerfile", &containerfile, 0o644),
        ("a.txt", "alpha\n", 0o644),
        ("dir/b.txt", "beta\n", 0o644),
        ("run.sh", script, 0o755),
    ])
}

fn opts(builder: Builder) -> BuildOptions {
    BuildOptions {
        builder,
        network: Some(Network::None),
        labels: BTreeMap::from([("org.kerblam.test".to_string(), "yes".to_string())]),
        ..Default::default()
    }
}

/// Reads a byte slice and counts what was read: proves the context was streamed to the end.
struct Counting<'a> {
    inner: &'a [u8],
    read: usize,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n;
        Ok(n)
    }
}

/// Build, check the label, run with a rw and a ro bind mount, check the host file and exit code.
fn build_and_run(name: &str, builder: Builder, suffix: &str) {
    let Some((engine, base)) = setup(name) else {
        return;
    };
    let tag = format!("kerblam-engine-test-{suffix}:{}", std::process::id());
    let ctx = app_context(&base);
    let mut reader = Counting {
        inner: &ctx,
        read: 0,
    };
    engine
        .build(&tag, "env/app.dockerfile", &mut reader, &opts(builder))
        .unwrap_or_else(|e| panic!("{name} build failed: {e}"));
    assert_eq!(reader.read, ctx.len(), "the whole context was streamed");
    assert!(engine.image_exists(&tag).unwrap());
    let label = engine
        .command()
        .args([
            "image",
            "inspect",
            "--format",
            "{{index .Config.Labels \"org.kerblam.test\"}}",
            &tag,
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&label.stdout).trim(), "yes");

    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in"), dir.path().join("out"));
    std::fs::create_dir_all(&input).unwrap();
    std::fs::create_dir_all(&output).unwrap();
    std::fs::write(input.join("input.txt"), "gamma\n").unwrap();
    let run = RunOptions {
        mounts: vec![
            Mount {
                host: input.clone(),
                container: "/in".into(),
                read_only: true,
            },
            Mount {
                host: output.clone(),
                container: "/out".into(),
                read_only: false,
            },
        ],
        workdir: Some("/app".into()),
        entrypoint: Some(vec!["sh".into(), "/app/run.sh".into()]),
        ..Default::default()
    };
    let code = engine.run(&tag, &["3".to_string()], &run).unwrap();
    assert_eq!(code, 3, "the container's exit code is propagated");
    let result = std::fs::read_to_string(output.join("result.txt")).unwrap();
    assert_eq!(result, "alpha\nbeta\ngamma\n");
    assert!(
        !input.join("forbidden").exists(),
        "the read-only mount stayed read-only"
    );
    assert_eq!(engine.run(&tag, &["0".to_string()], &run).unwrap(), 0);
    assert!(engine.remove_image(&tag).unwrap());
    assert!(!engine.image_exists(&tag).unwrap());
    assert!(
        !engine.remove_image(&tag).unwrap(),
        "removing twice is not an error"
    );
}

#[test]
fn docker_legacy_builder_builds_and_runs() {
    build_and_run("docker", Builder::Legacy, "docker-legacy");
}

#[test]
fn docker_buildkit_builds_and_runs() {
    build_and_run("docker", Builder::BuildKit, "docker-buildkit");
}

#[test]
fn podman_builds_and_runs() {
    build_and_run("podman", Builder::Default, "podman");
}

fn save_remove_load_run(name: &str) {
    let Some((engine, base)) = setup(name) else {
        return;
    };
    let tag = format!("kerblam-engine-test-saved-{name}:{}", std::process::id());
    let ctx = tar_of(&[(
        "Containerfile",
        &format!("FROM {base}\nRUN echo saved > /saved.txt\n"),
        0o644,
    )]);
    let o = BuildOptions {
        quiet: true,
        network: Some(Network::None),
        ..Default::default()
    };
    engine
        .build(&tag, "Containerfile", &mut ctx.as_slice(), &o)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("image.tar");
    let mut file = std::fs::File::create(&archive).unwrap();
    let bytes = engine.save(&tag, &mut file).unwrap();
    drop(file);
    assert_eq!(bytes, std::fs::metadata(&archive).unwrap().len());
    assert!(bytes > 1000, "an image archive, not an empty file");

    assert!(engine.remove_image(&tag).unwrap());
    assert!(!engine.image_exists(&tag).unwrap());
    let names = engine
        .load(&mut std::fs::File::open(&archive).unwrap())
        .unwrap();
    assert!(
        names.iter().any(|n| n.ends_with(&tag)),
        "loaded {names:?}, expected {tag}"
    );
    assert!(engine.image_exists(&tag).unwrap());

    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let run = RunOptions {
        mounts: vec![Mount {
            host: out.clone(),
            container: "/out".into(),
            read_only: false,
        }],
        ..Default::default()
    };
    let args = ["sh", "-c", "cp /saved.txt /out/"].map(String::from);
    assert_eq!(engine.run(&tag, &args, &run).unwrap(), 0);
    assert_eq!(
        std::fs::read_to_string(out.join("saved.txt")).unwrap(),
        "saved\n"
    );
    engine.remove_image(&tag).unwrap();
}

#[test]
fn docker_save_remove_load_run() {
    save_remove_load_run("docker");
}

#[test]
fn podman_save_remove_load_run() {
    save_remove_load_run("podman");
}

/// An archive saved by docker loads into podman (as `localhost/NAME`) and runs there: what a replay
/// on the other engine relies on.
#[test]
fn docker_archive_loads_and_runs_in_podman() {
    let Some((docker, base)) = setup("docker") else {
        return;
    };
    let Some((podman, _)) = setup("podman") else {
        return;
    };
    let tag = format!("kerblam-engine-test-cross:{}", std::process::id());
    let ctx = tar_of(&[(
        "Containerfile",
        &format!("FROM {base}\nRUN echo crossed > /cross.txt\n"),
        0o644,
    )]);
    let o = BuildOptions {
        quiet: true,
        network: Some(Network::None),
        ..Default::default()
    };
    docker
        .build(&tag, "Containerfile", &mut ctx.as_slice(), &o)
        .unwrap();
    let mut archive = Vec::new();
    docker.save(&tag, &mut archive).unwrap();
    docker.remove_image(&tag).unwrap();
    let names = podman.load(&mut archive.as_slice()).unwrap();
    assert_eq!(names, [format!("localhost/{tag}")]);
    let args = ["sh", "-c", "test \"$(cat /cross.txt)\" = crossed"].map(String::from);
    assert_eq!(podman.run(&tag, &args, &RunOptions::default()).unwrap(), 0);
    podman.remove_image(&tag).unwrap();
}

/// Fails with an I/O error after yielding `ok` bytes.
struct FailingAfter<'a> {
    inner: &'a [u8],
    left: usize,
}

impl Read for FailingAfter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..n])?;
        self.left -= n;
        Ok(n)
    }
}

/// A context that cannot be read to the end gives an I/O error naming the cause, and no image: the
/// engine is stopped before it sees a (possibly valid-looking) truncated tar.
fn unreadable_context_builds_nothing(name: &str) {
    let Some((engine, base)) = setup(name) else {
        return;
    };
    let tag = format!(
        "kerblam-engine-test-truncated-{name}:{}",
        std::process::id()
    );
    let ctx = tar_of(&[
        (
            "Containerfile",
            &format!("FROM {base}\nRUN echo built\n"),
            0o644,
        ),
        ("unused", "never needed by the recipe", 0o644),
    ]);
    // Cut after the first member (header + one 512-byte block): a tar that looks complete.
    let mut reader = FailingAfter {
        inner: &ctx,
        left: 1024,
    };
    let o = BuildOptions {
        quiet: true,
        network: Some(Network::None),
        ..Default::default()
    };
    let err = engine
        .build(&tag, "Containerfile", &mut reader, &o)
        .unwrap_err();
    assert!(matches!(err, EngineError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("disk on fire"), "{err}");
    assert!(
        !engine.image_exists(&tag).unwrap(),
        "no image from a truncated context"
    );
}

#[test]
fn docker_unreadable_context_builds_nothing() {
    unreadable_context_builds_nothing("docker");
}

#[test]
fn podman_unreadable_context_builds_nothing() {
    unreadable_context_builds_nothing("podman");
}

fn build_failure_shows_engine_output(name: &str, builder: Builder) {
    let Some((engine, base)) = setup(name) else {
        return;
    };
    let tag = format!("kerblam-engine-test-fail-{name}:{}", std::process::id());
    // The marker only appears in the output if the step really ran: "boom-42".
    let ctx = tar_of(&[(
        "Containerfile",
        &format!("FROM {base}\nRUN echo \"boom-$((6*7))\"; exit 3\n"),
        0o644,
    )]);
    let o = BuildOptions {
        quiet: true,
        ..opts(builder)
    };
    let err = engine
        .build(&tag, "Containerfile", &mut ctx.as_slice(), &o)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, EngineError::Failed { .. }), "{err:?}");
    assert!(
        msg.contains("boom-42"),
        "the engine's output is in the error: {msg}"
    );
    assert!(msg.contains("build"), "the command is named: {msg}");
    assert!(!engine.image_exists(&tag).unwrap());
}

#[test]
fn docker_build_failure_shows_engine_output() {
    build_failure_shows_engine_output("docker", Builder::Legacy);
    build_failure_shows_engine_output("docker", Builder::BuildKit);
}

#[test]
fn podman_build_failure_shows_engine_output() {
    build_failure_shows_engine_output("podman", Builder::Default);
}

/// The fact kerblam's generated recipes must respect: several sources into `.` fail on the legacy
/// builder (BuildKit and podman accept them).
#[test]
fn docker_legacy_builder_rejects_several_copy_sources_into_dot() {
    let Some((engine, base)) = setup("docker") else {
        return;
    };
    let ctx = tar_of(&[
        (
            "Containerfile",
            &format!("FROM {base}\nWORKDIR /w\nCOPY a b .\n"),
            0o644,
        ),
        ("a", "a", 0o644),
        ("b", "b", 0o644),
    ]);
    let tag = format!("kerblam-engine-test-multi:{}", std::process::id());
    let o = BuildOptions {
        quiet: true,
        ..opts(Builder::Legacy)
    };
    let err = engine
        .build(&tag, "Containerfile", &mut ctx.as_slice(), &o)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("must be a directory and end with a /"),
        "{err}"
    );
    let o = BuildOptions {
        quiet: true,
        ..opts(Builder::BuildKit)
    };
    engine
        .build(&tag, "Containerfile", &mut ctx.as_slice(), &o)
        .unwrap();
    engine.remove_image(&tag).unwrap();
}

#[test]
fn run_of_a_missing_image_is_a_clear_error() {
    for name in ["docker", "podman"] {
        let Some((engine, _)) = setup(name) else {
            continue;
        };
        let err = engine
            .run(
                "kerblam-engine-test-never-built:0",
                &[],
                &RunOptions::default(),
            )
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("kerblam-engine-test-never-built:0 is not in"),
            "{msg}"
        );
        assert!(msg.contains(name), "{msg}");
    }
}

#[test]
fn missing_engine_program_is_named_with_help() {
    let engine = Engine::new("/nonexistent/kerblam/podman");
    let err = engine.check_available().unwrap_err();
    assert!(matches!(err, EngineError::NotInstalled { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("podman is not installed"), "{msg}");
    assert!(msg.contains("/nonexistent/kerblam/podman"), "{msg}");
    assert!(err.help().unwrap().contains("apt-get install podman"));
    // Every operation reports it the same way, build included.
    let err = engine
        .build(
            "x",
            "Containerfile",
            &mut [0u8; 0].as_slice(),
            &BuildOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, EngineError::NotInstalled { .. }), "{err:?}");
}

#[test]
fn engine_not_running_is_named_with_help() {
    // A docker CLI whose daemon does not answer.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("docker");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock.' >&2\nexit 1\n",
    )
    .unwrap();
    set_executable(&fake);
    let err = Engine::new(&fake).check_available().unwrap_err();
    assert!(matches!(err, EngineError::NotRunning { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("docker is installed but not running"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("Cannot connect to the Docker daemon"),
        "{err}"
    );
    assert!(err.help().unwrap().contains("dockerd"), "{:?}", err.help());
}

fn set_executable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `engines.sh base-image` is idempotent (a second run re-imports nothing: same image ID) and the
/// image has busybox's sh and applets, bash and make working.
fn base_image_idempotent_and_usable(name: &str) {
    let Some((engine, base)) = setup(name) else {
        return;
    };
    let id = |e: &Engine| {
        let out = e
            .command()
            .args(["image", "inspect", "--format", "{{.Id}}", &base])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let before = id(&engine);
    let script = engines::workspace_root().join("scripts/engines.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg("base-image")
        .env("KERBLAM_BASE_ENGINES", name)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("is up to date"));
    assert_eq!(id(&engine), before, "no re-import when nothing changed");
    let check = "ls / >/dev/null && bash -c 'echo $BASH_VERSION' | grep -q . && make --version | grep -q 'GNU Make' \
                 && sha256sum /etc/passwd >/dev/null && test -d /tmp";
    let args = ["/bin/sh", "-c", check].map(String::from);
    assert_eq!(engine.run(&base, &args, &RunOptions::default()).unwrap(), 0);
}

#[test]
fn docker_base_image_idempotent_and_usable() {
    base_image_idempotent_and_usable("docker");
}

#[test]
fn podman_base_image_idempotent_and_usable() {
    base_image_idempotent_and_usable("podman");
}

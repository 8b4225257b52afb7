//! A Kerblam! project in a temporary directory, and the `kerblam` binary run against it.
//!
//! [`TestProject::new`] writes an empty `kerblam.toml`; [`TestProject::example`] copies one of
//! `examples/`. Files are written with [`TestProject::write`] (parents created, `.sh` pipes made
//! executable), read back with [`TestProject::read`], and [`TestProject::snapshot`] captures a
//! directory (hidden files included) to compare states. [`TestProject::kerblam`] runs the binary with
//! `-C <project>` and no standard input.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A project in a temporary directory (removed on drop).
pub struct TestProject {
    dir: tempfile::TempDir,
}

impl TestProject {
    /// An empty project: a `kerblam.toml` with `contents`.
    pub fn new(manifest: &str) -> TestProject {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("kerblam.toml"), manifest).unwrap();
        TestProject { dir }
    }

    /// A copy of `examples/<name>`.
    pub fn example(name: &str) -> TestProject {
        let dir = tempfile::tempdir().expect("temp dir");
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name);
        copy_dir(&src, dir.path());
        TestProject { dir }
    }

    /// The project root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// An absolute path for a root-relative one.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Write a file (creating its parents).
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> &Self {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap();
        self
    }

    /// Read a file as text (panics with the path if it cannot).
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// Whether a path exists (a dangling symlink counts).
    pub fn exists(&self, rel: &str) -> bool {
        std::fs::symlink_metadata(self.path(rel)).is_ok()
    }

    /// Every file under `rel` (hidden ones too), relative to it, with its bytes.
    pub fn snapshot(&self, rel: &str) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        walk(&self.path(rel), &self.path(rel), &mut out);
        out
    }

    /// A `kerblam -C <root> ARGS...` command with stdin closed, no colours and no proxy.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_of(Path::new(env!("CARGO_BIN_EXE_kerblam")), args)
    }

    /// [`TestProject::command`] running the kerblam executable at `bin` (e.g. [`stripped_kerblam`]).
    pub fn command_of(&self, bin: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(bin);
        c.arg("-C")
            .arg(self.root())
            .args(args)
            .stdin(Stdio::null())
            .env_remove("KERBLAM_BACKEND_PATH")
            .env("NO_COLOR", "1");
        // Tests serve files on 127.0.0.1: never through a proxy of the environment.
        for var in ["http_proxy", "https_proxy", "all_proxy"] {
            c.env_remove(var).env_remove(var.to_uppercase());
        }
        c
    }

    /// Run `kerblam -C <root> ARGS...` to completion.
    pub fn kerblam(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run kerblam")
    }

    /// Wait until `rel` exists (panics after `timeout`).
    pub fn wait_for(&self, rel: &str, timeout: Duration) {
        let start = Instant::now();
        while !self.exists(rel) {
            assert!(
                start.elapsed() < timeout,
                "{rel} did not appear within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A stripped copy of the kerblam executable (a debug build is some 250 MB, which `package` bakes
/// into every image and archive it writes): for tests that package many times. Made once per test
/// process, next to the real one.
pub fn stripped_kerblam() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let real = Path::new(env!("CARGO_BIN_EXE_kerblam"));
        let dir = real
            .parent()
            .unwrap()
            .join(format!("stripped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let copy = dir.join("kerblam");
        std::fs::copy(real, &copy).unwrap();
        let ok = Command::new("strip")
            .arg(&copy)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "strip {} failed (binutils)", copy.display());
        copy
    })
    .clone()
}

/// stdout and stderr of an output, for assertion messages.
pub fn show(o: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// [`show`] with miette's wrapped lines (`\n  | `) joined, for asserting on a message's words.
pub fn show_joined(o: &Output) -> String {
    show(o).replace("\n  | ", " ")
}

/// Send `sig` (a number, e.g. 2) to `pid` with kill(1); negative pids name process groups.
pub fn kill(pid: i64, sig: i32) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg("--")
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {pid} failed");
}

/// Whether a process is alive (exists and is not a zombie).
pub fn alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next());
            state != Some(Some('Z'))
        }
        Err(_) => false,
    }
}

/// Wait for a child with a timeout; kills it and panics when it does not end in time.
pub fn wait_timeout(
    child: &mut std::process::Child,
    timeout: Duration,
) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("process {} did not exit within {timeout:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in rd {
        let entry = entry.unwrap();
        let p = entry.path();
        let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() {
            out.insert(format!("{rel}/"), Vec::new());
            walk(base, &p, out);
        } else {
            out.insert(rel, std::fs::read(&p).unwrap_or_default());
        }
    }
}

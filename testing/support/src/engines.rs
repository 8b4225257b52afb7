//! Test helpers for container engines (Docker, Podman), engine-agnostic and std-only.
//!
//! - [`engine`]`("docker")` gives an [`EngineHandle`] when the engine is installed and running. When it
//!   is not, it is [`crate::unavailable`]: with `KERBLAM_REQUIRE_ENGINES=1` it panics with the reason
//!   (CI must not skip), otherwise it prints `skipping: <reason>` and returns `None` (the test then
//!   returns early).
//! - [`ensure_base_image`] imports the local base image (busybox + bash + make + the shared libraries
//!   of the kerblam binary) into that engine once per test process, through `scripts/engines.sh
//!   base-image`, and returns its local tag. Nothing is pulled: no registry is reachable.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock, RwLock, RwLockReadGuard};

/// Podman's storage races when an image is removed while another build looks through its cache
/// ("checking if cached image exists from a previous build: getting top layer info: layer not
/// known"; podman#6510). Tests of one process run in parallel, so removals take this lock for
/// writing and each kerblam run that may build ([`building`]) takes it for reading.
static STORAGE: RwLock<()> = RwLock::new(());

/// Held while a kerblam command that may build runs: image removals wait for it.
pub fn building() -> RwLockReadGuard<'static, ()> {
    STORAGE.read().unwrap_or_else(|p| p.into_inner())
}

/// The base image's tag (podman stores it as `localhost/<this>`).
pub const BASE_TAG: &str = "kerblam-test-base:latest";

/// An engine that answered `<program> info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineHandle {
    /// `docker` or `podman`.
    pub name: String,
    /// The program to run (`KERBLAM_DOCKER` / `KERBLAM_PODMAN` if set, else the name).
    pub program: String,
}

impl EngineHandle {
    /// A command running this engine's program.
    pub fn command(&self) -> Command {
        Command::new(&self.program)
    }

    /// Run `<program> ARGS...` capturing its output (stdin closed).
    pub fn output(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {} {args:?}: {e}", self.program))
    }

    /// Whether the engine has an image called `tag`.
    pub fn image_exists(&self, tag: &str) -> bool {
        self.output(&["image", "inspect", tag]).status.success()
    }

    /// Remove `tag` if present (ignores "no such image"). Not `--force` on podman: there it also
    /// removes every container using the image, and the tests build in parallel, so it could kill
    /// another test's build container whose base is a cached layer this tag names ("layer not
    /// known" mid-build).
    pub fn remove_image(&self, tag: &str) {
        let _removing = STORAGE.write().unwrap_or_else(|p| p.into_inner());
        let force: &[&str] = if self.name == "podman" {
            &[]
        } else {
            &["--force"]
        };
        let _ = self.output(&[&["image", "rm"][..], force, &[tag]].concat());
    }

    /// The name the engine stores `tag` under: podman prefixes `localhost/` to names without a
    /// registry part; docker keeps them as they are.
    pub fn local_tag(&self, tag: &str) -> String {
        let first = tag.split('/').next().unwrap_or("");
        let has_registry = tag.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        if self.name == "podman" && !has_registry {
            format!("localhost/{tag}")
        } else {
            tag.to_string()
        }
    }
}

/// Whether engine tests must run (CI): `KERBLAM_REQUIRE_ENGINES=1`; the same as [`crate::required`].
pub fn engines_required() -> bool {
    crate::required()
}

/// The engine `name` (`docker` or `podman`) if it is installed and running; see the module docs for
/// what happens when it is not.
#[track_caller]
pub fn engine(name: &str) -> Option<EngineHandle> {
    crate::require(probe(name))
}

/// The engine `name` if it is installed and running, else `None` (no panic, nothing printed): for a
/// test that can use either engine.
pub fn engine_if_running(name: &str) -> Option<EngineHandle> {
    probe(name).ok()
}

/// The engine `name`, or why it cannot be used.
fn probe(name: &str) -> Result<EngineHandle, String> {
    let var = format!("KERBLAM_{}", name.to_uppercase());
    let program = std::env::var(&var).unwrap_or_else(|_| name.to_string());
    let handle = EngineHandle {
        name: name.to_string(),
        program,
    };
    match Command::new(&handle.program)
        .args(["info"])
        .stdin(Stdio::null())
        .output()
    {
        Err(e) => Err(format!(
            "{name} is not installed ({}: {e}); run `bash scripts/engines.sh install`",
            handle.program
        )),
        Ok(out) if !out.status.success() => Err(format!(
            "{name} is not running (`{} info` failed: {}); run `bash scripts/engines.sh start`",
            handle.program,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => Ok(handle),
    }
}

/// The workspace root: the nearest ancestor of this crate holding `scripts/engines.sh`.
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .find(|d| d.join("scripts/engines.sh").is_file())
        .unwrap_or_else(|| panic!("no scripts/engines.sh above {}", here.display()))
        .to_path_buf()
}

/// Import the base image into `engine` with the shared libraries `kerblam_bin` needs; return its
/// local tag (`kerblam-test-base:latest`, podman: `localhost/kerblam-test-base:latest`).
pub fn ensure_base_image(engine: &EngineHandle, kerblam_bin: &Path) -> String {
    ensure_base_image_with(engine, &[kerblam_bin])
}

/// [`ensure_base_image`] with any extra binaries (possibly none) whose libraries the image needs.
///
/// Runs the script at most once per engine and binary set in this process (threads wait on a mutex);
/// concurrent test processes are serialized by the script's lock file (`flock` on
/// `$TMPDIR/kerblam-test-base.lock`), and the script is idempotent: it re-imports only when the root
/// filesystem changed, so a second process finds the image up to date.
pub fn ensure_base_image_with(engine: &EngineHandle, extra_binaries: &[&Path]) -> String {
    static DONE: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let key = format!("{}|{}|{extra_binaries:?}", engine.name, engine.program);
    let done = DONE.get_or_init(Default::default);
    // Holding the in-process mutex while building also serializes threads of this process.
    let mut done = done.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(tag) = done.get(&key) {
        return tag.clone();
    }
    let script = workspace_root().join("scripts/engines.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("base-image")
        .args(extra_binaries)
        .env("KERBLAM_BASE_ENGINES", &engine.name)
        .env(
            format!("KERBLAM_{}", engine.name.to_uppercase()),
            &engine.program,
        )
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} base-image failed for {}:\n{}{}",
        script.display(),
        engine.name,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let tag = engine.local_tag(BASE_TAG);
    assert!(
        engine.image_exists(&tag),
        "{} has no {tag} after base-image",
        engine.name
    );
    done.insert(key, tag.clone());
    tag
}

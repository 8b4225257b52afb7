//! Helpers shared by the workspace's tests (a dev-dependency of the crates whose tests need them).
//!
//! # What a test needs, and what happens without it
//!
//! A test that needs something this machine may lack (an engine, a tool, root, Kerblam! 1.2.1, a
//! Python with the citation readers, taplo) asks for it with one of the `require_*` functions:
//!
//! ```no_run
//! let Some(script) = kerblam_test_support::require_tool("script", "a pseudo-terminal") else {
//!     return;
//! };
//! ```
//!
//! Locally, when it is missing, the function prints `skipping: <why>` and returns `None`: the test
//! returns early and passes. With `KERBLAM_REQUIRE_ENGINES=1` (CI, through `.ci/run`) it panics
//! with the reason instead, so nothing CI installs can be skipped there; the Kerblam! 1.2.1 tests
//! answer to `KERBLAM_REQUIRE_KERBLAM1=1` the same way. Every skip in the tests goes through
//! [`unavailable`] (or [`skip`], for the few conditions CI cannot promise).
//!
//! # Modules
//!
//! - [`engines`]: docker and podman, and the local base image the engine tests build on;
//! - [`user`]: an unprivileged user for ownership tests; [`tmpfs`]: a small filesystem that fills;
//! - [`python`] and [`taplo`]: the readers of what kerblam writes, for cross-checks;
//! - [`files`]: a directory or a `.tar.gz` as a map; [`archive`] and [`corpus`]: raw tar crafting
//!   and the hostile replay-archive corpus (kerblam-archive's tests and `kerblam replay`'s);
//! - `plugin_dir` (feature `plugins`): the workspace's backend plugins, built with cargo.

pub mod archive;
pub mod corpus;
pub mod engines;
pub mod files;
pub mod python;
pub mod taplo;
pub mod tmpfs;
pub mod user;

use std::fmt::Display;
use std::path::{Path, PathBuf};

pub use engines::{EngineHandle, workspace_root};

/// The variable that makes missing engines and tools a failure instead of a skip (CI sets it).
pub const REQUIRE_ENGINES: &str = "KERBLAM_REQUIRE_ENGINES";
/// The variable that makes a missing Kerblam! 1.2.1 a failure (CI sets it).
pub const REQUIRE_KERBLAM1: &str = "KERBLAM_REQUIRE_KERBLAM1";

/// Whether what the tests need must be there (CI): `KERBLAM_REQUIRE_ENGINES=1`.
pub fn required() -> bool {
    is_set(REQUIRE_ENGINES)
}

fn is_set(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1")
}

/// Something a test needs is missing, for `why`: under `KERBLAM_REQUIRE_ENGINES=1` this panics
/// (the test fails), otherwise it prints `skipping: <why>` and returns `None` for the test to
/// return early.
#[track_caller]
pub fn unavailable<T>(why: impl Display) -> Option<T> {
    unavailable_under(REQUIRE_ENGINES, why)
}

/// [`unavailable`], failing when `var` is `1` rather than `KERBLAM_REQUIRE_ENGINES`.
#[track_caller]
pub fn unavailable_under<T>(var: &str, why: impl Display) -> Option<T> {
    if is_set(var) {
        panic!("{var}=1 but {why}");
    }
    eprintln!("skipping: {why}");
    None
}

/// A skip that never fails, for conditions CI does not promise (e.g. a filesystem that cannot hold
/// a sparse file, or a test meant for root run as a normal user); prints `skipping: <why>`.
pub fn skip(why: impl Display) {
    eprintln!("skipping: {why}");
}

/// `what`, or [`unavailable`] with its error as the reason.
#[track_caller]
pub fn require<T, E: Display>(what: Result<T, E>) -> Option<T> {
    match what {
        Ok(t) => Some(t),
        Err(why) => unavailable(why),
    }
}

/// Whether `program` is on `PATH`, with no message.
pub fn on_path(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).is_file().then(|| PathBuf::from(program));
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `program` found on `PATH`, or [`unavailable`]: `<program> is not installed (<why>)`; `why` says
/// what the test needs it for and, best, how to install it.
#[track_caller]
pub fn require_tool(program: &str, why: &str) -> Option<PathBuf> {
    match on_path(program) {
        Some(p) => Some(p),
        None => unavailable(format!("{program} is not installed ({why})")),
    }
}

/// Every one of `programs` on `PATH`, or [`unavailable`] naming those missing.
#[track_caller]
pub fn require_tools(programs: &[&str], why: &str) -> Option<()> {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| on_path(p).is_none())
        .collect();
    if missing.is_empty() {
        return Some(());
    }
    unavailable(format!("{} not installed ({why})", missing.join(", ")))
}

/// `script` (util-linux), which runs a command on a pseudo-terminal.
#[track_caller]
pub fn require_script() -> Option<PathBuf> {
    require_tool(
        "script",
        "the pseudo-terminal the terminal tests run kerblam on; apt-get install bsdutils, as .ci/run does",
    )
}

/// The engine `name` (`docker` or `podman`), installed and running: see [`engines::engine`].
#[track_caller]
pub fn require_engine(name: &str) -> Option<EngineHandle> {
    engines::engine(name)
}

/// Whether this process runs as root, or [`unavailable`] saying what root is needed `for_what`.
#[track_caller]
pub fn require_root(for_what: &str) -> Option<()> {
    if is_root() {
        Some(())
    } else {
        unavailable(format!("{for_what} needs root"))
    }
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The Python that imports `rocrate` and `cffconvert`: see [`python::citation_readers`].
#[track_caller]
pub fn require_python() -> Option<PathBuf> {
    python::citation_readers()
}

/// taplo: see [`taplo::taplo`].
#[track_caller]
pub fn require_taplo() -> Option<PathBuf> {
    taplo::taplo()
}

/// Kerblam! 1.2.1 (`KERBLAM1`, else `/tmp/kerblam1/bin/kerblam`), or [`unavailable_under`]
/// `KERBLAM_REQUIRE_KERBLAM1`.
#[track_caller]
pub fn require_kerblam1() -> Option<PathBuf> {
    let candidates = std::env::var_os("KERBLAM1")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/tmp/kerblam1/bin/kerblam")]);
    for c in candidates {
        let version = std::process::Command::new(&c).arg("--version").output();
        if version.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("1.2.1")) {
            return Some(c);
        }
    }
    unavailable_under(
        REQUIRE_KERBLAM1,
        "Kerblam! 1.2.1 not found (KERBLAM1, /tmp/kerblam1/bin/kerblam); install it with \
         `cargo install kerblam --version 1.2.1 --root /tmp/kerblam1`",
    )
}

/// The directory where cargo built the workspace packages `packages` (backend plugins, or
/// `kerblam` itself), built once per process and package set.
#[cfg(feature = "plugins")]
pub fn plugin_dir(packages: &[&str]) -> PathBuf {
    kerblam_backend_api::host::testing::build_workspace_packages(
        &workspace_root().join("Cargo.toml"),
        packages,
    )
    .unwrap_or_else(|e| panic!("cargo build of {packages:?}: {e}"))
}

/// Cases of a reliability figure, each passing or panicking, counted as they run: the figure
/// [`Tally::report`] prints is what passed of what ran (a partial result shows as such), and it
/// fails afterwards naming every case that did not pass.
#[derive(Debug, Default)]
pub struct Tally {
    ran: usize,
    failed: Vec<String>,
}

impl Tally {
    /// Runs one case; a panic in it is counted as a failure of `name` (its message is printed).
    pub fn case(&mut self, name: &str, f: impl FnOnce()) {
        self.ran += 1;
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
            self.failed.push(name.to_string());
        }
    }

    /// How many cases ran, and how many of them passed.
    pub fn counts(&self) -> (usize, usize) {
        (self.ran, self.ran - self.failed.len())
    }

    /// Prints `<what>: <passed> of <ran><detail>`, then fails if a case did.
    #[track_caller]
    pub fn report(&self, what: &str, detail: &str) {
        let (ran, passed) = self.counts();
        eprintln!("{what}: {passed} of {ran}{detail}");
        assert!(
            self.failed.is_empty(),
            "{what}: failed at {:?}",
            self.failed
        );
    }
}

/// Bytes a command printed, as text (invalid UTF-8 replaced).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

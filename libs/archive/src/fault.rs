//! A test hook: pause at a named point of the work, so that a test can kill kerblam exactly there.
//!
//! Set `KERBLAM_FAULT_PAUSE=NAME` (or `NAME@N`, the N-th time the point is reached, 1-based) and
//! `KERBLAM_FAULT_FILE=PATH`. When the point is reached, its name and the process id are appended
//! to PATH as one line (`NAME PID`), and the thread waits until `PATH.continue` exists, or at most
//! `KERBLAM_FAULT_SECS` seconds (default 3), before carrying on: the test sends its signal, then
//! creates `PATH.continue`. Unset, a point costs one atomic load.
//!
//! The points are named `<where>/<what>`, e.g. `replay/created`, `atomic/before-rename`,
//! `tarball/before-commit`; `tests/faults.rs` lists the ones it exercises. The host and every plugin
//! link their own copy of this crate, so each counts its own points.
//!
//! The hook exists only in debug builds and with the `fault-injection` feature (see this crate's
//! `Cargo.toml`): in a release build without it, [`point`] does nothing and the environment is
//! never read, so no environment variable can pause an installed kerblam.

/// The environment variable naming the point to pause at.
pub const PAUSE_ENV: &str = "KERBLAM_FAULT_PAUSE";
/// The environment variable naming the file the reached point is reported in.
pub const FILE_ENV: &str = "KERBLAM_FAULT_FILE";
/// The environment variable giving the pause in seconds.
pub const SECS_ENV: &str = "KERBLAM_FAULT_SECS";

#[cfg(any(feature = "fault-injection", debug_assertions))]
pub use active::point;

/// A named point of the work: nothing happens here in a release build without `fault-injection`.
#[cfg(not(any(feature = "fault-injection", debug_assertions)))]
#[inline(always)]
pub fn point(_name: &str) {}

/// The hook itself, compiled only when it may pause.
#[cfg(any(feature = "fault-injection", debug_assertions))]
mod active {
    use std::io::Write;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::{FILE_ENV, PAUSE_ENV, SECS_ENV};

    struct Config {
        name: String,
        nth: u64,
        file: Option<std::path::PathBuf>,
        pause: Duration,
    }

    static CONFIG: OnceLock<Option<Config>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);

    fn config() -> Option<&'static Config> {
        CONFIG
            .get_or_init(|| {
                let spec = std::env::var(PAUSE_ENV).ok().filter(|s| !s.is_empty())?;
                let (name, nth) = match spec.rsplit_once('@') {
                    Some((n, k)) => (n.to_string(), k.parse().unwrap_or(1)),
                    None => (spec, 1),
                };
                let secs: f64 = std::env::var(SECS_ENV)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(3.0);
                Some(Config {
                    name,
                    nth: nth.max(1),
                    file: std::env::var_os(FILE_ENV).map(Into::into),
                    pause: Duration::from_secs_f64(secs.max(0.0)),
                })
            })
            .as_ref()
    }

    /// A named point of the work: pauses there when [`PAUSE_ENV`] names it (see the module docs).
    pub fn point(name: &str) {
        let Some(c) = config() else {
            return;
        };
        if c.name != name || HITS.fetch_add(1, Ordering::SeqCst) + 1 != c.nth {
            return;
        }
        let Some(path) = &c.file else {
            std::thread::sleep(c.pause);
            return;
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{name} {}", std::process::id());
        }
        let mut go = path.clone().into_os_string();
        go.push(".continue");
        let go = std::path::PathBuf::from(go);
        let start = std::time::Instant::now();
        while start.elapsed() < c.pause && !go.exists() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

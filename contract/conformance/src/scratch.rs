//! What each check runs in: a scratch project, and host callbacks that record what the plugin
//! does with them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kerblam_backend_api::Paths;
use kerblam_backend_api::host::HostCallbacks;

/// Host callbacks that count calls and answer `is_cancelled`: always with `cancelled`, or "no" for
/// the first `flip_after` polls and "yes" from then on (a Ctrl-C while the backend works).
pub(crate) struct Recorder {
    cancelled: bool,
    flip_after: Option<u64>,
    calls: AtomicU64,
    polls: AtomicU64,
}

impl Recorder {
    pub(crate) fn new(cancelled: bool) -> Arc<Recorder> {
        Arc::new(Recorder {
            cancelled,
            flip_after: None,
            calls: AtomicU64::new(0),
            polls: AtomicU64::new(0),
        })
    }

    /// Cancelled from the `(n + 1)`th poll on.
    pub(crate) fn cancelling_after(n: u64) -> Arc<Recorder> {
        Arc::new(Recorder {
            cancelled: false,
            flip_after: Some(n),
            calls: AtomicU64::new(0),
            polls: AtomicU64::new(0),
        })
    }

    /// How many times the plugin asked `is_cancelled`.
    pub(crate) fn polls(&self) -> u64 {
        self.polls.load(Ordering::SeqCst)
    }

    /// Polls that were answered "cancelled" because of the flip.
    pub(crate) fn polls_after_flip(&self) -> u64 {
        let n = self.flip_after.unwrap_or(u64::MAX);
        self.polls.load(Ordering::SeqCst).saturating_sub(n)
    }
}

impl HostCallbacks for Recorder {
    fn log(&self, _level: i32, _message: &str) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
    fn progress(&self, _done: u64, _total: u64, _what: &str) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
    fn is_cancelled(&self) -> bool {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let before = self.polls.fetch_add(1, Ordering::SeqCst);
        match self.flip_after {
            Some(n) => before >= n,
            None => self.cancelled,
        }
    }
}

/// A scratch project for one execute: `root/` (kerblam.toml, `src/pipes/golden.sh`, `data/in`,
/// `data/out`), `out/`, `tmp/`.
pub(crate) struct Scratch {
    _dir: tempfile::TempDir,
    pub(crate) paths: Paths,
    root: PathBuf,
    out: PathBuf,
}

impl Scratch {
    pub(crate) fn new() -> std::io::Result<Scratch> {
        let dir = tempfile::Builder::new()
            .prefix("kerblam-conformance-")
            .tempdir()?;
        let root = dir.path().join("root");
        let out = dir.path().join("out");
        let tmp = dir.path().join("tmp");
        for d in [&root, &out, &tmp] {
            std::fs::create_dir(d)?;
        }
        // The project the golden plans were "compiled" from: a manifest, the pipe, the data dirs.
        std::fs::write(
            root.join("kerblam.toml"),
            "# a project made by the kerblam conformance kit\n",
        )?;
        std::fs::create_dir_all(root.join("src/pipes"))?;
        std::fs::write(
            root.join("src/pipes/golden.sh"),
            "echo golden > data/out/golden.txt\n",
        )?;
        std::fs::create_dir_all(root.join("data/in"))?;
        std::fs::create_dir_all(root.join("data/out"))?;
        let s = |p: &Path| p.to_string_lossy().into_owned();
        let paths = Paths {
            root: s(&root),
            kerblam: std::env::current_exe()
                .map(|p| s(&p))
                .unwrap_or_else(|_| "/bin/true".into()),
            output_dir: s(&out),
            temp_dir: s(&tmp),
        };
        Ok(Scratch {
            _dir: dir,
            paths,
            root,
            out,
        })
    }

    /// Every path under root and out (relative, sorted).
    pub(crate) fn listing(&self) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    let p = e.path();
                    out.push(p.strip_prefix(base).unwrap_or(&p).display().to_string());
                    if p.is_dir() {
                        walk(base, &p, out);
                    }
                }
            }
        }
        let mut v = Vec::new();
        let base = self.root.parent().unwrap_or(&self.root);
        walk(base, &self.root, &mut v);
        walk(base, &self.out, &mut v);
        v.sort();
        v
    }
}

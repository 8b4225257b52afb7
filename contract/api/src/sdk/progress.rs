//! Progress of long writes, forwarded to the host's progress callback.
//!
//! The host decides whether to draw a bar (it does on a terminal, and stays quiet otherwise or with
//! `-q`); the plugin only reports `done` of `total` bytes, with a label that carries the file count.
//! Reports are throttled to one per 4 MiB or per file, so the callback stays cheap.

use std::cell::Cell;

use crate::Host;

const STEP: u64 = 4 << 20;

/// Reports the progress of writing one artifact.
pub struct Reporter<'h> {
    host: &'h Host<'h>,
    label: String,
    total: u64,
    last: Cell<(u64, u64)>,
}

impl<'h> Reporter<'h> {
    /// A reporter for writing `label`, expected to take `total` bytes (0 = unknown).
    pub fn new(host: &'h Host<'h>, label: impl Into<String>, total: u64) -> Self {
        Reporter {
            host,
            label: label.into(),
            total,
            last: Cell::new((u64::MAX, u64::MAX)),
        }
    }

    /// Reports `(bytes, files)` done, when enough changed since the last report.
    pub fn update(&self, bytes: u64, files: u64) {
        let (lb, lf) = self.last.get();
        if lb != u64::MAX && files == lf && bytes < lb.saturating_add(STEP) {
            return;
        }
        self.last.set((bytes, files));
        let what = if files == 0 {
            self.label.clone()
        } else {
            format!("{} ({files} files)", self.label)
        };
        self.host.progress(bytes, self.total, &what);
    }

    /// Reports completion.
    pub fn done(&self, bytes: u64, files: u64) {
        self.last.set((u64::MAX, u64::MAX));
        self.update(bytes, files);
    }

    /// A callback for `kerblam-archive`'s writers.
    pub fn callback(&self) -> impl Fn(u64, u64) + '_ {
        move |b, f| self.update(b, f)
    }
}

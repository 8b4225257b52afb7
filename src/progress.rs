//! Progress bars on a terminal: one per kind of work in flight (a backend writing an archive,
//! kerblam archiving the precious data beside it), drawn together, cleared when done. Nothing is
//! drawn off a terminal or with `-q`.

use std::sync::{Mutex, OnceLock};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::output;

/// The bars of this process.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<Vec<(String, ProgressBar)>>,
}

/// The bars of this process, made on first use.
pub fn bars() -> &'static Bars {
    static BARS: OnceLock<Bars> = OnceLock::new();
    BARS.get_or_init(|| Bars {
        multi: MultiProgress::new(),
        bars: Mutex::default(),
    })
}

impl Bars {
    /// `done` of `total` bytes (0: unknown) of the work `what`; the label is `what` up to its
    /// first ` (` (the rest, such as a file count, changes as it goes). A bar that reaches its
    /// total is cleared.
    pub fn update(&self, done: u64, total: u64, what: &str) {
        if !output::progress_enabled() {
            return;
        }
        let label = what.split(" (").next().unwrap_or(what).to_string();
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        let at = match bars.iter().position(|(l, _)| *l == label) {
            Some(i) => i,
            None => {
                bars.push((label, self.multi.add(new_bar(total))));
                bars.len() - 1
            }
        };
        let bar = &bars[at].1;
        bar.set_message(what.to_string());
        bar.set_position(done);
        if total > 0 && done >= total {
            bar.finish_and_clear();
            self.multi.remove(bar);
            bars.remove(at);
        }
    }

    /// Clears the bars of the works `whats` named (as given to [`Bars::update`]).
    pub fn clear(&self, whats: &[String]) {
        let labels: Vec<&str> = whats
            .iter()
            .map(|w| w.split(" (").next().unwrap_or(w))
            .collect();
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        bars.retain(|(label, bar)| {
            let done = labels.contains(&label.as_str());
            if done {
                bar.finish_and_clear();
                self.multi.remove(bar);
            }
            !done
        });
    }

    /// Runs `f` (which prints a line) with the bars hidden.
    pub fn suspend(&self, f: impl FnOnce()) {
        self.multi.suspend(f)
    }
}

fn new_bar(total: u64) -> ProgressBar {
    if total > 0 {
        ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        )
    } else {
        ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} {binary_bytes}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        )
    }
}

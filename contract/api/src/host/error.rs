use std::path::PathBuf;
use std::time::Duration;

use crate::{ErrorMessage, Status};

/// Whether a library was merely not a plugin, or a plugin that was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadErrorKind {
    /// Not a kerblam plugin (not ELF, wrong ELF class, not loadable, no ABI symbol): skipped.
    Skipped,
    /// A kerblam plugin that cannot be used (ABI major, missing symbol, invalid describe): refused.
    Refused,
}

/// Why a library was not loaded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadError {
    /// The library.
    pub path: PathBuf,
    /// Skipped or refused.
    pub kind: LoadErrorKind,
    /// The reason, for the user.
    pub reason: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            LoadErrorKind::Skipped => "skipped",
            LoadErrorKind::Refused => "refused backend plugin",
        };
        write!(f, "{what} {}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for LoadError {}

/// A backend name that no loaded plugin has.
#[derive(Debug, Clone)]
pub struct UnknownBackend {
    /// The name asked for.
    pub name: String,
    /// The names of the plugins that were found.
    pub installed: Vec<String>,
    /// The directories searched.
    pub searched: Vec<PathBuf>,
    /// How many libraries were skipped or refused.
    pub skipped: usize,
}

impl std::fmt::Display for UnknownBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no backend named {:?}", self.name)?;
        if self.installed.is_empty() {
            write!(f, "; no backends are installed")?;
        } else {
            write!(f, "; installed: {}", self.installed.join(", "))?;
        }
        let dirs: Vec<String> = self
            .searched
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        write!(
            f,
            " (searched: {})",
            if dirs.is_empty() {
                "nothing".to_string()
            } else {
                dirs.join(", ")
            }
        )?;
        if self.skipped > 0 {
            write!(
                f,
                "; {} libraries were skipped, `kerblam backends` says why",
                self.skipped
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownBackend {}

/// Why a call into a plugin did not produce a result.
#[derive(Debug, Clone)]
pub enum CallError {
    /// The plugin lacks capabilities the request needs; nothing was run.
    Missing {
        /// The backend name.
        backend: String,
        /// The missing capabilities (see [`crate::missing_capabilities`]).
        missing: Vec<String>,
    },
    /// The plugin reported a well-formed error.
    Failed {
        /// The backend name.
        backend: String,
        /// The status code it returned.
        status: Status,
        /// Its error message.
        error: ErrorMessage,
    },
    /// The plugin returned something that is not a valid reply.
    BadOutput {
        /// The backend name.
        backend: String,
        /// The library.
        path: PathBuf,
        /// The raw status code.
        code: i32,
        /// What is wrong with it.
        reason: String,
    },
    /// The plugin did not return within the timeout. An execute call was asked to cancel;
    /// `returned` says whether it then returned within the grace period (otherwise its thread is
    /// abandoned). A plan call, which has no way to be cancelled, is abandoned at once.
    TimedOut {
        /// The backend name.
        backend: String,
        /// The call that timed out.
        call: Call,
        /// The timeout.
        after: Duration,
        /// Whether it returned after being cancelled.
        returned: bool,
    },
    /// The host cancelled the call (Ctrl-C, say) and the plugin did not return within the grace
    /// period; its thread was abandoned.
    Unresponsive {
        /// The backend name.
        backend: String,
        /// The grace period it was given after cancellation.
        grace: Duration,
    },
    /// The plugin answered well-formed messages that break its contract: a part of the plan that
    /// cannot be written into it, or a result that does not match the plan.
    Broken {
        /// The backend name.
        backend: String,
        /// What was broken, e.g. "it did not carry out its plan".
        what: String,
        /// Each problem, naming the artifact or field.
        problems: Vec<String>,
    },
    /// The call could not be made, and nothing ran: the request does not serialize, a thread
    /// cannot be started, or what the user asked for cannot go with the backend's part of the
    /// plan (an output path the backend writes too). The message says which.
    Request(String),
}

/// Which call of a plugin an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `kerblam_backend_plan`.
    Plan,
    /// `kerblam_backend_execute`.
    Execute,
}

impl CallError {
    /// The status this error corresponds to, for exit-code decisions.
    pub fn status(&self) -> Status {
        match self {
            CallError::Missing { .. } => Status::Unsupported,
            CallError::Failed { status, .. } => *status,
            CallError::BadOutput { .. } | CallError::Broken { .. } => Status::BackendError,
            CallError::TimedOut { .. } | CallError::Unresponsive { .. } => Status::Cancelled,
            CallError::Request(_) => Status::InvalidInput,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Missing { backend, missing } => write!(
                f,
                "backend {backend:?} cannot carry out this plan: it does not support {}",
                missing.join(", ")
            ),
            CallError::Failed {
                backend,
                status,
                error,
            } => {
                write!(
                    f,
                    "backend {backend:?} failed ({}): {}",
                    status.name(),
                    error.message
                )?;
                if let Some(help) = &error.help {
                    write!(f, "\nhelp: {help}")?;
                }
                Ok(())
            }
            CallError::BadOutput {
                backend,
                path,
                code,
                reason,
            } => write!(
                f,
                "backend {backend:?} ({}) returned an invalid reply (status {code}): {reason}",
                path.display()
            ),
            CallError::TimedOut {
                backend,
                call: Call::Plan,
                after,
                ..
            } => write!(
                f,
                "backend {backend:?} did not answer the plan request within {:.1}s; kerblam stopped waiting for it",
                after.as_secs_f64()
            ),
            CallError::TimedOut {
                backend,
                call: Call::Execute,
                after,
                returned,
            } => {
                write!(
                    f,
                    "backend {backend:?} did not finish within {:.1}s",
                    after.as_secs_f64()
                )?;
                if *returned {
                    write!(f, "; it stopped when asked to cancel")
                } else {
                    write!(f, "; it ignored cancellation and was abandoned")
                }
            }
            CallError::Unresponsive { backend, grace } => write!(
                f,
                "backend {backend:?} ignored cancellation: it had not stopped {:.1}s after it was asked to, so kerblam gave up on it",
                grace.as_secs_f64()
            ),
            CallError::Broken {
                backend,
                what,
                problems,
            } => {
                write!(f, "backend {backend:?}: {what}:")?;
                for p in problems {
                    write!(f, "\n- {p}")?;
                }
                Ok(())
            }
            CallError::Request(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CallError {}

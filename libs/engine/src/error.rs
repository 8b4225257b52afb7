//! Errors of engine operations, each naming the engine and saying what to do about it.

use std::io;

/// Everything that can go wrong while driving an engine CLI.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine program could not be found or started.
    #[error("{engine} is not installed: cannot run `{program}`: {source}")]
    NotInstalled {
        /// Engine name (`docker`, `podman`, ...).
        engine: String,
        /// The program that was tried.
        program: String,
        /// Why spawning failed.
        source: io::Error,
    },
    /// The engine program exists but its daemon/service does not answer (`docker info` fails).
    #[error("{engine} is installed but not running (`{program} info` failed):\n{output}")]
    NotRunning {
        /// Engine name.
        engine: String,
        /// The program that was run.
        program: String,
        /// The tail of the engine's output.
        output: String,
    },
    /// An engine command ran and failed.
    #[error("`{command}` failed ({status}):\n{output}")]
    Failed {
        /// The command line, for the user to re-run.
        command: String,
        /// Exit status as text (`exit status: 1`, `signal: 9`).
        status: String,
        /// The tail of the engine's output (stdout and stderr interleaved).
        output: String,
    },
    /// The engine cannot do what was asked (e.g. BuildKit with a docker CLI that lacks it).
    #[error("{0}")]
    Unsupported(String),
    /// Bad argument given to this library (e.g. a relative host path in a mount).
    #[error("{0}")]
    InvalidInput(String),
    /// Reading the build context, writing a saved image, or talking to the engine process failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
}

impl EngineError {
    /// A hint for the user on how to fix the error, when there is one.
    pub fn help(&self) -> Option<String> {
        match self {
            EngineError::NotInstalled { engine, .. } => Some(match engine.as_str() {
                "docker" => "install it (Debian: `apt-get install docker.io`, or `bash scripts/engines.sh install`), \
                             or set KERBLAM_DOCKER to the docker program"
                    .to_string(),
                "podman" => "install it (Debian: `apt-get install podman`, or `bash scripts/engines.sh install`), \
                             or set KERBLAM_PODMAN to the podman program"
                    .to_string(),
                other => format!("install {other} or put it on PATH"),
            }),
            EngineError::NotRunning { engine, .. } => Some(match engine.as_str() {
                "docker" => "start the Docker daemon: `sudo systemctl start docker`, or \
                             `sudo dockerd --bridge=none --iptables=false --ip-masq=false &` \
                             (`bash scripts/engines.sh start` does that)"
                    .to_string(),
                "podman" => "check `podman info`; as root here podman needs /etc/containers/containers.conf \
                             with default_ulimits (`bash scripts/engines.sh start` writes it)"
                    .to_string(),
                other => format!("check that `{other} info` works"),
            }),
            _ => None,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        EngineError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result of engine operations.
pub type Result<T> = std::result::Result<T, EngineError>;

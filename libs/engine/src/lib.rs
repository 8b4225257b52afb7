//! A small typed wrapper around the `docker` and `podman` command-line interfaces, shared by the
//! Docker and Podman backend plugins.
//!
//! An [`Engine`] names the CLI to drive ([`Engine::docker`], [`Engine::podman`], or any program with
//! [`Engine::new`]) and its [`Flavor`]. Every operation spawns that CLI:
//!
//! - [`Engine::check_available`]: is it installed and is its service answering (`info`)?
//! - [`Engine::build`]: build an image from a build-context **tar stream** read from any
//!   [`std::io::Read`], piped straight into `docker build -` / `podman build -` (no temporary copy
//!   of the project), with the engine's output echoed to stderr and its tail kept for errors.
//!   [`BuildOptions`] selects Docker's legacy builder or BuildKit ([`Builder`]), labels, no-cache
//!   and the network of `RUN` steps.
//! - [`Engine::run`]: run a container (`--rm`, `--pull never`, `--network none` by default) with
//!   bind [`Mount`]s, returning its exit code.
//! - [`Engine::image_exists`], [`Engine::remove_image`], [`Engine::save`] (streams a Docker
//!   archive into any writer) and [`Engine::load`].
//! - [`Engine::storage_dirs`]: where the engine keeps images and stages builds (for disk checks).
//!
//! [`plugin`] is what the docker and podman backend plugins run: a plan's `package` and `run` actions
//! carried out with an engine (build context streamed into the build, replay archive written with
//! `kerblam-archive`), for pipe plans and freeze plans (the frozen trees streamed into the build,
//! the smoke test a build step).
//!
//! Errors are [`EngineError`]s that name the engine and the command, carry the tail of the engine's
//! output, and offer [`EngineError::help`] (how to install or start the engine).
//!
//! Engine facts this relies on (Debian 12: docker.io 20.10.24, podman 4.3.1): both accept a build
//! context tar on stdin with `-f PATH-IN-TAR`; Docker's legacy builder rejects `COPY a b .` (several
//! sources need a destination ending in `/`); docker CLIs ≥ 23 need the buildx plugin for
//! BuildKit, older ones have it built in; with dockerd started `--bridge=none`, BuildKit `RUN` steps
//! need `--network none|host`; `docker load` cannot read OCI archives, `podman load` reads both
//! Docker and OCI archives; podman names images loaded from Docker archives `localhost/NAME`.

mod build;
mod engine;
mod error;
pub mod plugin;
mod process;
mod registry;
mod run;

pub use build::{BuildOptions, Builder};
pub use engine::{Engine, Flavor, Security, StorageDirs};
pub use error::{EngineError, Result};
pub use registry::Endpoint;
pub use run::{Confinement, HOME_IN_CONTAINER, Mount, Network, RunOptions};

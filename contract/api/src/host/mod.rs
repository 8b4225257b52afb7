//! The host side (feature `host`): finding, loading and calling backend plugins.
//!
//! - [`SearchConfig`] computes where plugins are looked for, in order: `--backend-path` /
//!   `KERBLAM_BACKEND_PATH` entries, the executable's directory and `<exe dir>/../lib/kerblam/backends`,
//!   then the user's data dir (`$XDG_DATA_HOME/kerblam/backends` or `~/.local/share/kerblam/backends`).
//!   The working directory is never searched.
//! - [`Registry::discover`] loads every candidate with [`Plugin::load`] (`RTLD_NOW | RTLD_LOCAL`,
//!   never unloaded), skipping files that are not plugins and refusing bad ones, each with a reason,
//!   and records which plugins are shadowed by an earlier one of the same name.
//! - [`Plugin::plan`] asks the plugin for its part of a plan (within [`Plugin::timeout`]);
//!   [`Plugin::execute`] refuses a request needing a capability the plugin lacks, then calls the
//!   plugin with a host callback table, an optional timeout, and validation of what comes back;
//!   [`contract`] holds the plugin to what its part of the plan promised.

mod callbacks;
pub mod contract;
mod elf;
mod error;
mod plugin;
mod registry;
#[cfg(feature = "testing")]
pub mod testing;

pub use callbacks::{HostCallbacks, StderrCallbacks};
pub use error::{Call, CallError, LoadError, LoadErrorKind, UnknownBackend};
pub use plugin::{DESCRIBE_TIMEOUT, Plugin, RawReply, decode, decode_describe, interpret_reply};
pub use registry::{
    Registry, SearchConfig, SearchDir, SearchOrigin, Shadowed, split_backend_path, user_data_dir,
};

//! `kerblam-backend-tarball`'s integration tests, one module per subject, built as one test binary (as uv's
//! `tests/it` does): the dependency graph is linked once instead of once per file.
//!
//! All modules share one process and its test threads, so a test must not change what is global to
//! it (environment variables, the working directory, fixed paths); see the workspace's
//! `tests/it/main.rs`. To add a module: put it in `tests/it/NAME.rs` and declare `mod NAME;` here.
//!
//! `tests/determinism.rs` stays a binary of its own: it sets `SOURCE_DATE_EPOCH` in its process,
//! which the plugin it loads reads, and no other test may run beside that.

#[path = "../support/mod.rs"]
mod support;

mod bad_inputs;
mod base;
mod engines;
mod freeze;
mod pipe;
mod umoci;

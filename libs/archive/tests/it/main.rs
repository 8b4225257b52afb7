//! `kerblam-archive`'s integration tests, one module per subject, built as one test binary (as uv's
//! `tests/it` does): the dependency graph is linked once instead of once per file.
//!
//! All modules share one process and its test threads, so a test must not change what is global to
//! it (environment variables, the working directory, fixed paths); see the workspace's
//! `tests/it/main.rs`. To add a module: put it in `tests/it/NAME.rs` and declare `mod NAME;` here.

mod cleanup;
mod hostile;
mod mutations;
mod roundtrip;

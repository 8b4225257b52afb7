//! The root crate's integration tests, one module per subject, built as one test binary (as uv's
//! `tests/it` does): the dependency graph is linked once instead of once per file.
//!
//! All modules share one process and its test threads, so a test must not change what is global to
//! it: no `std::env::set_var` or `set_current_dir` (give a child `Command` its environment and
//! directory instead), a temporary directory per test, engine tags and containers named for the test
//! and checked by that name (never "no such image on the engine"), and the locks in
//! `kerblam_test_support::engines` around what an engine cannot do twice at once.
//!
//! To add a module: put it in `tests/it/NAME.rs`, declare `mod NAME;` below, and reach the helpers
//! with `use crate::support;` (`support::project`, `support::terminal`, and everything of the
//! `kerblam-test-support` crate: `support::require_tool`, `support::require_engine`, ...). Its insta
//! snapshots live in `tests/it/snapshots/it__NAME__*.snap`.

mod support;

mod apptainer_cli;
mod backends_cli;
mod broken_plugins;
mod citation;
mod cli_conventions;
mod data_clean;
mod data_fetch;
mod data_summary_pack;
mod example_backend;
mod faults;
mod freeze_cli;
mod freeze_engines;
mod function_length;
mod hostile_replay;
mod install;
mod kerblam1;
mod kerblam_v1_manifest;
mod new_ignore;
mod old_archives;
mod ownership_engines;
mod package_replay_errors;
mod plan_cli;
mod plan_show_def;
mod profiles;
mod registry_engines;
mod roundtrip_engines;
mod run_local;
mod schemas;
mod taplo;
mod tarball_cli;
mod validate_corpus;

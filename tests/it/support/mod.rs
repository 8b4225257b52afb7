//! Shared helpers for the integration tests (`mod support;` in a test file): the workspace's
//! test-support crate (`testing/support`, re-exported here, with its `require_*` functions that
//! skip or fail), and what needs this crate's `kerblam` executable.

pub mod project;
pub mod terminal;

#[allow(unused_imports)]
pub use kerblam_test_support::*;

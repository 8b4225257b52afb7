//! Shared helpers for the integration tests (`mod support;` in a test file).

pub mod engines;
pub mod files;
pub mod project;
pub mod python;
pub mod taplo;
pub mod terminal;
pub mod tmpfs;
pub mod user;

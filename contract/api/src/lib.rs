//! The kerblam backend plugin contract.
//!
//! Backends (docker, podman, apptainer, tarball, and third-party ones) are shared libraries that the
//! `kerblam` CLI loads at run time. Rust has no stable ABI, so no Rust type crosses the boundary: a
//! plugin exports five `extern "C"` symbols ([`abi`]) that take and return JSON bytes
//! ([`messages`]), plus a table of host callbacks ([`HostV1`]) for logging, progress and
//! cancellation. `README.md` next to this crate is the specification for authors in any language.
//!
//! This crate holds:
//!
//! - the ABI: symbol names, signatures, [`Buf`], [`Status`], [`HostV1`] ([`abi`]), and the C header
//!   that declares them ([`c_header`], committed as `include/kerblam_backend.h`);
//! - the JSON messages [`Hello`], [`Describe`] (with [`Capabilities`]), [`PlanRequest`] (answered
//!   with the plan's [`plan::BackendPlan`]), [`ExecuteRequest`], [`ExecuteResult`] and
//!   [`ErrorMessage`], and their JSON Schemas ([`schemas`]);
//! - [`missing_capabilities`], which the host uses to refuse a plan before anything runs;
//! - the Rust SDK: the [`Backend`] trait, the [`Host`] handle and the [`export_backend!`] macro,
//!   plus [`preflight`] checks backends run before any work;
//! - behind the `host` feature, the loader ([`host`]): discovery, `dlopen` with
//!   `RTLD_NOW | RTLD_LOCAL`, validation, guarded calls with a timeout. Plugins depend on this
//!   crate without that feature and never link `libloading`.

pub mod abi;
pub mod c_header;
pub mod capabilities;
pub mod confine;
pub mod messages;
pub mod ownership;
pub mod preflight;
mod schemas;
pub mod sdk;

#[cfg(feature = "host")]
pub mod host;

pub use abi::{
    ABI_MAJOR, ABI_MINOR, ABI_VERSION, Buf, HostV1, Status, log_level, split_abi_version,
};
pub use capabilities::missing_capabilities;
pub use messages::{
    AbiVersion, Action, BaseKind, Capabilities, DESCRIBE_TAG, Describe, EngineService, ErrorKind,
    ErrorMessage, ExecuteOptions, ExecuteRequest, ExecuteResult, HELLO_TAG, Hello, LayerSourceKind,
    Owner, PLAN_REQUEST_TAG, Paths, PlanReply, PlanRequest, PreflightKind, ProducedArtifact,
    REQUEST_TAG, SchemaRange,
};
pub use schemas::schemas;
pub use sdk::{Backend, Host, SDK_ID};

/// Re-exported so plugins can name plan types without a separate dependency.
pub use kerblam_plan as plan;
/// The JSON library the messages are made with, so a backend needs no dependency of its own.
pub use serde_json;

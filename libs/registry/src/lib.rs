//! A small client for the OCI distribution API (registries such as Docker Hub, GHCR, Harbor,
//! Quay, Zot or `docker-registry`), with what kerblam needs and nothing else:
//!
//! - [`Reference`]: `REGISTRY/REPO[:TAG][@sha256:HEX]`, parsed as docker and podman parse it;
//! - [`Credentials`]: read from where users already keep them (`REGISTRY_AUTH_FILE`, podman's
//!   `auth.json`, docker's `config.json` and its credential helpers), never from the command line;
//! - [`Client`]: blobs and manifests up and down, by digest, every byte checked against the digest
//!   it was asked for, with basic and bearer-token authentication;
//! - [`push_oci_archive`]: an OCI image layout archive (`oci-archive`, as the tarball backend
//!   writes it) streamed to a registry blob by blob, without an engine;
//! - [`artifact`]: the replay archive as an OCI 1.1 artifact whose `subject` is the image.
//!
//! Why not a general OCI client crate: the ones that exist buffer each blob in memory and bring an
//! async runtime; image layers are gigabytes, and kerblam streams them in constant memory.
//!
//! Plain HTTP is used for registries on the loopback interface only (`localhost`, `127.0.0.0/8`,
//! `[::1]`), as docker does by default; every other registry is reached over HTTPS.

#[cfg(feature = "client")]
pub mod artifact;
#[cfg(feature = "client")]
mod auth;
#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
mod credentials;
mod error;
#[cfg(feature = "client")]
mod oci_archive;
#[cfg(feature = "plugin")]
pub mod plugin;
mod reference;

#[cfg(feature = "client")]
pub use client::{Client, Manifest};
#[cfg(feature = "client")]
pub use credentials::Credentials;
pub use error::{Error, Result};
#[cfg(feature = "client")]
pub use oci_archive::{Pushed, push_oci_archive};
pub use reference::{Reference, is_digest, is_loopback_host};

/// `sha256:<hex>` of `bytes`.
#[cfg(feature = "client")]
pub fn digest_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex(&sha2::Sha256::digest(bytes)))
}

#[cfg(feature = "client")]
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The media types of image manifests kerblam reads and refers to.
pub mod media {
    /// An OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// An OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// A Docker image manifest (schema 2), as `docker push` writes it.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// A Docker manifest list.
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    /// The empty JSON object `{}`, the config of an artifact that needs none (OCI 1.1).
    pub const EMPTY: &str = "application/vnd.oci.empty.v1+json";
    /// Every manifest type, for `Accept`.
    pub const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";
}

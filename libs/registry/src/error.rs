//! What can go wrong talking to a registry.

/// A registry operation's failure.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// The reference is not one a registry takes.
    #[error("{reference:?} is not a registry reference: {why}")]
    #[diagnostic(help("write REGISTRY/REPOSITORY[:TAG], e.g. ghcr.io/lab/process:v1"))]
    BadReference { reference: String, why: String },
    /// The registry could not be reached.
    #[error("cannot reach the registry {registry}: {why}")]
    #[diagnostic(help(
        "check the address and that the registry is running; plain HTTP is used only for registries on 127.0.0.1 or localhost"
    ))]
    Unreachable { registry: String, why: String },
    /// The registry refused the credentials (or there were none).
    #[error("the registry {registry} refused {what}: {why}")]
    #[diagnostic(help(
        "log in with `docker login {registry}` or `podman login {registry}` (kerblam reads REGISTRY_AUTH_FILE, podman's auth.json and docker's config.json; it never takes a password on the command line)"
    ))]
    Unauthorized {
        registry: String,
        what: String,
        why: String,
    },
    /// The registry has no such manifest or blob.
    #[error("{what} is not in the registry {registry}")]
    #[diagnostic(help("check the reference; a digest names exactly one manifest"))]
    NotFound { registry: String, what: String },
    /// What came back is not what was asked for.
    #[error("{what} from {registry} does not match its digest: expected {expected}, got {actual}")]
    #[diagnostic(help(
        "the registry's copy is damaged or was tampered with: nothing of it was used"
    ))]
    DigestMismatch {
        registry: String,
        what: String,
        expected: String,
        actual: String,
    },
    /// The registry answered something the protocol does not allow, or refused a request.
    #[error("the registry {registry} {what}")]
    Protocol { registry: String, what: String },
    /// A credentials file or helper could not be read.
    #[error("cannot read the registry credentials in {source_name}: {why}")]
    #[diagnostic(help(
        "fix or remove that file, or log in again with `docker login` or `podman login`"
    ))]
    Credentials { source_name: String, why: String },
    /// A local file could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The OCI archive to push is not one.
    #[error("{path} is not an OCI image archive: {why}")]
    BadArchive { path: String, why: String },
}

/// A registry result.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Whether this is about what the user gave (a bad reference or archive, wrong credentials, a
    /// missing manifest) rather than a failure on the way.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::BadReference { .. }
                | Error::Unauthorized { .. }
                | Error::NotFound { .. }
                | Error::BadArchive { .. }
                | Error::Credentials { .. }
        )
    }

    /// The message with its help line, for a plugin's error reply or a plain exit.
    pub fn with_help(&self) -> String {
        use miette::Diagnostic;
        match self.help() {
            Some(h) => format!("{self}\nhelp: {h}"),
            None => self.to_string(),
        }
    }
}

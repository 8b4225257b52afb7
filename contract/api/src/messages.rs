//! The JSON messages that cross the boundary: [`Hello`] (host → describe), [`Describe`] (describe →
//! host), [`PlanRequest`] (host → plan) and its reply, the plan's [`BackendPlan`],
//! [`ExecuteRequest`] (host → execute), [`ExecuteResult`] and [`ErrorMessage`] (any call → host). Unknown fields are ignored on purpose: newer hosts and plugins may add optional
//! fields within one ABI major.

use kerblam_plan::{ArtifactKind, BackendPlan, PackagePlan, SourceKind};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The `hello` tag of a [`Hello`].
pub const HELLO_TAG: &str = "kerblam.hello/v1";
/// The `describe` tag of a [`Describe`].
pub const DESCRIBE_TAG: &str = "kerblam.describe/v1";
/// The `request` tag of an [`ExecuteRequest`].
pub const REQUEST_TAG: &str = "kerblam.execute/v1";
/// The `request` tag of a [`PlanRequest`].
pub const PLAN_REQUEST_TAG: &str = "kerblam.plan-request/v1";

/// An ABI version as a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AbiVersion {
    /// Breaking changes bump it; a host refuses a plugin whose major differs.
    pub major: u32,
    /// Additions bump it.
    pub minor: u32,
}

impl AbiVersion {
    /// This crate's ABI version.
    pub const CURRENT: AbiVersion = AbiVersion {
        major: crate::ABI_MAJOR,
        minor: crate::ABI_MINOR,
    };
}

impl std::fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// What the host says about itself when it asks a plugin to describe itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "kerblam backend hello", extend("$id" = "https://kerblam.dev/schemas/backend-hello.json"))]
pub struct Hello {
    /// Always `kerblam.hello/v1`.
    pub hello: String,
    /// The host program, `kerblam`.
    pub host: String,
    /// The host program's version.
    pub host_version: String,
    /// The host's ABI version.
    pub abi: AbiVersion,
    /// The plan schemas the host may send, e.g. `["kerblam.plan/v1"]`.
    pub plan_schemas: Vec<String>,
}

impl Hello {
    /// The hello this host sends: host name and version given, ABI and plan schema from this crate.
    pub fn new(host: &str, host_version: &str) -> Hello {
        Hello {
            hello: HELLO_TAG.to_string(),
            host: host.to_string(),
            host_version: host_version.to_string(),
            abi: AbiVersion::CURRENT,
            plan_schemas: vec![kerblam_plan::PLAN_SCHEMA.to_string()],
        }
    }
}

/// An inclusive range of plan schema majors (`kerblam.plan/vN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SchemaRange {
    /// The oldest plan schema major the backend accepts.
    pub min: u32,
    /// The newest plan schema major the backend accepts.
    pub max: u32,
}

impl SchemaRange {
    /// Whether `major` is inside the range.
    pub fn contains(&self, major: u32) -> bool {
        self.min <= major && major <= self.max
    }
}

impl std::fmt::Display for SchemaRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max {
            write!(f, "kerblam.plan/v{}", self.min)
        } else {
            write!(f, "kerblam.plan/v{}..v{}", self.min, self.max)
        }
    }
}

/// A plugin's description of itself, returned by `kerblam_backend_describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "kerblam backend describe", extend("$id" = "https://kerblam.dev/schemas/backend-describe.json"))]
pub struct Describe {
    /// Always `kerblam.describe/v1`.
    pub describe: String,
    /// The backend name users pass to `--backend`: lowercase ASCII letters, digits and `-`.
    pub name: String,
    /// The backend's own version.
    pub version: String,
    /// One line saying what the backend does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The ABI version the plugin was built against.
    pub abi: AbiVersion,
    /// The plan schema majors the backend accepts.
    pub plan_schema: SchemaRange,
    /// The SDK that built the plugin (`kerblam-backend-api <version>`), absent for plugins written
    /// without the Rust SDK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk: Option<String>,
    /// What the backend can do.
    pub capabilities: Capabilities,
    /// The engine service the backend talks to, as `kerblam backends` shows it; absent for a
    /// backend that needs no engine service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineService>,
}

/// The engine service a backend talks to (`DOCKER_HOST`, `CONTAINER_HOST`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EngineService {
    /// The engine's name, e.g. `docker`.
    pub name: String,
    /// Its address, e.g. `unix:///var/run/docker.sock`, `ssh://builder@build`, or `local` for an
    /// engine that runs containers itself.
    pub address: String,
    /// The service may be on another machine (`tcp://`, `ssh://`): it builds from the streamed
    /// context and pushes, but cannot mount this machine's files, so the host refuses `run` and
    /// `replay` with it before doing anything.
    pub remote: bool,
}

impl Describe {
    /// Problems that make this description invalid for a host at this ABI and plan schema; empty
    /// when it is fine.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.describe != DESCRIBE_TAG {
            out.push(format!(
                "`describe` is {:?}, expected {DESCRIBE_TAG:?}",
                self.describe
            ));
        }
        if !valid_name(&self.name) {
            out.push(format!(
                "name {:?} is not lowercase ASCII letters, digits and '-' (1 to 64 characters, starting with a letter)",
                self.name
            ));
        }
        if self.version.trim().is_empty() {
            out.push("version is empty".to_string());
        }
        if self.abi.major != crate::ABI_MAJOR {
            out.push(format!(
                "ABI major {} differs from the host's {}",
                self.abi.major,
                crate::ABI_MAJOR
            ));
        }
        if self.plan_schema.min > self.plan_schema.max {
            out.push(format!(
                "plan_schema range is empty (min {} > max {})",
                self.plan_schema.min, self.plan_schema.max
            ));
        } else if !self.plan_schema.contains(kerblam_plan::PLAN_SCHEMA_MAJOR) {
            out.push(format!(
                "accepts {} but this kerblam writes {}",
                self.plan_schema,
                kerblam_plan::PLAN_SCHEMA
            ));
        }
        out
    }
}

/// Whether `name` is a valid backend name.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// What to do with a plan.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Build the image and write every artifact of the plan.
    Package,
    /// Run the already built image with the plan's mounts, workdir and entrypoint.
    Run,
}

impl Action {
    /// The name used in JSON, e.g. `package`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Package => "package",
            Action::Run => "run",
        }
    }
}

/// The kinds of [`kerblam_plan::Base`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum BaseKind {
    /// A container recipe (Dockerfile) in the project.
    Recipe,
    /// An image reference.
    Image,
    /// A local OCI or docker archive.
    Archive,
    /// An empty image.
    Scratch,
}

/// The kinds of [`kerblam_plan::LayerSource`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum LayerSourceKind {
    /// The kerblam executable.
    Kerblam,
    /// Text generated by the compiler.
    Generated,
    /// A path in the build context.
    Context,
    /// A host path outside the project.
    Host,
}

/// The kinds of [`kerblam_plan::Preflight`] check.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum PreflightKind {
    /// Free disk space.
    DiskSpace,
    /// A writable directory.
    Writable,
    /// A program on `PATH`.
    Tool,
    /// An existing file.
    FileExists,
}

/// What a backend can do. Every list field is "what is supported"; a missing field means "no".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Capabilities {
    /// The actions implemented today. A backend still being written lists none, and says in
    /// the other fields what it will support.
    pub actions: Vec<Action>,
    /// The plan sources handled (`pipe` plans from a kerblam.toml, `freeze` plans).
    pub sources: Vec<SourceKind>,
    /// The base kinds an image may start from.
    pub base_kinds: Vec<BaseKind>,
    /// The layer sources the backend can add.
    pub layer_sources: Vec<LayerSourceKind>,
    /// Whether the backend can bind host directories into a running container (`plan.mounts`).
    pub mounts: bool,
    /// The artifact kinds the backend can produce.
    pub artifact_kinds: Vec<ArtifactKind>,
    /// The preflight checks the backend runs.
    pub preflight_checks: Vec<PreflightKind>,
    /// The non-default output formats accepted in `options.format` (e.g. `oci`, `kerblam-v1`).
    pub formats: Vec<String>,
    /// Whether the backend works without root privileges.
    pub rootless: bool,
    /// Whether the backend can push the image it builds to a registry (`options.push`).
    pub push: bool,
    /// Whether `options.embed_image` is supported (save the image into the replay archive).
    pub embed_image: bool,
    /// Whether `options.base_archive` is supported (`--base FILE`).
    pub base_archive: bool,
    /// Whether `options.native` is supported (build without the engine's own tool).
    pub native: bool,
    /// Whether several `kerblam_backend_execute` calls may run at the same time. When false the host
    /// serializes them.
    pub reentrant: bool,
}

/// What the host asks a backend before anything runs, passed to `kerblam_backend_plan` (ABI 1.1):
/// the plan as the compiler made it, whose `backend` part holds only the backend's name. The reply
/// (status 0) is the backend's part of the plan, a [`BackendPlan`]: the artifacts it will write,
/// its own preflight checks, what it renders, and how to use what it makes. It must be
/// deterministic (the same request gives the same bytes), quick, and write nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "kerblam backend plan request", extend("$id" = "https://kerblam.dev/schemas/backend-plan-request.json"))]
pub struct PlanRequest {
    /// Always `kerblam.plan-request/v1`.
    pub request: String,
    /// What the plan will be carried out with (`package` builds; `run` runs what was built).
    pub action: Action,
    /// The plan without the backend's part.
    pub plan: PackagePlan,
    /// Absolute paths the plan's relative paths are resolved against (read the project's files
    /// there if the rendering needs them; write nothing).
    pub paths: Paths,
    /// The user's choices that shape the backend's part (`format`, `native`, `base_archive`,
    /// `save_image`, ...).
    #[serde(default)]
    pub options: ExecuteOptions,
}

impl PlanRequest {
    /// The plan request for carrying out `request`: its plan without the backend's part.
    pub fn for_execute(request: &ExecuteRequest) -> PlanRequest {
        PlanRequest {
            request: PLAN_REQUEST_TAG.to_string(),
            action: request.action,
            plan: request.plan.neutral(),
            paths: request.paths.clone(),
            options: request.options.clone(),
        }
    }
}

/// The reply of `kerblam_backend_plan`, as its JSON Schema names it.
pub type PlanReply = BackendPlan;

/// What the host asks a backend to do, passed to `kerblam_backend_execute`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "kerblam backend execute request", extend("$id" = "https://kerblam.dev/schemas/backend-execute-request.json"))]
pub struct ExecuteRequest {
    /// Always `kerblam.execute/v1`.
    pub request: String,
    /// What to do with the plan.
    pub action: Action,
    /// The plan to carry out; the backend never re-decides what it says.
    pub plan: PackagePlan,
    /// Absolute paths the plan's relative paths are resolved against.
    pub paths: Paths,
    /// User choices that are not part of the plan.
    #[serde(default)]
    pub options: ExecuteOptions,
}

impl ExecuteRequest {
    /// A request with default options.
    pub fn new(action: Action, plan: PackagePlan, paths: Paths) -> ExecuteRequest {
        ExecuteRequest {
            request: REQUEST_TAG.to_string(),
            action,
            plan,
            paths,
            options: ExecuteOptions::default(),
        }
    }
}

/// Absolute host paths for one execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Paths {
    /// The project root (for `run` of a replay: the replay directory); plan paths are relative to it.
    pub root: String,
    /// The kerblam executable to bake in where a layer says `{kind: "kerblam"}`.
    pub kerblam: String,
    /// Where artifacts with relative paths are written (usually the root).
    pub output_dir: String,
    /// Where temporary files may go.
    pub temp_dir: String,
}

/// User choices for one execution.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ExecuteOptions {
    /// Build without the engine's cache.
    pub no_cache: bool,
    /// `package`: the user asked for the image inside the replay archive (`--embed-image`); the
    /// host then names a file in `save_image`.
    pub embed_image: bool,
    /// `package`: an absolute path where the backend writes the built image as a `docker save`
    /// archive, for the host to put into the replay archive (it is a temporary file of the host's;
    /// the backend does not report it as an artifact). Needs the `embed_image` capability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub save_image: Option<String>,
    /// Overwrite existing outputs.
    pub force: bool,
    /// Apptainer: assemble the SIF without apptainer.
    pub native: bool,
    /// `--base FILE`: an absolute path to a base OCI or docker archive.
    pub base_archive: Option<String>,
    /// A backend-specific output format, e.g. `oci` or `kerblam-v1`; null for the default.
    pub format: Option<String>,
    /// `run`: extra arguments appended to the entrypoint.
    pub args: Vec<String>,
    /// `run`: an absolute path to an image archive to load when the tag is missing. The docker and
    /// podman backends also accept a replay archive here and load its embedded `image.tar`.
    pub image_archive: Option<String>,
    /// `run`: the container's network, `none` (the default when null) or `host` (e.g. so that the
    /// replay's `kerblam data fetch` reaches a server on 127.0.0.1). Never a bridge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `run`: the user whose files the run's outputs must be, the one who ran kerblam (under
    /// `sudo`, the user who called it when the project is theirs). A backend runs the container as
    /// that user (or maps it to them), unless the plan's pipe says `user: root`; then it gives
    /// what the run created under the mounts back to this user afterwards, and touches nothing
    /// else. Null: the backend's own default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// `run`: the image is not the user's own (a replay): give it the least it needs (no
    /// capabilities, no new privileges, a read-only root filesystem, a process limit, only the
    /// plan's mounts). False for `kerblam run` and for `kerblam replay --trust-image`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub confine: bool,
    /// `package`, `freeze`: push the built image to this registry reference
    /// (`REGISTRY/REPO[:TAG]`) once it is built, and report the digest-pinned reference in
    /// `result.pushed`. Credentials are the user's own (docker's `config.json`,
    /// `REGISTRY_AUTH_FILE`, the engine's login): the host never passes any. Needs the `push`
    /// capability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<String>,
    /// Test hook for the conformance kit: a plugin built with the Rust SDK panics on purpose when
    /// this is true AND the environment variable `KERBLAM_CONFORMANCE` is `1`. Never set by kerblam.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub conformance_panic: bool,
}

/// A numeric user and group on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    /// The user id.
    pub uid: u32,
    /// The group id.
    pub gid: u32,
}

impl Owner {
    /// `uid:gid`, as `--user` and `chown` take it.
    pub fn spec(&self) -> String {
        format!("{}:{}", self.uid, self.gid)
    }

    /// Whether this is root (uid 0).
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

/// What a successful execution produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "kerblam backend execute result", extend("$id" = "https://kerblam.dev/schemas/backend-execute-result.json"))]
pub struct ExecuteResult {
    /// The artifacts written, in plan order.
    #[serde(default)]
    pub artifacts: Vec<ProducedArtifact>,
    /// `run`: the container's exit code; null for `package`.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Lines for the user, e.g. how to build the image elsewhere.
    #[serde(default)]
    pub notes: Vec<String>,
    /// With `options.push`: where the image went, pinned by its manifest digest
    /// (`REGISTRY/REPO@sha256:<hex>`, the repository asked for). The host fetches that manifest
    /// from the registry itself before it believes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed: Option<String>,
}

/// One artifact an execution wrote: each must be one the plan's `backend.artifacts` names, with
/// the same kind and path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProducedArtifact {
    /// The kind, as in the plan.
    pub kind: ArtifactKind,
    /// The absolute path written, or the image tag for an engine image.
    pub path: String,
    /// Its size in bytes, when it is a file.
    #[serde(default)]
    pub bytes: Option<u64>,
    /// `sha256:<hex>` of the file, when computed; for an engine image, its image ID (required:
    /// the host cannot look into the engine).
    #[serde(default)]
    pub sha256: Option<String>,
}

/// Why a call failed. Its `kind` matches the status code returned with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "kerblam backend error", extend("$id" = "https://kerblam.dev/schemas/backend-error.json"))]
pub struct ErrorMessage {
    /// The kind of failure.
    pub kind: ErrorKind,
    /// What went wrong, for the user; names paths and numbers.
    pub message: String,
    /// How to fix it, if known.
    #[serde(default)]
    pub help: Option<String>,
}

/// The kinds of failure; each has a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The backend failed (status 1).
    Backend,
    /// The input was invalid (status 2).
    InvalidInput,
    /// The host cancelled (status 3).
    Cancelled,
    /// The backend panicked (status 4).
    Panic,
    /// The request needs something the backend does not do (status 5).
    Unsupported,
}

impl ErrorKind {
    /// The status code that goes with this kind.
    pub fn status(self) -> crate::Status {
        use crate::Status;
        match self {
            ErrorKind::Backend => Status::BackendError,
            ErrorKind::InvalidInput => Status::InvalidInput,
            ErrorKind::Cancelled => Status::Cancelled,
            ErrorKind::Panic => Status::Panic,
            ErrorKind::Unsupported => Status::Unsupported,
        }
    }
}

impl ErrorMessage {
    /// An error of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ErrorMessage {
        ErrorMessage {
            kind,
            message: message.into(),
            help: None,
        }
    }
    /// A backend failure.
    pub fn backend(message: impl Into<String>) -> ErrorMessage {
        ErrorMessage::new(ErrorKind::Backend, message)
    }
    /// Invalid input.
    pub fn invalid_input(message: impl Into<String>) -> ErrorMessage {
        ErrorMessage::new(ErrorKind::InvalidInput, message)
    }
    /// Something not supported.
    pub fn unsupported(message: impl Into<String>) -> ErrorMessage {
        ErrorMessage::new(ErrorKind::Unsupported, message)
    }
    /// Cancelled by the host.
    pub fn cancelled() -> ErrorMessage {
        ErrorMessage::new(ErrorKind::Cancelled, "cancelled by the host")
    }
    /// Add a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> ErrorMessage {
        self.help = Some(help.into());
        self
    }
}

impl std::fmt::Display for ErrorMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, " (help: {help})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ErrorMessage {}

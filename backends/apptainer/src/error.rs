//! The apptainer backend's one error type, [`Error`], and [`Unwritable`], why a value cannot be
//! written into a definition file.
//!
//! Errors leave the plugin as an [`ErrorMessage`] (a kind, the message and help) in the JSON reply
//! to the host, which reports them; [`Error::kind`] decides the kind (and so the exit status) in
//! this one place: what the plan, the recipe or a base archive asks for that cannot be done is
//! invalid input, a failing tool or file system is a backend failure.

use std::path::PathBuf;

use kerblam_backend_api::{ErrorKind, ErrorMessage};

/// Everything that can stop the apptainer backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The definition file.
    /// A value of the plan cannot be written into a definition file.
    #[error("{what} {value:?} cannot be written into an Apptainer definition file: {why}")]
    Unwritable {
        /// What the value is ("the label key", "the destination", ...).
        what: String,
        /// The value.
        value: String,
        /// Why it cannot be written.
        why: Unwritable,
    },
    /// The directory `%files` sources are staged in cannot be written unquoted.
    #[error(
        "the staging directory {0:?} must be an absolute path of letters, digits and /._-+=:,@ (the %files section cannot quote); set TMPDIR to such a directory"
    )]
    StagingDir(String),
    /// The plan has no command for the runscript.
    #[error("the plan has no entrypoint for the runscript")]
    NoEntrypoint,
    /// The recipe runs commands in an image that has no shell.
    #[error(
        "the recipe has RUN instructions but the image starts from scratch (no shell to run them)"
    )]
    RunOnScratch,
    /// A template failed to render (a bug: every value is checked before).
    #[error("cannot render {name}: {source}")]
    Template {
        /// The template.
        name: String,
        /// What minijinja said.
        source: minijinja::Error,
    },

    // The recipe (a Dockerfile).
    /// The recipe cannot be read.
    #[error("cannot read the recipe {}: {source}", .path.display())]
    RecipeUnreadable {
        /// The recipe.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A second `FROM`.
    #[error(
        "{at}: a second FROM (multi-stage build) cannot be translated to an Apptainer definition file"
    )]
    MultiStage {
        /// `recipe:line`.
        at: String,
    },
    /// `FROM` names no image.
    #[error("{at}: FROM without an image")]
    FromWithoutImage {
        /// `recipe:line`.
        at: String,
    },
    /// The recipe has no `FROM`.
    #[error("{recipe}: no FROM instruction")]
    NoFrom {
        /// The recipe.
        recipe: String,
    },
    /// `COPY --from`: a copy from another image.
    #[error("{at}: {instr} {flag} copies from another image, which cannot be translated")]
    CopyFromImage {
        /// `recipe:line`.
        at: String,
        /// `COPY` or `ADD`.
        instr: String,
        /// The `--from` flag.
        flag: String,
    },
    /// `COPY` with fewer than two arguments.
    #[error("{at}: {instr} needs a source and a destination")]
    CopyArguments {
        /// `recipe:line`.
        at: String,
        /// `COPY` or `ADD`.
        instr: String,
    },
    /// `ADD` of a URL.
    #[error(
        "{at}: {instr} of a URL ({url}) cannot be translated; download it into the project instead"
    )]
    CopyUrl {
        /// `recipe:line`.
        at: String,
        /// `COPY` or `ADD`.
        instr: String,
        /// The URL.
        url: String,
    },
    /// An exec-form `RUN` whose words cannot be quoted.
    #[error("{at}: RUN {why}")]
    RunWords {
        /// `recipe:line`.
        at: String,
        /// Why a word cannot be quoted.
        why: Unwritable,
    },
    /// An instruction this backend does not know.
    #[error("{at}: unknown instruction {instr:?}")]
    UnknownInstruction {
        /// `recipe:line`.
        at: String,
        /// The instruction.
        instr: String,
    },
    /// A `COPY` source that is not in the build context.
    #[error(
        "{recipe}: COPY source {copied:?} matches no file of the build context (excluded paths: {excluded})"
    )]
    CopyMatchesNothing {
        /// The recipe (or "the plan").
        recipe: String,
        /// The COPY source as written.
        copied: String,
        /// The context's excluded paths, comma-separated.
        excluded: String,
    },

    // A base image archive (`--base FILE`).
    /// The archive cannot be read.
    #[error("the base image archive {} cannot be read: {source}", .path.display())]
    BaseUnreadable {
        /// The archive.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The archive is not a regular file.
    #[error("the base image archive {} is not a file", .path.display())]
    BaseNotAFile {
        /// The archive.
        path: PathBuf,
    },
    /// The archive is gzip or zstd compressed.
    #[error(
        "the base image archive {} is compressed; decompress it first (gunzip / unzstd): docker save and podman save write plain tar",
        .path.display()
    )]
    BaseCompressed {
        /// The archive.
        path: PathBuf,
    },
    /// The archive is not a tar archive.
    #[error(
        "the base image archive {} is not a valid tar archive ({source}); expected the output of `docker save` or `podman save`, or an OCI archive",
        .path.display()
    )]
    BaseNotTar {
        /// The archive.
        path: PathBuf,
        /// What the tar reader said.
        source: std::io::Error,
    },
    /// The archive holds no files.
    #[error(
        "the base image archive {} holds no files; expected the output of `docker save` or `podman save`, or an OCI archive",
        .path.display()
    )]
    BaseEmpty {
        /// The archive.
        path: PathBuf,
    },
    /// The archive is neither a docker nor an OCI archive.
    #[error(
        "the base image archive {} has neither manifest.json (docker save) nor index.json (OCI)",
        .path.display()
    )]
    BaseFormat {
        /// The archive.
        path: PathBuf,
    },
    /// A member the image's manifest names is missing.
    #[error("the base image archive {} has no member {member}", .path.display())]
    BaseNoMember {
        /// The archive.
        path: PathBuf,
        /// The member.
        member: String,
    },
    /// The archive cannot be opened again at a member.
    #[error("{}: {source}", .path.display())]
    BaseSeek {
        /// The archive.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A member cannot be read.
    #[error("{}: reading {member}: {source}", .path.display())]
    BaseRead {
        /// The archive.
        path: PathBuf,
        /// The member.
        member: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A JSON member is not what an image archive holds.
    #[error("the base image archive {} has an invalid {member}: {source}", .path.display())]
    BaseJson {
        /// The archive.
        path: PathBuf,
        /// The member.
        member: String,
        /// What serde_json said.
        source: serde_json::Error,
    },
    /// The archive's manifest lists no image.
    #[error("the base image archive {} lists no image", .path.display())]
    BaseNoImage {
        /// The archive.
        path: PathBuf,
    },
    /// An OCI archive of several platforms.
    #[error(
        "the base image archive {} is a multi-platform index; save a single-platform image",
        .path.display()
    )]
    BaseMultiPlatform {
        /// The archive.
        path: PathBuf,
    },
    /// A zstd-compressed layer.
    #[error(
        "{}: layer {layer} is zstd-compressed, which the native SIF path does not read; save the image with gzip or uncompressed layers",
        .path.display()
    )]
    BaseZstdLayer {
        /// The archive.
        path: PathBuf,
        /// The layer.
        layer: String,
    },
    /// A layer that is not a valid tar.
    #[error("the base image archive {} has a corrupt layer {layer}: {source}", .path.display())]
    BaseCorruptLayer {
        /// The archive.
        path: PathBuf,
        /// The layer.
        layer: String,
        /// What the tar reader said.
        source: std::io::Error,
    },
    /// A base image variable whose value cannot be quoted.
    #[error("base image variable {name}: {why}")]
    BaseVariable {
        /// The variable.
        name: String,
        /// Why its value cannot be quoted.
        why: Unwritable,
    },

    // The native SIF path.
    /// The recipe runs commands, which need a container runtime.
    #[error(
        "the recipe has {0} RUN instruction(s), which need a container runtime; the native SIF path only copies files. Install apptainer (or singularity), or pass a --base archive that already holds what RUN installs and remove the RUN lines"
    )]
    RunNeedsRuntime(usize),
    /// The base image is a registry reference no local engine has.
    #[error(
        "the native SIF path cannot pull the base image {0}, and no local docker or podman has it: pass it as a file with --base FILE (the output of `docker save {0}` or `podman save {0}`), or install apptainer"
    )]
    CannotPull(String),
    /// The base image is a SIF.
    #[error(
        "the native SIF path cannot start from the SIF {}; pass a docker or OCI archive with --base FILE, or install apptainer",
        .0.display()
    )]
    SifBase(PathBuf),
    /// A symlink loop (or a very long chain) inside the image.
    #[error("too many symlinks resolving {} in the image", .0.display())]
    SymlinkLoop(PathBuf),
    /// An exclude pattern of a tree is not a valid gitignore pattern.
    #[error("invalid exclude pattern {pattern:?} for {}: {source}", .tree.display())]
    ExcludePattern {
        /// The pattern.
        pattern: String,
        /// The tree.
        tree: PathBuf,
        /// What the matcher said.
        source: ignore::Error,
    },
    /// The exclude patterns of a tree do not make a matcher.
    #[error("invalid exclude patterns for {}: {source}", .tree.display())]
    ExcludePatterns {
        /// The tree.
        tree: PathBuf,
        /// What the matcher said.
        source: ignore::Error,
    },
    /// SIF has no code for this machine's architecture.
    #[error("SIF has no architecture code for {0}")]
    NoArchCode(String),

    // Files and tools.
    /// A file system operation failed.
    #[error("{what} {}: {source}", .path.display())]
    Io {
        /// What was done ("cannot create", "cannot write", ...).
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file could not be copied.
    #[error("cannot copy {} to {}: {source}", .from.display(), .to.display())]
    Copy {
        /// The source.
        from: PathBuf,
        /// The destination.
        to: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Writing or committing the SIF failed.
    #[error(transparent)]
    Archive(kerblam_archive::Error),
    /// A program could not be started.
    #[error("cannot start {}: {source}", .program.display())]
    Start {
        /// The program.
        program: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Waiting for a program failed.
    #[error("waiting for {}: {source}", .program.display())]
    Wait {
        /// The program.
        program: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `mksquashfs` is not installed.
    #[error(
        "mksquashfs is not on PATH; install squashfs-tools (e.g. `apt-get install squashfs-tools`)"
    )]
    NoMksquashfs,
    /// `mksquashfs` failed.
    #[error("mksquashfs failed with exit code {code}:\n{}", .tail.join("\n"))]
    MksquashfsFailed {
        /// Its exit code.
        code: i32,
        /// Its last output lines.
        tail: Vec<String>,
    },
    /// `apptainer build` failed.
    #[error(
        "{} build failed with exit code {code}; no SIF was written to {}. Last output:\n{}",
        .apptainer.display(), .sif.display(), .tail.join("\n")
    )]
    BuildFailed {
        /// The apptainer executable.
        apptainer: PathBuf,
        /// Its exit code.
        code: i32,
        /// The SIF it was to write.
        sif: PathBuf,
        /// Its last output lines.
        tail: Vec<String>,
    },
    /// `apptainer build` succeeded but wrote nothing.
    #[error("{} build succeeded but wrote no image at {}", .apptainer.display(), .temp.display())]
    BuildWroteNothing {
        /// The apptainer executable.
        apptainer: PathBuf,
        /// Where it was to write.
        temp: PathBuf,
    },
    /// Building as a user needs subordinate ids.
    #[error(
        "apptainer build --fakeroot needs an entry for user {user} (uid {uid}) in {files}, and there is none. \
         Ask an administrator to run `apptainer config fakeroot --add {user}` (or to add a line such as `{user}:100000:65536` to /etc/subuid and /etc/subgid), \
         or build the SIF without apptainer and without fakeroot: `kerblam package --backend apptainer --native`"
    )]
    NoSubordinateIds {
        /// The user.
        user: String,
        /// Their uid.
        uid: u32,
        /// The files without an entry, joined with " and ".
        files: String,
    },

    // The request.
    /// The SIF is there and `--force` was not given.
    #[error("{} already exists (use --force to overwrite it)", .0.display())]
    Exists(PathBuf),
    /// The plan asks for an artifact this backend does not write.
    #[error("the apptainer backend does not write {kind:?} artifacts ({path})")]
    ArtifactKind {
        /// The kind.
        kind: kerblam_backend_api::plan::ArtifactKind,
        /// Its path.
        path: String,
    },
    /// `run` of a plan with no SIF.
    #[error(
        "the plan names no sif artifact to run; pass the image file (image_archive) or compile the plan with --backend apptainer"
    )]
    NoSifArtifact,
    /// The SIF artifact's path leaves the root.
    #[error("refusing the sif artifact: {0}")]
    SifPath(String),
    /// `run` without apptainer.
    #[error("running a SIF needs apptainer (or singularity) on PATH, and neither was found")]
    NoApptainer,
    /// The SIF to run is not there.
    #[error(
        "the image {} does not exist; build it with `kerblam package --backend apptainer`, or copy the .sif there",
        .0.display()
    )]
    NoImage(PathBuf),
    /// A mount's host directory is refused.
    #[error("refusing to bind {host}: {why}")]
    MountRefused {
        /// The mount's host path, as the plan gives it.
        host: String,
        /// Why.
        why: String,
    },
    /// A bind path that `--bind` cannot express.
    #[error("the {what} {path:?} contains ':' or ',', which apptainer's --bind cannot express")]
    BindPath {
        /// "host path" or "container path".
        what: &'static str,
        /// The path.
        path: String,
    },
    /// A network mode apptainer cannot give.
    #[error("network {0:?} is not supported; use none or host")]
    Network(String),
    /// `SOURCE_DATE_EPOCH` is not a timestamp.
    #[error(transparent)]
    SourceDateEpoch(kerblam_archive::Error),
}

/// Why a value cannot be written into a definition file (or quoted for its shell).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unwritable {
    /// A NUL byte.
    #[error("it contains a NUL byte")]
    Nul,
    /// An empty `%labels` key.
    #[error("the key is empty")]
    EmptyKey,
    /// A `%labels` key with a space or control character.
    #[error("the key contains {0:?}; %labels keys end at the first space")]
    KeySpace(char),
    /// A `%labels` key read as a comment or a section.
    #[error(
        "the key starts with '#' or '%', which a definition file reads as a comment or a section"
    )]
    KeyMarker,
    /// A `%labels` value with a control character.
    #[error("the value contains the control character {0:?}; %labels values are one line each")]
    LabelControl(char),
    /// A `%labels` value Apptainer would strip.
    #[error("the value starts or ends with whitespace, which Apptainer strips")]
    LabelSpaces,
    /// An empty header value.
    #[error("the value is empty")]
    EmptyValue,
    /// A header value with a control character.
    #[error("the value contains the control character {0:?}")]
    HeaderControl(char),
    /// A header value with a comment in it.
    #[error("the value contains '#', which starts a comment in a definition-file header")]
    HeaderHash,
    /// A header value with surrounding whitespace.
    #[error("the value starts or ends with whitespace")]
    HeaderSpaces,
    /// Section text with a line read as a new section (1-based).
    #[error("line {0} starts with '%', which a definition file reads as a new section")]
    SectionLine(usize),
    /// Not a shell variable name.
    #[error("it is not a shell variable name ([A-Za-z_][A-Za-z0-9_]*)")]
    EnvName,
    /// A symlink in a scratch image.
    #[error("a scratch image has no shell for %post to create it")]
    ScratchLink,
    /// A destination that needs quoting in a scratch image.
    #[error("it needs quoting, which a scratch image (no shell for %post) cannot do")]
    ScratchQuoting,
    /// A `RUN` command over several lines.
    #[error("it spans several lines")]
    MultiLine,
}

impl Error {
    /// A value that cannot be written into a definition file.
    pub fn unwritable(what: impl Into<String>, value: &str, why: Unwritable) -> Error {
        Error::Unwritable {
            what: what.into(),
            value: value.to_string(),
            why,
        }
    }

    /// A file system operation on `path` that failed.
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }

    /// The kind of failure the host is told: what the request, plan, recipe or a base archive
    /// asks that cannot be done is invalid input; a tool or the file system failing is the
    /// backend's failure; an artifact kind it does not write is unsupported.
    pub fn kind(&self) -> ErrorKind {
        use Error as E;
        match self {
            E::Template { .. }
            | E::NoArchCode(_)
            | E::Io { .. }
            | E::Copy { .. }
            | E::Archive(_)
            | E::Start { .. }
            | E::Wait { .. }
            | E::NoMksquashfs
            | E::MksquashfsFailed { .. }
            | E::BuildFailed { .. }
            | E::BuildWroteNothing { .. }
            | E::NoSubordinateIds { .. }
            | E::NoApptainer => ErrorKind::Backend,
            E::ArtifactKind { .. } => ErrorKind::Unsupported,
            _ => ErrorKind::InvalidInput,
        }
    }

    /// How to fix it, where the message does not say already.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            Error::NoApptainer => {
                Some("install apptainer, or replay with --backend docker or podman")
            }
            _ => None,
        }
    }
}

impl From<Error> for ErrorMessage {
    fn from(e: Error) -> ErrorMessage {
        let m = ErrorMessage {
            kind: e.kind(),
            message: e.to_string(),
            help: None,
        };
        match e.help() {
            Some(h) => m.with_help(h),
            None => m,
        }
    }
}

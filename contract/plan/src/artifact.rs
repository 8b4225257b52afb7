use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Something carrying out the plan leaves on disk (or in an engine).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// What kind of artifact it is.
    pub kind: ArtifactKind,
    /// Where it is written, relative to the root unless absolute. For an engine image, the tag.
    pub path: String,
    /// The file format, when the kind has several (e.g. `kerblam.replay/v2` or `kerblam-v1` for a
    /// replay archive, `oci-archive` for an OCI archive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// What it holds, as the names of its top-level entries (or a short description), in order.
    pub contents: Vec<String>,
}

/// The kinds of artifact a plan can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactKind {
    /// A container image stored in an engine (docker, podman), named by its tag.
    EngineImage,
    /// A replay archive (`<pipe>.kerblam.tar`): manifest, precious data, image name, plan, checksums.
    ReplayArchive,
    /// A build context archive (`<pipe>.context.tar`) any engine can build from.
    ContextArchive,
    /// An OCI image layout archive.
    OciArchive,
    /// A `docker save` / `podman save` image archive.
    ImageArchive,
    /// An Apptainer / Singularity image file.
    Sif,
    /// A compressed tarball of frozen software trees.
    Tarball,
    /// A shell script that activates a frozen environment.
    ActivateScript,
    /// A JSON file describing a frozen environment.
    MetadataJson,
    /// Any other file a backend writes (a build script, a rendered recipe); `format` says what it
    /// is.
    File,
}

impl ArtifactKind {
    /// Every kind, in declaration order.
    pub const ALL: [ArtifactKind; 10] = [
        ArtifactKind::EngineImage,
        ArtifactKind::ReplayArchive,
        ArtifactKind::ContextArchive,
        ArtifactKind::OciArchive,
        ArtifactKind::ImageArchive,
        ArtifactKind::Sif,
        ArtifactKind::Tarball,
        ArtifactKind::ActivateScript,
        ArtifactKind::MetadataJson,
        ArtifactKind::File,
    ];

    /// The name used in plans and messages, e.g. `replay-archive`.
    pub fn name(self) -> &'static str {
        match self {
            ArtifactKind::EngineImage => "engine-image",
            ArtifactKind::ReplayArchive => "replay-archive",
            ArtifactKind::ContextArchive => "context-archive",
            ArtifactKind::OciArchive => "oci-archive",
            ArtifactKind::ImageArchive => "image-archive",
            ArtifactKind::Sif => "sif",
            ArtifactKind::Tarball => "tarball",
            ArtifactKind::ActivateScript => "activate-script",
            ArtifactKind::MetadataJson => "metadata-json",
            ArtifactKind::File => "file",
        }
    }

    /// Whether the artifact is a file on disk (every kind but an engine image, which lives in
    /// its engine's storage).
    pub fn is_file(self) -> bool {
        self != ArtifactKind::EngineImage
    }

    /// The file-name ending artifacts of this kind have by convention in a project root
    /// (`<pipe>.kerblam.tar`, `<pipe>.context.tar`, `<pipe>.oci.tar`, `<name>.sif`): such files
    /// are left out of build contexts whichever backend wrote them. Other kinds have none; a
    /// backend's own artifacts are left out by their planned paths.
    pub fn conventional_suffix(self) -> Option<&'static str> {
        match self {
            ArtifactKind::ReplayArchive => Some(".kerblam.tar"),
            ArtifactKind::ContextArchive => Some(".context.tar"),
            ArtifactKind::OciArchive => Some(".oci.tar"),
            ArtifactKind::Sif => Some(".sif"),
            _ => None,
        }
    }

    /// Whether kerblam writes artifacts of this kind itself: the replay archive is the host's,
    /// never a backend's.
    pub fn is_host_written(self) -> bool {
        self == ArtifactKind::ReplayArchive
    }
}

impl std::fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

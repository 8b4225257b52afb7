//! What carrying out a freeze leaves behind (per backend) and the preflight checks with their
//! figures, computed from the trees after excludes.
//!
//! Docker and podman: kerblam streams the trees into `build -` and stages nothing, but the engine
//! holds several copies of them at once while it builds. Measured on this project's CI machine
//! (a 400 MB tree of incompressible files, peak disk use sampled during the build):
//!
//! - docker 20.10, overlay2, legacy builder and BuildKit: 1.2 GB peak in its root dir (the context
//!   it unpacks under `<root>/tmp`, the container layer `COPY` writes, the image layer committed
//!   from it), 0.4 GB after: [`DOCKER_COPIES`];
//! - podman 4.3, overlay: 0.8 GB in its graph root (the working container's layer and the committed
//!   layer, [`PODMAN_STORAGE_COPIES`]) and 1.2 GB in its temp dir (`$TMPDIR`, else `/var/tmp`: the
//!   context unpacked twice and the layer blob written while committing, [`PODMAN_TMPDIR_COPIES`]).
//!
//! One copy is the trees' bytes after excludes plus a block per entry and the generated files.

use std::path::Path;

use kerblam_plan::{Artifact, ArtifactKind, ENGINE_STORAGE, ENGINE_TMPDIR, FrozenTree, Preflight};

use crate::freeze::lower::{BLOCK_BYTES_PER_ENTRY, SLACK_BYTES, TAR_BYTES_PER_ENTRY};
use crate::freeze::scripts::FREEZE_DIR;

/// Copies of the trees docker holds at once in its root dir while it builds a freeze image.
pub const DOCKER_COPIES: u64 = 3;
/// Copies of the trees podman holds at once in its graph root while it builds a freeze image.
pub const PODMAN_STORAGE_COPIES: u64 = 2;
/// Copies of the trees podman holds at once in its temporary directory while it builds.
pub const PODMAN_TMPDIR_COPIES: u64 = 3;

/// The inputs of [`artifacts_and_preflight`].
pub(crate) struct Outputs<'a> {
    /// The backend name.
    pub backend: &'a str,
    /// The absolute destination directory.
    pub destination: &'a str,
    /// The system temporary directory (the default destination).
    pub temp_dir: &'a Path,
    /// `<name>-<version>`, the stem of the file names.
    pub stem: &'a str,
    /// The image tag.
    pub tag: &'a str,
    /// The base image reference.
    pub base: &'a str,
    /// The frozen trees.
    pub trees: &'a [FrozenTree],
    /// The generated files (path in the image, text, mode).
    pub generated: &'a [(String, String, u32)],
    /// The number of layers.
    pub n_layers: usize,
    /// Bytes of the trees after excludes.
    pub total_bytes: u64,
    /// Entries (files, directories, generated files) to write.
    pub entries: u64,
    /// Bytes of the generated files.
    pub generated_bytes: u64,
    /// The OCI archive's artifact format (`oci-archive`, `oci-archive+zstd`), when one is asked
    /// for (`--image-format`, tarball backend).
    pub oci: Option<&'static str>,
}

/// The artifacts and the preflight checks of a freeze.
pub(crate) fn artifacts_and_preflight(o: &Outputs<'_>) -> (Vec<Artifact>, Vec<Preflight>) {
    let Outputs {
        backend,
        destination,
        temp_dir,
        stem,
        tag,
        base,
        trees,
        generated,
        n_layers,
        total_bytes,
        entries,
        generated_bytes,
        oci,
    } = *o;
    let backend = backend.to_string();
    // Artifacts.
    let dest_file = |ext: &str| format!("{destination}/{stem}{ext}");
    let mut tree_contents: Vec<String> = trees.iter().map(|t| t.path.clone()).collect();
    tree_contents.extend(generated.iter().map(|g| g.0.clone()));
    let mut artifacts = match backend.as_str() {
        "apptainer" => vec![Artifact {
            kind: ArtifactKind::Sif,
            path: dest_file(".sif"),
            format: Some("sif".into()),
            contents: tree_contents,
        }],
        "tarball" => vec![
            Artifact {
                kind: ArtifactKind::Tarball,
                path: dest_file(".tar.zst"),
                format: Some("tar+zstd".into()),
                contents: tree_contents
                    .iter()
                    .map(|p| p.trim_start_matches('/').to_string())
                    .collect(),
            },
            Artifact {
                kind: ArtifactKind::ActivateScript,
                path: dest_file(".activate.sh"),
                format: None,
                contents: vec![format!(
                    "a copy of {FREEZE_DIR}/activate.sh; after unpacking the tarball into DIR, source DIR{FREEZE_DIR}/activate.sh"
                )],
            },
            Artifact {
                kind: ArtifactKind::MetadataJson,
                path: dest_file(".json"),
                format: Some("kerblam.freeze/v1".into()),
                contents: vec!["the plan's `freeze`, `image.labels` and `metadata`".into()],
            },
        ],
        _ => vec![Artifact {
            kind: ArtifactKind::EngineImage,
            path: tag.to_string(),
            format: None,
            contents: vec![format!("{base} + {n_layers} layers")],
        }],
    };

    if let Some(format) = oci {
        artifacts.push(Artifact {
            kind: ArtifactKind::OciArchive,
            path: dest_file(".oci.tar"),
            format: Some(format.into()),
            contents: vec![
                "index.json".into(),
                "oci-layout".into(),
                "blobs/sha256/".into(),
            ],
        });
    }

    // Preflight checks, with numbers.
    let mut preflight = Vec::new();
    match backend.as_str() {
        "docker" | "podman" => preflight.push(Preflight::Tool {
            names: vec![backend.clone()],
        }),
        "apptainer" => preflight.push(Preflight::Tool {
            names: vec![
                "apptainer".into(),
                "singularity".into(),
                "mksquashfs".into(),
            ],
        }),
        _ => {}
    }
    for t in trees {
        preflight.push(Preflight::FileExists {
            path: t.path.clone(),
        });
    }
    let n_trees = trees.len();
    let overhead = entries * TAR_BYTES_PER_ENTRY;
    let streamed = total_bytes + overhead + generated_bytes * 2 + SLACK_BYTES;
    let streamed_why = |what: &str| {
        format!(
            "{what} is streamed through zstd straight into {destination}, so it needs at most the {total_bytes} bytes of the {n_trees} trees after excludes (uncompressed), plus {TAR_BYTES_PER_ENTRY} bytes of header per entry for {entries} entries ({overhead}), plus {} bytes of generated files and 1 MiB of slack; nothing is staged in the temporary directory",
            generated_bytes * 2
        )
    };
    match backend.as_str() {
        "tarball" => {
            preflight.push(Preflight::Writable {
                path: destination.to_string(),
            });
            preflight.push(Preflight::DiskSpace {
                path: destination.to_string(),
                bytes: streamed,
                why: streamed_why("the tarball"),
            });
            if oci.is_some() {
                // Each layer blob is compressed into the temporary directory, then copied into
                // the archive at the destination: one more copy in each (checks on one
                // filesystem are added up).
                preflight.push(Preflight::DiskSpace {
                    path: destination.to_string(),
                    bytes: streamed,
                    why: format!(
                        "the OCI archive holds one compressed layer per tree, at most the {total_bytes} bytes of the trees after excludes plus headers"
                    ),
                });
                preflight.push(Preflight::DiskSpace {
                    path: temp_dir.to_string_lossy().into_owned(),
                    bytes: streamed,
                    why: format!(
                        "the OCI layer blobs are compressed into the temporary directory first, at most {total_bytes} bytes plus headers"
                    ),
                });
            }
        }
        "apptainer" => {
            preflight.push(Preflight::Writable {
                path: destination.to_string(),
            });
            let copy = total_bytes + entries * BLOCK_BYTES_PER_ENTRY + generated_bytes;
            let staged = 2 * copy;
            let staged_why = format!(
                "the temporary directory holds 2 copies of the trees: the root filesystem staged from them (hard links on one filesystem, a copy across filesystems, as from CVMFS) and the squashfs made of it; one copy is the {total_bytes} bytes of the {n_trees} trees after excludes plus up to {BLOCK_BYTES_PER_ENTRY} bytes of block rounding per entry for {entries} entries plus {generated_bytes} bytes of generated files ({copy} bytes); a base image is added by the backend"
            );
            let sif_why = format!(
                "the SIF holds a squashfs of the trees, at most their {total_bytes} bytes after excludes plus {TAR_BYTES_PER_ENTRY} bytes per entry for {entries} entries, plus generated files and 1 MiB"
            );
            if Path::new(destination) == temp_dir {
                preflight.push(Preflight::DiskSpace {
                    path: destination.to_string(),
                    bytes: staged + streamed,
                    why: format!(
                        "the destination is the temporary directory, so it needs both: {staged_why} ({staged} bytes), and {sif_why} ({streamed} bytes)"
                    ),
                });
            } else {
                preflight.push(Preflight::DiskSpace {
                    path: "$TMPDIR".into(),
                    bytes: staged,
                    why: staged_why,
                });
                preflight.push(Preflight::DiskSpace {
                    path: destination.to_string(),
                    bytes: streamed,
                    why: sif_why,
                });
            }
        }
        "docker" | "podman" => {
            let copy = total_bytes + entries * BLOCK_BYTES_PER_ENTRY + generated_bytes;
            let one = format!(
                "one copy is the {total_bytes} bytes of the {n_trees} trees after excludes, plus up to {BLOCK_BYTES_PER_ENTRY} bytes of block rounding per entry for {entries} entries, plus {generated_bytes} bytes of generated files ({copy} bytes), and 1 MiB of slack; kerblam streams the trees into the build and stages nothing itself"
            );
            if backend == "docker" {
                preflight.push(Preflight::DiskSpace {
                    path: ENGINE_STORAGE.into(),
                    bytes: DOCKER_COPIES * copy + SLACK_BYTES,
                    why: format!(
                        "while building, docker holds {DOCKER_COPIES} copies of the trees in its root dir (the unpacked build context, the container layer COPY writes, the committed image layer); {one}"
                    ),
                });
            } else {
                preflight.push(Preflight::DiskSpace {
                    path: ENGINE_STORAGE.into(),
                    bytes: PODMAN_STORAGE_COPIES * copy + SLACK_BYTES,
                    why: format!(
                        "while building, podman holds {PODMAN_STORAGE_COPIES} copies of the trees in its graph root (the working container's layer, the committed image layer); {one}"
                    ),
                });
                preflight.push(Preflight::DiskSpace {
                    path: ENGINE_TMPDIR.into(),
                    bytes: PODMAN_TMPDIR_COPIES * copy + SLACK_BYTES,
                    why: format!(
                        "while building, podman holds {PODMAN_TMPDIR_COPIES} copies of the trees in its temporary directory (the build context, unpacked twice, and the layer blob it commits); {one}"
                    ),
                });
            }
        }
        _ => {}
    }

    (artifacts, preflight)
}

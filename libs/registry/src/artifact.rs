//! The replay archive as an OCI 1.1 artifact: a manifest whose `artifactType` says it is a
//! kerblam replay archive, whose one layer is the archive, and whose `subject` is the image it
//! replays. One digest then names the whole package: `kerblam replay REGISTRY/REPO@sha256:...`
//! fetches the archive, and the archive names the image by digest.
//!
//! `oras pull`, `oras discover` and `skopeo copy` handle it like any artifact. On registries
//! without the referrers API (`OCI-Subject` missing from the answer), the referrers tag
//! `sha256-<image digest hex>` is kept up to date, as the OCI 1.1 distribution spec asks of clients.

use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::{hex, media};

/// The `artifactType` of a kerblam replay archive.
pub const ARTIFACT_TYPE: &str = "application/vnd.kerblam.replay.v2";
/// The media type of its one layer, the archive itself (an uncompressed tar).
pub const ARCHIVE_TYPE: &str = "application/vnd.kerblam.replay.v2.tar";
/// The annotation holding the archive's file name (as `oras pull` names what it writes).
pub const TITLE: &str = "org.opencontainers.image.title";

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// What the content is.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// `sha256:` of its bytes.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// For a manifest in a referrers index: the artifact type.
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    /// Annotations (the title of a layer).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ArtifactManifest {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: String,
    #[serde(rename = "artifactType", default)]
    artifact_type: Option<String>,
    config: Descriptor,
    layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<Descriptor>,
}

/// The bytes of the empty config, `{}`.
const EMPTY: &[u8] = b"{}";

/// Pushes the replay archive at `archive` to `to`'s repository as an artifact referring to
/// `subject` (the image's manifest), tagged `to.tag` when there is one. Returns the artifact's
/// digest-pinned reference, the one to cite.
pub fn push_replay_archive(
    client: &Client,
    archive: &Path,
    to: &Reference,
    subject: Descriptor,
) -> Result<Reference> {
    let io = |e: std::io::Error| Error::Io {
        what: "reading",
        path: archive.display().to_string(),
        source: e,
    };
    let (digest, size) = file_digest(archive).map_err(io)?;
    let mut file = std::fs::File::open(archive).map_err(io)?;
    client.put_blob(
        &crate::digest_of(EMPTY),
        EMPTY.len() as u64,
        &mut &EMPTY[..],
    )?;
    client.put_blob(&digest, size, &mut file)?;
    let title = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "replay.kerblam.tar".into());
    let manifest = ArtifactManifest {
        schema_version: 2,
        media_type: media::OCI_MANIFEST.into(),
        artifact_type: Some(ARTIFACT_TYPE.into()),
        config: Descriptor {
            media_type: media::EMPTY.into(),
            digest: crate::digest_of(EMPTY),
            size: EMPTY.len() as u64,
            artifact_type: None,
            annotations: Default::default(),
        },
        layers: vec![Descriptor {
            media_type: ARCHIVE_TYPE.into(),
            digest,
            size,
            artifact_type: None,
            annotations: [(TITLE.to_string(), title)].into(),
        }],
        subject: Some(subject.clone()),
    };
    let bytes = serde_json::to_vec(&manifest).expect("a manifest serializes");
    let own = crate::digest_of(&bytes);
    let target = to.tag.clone().unwrap_or_else(|| own.clone());
    let (pushed, indexed) = client.put_manifest(&target, media::OCI_MANIFEST, &bytes)?;
    if !indexed {
        add_referrer(
            client,
            &subject,
            Descriptor {
                media_type: media::OCI_MANIFEST.into(),
                digest: pushed.clone(),
                size: bytes.len() as u64,
                artifact_type: Some(ARTIFACT_TYPE.into()),
                annotations: Default::default(),
            },
        )?;
    }
    Ok(to.pinned(&pushed))
}

/// Adds `referrer` to the referrers tag of `subject` (`sha256-<hex>`, an image index).
fn add_referrer(client: &Client, subject: &Descriptor, referrer: Descriptor) -> Result<()> {
    let tag = subject.digest.replace(':', "-");
    let mut index = match client.manifest(&tag) {
        Ok(m) => serde_json::from_slice::<serde_json::Value>(&m.bytes).unwrap_or_default(),
        Err(Error::NotFound { .. }) => serde_json::Value::Null,
        Err(e) => return Err(e),
    };
    if !index.is_object() {
        index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_INDEX,
            "manifests": [],
        });
    }
    let list = index["manifests"].as_array_mut();
    let Some(list) = list else {
        return Ok(());
    };
    if list.iter().any(|m| m["digest"] == referrer.digest.as_str()) {
        return Ok(());
    }
    list.push(serde_json::to_value(&referrer).expect("a descriptor serializes"));
    let bytes = serde_json::to_vec(&index).expect("an index serializes");
    client.put_manifest(&tag, media::OCI_INDEX, &bytes)?;
    Ok(())
}

/// What [`fetch_replay_archive`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The image the artifact refers to.
    pub subject: Option<Descriptor>,
    /// The archive's file name, from its title annotation.
    pub title: Option<String>,
    /// Its size in bytes.
    pub size: u64,
}

/// Fetches the replay archive artifact `reference` (pinned by digest) into `out`: its manifest
/// must hash to the digest, say it is a kerblam replay archive and hold exactly one archive,
/// whose bytes must hash to their descriptor's digest. On an error, discard what `out` got.
pub fn fetch_replay_archive(
    client: &Client,
    reference: &Reference,
    out: &mut dyn Write,
) -> Result<Fetched> {
    let digest = reference.digest.as_deref().ok_or_else(|| Error::BadReference {
        reference: reference.to_string(),
        why: "a replay needs the artifact's digest (REGISTRY/REPO@sha256:...), not a tag that can move".into(),
    })?;
    let m = client.manifest(digest)?;
    let not_ours = |why: &str| Error::Protocol {
        registry: reference.registry.clone(),
        what: format!("holds at {reference} something that is not a kerblam replay archive: {why}"),
    };
    let manifest: ArtifactManifest =
        serde_json::from_slice(&m.bytes).map_err(|e| not_ours(&e.to_string()))?;
    if manifest.artifact_type.as_deref() != Some(ARTIFACT_TYPE)
        && manifest.config.media_type != ARTIFACT_TYPE
    {
        return Err(not_ours(&format!(
            "its artifactType is {:?}",
            manifest.artifact_type.as_deref().unwrap_or("missing")
        )));
    }
    let [layer] = manifest.layers.as_slice() else {
        return Err(not_ours("it does not hold exactly one archive"));
    };
    if layer.media_type != ARCHIVE_TYPE {
        return Err(not_ours(&format!("its layer is a {}", layer.media_type)));
    }
    let size = client.blob_to(&layer.digest, out)?;
    if size != layer.size {
        return Err(Error::DigestMismatch {
            registry: reference.registry.clone(),
            what: "the replay archive's size".into(),
            expected: layer.size.to_string(),
            actual: size.to_string(),
        });
    }
    Ok(Fetched {
        subject: manifest.subject,
        title: layer.annotations.get(TITLE).cloned(),
        size,
    })
}

/// `sha256:` and size of a file.
fn file_digest(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((format!("sha256:{}", hex(&h.finalize())), size))
}

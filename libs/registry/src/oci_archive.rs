//! Pushing an OCI image layout archive (`oci-archive`: `oci-layout`, `index.json`,
//! `blobs/sha256/...` in a tar) to a registry, in one pass, each blob streamed from the archive.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::reference::Reference;

/// Blobs up to this size are kept in memory for the manifest that follows (manifests, configs).
const SMALL: u64 = 4 << 20;

/// What was pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `REGISTRY/REPO@sha256:...`.
    pub reference: Reference,
    /// The manifest's media type.
    pub media_type: String,
    /// The manifest's size in bytes.
    pub size: u64,
}

/// Pushes the one image of the OCI archive read from `archive` (named `path` in messages) to `to`
/// (tagged when `to` has a tag), and returns its digest-pinned reference.
pub fn push_oci_archive(
    client: &Client,
    archive: impl Read,
    path: &Path,
    to: &Reference,
) -> Result<Pushed> {
    let bad = |why: String| bad_archive(path, why);
    let Blobs { index, small } = push_blobs(client, archive, path)?;
    let index = index.ok_or_else(|| bad("it has no index.json".into()))?;
    let (digest, media_type) = only_manifest(&index, path)?;
    let bytes = small
        .get(&digest)
        .ok_or_else(|| bad(format!("the manifest {digest} is not among its blobs")))?;
    let target = to.tag.as_deref().unwrap_or(&digest);
    let (pushed, _) = client.put_manifest(target, &media_type, bytes)?;
    if pushed != digest {
        return Err(bad(format!(
            "the manifest's bytes hash to {pushed}, not {digest}"
        )));
    }
    Ok(Pushed {
        reference: to.pinned(&digest),
        media_type,
        size: bytes.len() as u64,
    })
}

/// The archive `path` is not an OCI archive kerblam can push, for reason `why`.
fn bad_archive(path: &Path, why: String) -> Error {
    Error::BadArchive {
        path: path.display().to_string(),
        why,
    }
}

/// What [`push_blobs`] kept of an OCI archive.
struct Blobs {
    /// Its `index.json`, when it has one.
    index: Option<Vec<u8>>,
    /// Its small blobs by digest (the manifest among them).
    small: BTreeMap<String, Vec<u8>>,
}

/// Pushes every blob of the OCI archive read from `archive` (named `path` in messages) as it comes,
/// streaming the large ones, and keeps its index and small blobs.
fn push_blobs(client: &Client, archive: impl Read, path: &Path) -> Result<Blobs> {
    let io = |e: std::io::Error| Error::Io {
        what: "reading",
        path: path.display().to_string(),
        source: e,
    };
    let mut tar = tar::Archive::new(std::io::BufReader::with_capacity(1 << 20, archive));
    let mut small: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut index = None;
    for entry in tar.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(io)?.to_string_lossy().into_owned();
        let name = name.trim_start_matches("./").to_string();
        let size = entry.size();
        if name == "index.json" {
            index = Some(read_small(&mut entry, size).map_err(io)?);
            continue;
        }
        let Some(hex) = name.strip_prefix("blobs/sha256/") else {
            continue;
        };
        let digest = format!("sha256:{hex}");
        if !crate::reference::is_digest(&digest) {
            return Err(bad_archive(
                path,
                format!("{name} is not named after a sha256 digest"),
            ));
        }
        if size <= SMALL {
            let bytes = read_small(&mut entry, size).map_err(io)?;
            client.put_blob(&digest, size, &mut bytes.as_slice())?;
            small.insert(digest, bytes);
        } else {
            client.put_blob(&digest, size, &mut entry)?;
        }
    }
    Ok(Blobs { index, small })
}

/// The digest and media type of the one manifest the `index.json` bytes `index` list (the media
/// type an OCI manifest's when it names none).
fn only_manifest(index: &[u8], path: &Path) -> Result<(String, String)> {
    let bad = |why: String| bad_archive(path, why);
    let index: serde_json::Value =
        serde_json::from_slice(index).map_err(|e| bad(format!("index.json: {e}")))?;
    let manifests = index
        .get("manifests")
        .and_then(|m| m.as_array())
        .ok_or_else(|| bad("index.json lists no manifests".into()))?;
    let [descriptor] = manifests.as_slice() else {
        return Err(bad(format!(
            "index.json lists {} manifests; kerblam pushes archives of one image",
            manifests.len()
        )));
    };
    let digest = descriptor
        .get("digest")
        .and_then(|d| d.as_str())
        .ok_or_else(|| bad("index.json's manifest has no digest".into()))?;
    let media_type = descriptor
        .get("mediaType")
        .and_then(|d| d.as_str())
        .unwrap_or(crate::media::OCI_MANIFEST);
    Ok((digest.to_string(), media_type.to_string()))
}

fn read_small(r: &mut dyn Read, size: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(size as usize);
    r.take(size).read_to_end(&mut bytes)?;
    Ok(bytes)
}

//! Reading a base image archive given with `--base FILE`: an OCI image layout archive
//! (`oci-layout`, `index.json`, `blobs/sha256/…`, as `podman save --format oci-archive` or
//! `skopeo copy … oci-archive:` write) or a docker archive (`manifest.json`, `<id>.json`,
//! `<id>/layer.tar`, as `docker save` and `podman save` write). When both are present (docker 25+
//! writes both), the OCI view is used.
//!
//! The archive is indexed once (member name → offset and size); blobs are then streamed straight
//! from the file into the new archive, and their SHA-256 is checked on the way, so a corrupt base is
//! refused rather than copied.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use kerblam_backend_api::ErrorMessage;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};

/// The biggest JSON member (index, manifest, config) read into memory.
const JSON_CAP: u64 = 16 << 20;

/// A layer of the base image, as found in the archive.
#[derive(Debug, Clone)]
pub struct BaseLayer {
    /// Its media type in the new manifest.
    pub media_type: MediaType,
    /// Its hex SHA-256 (of the bytes as stored).
    pub digest: String,
    /// Its size as stored.
    pub size: u64,
    /// Where its bytes are in the base archive file.
    pub offset: u64,
}

/// A base image read from an archive.
#[derive(Debug)]
pub struct BaseImage {
    /// The archive.
    pub path: PathBuf,
    /// `oci` or `docker`.
    pub kind: &'static str,
    /// Its configuration (architecture, OS, env, rootfs, history).
    pub config: ImageConfiguration,
    /// Its layers, bottom first.
    pub layers: Vec<BaseLayer>,
    /// `sha256:<hex>` of its manifest (OCI) or config (docker), for the base annotation.
    pub digest: String,
    /// Its name when the archive records one.
    pub name: Option<String>,
}

struct Members {
    file: File,
    map: BTreeMap<String, (u64, u64)>,
    path: PathBuf,
}

fn bad(path: &Path, why: impl std::fmt::Display) -> ErrorMessage {
    ErrorMessage::invalid_input(format!(
        "the base archive {} is not a usable OCI or docker image archive: {why}",
        path.display()
    ))
    .with_help(
        "pass an archive written by `podman save --format oci-archive`, `docker save` or `skopeo copy ... oci-archive:FILE`",
    )
}

impl Members {
    fn open(path: &Path) -> Result<Members, ErrorMessage> {
        let file = File::open(path).map_err(|e| {
            ErrorMessage::invalid_input(format!(
                "cannot open the base archive {}: {e}",
                path.display()
            ))
        })?;
        let mut archive = tar::Archive::new(file.try_clone().map_err(|e| bad(path, e))?);
        let mut map = BTreeMap::new();
        let entries = archive.entries_with_seek().map_err(|e| bad(path, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| bad(path, format!("not a tar archive ({e})")))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = entry
                .path()
                .map_err(|e| bad(path, e))?
                .to_string_lossy()
                .into_owned();
            let name = name.trim_start_matches("./").to_string();
            map.insert(name, (entry.raw_file_position(), entry.size()));
        }
        if map.is_empty() {
            return Err(bad(path, "it holds no files"));
        }
        Ok(Members {
            file,
            map,
            path: path.to_path_buf(),
        })
    }

    fn json<T: serde::de::DeserializeOwned>(&mut self, name: &str) -> Result<T, ErrorMessage> {
        let (offset, size) = *self
            .map
            .get(name)
            .ok_or_else(|| bad(&self.path, format!("{name} is missing")))?;
        if size > JSON_CAP {
            return Err(bad(
                &self.path,
                format!("{name} is larger than {JSON_CAP} bytes"),
            ));
        }
        let mut buf = Vec::with_capacity(size as usize);
        self.file
            .seek(SeekFrom::Start(offset))
            .map_err(|e| bad(&self.path, e))?;
        (&mut self.file)
            .take(size)
            .read_to_end(&mut buf)
            .map_err(|e| bad(&self.path, e))?;
        serde_json::from_slice(&buf).map_err(|e| bad(&self.path, format!("{name}: {e}")))
    }

    fn blob_name(d: &Descriptor) -> Option<String> {
        d.as_digest_sha256().map(|h| format!("blobs/sha256/{h}"))
    }

    fn blob<T: serde::de::DeserializeOwned>(&mut self, d: &Descriptor) -> Result<T, ErrorMessage> {
        let name = Self::blob_name(d)
            .ok_or_else(|| bad(&self.path, format!("digest {} is not sha256", d.digest())))?;
        self.json(&name)
    }
}

/// Opens and validates the base archive at `path`.
pub fn open(path: &Path) -> Result<BaseImage, ErrorMessage> {
    let m = Members::open(path)?;
    if m.map.contains_key("index.json") {
        oci(m)
    } else if m.map.contains_key("manifest.json") {
        docker(m)
    } else {
        let some: Vec<_> = m.map.keys().take(5).cloned().collect();
        Err(bad(
            path,
            format!(
                "it has neither index.json (OCI) nor manifest.json (docker); it starts with {some:?}"
            ),
        ))
    }
}

fn oci(mut m: Members) -> Result<BaseImage, ErrorMessage> {
    let index: ImageIndex = m.json("index.json")?;
    let mut desc = index
        .manifests()
        .first()
        .cloned()
        .ok_or_else(|| bad(&m.path, "index.json lists no image"))?;
    if index.manifests().len() > 1 {
        return Err(bad(
            &m.path,
            format!(
                "index.json lists {} images; kerblam needs exactly one",
                index.manifests().len()
            ),
        ));
    }
    if *desc.media_type() == MediaType::ImageIndex {
        let nested: ImageIndex = m.blob(&desc)?;
        let arch = host_arch();
        desc = nested
            .manifests()
            .iter()
            .find(|d| {
                d.platform()
                    .as_ref()
                    .is_none_or(|p| p.architecture().to_string() == arch)
            })
            .cloned()
            .ok_or_else(|| bad(&m.path, format!("its index has no image for {arch}")))?;
    }
    let name = desc
        .annotations()
        .as_ref()
        .and_then(|a| a.get("org.opencontainers.image.ref.name").cloned());
    let manifest: ImageManifest = m.blob(&desc)?;
    let config: ImageConfiguration = m.blob(manifest.config())?;
    let mut layers = Vec::new();
    for d in manifest.layers() {
        let blob = Members::blob_name(d).ok_or_else(|| {
            bad(
                &m.path,
                format!("layer digest {} is not sha256", d.digest()),
            )
        })?;
        let (offset, size) = *m.map.get(&blob).ok_or_else(|| {
            bad(
                &m.path,
                format!("layer {} listed by the manifest is missing", d.digest()),
            )
        })?;
        if size != d.size() {
            return Err(bad(
                &m.path,
                format!(
                    "layer {} is {size} bytes, the manifest says {}",
                    d.digest(),
                    d.size()
                ),
            ));
        }
        layers.push(BaseLayer {
            media_type: d.media_type().clone(),
            digest: d.as_digest_sha256().unwrap_or_default().to_string(),
            size,
            offset,
        });
    }
    check_layers(&m.path, &config, layers.len())?;
    Ok(BaseImage {
        path: m.path.clone(),
        kind: "oci",
        config,
        layers,
        digest: desc.digest().to_string(),
        name,
    })
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn docker(mut m: Members) -> Result<BaseImage, ErrorMessage> {
    let entries: Vec<DockerEntry> = m.json("manifest.json")?;
    if entries.len() != 1 {
        return Err(bad(
            &m.path,
            format!(
                "manifest.json lists {} images; kerblam needs exactly one",
                entries.len()
            ),
        ));
    }
    let entry = &entries[0];
    let config: ImageConfiguration = m.json(&entry.config)?;
    let mut layers = Vec::new();
    for (i, name) in entry.layers.iter().enumerate() {
        let (offset, size) = *m.map.get(name.trim_start_matches("./")).ok_or_else(|| {
            bad(
                &m.path,
                format!("layer {name} listed by manifest.json is missing"),
            )
        })?;
        // A docker archive's layers are plain tars: their digest is their diff_id.
        let digest = config
            .rootfs()
            .diff_ids()
            .get(i)
            .and_then(|d| d.strip_prefix("sha256:"))
            .ok_or_else(|| {
                bad(
                    &m.path,
                    format!("the config has no sha256 diff_id for layer {i}"),
                )
            })?
            .to_string();
        layers.push(BaseLayer {
            media_type: MediaType::ImageLayer,
            digest,
            size,
            offset,
        });
    }
    check_layers(&m.path, &config, layers.len())?;
    let (offset, size) = m.map[entry.config.trim_start_matches("./")];
    let digest = member_sha256(&mut m.file, offset, size).map_err(|e| bad(&m.path, e))?;
    let name = entry.repo_tags.as_ref().and_then(|t| t.first().cloned());
    Ok(BaseImage {
        path: m.path.clone(),
        kind: "docker",
        config,
        layers,
        digest: format!("sha256:{digest}"),
        name,
    })
}

fn check_layers(path: &Path, config: &ImageConfiguration, n: usize) -> Result<(), ErrorMessage> {
    let ids = config.rootfs().diff_ids().len();
    if ids != n {
        return Err(bad(
            path,
            format!("the config lists {ids} layer diff_ids but the manifest {n} layers"),
        ));
    }
    Ok(())
}

fn member_sha256(file: &mut File, offset: u64, size: u64) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    file.seek(SeekFrom::Start(offset))?;
    let mut h = Sha256::new();
    let mut r = file.take(size);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(kerblam_archive::hex(&h.finalize()))
}

/// The OCI architecture name of this machine.
pub fn host_arch() -> String {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
    .to_string()
}

//! Reading a local base image archive (`docker save` / `podman save`, or an OCI image layout
//! archive) into a root filesystem directory, for the native SIF path.
//!
//! The archive is indexed once (member name → offset and size) and members are read by seeking,
//! so a multi-gigabyte archive is never held in memory. Layers are applied in order with OCI
//! whiteouts (`.wh.NAME` removes `NAME`, `.wh..wh..opq` empties a directory); device nodes and
//! FIFOs are skipped (a SIF is mounted `nodev`); gzip-compressed layers are recognised by their
//! magic bytes.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Error;

/// The kind of image archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// `docker save` / `podman save` (`manifest.json` at the top).
    Docker,
    /// OCI image layout (`oci-layout` and `index.json`, no `manifest.json`).
    Oci,
}

struct Index {
    path: PathBuf,
    members: HashMap<String, (u64, u64)>,
}

fn clean(name: &str) -> String {
    name.trim_start_matches("./").to_string()
}

impl Index {
    fn open(path: &Path) -> Result<Index, Error> {
        let unreadable = |source| Error::BaseUnreadable {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(unreadable)?;
        if !meta.is_file() {
            return Err(Error::BaseNotAFile {
                path: path.to_path_buf(),
            });
        }
        let mut file = File::open(path).map_err(unreadable)?;
        let mut magic = [0u8; 4];
        if file.read_exact(&mut magic).is_ok()
            && (magic[..2] == [0x1f, 0x8b] || magic == [0x28, 0xb5, 0x2f, 0xfd])
        {
            return Err(Error::BaseCompressed {
                path: path.to_path_buf(),
            });
        }
        file.seek(SeekFrom::Start(0)).map_err(unreadable)?;
        let corrupt = |source| Error::BaseNotTar {
            path: path.to_path_buf(),
            source,
        };
        let mut ar = tar::Archive::new(BufReader::new(file));
        let mut members = HashMap::new();
        for entry in ar.entries().map_err(corrupt)? {
            let entry = entry.map_err(corrupt)?;
            let name = entry
                .path()
                .map_err(corrupt)?
                .to_string_lossy()
                .into_owned();
            if entry.header().entry_type().is_file() {
                members.insert(clean(&name), (entry.raw_file_position(), entry.size()));
            }
        }
        if members.is_empty() {
            return Err(Error::BaseEmpty {
                path: path.to_path_buf(),
            });
        }
        Ok(Index {
            path: path.to_path_buf(),
            members,
        })
    }

    fn reader(&self, name: &str) -> Result<impl Read + use<>, Error> {
        let (off, size) = *self
            .members
            .get(&clean(name))
            .ok_or_else(|| Error::BaseNoMember {
                path: self.path.clone(),
                member: name.to_string(),
            })?;
        let seek = |source| Error::BaseSeek {
            path: self.path.clone(),
            source,
        };
        let mut f = File::open(&self.path).map_err(seek)?;
        f.seek(SeekFrom::Start(off)).map_err(seek)?;
        Ok(BufReader::new(f).take(size))
    }

    fn read_json<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<T, Error> {
        let mut s = String::new();
        self.reader(name)?
            .read_to_string(&mut s)
            .map_err(|source| self.read_error(name, source))?;
        serde_json::from_str(&s).map_err(|source| Error::BaseJson {
            path: self.path.clone(),
            member: name.to_string(),
            source,
        })
    }

    fn read_error(&self, member: &str, source: std::io::Error) -> Error {
        Error::BaseRead {
            path: self.path.clone(),
            member: member.to_string(),
            source,
        }
    }
}

/// Whether `path` is a docker or an OCI archive; a clear error when it is neither or unreadable.
pub fn detect_format(path: &Path) -> Result<ArchiveFormat, Error> {
    let idx = Index::open(path)?;
    format_of(&idx)
}

fn format_of(idx: &Index) -> Result<ArchiveFormat, Error> {
    if idx.members.contains_key("manifest.json") {
        Ok(ArchiveFormat::Docker)
    } else if idx.members.contains_key("index.json") {
        Ok(ArchiveFormat::Oci)
    } else {
        Err(Error::BaseFormat {
            path: idx.path.clone(),
        })
    }
}

#[derive(Deserialize)]
struct DockerManifest {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct OciIndex {
    manifests: Vec<OciDescriptor>,
}

#[derive(Deserialize)]
struct OciDescriptor {
    digest: String,
    #[serde(rename = "mediaType", default)]
    media_type: String,
}

#[derive(Deserialize)]
struct OciManifest {
    config: OciDescriptor,
    layers: Vec<OciDescriptor>,
}

#[derive(Deserialize, Default)]
struct ImageConfig {
    #[serde(default)]
    config: Option<RunConfig>,
}

#[derive(Deserialize, Default)]
struct RunConfig {
    #[serde(rename = "Env", default)]
    env: Option<Vec<String>>,
}

fn blob(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

/// What the base image says besides its files.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BaseConfig {
    /// The image's `Env` entries (`NAME=value`).
    pub env: Vec<String>,
}

/// Unpack the image in `archive` into `rootfs` (an existing empty directory).
pub fn unpack(archive: &Path, rootfs: &Path) -> Result<BaseConfig, Error> {
    let idx = Index::open(archive)?;
    let no_image = || Error::BaseNoImage {
        path: archive.to_path_buf(),
    };
    let (config, layers) = match format_of(&idx)? {
        ArchiveFormat::Docker => {
            let m: Vec<DockerManifest> = idx.read_json("manifest.json")?;
            let m = m.into_iter().next().ok_or_else(no_image)?;
            (m.config, m.layers)
        }
        ArchiveFormat::Oci => {
            let index: OciIndex = idx.read_json("index.json")?;
            let d = index.manifests.first().ok_or_else(no_image)?;
            if d.media_type.contains("index") {
                return Err(Error::BaseMultiPlatform {
                    path: archive.to_path_buf(),
                });
            }
            let m: OciManifest = idx.read_json(&blob(&d.digest))?;
            (
                blob(&m.config.digest),
                m.layers.iter().map(|l| blob(&l.digest)).collect(),
            )
        }
    };
    let cfg: ImageConfig = idx.read_json(&config).unwrap_or_default();
    for layer in &layers {
        apply_layer(&idx, layer, rootfs)?;
    }
    Ok(BaseConfig {
        env: cfg.config.and_then(|c| c.env).unwrap_or_default(),
    })
}

fn apply_layer(idx: &Index, name: &str, rootfs: &Path) -> Result<(), Error> {
    let mut r = idx.reader(name)?;
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r
            .read(&mut magic[got..])
            .map_err(|source| idx.read_error(name, source))?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let head = std::io::Cursor::new(magic[..got].to_vec()).chain(r);
    let reader: Box<dyn Read> = if got >= 2 && magic[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(head))
    } else if got >= 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        return Err(Error::BaseZstdLayer {
            path: idx.path.clone(),
            layer: name.to_string(),
        });
    } else {
        Box::new(head)
    };
    let bad = |source| Error::BaseCorruptLayer {
        path: idx.path.clone(),
        layer: name.to_string(),
        source,
    };
    let mut ar = tar::Archive::new(reader);
    ar.set_preserve_permissions(true);
    ar.set_overwrite(true);
    ar.set_unpack_xattrs(false);
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.into_owned();
        let kind = entry.header().entry_type();
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            continue;
        }
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some(n) = file_name.as_deref()
            && let Some(target) = n.strip_prefix(".wh.")
        {
            let parent = crate::rootfs::inside(rootfs, path.parent().unwrap_or(Path::new("")))?;
            if target == ".wh..opq" {
                if let Ok(rd) = std::fs::read_dir(&parent) {
                    for e in rd.flatten() {
                        remove_any(&e.path());
                    }
                }
            } else {
                remove_any(&parent.join(target));
            }
            continue;
        }
        // An existing path of another type (a file replacing a directory, ...) is removed first.
        if let Ok(dest) = crate::rootfs::inside(rootfs, &path)
            && let Ok(m) = dest.symlink_metadata()
            && (m.is_dir() != kind.is_dir() || m.file_type().is_symlink())
        {
            remove_any(&dest);
        }
        entry.unpack_in(rootfs).map_err(bad)?;
    }
    Ok(())
}

fn remove_any(p: &Path) {
    match p.symlink_metadata() {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir_all(p);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(p);
        }
        Err(_) => {}
    }
}

//! Artifacts written under their temporary names, committed together at the end.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use kerblam_archive::AtomicFile;
use kerblam_backend_api::plan::ArtifactKind;
use kerblam_backend_api::{ErrorMessage, ProducedArtifact};

use crate::errors;

/// A writer that counts and hashes (SHA-256) what passes through it: the archive crate's.
pub use kerblam_archive::HashWriter;

/// An artifact complete under its temporary name. Dropping it removes the temporary file.
pub struct Pending {
    /// The artifact kind.
    pub kind: ArtifactKind,
    file: AtomicFile,
    bytes: u64,
    sha256: [u8; 32],
}

impl Pending {
    /// The temporary file for `final_path` (refused when it exists, unless `force`), and a buffered,
    /// hashing writer over it.
    pub fn create(
        final_path: &Path,
        force: bool,
    ) -> Result<(AtomicFile, HashWriter<BufWriter<File>>), ErrorMessage> {
        let mut file = AtomicFile::create(final_path, force).map_err(errors::archive)?;
        let handle = file
            .file()
            .try_clone()
            .map_err(|e| errors::io("opening", file.final_path(), e))?;
        Ok((
            file,
            HashWriter::new(BufWriter::with_capacity(1 << 20, handle)),
        ))
    }

    /// Flushes `writer` and records the finished temporary file.
    pub fn finish(
        kind: ArtifactKind,
        file: AtomicFile,
        writer: HashWriter<BufWriter<File>>,
    ) -> Result<Pending, ErrorMessage> {
        let (mut buf, bytes, sha256) = writer.finish();
        buf.flush()
            .map_err(|e| errors::io("writing", file.final_path(), e))?;
        Ok(Pending {
            kind,
            file,
            bytes,
            sha256,
        })
    }

    /// `sha256:<hex>` and size of the finished file.
    pub fn digest(&self) -> (String, u64) {
        (
            format!("sha256:{}", kerblam_archive::hex(&self.sha256)),
            self.bytes,
        )
    }

    /// The finished temporary file, read from its start (to push it before it is committed).
    pub fn reader(&mut self) -> Result<File, ErrorMessage> {
        use std::io::Seek;
        let mut f = self
            .file
            .file()
            .try_clone()
            .map_err(|e| errors::io("opening", self.file.final_path(), e))?;
        f.seek(std::io::SeekFrom::Start(0))
            .map_err(|e| errors::io("reading", self.file.final_path(), e))?;
        Ok(f)
    }

    /// The path the file will have.
    pub fn final_path(&self) -> &Path {
        self.file.final_path()
    }

    /// Renames the file into place.
    pub fn commit(self) -> Result<ProducedArtifact, ErrorMessage> {
        let path = self.file.commit().map_err(errors::archive)?;
        Ok(ProducedArtifact {
            kind: self.kind,
            path: path.to_string_lossy().into_owned(),
            bytes: Some(self.bytes),
            sha256: Some(format!("sha256:{}", kerblam_archive::hex(&self.sha256))),
        })
    }
}

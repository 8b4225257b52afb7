//! Writing replay archives (`<pipe>.kerblam.tar`), in the v2 layout or Kerblam! 1.x's.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::atomic::AtomicFile;
use crate::deterministic_tar::{CHUNK, Cancel, DetTar, Progress, TarOptions, hex};
use crate::error::{Error, Result};
use crate::hashing_streams::HashWriter;
use crate::paths::{is_under, safe_relative};
use crate::sums::{INNER_SEP, Sums};
use crate::{ReplayFormat, member};

/// How a replay archive is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayOptions {
    /// The layout.
    pub format: ReplayFormat,
    /// Header normalisation (the mtime).
    pub tar: TarOptions,
    /// The zstd level of `data.tar.zst` (3 by default).
    pub zstd_level: i32,
    /// zstd worker threads; 0 means one per available core. Always at least one worker, so the
    /// output does not depend on the core count.
    pub threads: u32,
    /// Overwrite an existing archive at the final path.
    pub force: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            format: ReplayFormat::V2,
            tar: TarOptions::default(),
            zstd_level: 3,
            threads: 0,
            force: false,
        }
    }
}

/// The small members of a replay archive.
#[derive(Debug, Clone, Copy)]
pub struct ReplayContents<'a> {
    /// `kerblam.toml`, verbatim.
    pub manifest: &'a [u8],
    /// The image tag, written to `name` without a trailing newline. Empty (v2 only): the name is
    /// not known yet (it is the digest a push gets); give it with
    /// [`ReplayWriter::set_image_name`] before the archive is finished.
    pub image_name: &'a str,
    /// The package plan JSON (`plan.json`); required for v2, not written for kerblam-v1.
    pub plan_json: Option<&'a [u8]>,
    /// The input data directory relative to the project root (`plan.pipe.data.input`, e.g.
    /// `data/in`). kerblam-v1 stores data paths relative to it, as 1.x does.
    pub input_dir: &'a str,
}

/// What a finished replay archive is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenArchive {
    /// Its final path.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// `sha256:<hex>` of the whole archive.
    pub sha256: String,
    /// Data files archived.
    pub data_files: u64,
    /// Content bytes of the data files.
    pub data_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Data,
    Image,
    Done,
    Crate,
}

/// Streams a replay archive to `<final>.tmp-<pid>-<n>` and renames it at [`ReplayWriter::finish`].
///
/// Call order: [`ReplayWriter::create`] (writes `kerblam.toml`, `name`, `plan.json`), then
/// [`ReplayWriter::add_data`] once (optional: no call means an empty data archive), then
/// [`ReplayWriter::add_image`] (optional, v2 only), then [`ReplayWriter::add_crate`] (optional, v2
/// only), then [`ReplayWriter::finish`] with the optional signature. Dropping the writer without
/// `finish` (an error, Ctrl-C unwinding) removes the temporary file.
pub struct ReplayWriter {
    out: AtomicFile,
    tar: DetTar<'static, BufWriter<File>>,
    opts: ReplayOptions,
    sums: Sums,
    name: String,
    input_dir: String,
    stage: Stage,
    data: (u64, u64),
}

impl ReplayWriter {
    /// Starts an archive at `final_path` (its directory must exist). Refuses an existing file unless
    /// `opts.force`.
    pub fn create(
        final_path: &Path,
        contents: ReplayContents<'_>,
        opts: ReplayOptions,
    ) -> Result<Self> {
        let input_dir = crate::paths::manifest_dir(contents.input_dir, "input")?;
        // The reader places data by the manifest's input directory: refuse now what replay would.
        let dirs = crate::DataDirs::from_manifest(contents.manifest)
            .map_err(|e| Error::input(format!("the manifest to package is unusable: {e}")))?;
        if dirs.input != input_dir {
            return Err(Error::input(format!(
                "the input data directory {input_dir:?} differs from kerblam.toml's data.paths.input {:?}",
                dirs.input
            )));
        }
        let mut out = AtomicFile::create(final_path, opts.force)?;
        let file = out
            .file()
            .try_clone()
            .map_err(|e| Error::io("opening", final_path, e))?;
        let shown = final_path.display().to_string();
        let tar =
            DetTar::new(BufWriter::with_capacity(CHUNK, file), opts.tar).with_output_name(shown);
        let mut w = ReplayWriter {
            out,
            tar,
            opts,
            sums: Sums::default(),
            name: contents.image_name.to_string(),
            input_dir,
            stage: Stage::Data,
            data: (0, 0),
        };
        w.small(member::MANIFEST, contents.manifest)?;
        if opts.format == ReplayFormat::V2 && !contents.image_name.is_empty() {
            let name = std::mem::take(&mut w.name);
            w.small(member::NAME, name.as_bytes())?;
        }
        if opts.format == ReplayFormat::V2 {
            let plan = contents.plan_json.ok_or_else(|| {
                Error::input("a kerblam.replay/v2 archive needs the plan JSON (plan.json)")
            })?;
            w.small(member::PLAN, plan)?;
        }
        crate::fault::point("replay/created");
        Ok(w)
    }

    fn small(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let a = self.tar.append_bytes(name, bytes, 0o644)?;
        self.sums.push(name, a.sha256);
        Ok(())
    }

    /// Archives the precious data files: `files` are paths relative to `root` (the project root),
    /// e.g. `data/in/precious.txt`. They are sorted, each read once, hashed and compressed as it
    /// streams (zstd on all cores for v2, gzip for kerblam-v1). For kerblam-v1 every file must lie
    /// under the input directory, and is stored relative to it, as 1.x does.
    pub fn add_data<S: AsRef<str>>(
        &mut self,
        root: &Path,
        files: &[S],
        progress: Progress<'_>,
    ) -> Result<()> {
        self.add_data_cancellable(root, files, progress, None)
    }

    /// [`ReplayWriter::add_data`], stopping with [`Error::cancelled`] as soon as `cancel` returns
    /// true (checked every buffer). Drop the writer afterwards: the temporary file goes with it.
    pub fn add_data_cancellable<S: AsRef<str>>(
        &mut self,
        root: &Path,
        files: &[S],
        progress: Progress<'_>,
        cancel: Cancel<'_>,
    ) -> Result<()> {
        if self.stage != Stage::Data {
            return Err(Error::input(
                "replay archive: add_data must be called once, before add_image",
            ));
        }
        self.stage = Stage::Image;
        let list = self.data_list(root, files)?;
        let threads = match self.opts.threads {
            0 => std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1),
            n => n,
        };
        let format = self.opts.format;
        let member_name = match format {
            ReplayFormat::V2 => member::DATA_ZST,
            ReplayFormat::KerblamV1 => member::DATA_GZ,
        };
        let compress = CompressData {
            list: &list,
            tar: self.opts.tar,
            zstd_level: self.opts.zstd_level,
            threads: threads.max(1),
            progress,
            cancel,
            inner_name: format!("{} ({member_name})", self.out.final_path().display()),
        };
        let (entries, member_sha, counts) =
            self.tar
                .append_streamed(member_name, 0o644, |w| match format {
                    ReplayFormat::V2 => compress.zstd(w),
                    ReplayFormat::KerblamV1 => compress.gzip(w),
                })?;
        self.data = counts;
        self.sums.push(member_name, member_sha);
        for (name, sha) in entries {
            self.sums
                .push(format!("{member_name}{INNER_SEP}{name}"), sha);
        }
        if format == ReplayFormat::KerblamV1 {
            let name = std::mem::take(&mut self.name);
            self.small(member::NAME, name.as_bytes())?;
        }
        Ok(())
    }

    /// The data files as `(name in the data tar, path on disk)`, sorted: each must be a safe
    /// relative path inside the input data directory, listed once. v2 stores the path from the
    /// project root, kerblam-v1 the path from the input data directory.
    fn data_list<S: AsRef<str>>(&self, root: &Path, files: &[S]) -> Result<Vec<(String, PathBuf)>> {
        let mut list = Vec::with_capacity(files.len());
        for f in files {
            let rel = safe_relative(f.as_ref().as_bytes(), "data file list")?;
            if !is_under(&rel, &self.input_dir) || rel == self.input_dir {
                return Err(Error::input(format!(
                    "data file {rel} is not inside the input data directory {:?}; a replay archive holds only input data",
                    self.input_dir
                )));
            }
            let stored = match self.opts.format {
                ReplayFormat::V2 => rel.clone(),
                ReplayFormat::KerblamV1 => rel[self.input_dir.len()..]
                    .trim_start_matches('/')
                    .to_string(),
            };
            list.push((stored, root.join(&rel)));
        }
        list.sort();
        if let Some(w) = list.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::input(format!(
                "data file {} is listed twice",
                w[0].0
            )));
        }
        Ok(list)
    }

    /// Embeds an image archive (`docker save` / `podman save` output, or an OCI archive) read from
    /// `reader` as `image.tar`, streaming and hashing it. v2 only. Returns its size.
    pub fn add_image(&mut self, reader: &mut dyn Read, progress: Progress<'_>) -> Result<u64> {
        if self.opts.format != ReplayFormat::V2 {
            return Err(Error::input(
                "--embed-image needs the kerblam.replay/v2 format; Kerblam! 1.x archives cannot hold an image",
            ));
        }
        if self.stage == Stage::Data {
            self.add_data::<&str>(Path::new("."), &[], None)?;
        }
        if self.stage != Stage::Image {
            return Err(Error::input(
                "replay archive: add_image may be called only once, before add_crate",
            ));
        }
        self.stage = Stage::Done;
        let shown = self.out.final_path().display().to_string();
        let (size, sha) = self.tar.append_streamed(member::IMAGE, 0o644, |w| {
            let mut hw = HashWriter::new(w);
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(Error::io(
                            "reading the image stream for",
                            Path::new(member::IMAGE),
                            e,
                        ));
                    }
                };
                hw.write_all(&buf[..n]).map_err(|e| {
                    Error::io_context(format!("error writing image.tar to {shown}"), e)
                })?;
                if let Some(p) = progress {
                    p(hw_count(&hw), 0);
                }
            }
            let (_, n, sha) = hw.finish();
            Ok((n, sha))
        })?;
        self.sums.push(member::IMAGE, sha);
        Ok(size)
    }

    /// The checksums of what is archived so far, as `SHA256SUMS` will list them: members by name,
    /// data files as `data.tar.zst:<path>` (kept for kerblam-v1 too, though not written there).
    pub fn sums(&self) -> &Sums {
        &self.sums
    }

    /// Adds `ro-crate-metadata.json`, the package's RO-Crate description (v2 only), after the
    /// data and the image: it may name their checksums ([`ReplayWriter::sums`]). No image can be
    /// added after it.
    pub fn add_crate(&mut self, json: &[u8]) -> Result<()> {
        if self.opts.format != ReplayFormat::V2 {
            return Err(Error::input(
                "the RO-Crate description needs the kerblam.replay/v2 format; Kerblam! 1.x archives cannot hold it",
            ));
        }
        if self.stage == Stage::Data {
            self.add_data::<&str>(Path::new("."), &[], None)?;
        }
        if self.stage == Stage::Crate {
            return Err(Error::input(
                "replay archive: add_crate may be called only once",
            ));
        }
        self.stage = Stage::Crate;
        self.small(member::CRATE, json)
    }

    /// Writes the `name` member now, for an archive created without one (v2): the image reference
    /// that was known only once the image was pushed (`REGISTRY/REPO@sha256:...`).
    pub fn set_image_name(&mut self, name: &str) -> Result<()> {
        if self.opts.format != ReplayFormat::V2 || self.name_written() {
            return Err(Error::input(
                "replay archive: the image name was given when the archive was created",
            ));
        }
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::input(format!(
                "replay archive: {name:?} is not an image reference"
            )));
        }
        self.small(member::NAME, name.as_bytes())
    }

    fn name_written(&self) -> bool {
        self.sums.get(member::NAME).is_some()
    }

    /// Writes `signature.json` (when given) and `SHA256SUMS` (v2), closes the archive, syncs it and
    /// renames it to its final name.
    pub fn finish(self, signature: Option<&[u8]>) -> Result<WrittenArchive> {
        self.finish_uncommitted(signature)?.commit()
    }

    /// [`ReplayWriter::finish`] up to, not including, the rename: the archive is complete under its
    /// temporary name, so that it can be renamed together with other artifacts
    /// ([`FinishedArchive::commit`]); dropping it removes the temporary file.
    pub fn finish_uncommitted(mut self, signature: Option<&[u8]>) -> Result<FinishedArchive> {
        if self.stage == Stage::Data {
            self.add_data::<&str>(Path::new("."), &[], None)?;
        }
        if self.opts.format == ReplayFormat::V2 && !self.name_written() {
            return Err(Error::input(
                "replay archive: no image name was given (set_image_name)",
            ));
        }
        if let Some(sig) = signature {
            self.small(member::SIGNATURE, sig)?;
        }
        crate::fault::point("replay/before-sums");
        if self.opts.format == ReplayFormat::V2 {
            let text = self.sums.render();
            self.tar
                .append_bytes(member::SUMS, text.as_bytes(), 0o644)?;
        }
        let shown = self.out.final_path().to_path_buf();
        let mut buf = self.tar.finish()?;
        buf.flush().map_err(|e| Error::io("writing", &shown, e))?;
        drop(buf);
        crate::fault::point("replay/read-back");
        let file = self.out.file();
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("reading back", &shown, e))?;
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        let mut chunk = vec![0u8; CHUNK];
        loop {
            let n = file
                .read(&mut chunk)
                .map_err(|e| Error::io("reading back", &shown, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&chunk[..n]);
            bytes += n as u64;
        }
        let sha256 = format!("sha256:{}", hex(&hasher.finalize()));
        Ok(FinishedArchive {
            out: self.out,
            bytes,
            sha256,
            data: self.data,
        })
    }
}

/// A replay archive complete under its temporary name ([`ReplayWriter::finish_uncommitted`]).
/// Dropping it uncommitted removes the temporary file.
#[derive(Debug)]
pub struct FinishedArchive {
    out: AtomicFile,
    bytes: u64,
    sha256: String,
    data: (u64, u64),
}

impl FinishedArchive {
    /// The temporary path it is complete under.
    pub fn temp_path(&self) -> &Path {
        self.out.temp_path()
    }

    /// Syncs it and renames it to its final name.
    pub fn commit(self) -> Result<WrittenArchive> {
        let path = self.out.commit()?;
        Ok(WrittenArchive {
            path,
            bytes: self.bytes,
            sha256: self.sha256,
            data_files: self.data.1,
            data_bytes: self.data.0,
        })
    }
}

fn hw_count<W: Write>(hw: &HashWriter<W>) -> u64 {
    hw.count()
}

/// The entries of a data tar and their hashes, the hash of the compressed member, and the
/// `(bytes, files)` written.
type DataWritten = (Vec<(String, [u8; 32])>, [u8; 32], (u64, u64));

/// How to write the data member: a deterministic tar of `list`, compressed as it streams.
struct CompressData<'a> {
    list: &'a [(String, PathBuf)],
    tar: TarOptions,
    zstd_level: i32,
    threads: u32,
    progress: Progress<'a>,
    cancel: Cancel<'a>,
    /// `<archive> (<member>)`, for messages.
    inner_name: String,
}

impl CompressData<'_> {
    fn error(&self, e: std::io::Error) -> Error {
        Error::io_context(format!("error compressing into {}", self.inner_name), e)
    }

    fn inner_tar<W: Write>(&self, w: W) -> DetTar<'_, W> {
        DetTar::new(w, self.tar)
            .with_progress(self.progress)
            .with_cancel(self.cancel)
            .with_output_name(self.inner_name.clone())
    }

    /// v2: zstd on `threads` cores, with a checksum.
    fn zstd(&self, w: &mut dyn Write) -> Result<DataWritten> {
        let hw = HashWriter::new(w);
        let zerr = |e| self.error(e);
        let mut enc = zstd::stream::write::Encoder::new(hw, self.zstd_level).map_err(zerr)?;
        enc.multithread(self.threads).map_err(zerr)?;
        enc.include_checksum(true).map_err(zerr)?;
        // Large writes: each call into the multithreaded encoder has a cost.
        let enc = BufWriter::with_capacity(CHUNK, enc);
        let mut inner = self.inner_tar(enc);
        let entries = write_files(&mut inner, self.list)?;
        let counts = inner.counts();
        let enc = inner
            .finish()?
            .into_inner()
            .map_err(|e| zerr(e.into_error()))?;
        let hw = enc.finish().map_err(zerr)?;
        let (_, _, sha) = hw.finish();
        Ok((entries, sha, counts))
    }

    /// kerblam-v1: one gzip member, compressed in parallel.
    fn gzip(&self, w: &mut dyn Write) -> Result<DataWritten> {
        let hw = HashWriter::new(w);
        let enc = crate::gzip::GzWriter::new(hw, self.threads);
        let mut inner = self.inner_tar(enc);
        let entries = write_files(&mut inner, self.list)?;
        let counts = inner.counts();
        let hw = inner.finish()?.finish().map_err(|e| self.error(e))?;
        let (_, _, sha) = hw.finish();
        Ok((entries, sha, counts))
    }
}

fn write_files<W: Write>(
    inner: &mut DetTar<'_, W>,
    list: &[(String, PathBuf)],
) -> Result<Vec<(String, [u8; 32])>> {
    let mut entries = Vec::with_capacity(list.len());
    for (name, path) in list {
        let a = inner.append_file(name, path)?;
        entries.push((name.clone(), a.sha256));
        crate::fault::point("replay/data-file");
    }
    Ok(entries)
}

impl std::fmt::Debug for ReplayWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayWriter")
            .field("temp_path", &self.out.temp_path())
            .field("format", &self.opts.format)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

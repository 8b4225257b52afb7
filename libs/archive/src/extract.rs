//! Safe extraction of a replay archive's data into a destination directory.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::deterministic_tar::{CHUNK, Cancel, Progress};
use crate::error::{Error, ErrorKind, Result};
use crate::hashing_streams::HashReader;
use crate::member;
use crate::paths::{is_under, safe_relative};
use crate::read::{Layout, MAX_TRAILING_ZEROS, ReplayArchive, Section, mismatch};

/// Caps that stop decompression bombs and absurd archives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes the data may unpack to in total (declared or actual). Default 256 GiB.
    pub max_total_bytes: u64,
    /// Largest ratio of unpacked to compressed bytes, checked once more than
    /// [`Limits::ratio_floor`] bytes are unpacked. Default 1000 (text compresses 3–20×).
    pub max_ratio: u64,
    /// Unpacked bytes below which the ratio is not checked. Default 64 MiB.
    pub ratio_floor: u64,
    /// Most entries in the data archive. Default 10 million.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_total_bytes: 256 << 30,
            max_ratio: 1000,
            ratio_floor: 64 << 20,
            max_entries: 10_000_000,
        }
    }
}

/// How to extract.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Replace existing files in the destination that differ from the archive's.
    pub force: bool,
    /// Bomb and size limits.
    pub limits: Limits,
}

/// What an extraction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtractReport {
    /// Files written (new or replaced), relative to the destination.
    pub written: Vec<String>,
    /// Files already present with identical content, left alone.
    pub identical: Vec<String>,
    /// Files that replaced different existing ones (only with `force`).
    pub replaced: Vec<String>,
    /// Content bytes unpacked.
    pub bytes: u64,
}

struct Staged {
    rel: String,
    sha: [u8; 32],
}

impl ReplayArchive {
    /// Extracts the data into `dest` (created if missing) at the paths the packaged project used
    /// (`data/in/...`). Everything is unpacked and verified in a staging directory inside `dest` first;
    /// files are moved into place only when all checks passed. On failure `dest` is left as found.
    pub fn extract_data(
        &self,
        dest: &Path,
        opts: &ExtractOptions,
        progress: Progress<'_>,
    ) -> Result<ExtractReport> {
        self.extract_data_cancellable(dest, opts, progress, None)
    }

    /// [`ReplayArchive::extract_data`], stopping with [`Error::cancelled`] when `cancel` returns true
    /// (checked every entry and buffer while unpacking; the final moves are not interrupted). The
    /// destination is left as found.
    pub fn extract_data_cancellable(
        &self,
        dest: &Path,
        opts: &ExtractOptions,
        progress: Progress<'_>,
        cancel: Cancel<'_>,
    ) -> Result<ExtractReport> {
        let created = create_dest(dest)?;
        let result = (|| {
            let dest = fs::canonicalize(dest).map_err(|e| Error::io("resolving", dest, e))?;
            let staging = unique_dir(&dest, "")?;
            let res = self
                .stage(&staging, &opts.limits, progress, cancel)
                .and_then(|staged| commit(&dest, &staging, &staged, opts.force));
            remove_staging(&staging);
            res
        })();
        if result.is_err() {
            for d in created.iter().rev() {
                let _ = fs::remove_dir(d);
            }
        }
        result
    }

    /// Unpacks and verifies the data into `staging`: every entry passes each refusal rule below
    /// (entry count, entry type, name, place, tree, sizes, checksum), then what follows the data
    /// tar and the data member as a whole are checked.
    fn stage(
        &self,
        staging: &Path,
        limits: &Limits,
        progress: Progress<'_>,
        cancel: Cancel<'_>,
    ) -> Result<Vec<Staged>> {
        let cancelled = || cancel.is_some_and(|c| c());
        let (mname, v1) = match self.layout {
            Layout::V2 => (member::DATA_ZST, false),
            Layout::KerblamV1 { .. } => (member::DATA_GZ, true),
        };
        let m = self.member(mname).expect("checked at open");
        let what = format!("{}: {mname}", self.path.display());
        let mut decoder = self.decoder(m.offset, m.size, v1, &what)?;
        let guard = Guard {
            inner: &mut decoder,
            out: 0,
            compressed: m.size.max(1),
            limits: *limits,
            what: &what,
        };
        let mut archive = tar::Archive::new(guard);
        let mut tree = Tree::default();
        let entries = archive.entries().map_err(|e| bad_io(&what, e))?;
        for (i, entry) in entries.enumerate() {
            if cancelled() {
                return Err(Error::cancelled());
            }
            let mut entry = entry.map_err(|e| bad_io(&what, e))?;
            refuse_too_many_entries(i as u64, limits, &what)?;
            refuse_links_and_special_files(&entry, &what)?;
            let raw_name = entry.path_bytes().into_owned();
            let is_dir = entry.header().entry_type() == tar::EntryType::Directory;
            if is_dir && names_the_root(&raw_name) {
                continue;
            }
            let rel = self.place(safe_relative(&raw_name, &what)?, v1, &what)?;
            check_tree(&rel, is_dir, &tree.files, &tree.dirs, &what)?;
            if is_dir {
                fs::create_dir_all(staging.join(&rel))
                    .map_err(|e| Error::io("creating", &staging.join(&rel), e))?;
                tree.dirs.insert(rel);
                continue;
            }
            let size = entry.header().size().map_err(|e| bad_io(&what, e))?;
            tree.refuse_declared_over_limit(size, &rel, limits, &what)?;
            tree.files.insert(rel.clone());
            let unpack = Unpack {
                staging,
                what: &what,
                progress,
                cancelled: &cancelled,
            };
            let sha = unpack.file(&mut entry, &rel, size, &mut tree)?;
            if !v1 {
                self.refuse_wrong_entry_sum(&rel, &sha, mname)?;
            }
            tree.staged.push(Staged { rel, sha });
        }
        refuse_data_after_the_tar(archive.into_inner(), &what)?;
        let sha = refuse_garbage_after_the_stream(decoder.into_compressed(), &what)?;
        self.check_member(mname, sha)?;
        if !v1 {
            self.refuse_missing_listed_entries(&tree.staged, mname)?;
        }
        Ok(tree.staged)
    }

    /// The decompressor of the data member at `offset`, `size` bytes: gzip for Kerblam! 1.x's
    /// layout, zstd (one frame) for v2; the compressed bytes are hashed as they are read.
    fn decoder(&self, offset: u64, size: u64, v1: bool, what: &str) -> Result<Dec<'_>> {
        let raw = HashReader::new(Section::new(&self.file, offset, size));
        let compressed = BufReader::with_capacity(CHUNK, raw);
        Ok(if v1 {
            Dec::Gz(flate2::bufread::GzDecoder::new(compressed))
        } else {
            Dec::Zstd(
                zstd::stream::read::Decoder::with_buffer(compressed)
                    .map_err(|e| Error::io("starting to decompress", Path::new(what), e))?
                    .single_frame(),
            )
        })
    }

    /// Where an entry goes, relative to the project root. Kerblam! 1.x's data paths are relative
    /// to the input data directory; v2's already start with it, and must stay inside it.
    fn place(&self, rel: String, v1: bool, what: &str) -> Result<String> {
        let input = &self.dirs.input;
        if v1 {
            return Ok(if input.is_empty() {
                rel
            } else {
                format!("{input}/{rel}")
            });
        }
        if !is_under(&rel, input) || rel == *input {
            return Err(Error::invalid(format!(
                "{what}: entry {rel:?} is outside the input data directory {input:?} named by kerblam.toml"
            )));
        }
        Ok(rel)
    }

    /// A v2 entry must have a line in `SHA256SUMS`, with its hash.
    fn refuse_wrong_entry_sum(&self, rel: &str, sha: &[u8; 32], mname: &str) -> Result<()> {
        match self.data_sums.get(rel) {
            None => Err(Error::invalid(format!(
                "{}: {mname}: entry {rel:?} has no line in SHA256SUMS",
                self.path.display()
            ))),
            Some(want) if want != sha => Err(mismatch(
                &self.path.display().to_string(),
                &format!("{mname}:{rel}"),
                want,
                sha,
            )),
            _ => Ok(()),
        }
    }

    /// Every data entry `SHA256SUMS` lists must be in the data archive.
    fn refuse_missing_listed_entries(&self, staged: &[Staged], mname: &str) -> Result<()> {
        let have: BTreeSet<&str> = staged.iter().map(|s| s.rel.as_str()).collect();
        match self.data_sums.keys().find(|k| !have.contains(k.as_str())) {
            Some(missing) => Err(Error::invalid(format!(
                "{}: SHA256SUMS lists {mname}:{missing}, which the data archive does not hold",
                self.path.display()
            ))),
            None => Ok(()),
        }
    }
}

/// What the entries staged so far make: the tree (to refuse duplicates and files below files) and
/// the byte counts (to refuse bombs).
#[derive(Default)]
struct Tree {
    files: BTreeSet<String>,
    dirs: BTreeSet<String>,
    staged: Vec<Staged>,
    /// Sum of the sizes the file entries declare.
    declared: u64,
    /// Content bytes unpacked so far.
    unpacked: u64,
}

impl Tree {
    /// The entries together may not declare more than the limit: a decompression bomb.
    fn refuse_declared_over_limit(
        &mut self,
        size: u64,
        rel: &str,
        limits: &Limits,
        what: &str,
    ) -> Result<()> {
        self.declared = self.declared.saturating_add(size);
        if self.declared > limits.max_total_bytes {
            return Err(Error::invalid(format!(
                "{what}: entries declare {} bytes, over the limit of {} bytes (entry {rel:?} declares {size}); refusing a decompression bomb",
                self.declared, limits.max_total_bytes
            )));
        }
        Ok(())
    }
}

/// The data archive may not hold more entries than the limit.
fn refuse_too_many_entries(index: u64, limits: &Limits, what: &str) -> Result<()> {
    if index >= limits.max_entries {
        return Err(Error::invalid(format!(
            "{what}: more than {} entries (the limit); refusing",
            limits.max_entries
        )));
    }
    Ok(())
}

/// Precious data are plain files and directories: links of any kind, device nodes, FIFOs, sparse
/// files and anything else are refused.
fn refuse_links_and_special_files<R: Read>(entry: &tar::Entry<'_, R>, what: &str) -> Result<()> {
    let shown_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let link = |kind: &str| {
        let target = entry
            .link_name_bytes()
            .map(|t| String::from_utf8_lossy(&t).into_owned());
        Err(Error::invalid(format!(
            "{what}: entry {shown_name:?} is {kind} to {:?}; links are refused in replay data",
            target.unwrap_or_default()
        )))
    };
    let refuse = |kind: &str| {
        Err(Error::invalid(format!(
            "{what}: entry {shown_name:?} is {kind}; refused"
        )))
    };
    match entry.header().entry_type() {
        tar::EntryType::Regular | tar::EntryType::Directory => Ok(()),
        tar::EntryType::Symlink => link("a symlink"),
        tar::EntryType::Link => link("a hardlink"),
        tar::EntryType::Char | tar::EntryType::Block => refuse("a device node"),
        tar::EntryType::Fifo => refuse("a FIFO"),
        tar::EntryType::GNUSparse => refuse("a sparse file"),
        _ => refuse("not a regular file or directory"),
    }
}

/// `./` (as `tar -C dir .` writes) names the extraction root itself: nothing to do.
fn names_the_root(raw_name: &[u8]) -> bool {
    raw_name.iter().all(|b| *b == b'.' || *b == b'/') && !raw_name.windows(2).any(|w| w == b"..")
}

/// What unpacking one file needs besides the entry.
struct Unpack<'a> {
    staging: &'a Path,
    what: &'a str,
    progress: Progress<'a>,
    cancelled: &'a dyn Fn() -> bool,
}

impl Unpack<'_> {
    /// Writes the entry's content to a new file at `rel` in the staging directory and returns its
    /// hash; a file whose content is shorter than its header declares is refused as truncated.
    fn file<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        rel: &str,
        size: u64,
        tree: &mut Tree,
    ) -> Result<[u8; 32]> {
        let target = self.staging.join(rel);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
        }
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(|e| Error::io("creating", &target, e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK.min(size.max(1) as usize)];
        let mut got = 0u64;
        loop {
            if (self.cancelled)() {
                return Err(Error::cancelled());
            }
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(bad_io(self.what, e)),
            };
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| Error::io("writing", &target, e))?;
            got += n as u64;
            if let Some(p) = self.progress {
                p(tree.unpacked + got, tree.staged.len() as u64);
            }
        }
        if got != size {
            return Err(Error::invalid(format!(
                "{}: truncated: entry {rel:?} declares {size} bytes but only {got} are present",
                self.what
            )));
        }
        tree.unpacked += got;
        Ok(hasher.finalize().into())
    }
}

/// After the tar's end marker: only zero padding (at least the 512-byte marker, at most
/// [`MAX_TRAILING_ZEROS`]), then the end of the decompressed stream.
fn refuse_data_after_the_tar(mut rest: impl Read, what: &str) -> Result<()> {
    let mut tail = [0u8; 8192];
    let mut zeros = 0u64;
    loop {
        let n = rest.read(&mut tail).map_err(|e| bad_io(what, e))?;
        if n == 0 {
            break;
        }
        if tail[..n].iter().any(|b| *b != 0) {
            return Err(Error::invalid(format!(
                "{what}: trailing data after the end of the data tar"
            )));
        }
        zeros += n as u64;
        if zeros > MAX_TRAILING_ZEROS {
            return Err(Error::invalid(format!(
                "{what}: more than {MAX_TRAILING_ZEROS} bytes of padding after the data tar"
            )));
        }
    }
    if zeros < 512 {
        return Err(Error::invalid(format!(
            "{what}: truncated: the data tar has no end-of-archive marker"
        )));
    }
    Ok(())
}

/// Nothing may follow the compressed stream in the data member; returns the hash of the member.
fn refuse_garbage_after_the_stream(
    mut compressed: BufReader<HashReader<Section<'_>>>,
    what: &str,
) -> Result<[u8; 32]> {
    let leftover = compressed.fill_buf().map_err(|e| bad_io(what, e))?.len();
    let mut raw = compressed.into_inner();
    let mut rest = leftover as u64;
    let mut sink = [0u8; 8192];
    loop {
        let n = raw.read(&mut sink).map_err(|e| bad_io(what, e))?;
        if n == 0 {
            break;
        }
        rest += n as u64;
    }
    if rest > 0 {
        return Err(Error::invalid(format!(
            "{what}: {rest} bytes of trailing garbage after the compressed stream"
        )));
    }
    let (_, _, sha) = raw.finish();
    Ok(sha)
}

/// Checks a new entry against those seen: no duplicates, no file below a file, no dir over a file.
fn check_tree(
    rel: &str,
    is_dir: bool,
    files: &BTreeSet<String>,
    dirs: &BTreeSet<String>,
    what: &str,
) -> Result<()> {
    if files.contains(rel) || (!is_dir && dirs.contains(rel)) {
        return Err(Error::invalid(format!(
            "{what}: entry {rel:?} appears twice (duplicate entries are refused)"
        )));
    }
    let mut at = rel;
    while let Some((parent, _)) = at.rsplit_once('/') {
        if files.contains(parent) {
            return Err(Error::invalid(format!(
                "{what}: entry {rel:?} would be inside {parent:?}, which is a file in the same archive"
            )));
        }
        at = parent;
    }
    Ok(())
}

fn bad_io(what: &str, e: io::Error) -> Error {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
        return Error::recovered(inner, inner.message().to_string());
    }
    let truncated = e.kind() == io::ErrorKind::UnexpectedEof;
    Error::invalid(format!(
        "{what}: {}{e}",
        if truncated {
            "truncated or corrupt: "
        } else {
            "corrupt: "
        }
    ))
}

/// The decompressor of the data member.
#[allow(clippy::large_enum_variant)] // one per extraction
enum Dec<'a> {
    Gz(flate2::bufread::GzDecoder<BufReader<HashReader<Section<'a>>>>),
    Zstd(zstd::stream::read::Decoder<'static, BufReader<HashReader<Section<'a>>>>),
}

impl Read for Dec<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Dec::Gz(d) => d.read(buf),
            Dec::Zstd(d) => d.read(buf),
        }
    }
}

impl<'a> Dec<'a> {
    /// The compressed input, to check that nothing follows the compressed stream.
    fn into_compressed(self) -> BufReader<HashReader<Section<'a>>> {
        match self {
            Dec::Gz(d) => d.into_inner(),
            Dec::Zstd(d) => d.finish(),
        }
    }
}

/// Counts decompressed bytes and stops a decompression bomb.
struct Guard<'a, 'b> {
    inner: &'a mut Dec<'b>,
    out: u64,
    compressed: u64,
    limits: Limits,
    what: &'a str,
}

impl Read for Guard<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        let l = &self.limits;
        if self.out > l.max_total_bytes {
            return Err(Error::invalid(format!(
                "{}: unpacks to more than {} bytes (the limit); refusing a decompression bomb",
                self.what, l.max_total_bytes
            ))
            .into_io());
        }
        if self.out > l.ratio_floor && self.out / self.compressed > l.max_ratio {
            return Err(Error::invalid(format!(
                "{}: {} compressed bytes unpack to more than {} bytes, a ratio over {}:1 (the limit); refusing a decompression bomb",
                self.what, self.compressed, self.out, l.max_ratio
            ))
            .into_io());
        }
        Ok(n)
    }
}

/// Creates `dest` and any missing ancestors; returns the directories created, outermost first.
fn create_dest(dest: &Path) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut at = Some(dest);
    while let Some(p) = at {
        if p.as_os_str().is_empty() || p.symlink_metadata().is_ok() {
            break;
        }
        missing.push(p.to_path_buf());
        at = p.parent();
    }
    missing.reverse();
    for (i, d) in missing.iter().enumerate() {
        if let Err(e) = fs::create_dir(d) {
            for c in missing[..i].iter().rev() {
                let _ = fs::remove_dir(c);
            }
            return Err(Error::io("creating destination", d, e));
        }
    }
    match dest.metadata() {
        Ok(m) if m.is_dir() => Ok(missing),
        Ok(_) => Err(Error::input(format!(
            "destination {} is not a directory",
            dest.display()
        ))),
        Err(e) => Err(Error::io("reading", dest, e)),
    }
}

/// Creates a fresh `dest/.kerblam-replay-<pid>-<n><suffix>` directory.
fn unique_dir(dest: &Path, suffix: &str) -> Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = dest.join(format!(
        ".kerblam-replay-{}-{n}{suffix}",
        std::process::id()
    ));
    fs::create_dir(&dir).map_err(|e| Error::io("creating staging directory", &dir, e))?;
    crate::atomic::register(&dir);
    Ok(dir)
}

fn remove_staging(dir: &Path) {
    let _ = fs::remove_dir_all(dir);
    crate::atomic::unregister(dir);
}

/// One step done while moving files into place, to undo on failure.
enum Step {
    CreatedDir(PathBuf),
    Moved { to: PathBuf, from: PathBuf },
    BackedUp { original: PathBuf, backup: PathBuf },
}

/// Checks the destination, then moves the staged files into place (all or nothing).
fn commit(dest: &Path, staging: &Path, staged: &[Staged], force: bool) -> Result<ExtractReport> {
    let mut report = ExtractReport::default();
    let plan = plan_moves(dest, staged, force, &mut report)?;
    let backup_dir = if plan.iter().any(|(_, r)| *r) {
        Some(unique_dir(dest, "-old")?)
    } else {
        None
    };
    let mut journal: Vec<Step> = Vec::new();
    let res = move_into_place(dest, staging, &plan, backup_dir.as_deref(), &mut journal);
    if res.is_err() {
        undo(journal);
    }
    if let Some(b) = &backup_dir {
        remove_staging(b);
    }
    res?;
    for (s, replace) in plan {
        if replace {
            report.replaced.push(s.rel.clone());
        }
        report.written.push(s.rel.clone());
        report.bytes += fs::metadata(dest.join(&s.rel))
            .map(|m| m.len())
            .unwrap_or(0);
    }
    Ok(report)
}

/// Which staged files to move, and whether each replaces an existing file. Files already present
/// with the same content are left alone (and reported identical); a different existing file is a
/// conflict unless `force`, and all conflicts are reported together.
fn plan_moves<'s>(
    dest: &Path,
    staged: &'s [Staged],
    force: bool,
    report: &mut ExtractReport,
) -> Result<Vec<(&'s Staged, bool)>> {
    let mut plan = Vec::new();
    let mut conflicts = Vec::new();
    for s in staged {
        refuse_writing_through_links(dest, &s.rel)?;
        let target = dest.join(&s.rel);
        match target.symlink_metadata() {
            Err(_) => plan.push((s, false)),
            Ok(m) if m.is_file() => {
                if hash_file(&target)? == s.sha {
                    report.identical.push(s.rel.clone());
                } else if force {
                    plan.push((s, true));
                } else {
                    conflicts.push(s.rel.clone());
                }
            }
            Ok(m) => {
                let kind = if m.file_type().is_symlink() {
                    "a symlink"
                } else {
                    "not a regular file"
                };
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "{} is {kind} in the destination; refusing to replace it",
                        target.display()
                    ),
                ));
            }
        }
    }
    if !conflicts.is_empty() {
        let shown: Vec<_> = conflicts
            .iter()
            .take(5)
            .map(|c| dest.join(c).display().to_string())
            .collect();
        return Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "the destination already holds {} different file(s): {}{}; use --force to replace them",
                conflicts.len(),
                shown.join(", "),
                if conflicts.len() > 5 { ", ..." } else { "" }
            ),
        ));
    }
    Ok(plan)
}

/// Every existing ancestor of `rel` inside `dest` must be a real directory: never write through a
/// link.
fn refuse_writing_through_links(dest: &Path, rel: &str) -> Result<()> {
    let mut prefix = PathBuf::from(dest);
    let parts: Vec<&str> = rel.split('/').collect();
    for part in &parts[..parts.len() - 1] {
        prefix.push(part);
        match prefix.symlink_metadata() {
            Ok(m) if m.is_dir() => {}
            Ok(m) => {
                let kind = if m.file_type().is_symlink() {
                    "a symlink"
                } else {
                    "not a directory"
                };
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "{} is {kind} in the destination; refusing to extract {rel} through it",
                        prefix.display(),
                    ),
                ));
            }
            Err(_) => break,
        }
    }
    Ok(())
}

/// Moves the planned files from `staging` into `dest`, creating missing directories and moving
/// replaced files into `backup_dir` first; each step is written to `journal` so it can be undone.
fn move_into_place(
    dest: &Path,
    staging: &Path,
    plan: &[(&Staged, bool)],
    backup_dir: Option<&Path>,
    journal: &mut Vec<Step>,
) -> Result<()> {
    for (s, replace) in plan {
        let target = dest.join(&s.rel);
        let mut prefix = PathBuf::from(dest);
        let parts: Vec<&str> = s.rel.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            prefix.push(part);
            if prefix.symlink_metadata().is_err() {
                fs::create_dir(&prefix).map_err(|e| Error::io("creating", &prefix, e))?;
                journal.push(Step::CreatedDir(prefix.clone()));
            }
        }
        if *replace {
            let backup = backup_dir
                .expect("made when replacing")
                .join(s.rel.replace('/', "%2F"));
            fs::rename(&target, &backup).map_err(|e| Error::io("moving aside", &target, e))?;
            journal.push(Step::BackedUp {
                original: target.clone(),
                backup,
            });
        }
        let from = staging.join(&s.rel);
        fs::rename(&from, &target).map_err(|e| Error::io("moving into place", &target, e))?;
        journal.push(Step::Moved { to: target, from });
    }
    Ok(())
}

/// Undoes the steps of a failed [`move_into_place`], last first, as far as it can.
fn undo(journal: Vec<Step>) {
    for step in journal.into_iter().rev() {
        match step {
            Step::CreatedDir(d) => {
                let _ = fs::remove_dir(d);
            }
            Step::Moved { to, from } => {
                let _ = fs::rename(&to, &from);
            }
            Step::BackedUp { original, backup } => {
                let _ = fs::rename(&backup, &original);
            }
        }
    }
}

fn hash_file(path: &Path) -> Result<[u8; 32]> {
    let mut f = File::open(path).map_err(|e| Error::io("reading", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::io("reading", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

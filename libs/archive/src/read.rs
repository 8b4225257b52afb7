//! Opening and checking replay archives (v2, kerblam-v1, and Kerblam! 1.x's own).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::context::read_capped;
use crate::deterministic_tar::{CHUNK, Progress, hex};
use crate::error::{Error, Result};
use crate::manifest::DataDirs;
use crate::member;
use crate::paths::safe_relative;
use crate::sums::{INNER_SEP, Sums};

/// Size caps for the members read into memory.
const CAP_MANIFEST: u64 = 16 << 20;
const CAP_NAME: u64 = 4096;
const CAP_PLAN: u64 = 256 << 20;
const CAP_SIGNATURE: u64 = 1 << 20;
const CAP_CRATE: u64 = 256 << 20;
const CAP_SUMS: u64 = 512 << 20;
/// Zero bytes tolerated after the end-of-archive marker (tar pads to records of 10 KiB).
pub(crate) const MAX_TRAILING_ZEROS: u64 = 1 << 20;

/// The layout of an opened archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `kerblam.replay/v2`.
    V2,
    /// Kerblam! 1.x's layout. `normalised` is true when every header has uid/gid 0, no user name
    /// and one shared mtime, i.e. kerblam's deterministic writer made it (`--format kerblam-v1`);
    /// false for an archive made by Kerblam! 1.x itself. A heuristic, for messages only: both are
    /// read the same way.
    KerblamV1 {
        /// Whether the headers look like kerblam's deterministic writer.
        normalised: bool,
    },
}

/// Where a member's content lies in the archive file.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub name: String,
    pub offset: u64,
    pub size: u64,
}

/// An opened, structurally checked replay archive. See the crate docs for what [`open`] checks.
///
/// [`open`]: ReplayArchive::open
#[derive(Debug)]
pub struct ReplayArchive {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    pub(crate) layout: Layout,
    pub(crate) members: Vec<Member>,
    pub(crate) manifest: Vec<u8>,
    pub(crate) name: Option<String>,
    pub(crate) plan: Option<Vec<u8>>,
    pub(crate) signature: Option<Vec<u8>>,
    pub(crate) ro_crate: Option<Vec<u8>>,
    pub(crate) sums: Option<Sums>,
    /// `data.tar.zst:` lines of `SHA256SUMS`, by entry path.
    pub(crate) data_sums: BTreeMap<String, [u8; 32]>,
    pub(crate) dirs: DataDirs,
}

impl ReplayArchive {
    /// Opens `path` and checks its structure, its small members and (v2) their checksums. The large
    /// members (`data.tar.*`, `image.tar`) are checked as they are read: by
    /// [`ReplayArchive::extract_data`], [`ReplayArchive::copy_image_to`], or [`ReplayArchive::verify`].
    pub fn open(path: &Path) -> Result<ReplayArchive> {
        let file = File::open(path).map_err(|e| Error::io("opening replay archive", path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| Error::io("reading metadata of", path, e))?;
        if !meta.is_file() {
            return Err(Error::input(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        let shown = path.display().to_string();
        let (members, normalised) = index(&file, meta.len(), &shown)?;
        let layout = layout_of(&members, normalised, &shown)?;
        refuse_missing_members(&members, layout, &shown)?;
        let small = SmallMembers::read(&file, &members, &shown)?;
        let (sums, data_sums) = match &small.sums {
            None => (None, BTreeMap::new()),
            Some(text) => {
                let (sums, data_sums) = check_sums(text, &members, &small, &shown)?;
                (Some(sums), data_sums)
            }
        };
        let name = small.name.map(|b| image_tag(b, &shown)).transpose()?;
        let dirs = DataDirs::from_manifest(&small.manifest)
            .map_err(|e| Error::invalid(format!("{shown}: {e}")))?;
        Ok(ReplayArchive {
            path: path.to_path_buf(),
            file,
            layout,
            members,
            manifest: small.manifest,
            name,
            plan: small.plan,
            signature: small.signature,
            ro_crate: small.ro_crate,
            sums,
            data_sums,
            dirs,
        })
    }

    /// The archive's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The detected layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// True when the archive carries `SHA256SUMS` (v2). Kerblam! 1.x archives carry no checksums,
    /// so their content cannot be verified; the CLI should say so.
    pub fn verified(&self) -> bool {
        self.sums.is_some()
    }

    /// The packaged `kerblam.toml`, verbatim.
    pub fn manifest(&self) -> &[u8] {
        &self.manifest
    }

    /// The data directories the manifest names (checked: relative, no `..`).
    pub fn data_dirs(&self) -> &DataDirs {
        &self.dirs
    }

    /// The image tag from `name` (whitespace-trimmed), if the member is present.
    pub fn image_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The plan JSON (v2).
    pub fn plan_json(&self) -> Option<&[u8]> {
        self.plan.as_deref()
    }

    /// The `signature.json` bytes, if any.
    pub fn signature(&self) -> Option<&[u8]> {
        self.signature.as_deref()
    }

    /// The `ro-crate-metadata.json` bytes (v2, written by kerblam since it records identifiers).
    pub fn ro_crate(&self) -> Option<&[u8]> {
        self.ro_crate.as_deref()
    }

    /// The parsed `SHA256SUMS` (v2).
    pub fn sums(&self) -> Option<&Sums> {
        self.sums.as_ref()
    }

    /// The size of the embedded `image.tar`, when there is one.
    pub fn image_size(&self) -> Option<u64> {
        self.member(member::IMAGE).map(|m| m.size)
    }

    /// True when an `image.tar` is embedded.
    pub fn has_image(&self) -> bool {
        self.member(member::IMAGE).is_some()
    }

    pub(crate) fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    /// A reader over the raw `image.tar` bytes (not verified while read: call
    /// [`ReplayArchive::verify`] first, or use [`ReplayArchive::copy_image_to`]).
    pub fn image_reader(&self) -> Option<impl Read + '_> {
        self.member(member::IMAGE)
            .map(|m| Section::new(&self.file, m.offset, m.size))
    }

    /// Streams `image.tar` into `out` (e.g. `docker load`'s stdin), hashing it; a checksum mismatch is
    /// reported at the end. Returns the bytes copied.
    pub fn copy_image_to(&self, out: &mut dyn Write, progress: Progress<'_>) -> Result<u64> {
        let m = self.member(member::IMAGE).ok_or_else(|| {
            Error::input(format!("{}: no image.tar is embedded", self.path.display()))
        })?;
        let mut r = Section::new(&self.file, m.offset, m.size);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        let mut done = 0u64;
        loop {
            let n = r
                .read(&mut buf)
                .map_err(|e| Error::io("reading image.tar from", &self.path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| Error::io("streaming image.tar from", &self.path, e))?;
            done += n as u64;
            if let Some(p) = progress {
                p(done, 0);
            }
        }
        self.check_member(member::IMAGE, hasher.finalize().into())?;
        Ok(done)
    }

    /// Hashes every member and compares with `SHA256SUMS` (a no-op check for archives without
    /// checksums). Data entries are checked by [`ReplayArchive::extract_data`].
    pub fn verify(&self, progress: Progress<'_>) -> Result<()> {
        let mut done = 0u64;
        for m in &self.members {
            let mut r = Section::new(&self.file, m.offset, m.size);
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = r
                    .read(&mut buf)
                    .map_err(|e| Error::io("reading", &self.path, e))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                done += n as u64;
                if let Some(p) = progress {
                    p(done, 0);
                }
            }
            if m.name != member::SUMS {
                self.check_member(&m.name, hasher.finalize().into())?;
            }
        }
        Ok(())
    }

    pub(crate) fn check_member(&self, name: &str, got: [u8; 32]) -> Result<()> {
        if let Some(want) = self.sums.as_ref().and_then(|s| s.get(name)) {
            if *want != got {
                return Err(mismatch(&self.path.display().to_string(), name, want, &got));
            }
        }
        Ok(())
    }
}

pub(crate) fn mismatch(archive: &str, name: &str, want: &[u8; 32], got: &[u8; 32]) -> Error {
    Error::invalid(format!(
        "{archive}: checksum mismatch for {name}: SHA256SUMS says {}, the content hashes to {}",
        hex(want),
        hex(got)
    ))
}

/// A `Read` over `size` bytes of `file` from `offset`, by positional reads.
pub(crate) struct Section<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl<'a> Section<'a> {
    pub(crate) fn new(file: &'a File, offset: u64, size: u64) -> Self {
        Section {
            file,
            pos: offset,
            end: offset + size,
        }
    }
}

impl Read for Section<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.pos;
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(left.min(usize::MAX as u64) as usize);
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive file shrank while being read",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

const KNOWN: [&str; 9] = [
    member::MANIFEST,
    member::NAME,
    member::PLAN,
    member::DATA_ZST,
    member::DATA_GZ,
    member::IMAGE,
    member::SIGNATURE,
    member::CRATE,
    member::SUMS,
];

/// The layout the members make: any v2 member means v2 (and then no `data.tar.gz`); otherwise
/// `data.tar.gz` means Kerblam! 1.x's layout; with neither it is not a replay archive.
fn layout_of(members: &[Member], normalised: bool, shown: &str) -> Result<Layout> {
    let has = |n: &str| members.iter().any(|m| m.name == n);
    if has(member::DATA_ZST) || has(member::SUMS) || has(member::PLAN) || has(member::IMAGE) {
        if has(member::DATA_GZ) {
            return Err(Error::invalid(format!(
                "{shown}: mixes the v2 layout (data.tar.zst, SHA256SUMS) with Kerblam! 1.x's (data.tar.gz)"
            )));
        }
        Ok(Layout::V2)
    } else if has(member::DATA_GZ) {
        Ok(Layout::KerblamV1 { normalised })
    } else {
        Err(Error::invalid(format!(
            "{shown}: not a replay archive: no data.tar.zst or data.tar.gz member"
        )))
    }
}

/// Every member the layout requires must be there.
fn refuse_missing_members(members: &[Member], layout: Layout, shown: &str) -> Result<()> {
    let required: &[&str] = match layout {
        Layout::V2 => &[
            member::MANIFEST,
            member::NAME,
            member::PLAN,
            member::DATA_ZST,
            member::SUMS,
        ],
        Layout::KerblamV1 { .. } => &[member::MANIFEST, member::DATA_GZ],
    };
    for r in required {
        if !members.iter().any(|m| m.name == *r) {
            let what = if *r == member::MANIFEST {
                " (the manifest)"
            } else {
                ""
            };
            return Err(Error::invalid(format!(
                "{shown}: the member {r}{what} is missing"
            )));
        }
    }
    Ok(())
}

/// The small members, read whole, each under its size cap.
struct SmallMembers {
    manifest: Vec<u8>,
    name: Option<Vec<u8>>,
    plan: Option<Vec<u8>>,
    signature: Option<Vec<u8>>,
    ro_crate: Option<Vec<u8>>,
    sums: Option<Vec<u8>>,
}

impl SmallMembers {
    fn read(file: &File, members: &[Member], shown: &str) -> Result<SmallMembers> {
        let read_small = |name: &str, cap: u64| -> Result<Option<Vec<u8>>> {
            let Some(m) = members.iter().find(|m| m.name == name) else {
                return Ok(None);
            };
            if m.size > cap {
                return Err(Error::invalid(format!(
                    "{shown}: member {name} is {} bytes, over the limit of {cap} bytes",
                    m.size
                )));
            }
            let mut r = Section::new(file, m.offset, m.size);
            read_capped(&mut r, cap, &format!("{shown}: member {name}")).map(Some)
        };
        Ok(SmallMembers {
            manifest: read_small(member::MANIFEST, CAP_MANIFEST)?.unwrap_or_default(),
            name: read_small(member::NAME, CAP_NAME)?,
            plan: read_small(member::PLAN, CAP_PLAN)?,
            signature: read_small(member::SIGNATURE, CAP_SIGNATURE)?,
            ro_crate: read_small(member::CRATE, CAP_CRATE)?,
            sums: read_small(member::SUMS, CAP_SUMS)?,
        })
    }
}

/// Parses `SHA256SUMS` and checks it against the archive: it lists every member but itself and no
/// other, inner entries only of `data.tar.zst` (returned by path), and the small members match.
fn check_sums(
    text: &[u8],
    members: &[Member],
    small: &SmallMembers,
    shown: &str,
) -> Result<(Sums, BTreeMap<String, [u8; 32]>)> {
    let sums = Sums::parse(text).map_err(|e| Error::invalid(format!("{shown}: {e}")))?;
    let mut data_sums = BTreeMap::new();
    for (n, sha) in &sums.lines {
        if let Some((m, inner)) = n.split_once(INNER_SEP) {
            if m != member::DATA_ZST {
                return Err(Error::invalid(format!(
                    "{shown}: SHA256SUMS lists {n:?}, but only data.tar.zst has inner entries"
                )));
            }
            let inner = safe_relative(inner.as_bytes(), "SHA256SUMS")
                .map_err(|e| Error::invalid(format!("{shown}: {e}")))?;
            data_sums.insert(inner, *sha);
        } else if n == member::SUMS || !members.iter().any(|m| m.name == *n) {
            return Err(Error::invalid(format!(
                "{shown}: SHA256SUMS lists {n:?}, which is not a member of the archive"
            )));
        }
    }
    for m in members {
        if m.name != member::SUMS && sums.get(&m.name).is_none() {
            return Err(Error::invalid(format!(
                "{shown}: member {} has no line in SHA256SUMS",
                m.name
            )));
        }
    }
    let read = [
        (member::MANIFEST, Some(&small.manifest)),
        (member::NAME, small.name.as_ref()),
        (member::PLAN, small.plan.as_ref()),
        (member::SIGNATURE, small.signature.as_ref()),
        (member::CRATE, small.ro_crate.as_ref()),
    ];
    for (n, bytes) in read {
        if let (Some(bytes), Some(want)) = (bytes, sums.get(n)) {
            let got: [u8; 32] = Sha256::digest(bytes).into();
            if &got != want {
                return Err(mismatch(shown, n, want, &got));
            }
        }
    }
    Ok((sums, data_sums))
}

/// The `name` member: one image tag, UTF-8, surrounding whitespace ignored.
fn image_tag(bytes: Vec<u8>, shown: &str) -> Result<String> {
    let s = String::from_utf8(bytes)
        .map_err(|_| Error::invalid(format!("{shown}: member name is not valid UTF-8")))?;
    let s = s.trim().to_string();
    if s.is_empty() || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::invalid(format!(
            "{shown}: member name holds {s:?}, which is not an image tag"
        )));
    }
    Ok(s)
}

/// Walks the outer tar's headers. Returns the members and whether all headers look normalised.
fn index(file: &File, len: u64, shown: &str) -> Result<(Vec<Member>, bool)> {
    let blocks = Blocks { file, len, shown };
    let mut members: Vec<Member> = Vec::new();
    let mut pos = 0u64;
    let mut block = [0u8; 512];
    let mut normalised = true;
    let mut mtime0: Option<u64> = None;
    loop {
        if !blocks.read(pos, &mut block)? {
            return Err(Error::invalid(format!(
                "{shown}: truncated: the archive ends at byte {len} without an end-of-archive marker"
            )));
        }
        if block.iter().all(|b| *b == 0) {
            blocks.refuse_anything_after_the_end(pos)?;
            break;
        }
        refuse_bad_checksum(&block, pos, shown)?;
        let header = tar::Header::from_byte_slice(&block);
        let name = String::from_utf8_lossy(&header.path_bytes()).into_owned();
        refuse_unexpected_member(header, &name, &members, pos, shown)?;
        let size = header.size().map_err(|_| {
            Error::invalid(format!(
                "{shown}: member {name:?} has an unreadable size field"
            ))
        })?;
        let offset = pos + 512;
        if offset.checked_add(size).is_none_or(|end| end > len) {
            return Err(Error::invalid(format!(
                "{shown}: truncated: member {name:?} declares {size} bytes but the archive ends {} bytes in",
                len - offset
            )));
        }
        let uid = header.uid().unwrap_or(1);
        let gid = header.gid().unwrap_or(1);
        let uname = header.username_bytes().unwrap_or(b"");
        let mtime = header.mtime().unwrap_or(0);
        if uid != 0 || gid != 0 || !uname.is_empty() || mtime0.is_some_and(|m| m != mtime) {
            normalised = false;
        }
        mtime0.get_or_insert(mtime);
        members.push(Member { name, offset, size });
        pos = offset + size.div_ceil(512) * 512;
    }
    Ok((members, normalised))
}

/// The outer tar's 512-byte blocks.
struct Blocks<'a> {
    file: &'a File,
    len: u64,
    shown: &'a str,
}

impl Blocks<'_> {
    /// Reads the block at `pos`; false when the file ends before it does.
    fn read(&self, pos: u64, block: &mut [u8; 512]) -> Result<bool> {
        if pos + 512 > self.len {
            return Ok(false);
        }
        self.file
            .read_exact_at(block, pos)
            .map_err(|e| Error::io("reading", Path::new(self.shown), e))?;
        Ok(true)
    }

    /// The end-of-archive marker starting at `pos` is two zero blocks, and at most
    /// [`MAX_TRAILING_ZEROS`] bytes of zeros follow it.
    fn refuse_anything_after_the_end(&self, pos: u64) -> Result<()> {
        let (shown, len) = (self.shown, self.len);
        let mut block = [0u8; 512];
        if !self.read(pos + 512, &mut block)? {
            return Err(Error::invalid(format!(
                "{shown}: truncated: the end-of-archive marker at byte {pos} is incomplete"
            )));
        }
        if block.iter().any(|b| *b != 0) {
            return Err(Error::invalid(format!(
                "{shown}: unexpected data after the end-of-archive marker at byte {pos}"
            )));
        }
        let rest = len - (pos + 1024);
        if rest > MAX_TRAILING_ZEROS {
            return Err(Error::invalid(format!(
                "{shown}: {rest} bytes of trailing data after the end of the archive"
            )));
        }
        let mut tail = vec![0u8; rest as usize];
        self.file
            .read_exact_at(&mut tail, pos + 1024)
            .map_err(|e| Error::io("reading", Path::new(shown), e))?;
        if tail.iter().any(|b| *b != 0) {
            return Err(Error::invalid(format!(
                "{shown}: trailing garbage after the end of the archive (byte {})",
                pos + 1024
            )));
        }
        Ok(())
    }
}

/// A header whose stored checksum does not match its bytes is damage.
fn refuse_bad_checksum(block: &[u8; 512], pos: u64, shown: &str) -> Result<()> {
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let sum: u32 = block[..148]
        .iter()
        .chain(&block[156..])
        .map(|b| *b as u32)
        .sum::<u32>()
        + 8 * 32;
    if stored != Some(sum) {
        return Err(Error::invalid(format!(
            "{shown}: corrupt tar header at byte {pos} (checksum mismatch); the archive is damaged"
        )));
    }
    Ok(())
}

/// A replay archive holds only regular files, each a known member, each once.
fn refuse_unexpected_member(
    header: &tar::Header,
    name: &str,
    members: &[Member],
    pos: u64,
    shown: &str,
) -> Result<()> {
    let kind = header.entry_type();
    if !(kind.is_file()) {
        let what = match kind {
            tar::EntryType::Symlink => "a symlink",
            tar::EntryType::Link => "a hardlink",
            tar::EntryType::Char | tar::EntryType::Block => "a device node",
            tar::EntryType::Fifo => "a FIFO",
            tar::EntryType::Directory => "a directory",
            tar::EntryType::GNULongName
            | tar::EntryType::XHeader
            | tar::EntryType::XGlobalHeader => "an extended header",
            _ => "not a regular file",
        };
        return Err(Error::invalid(format!(
            "{shown}: member {name:?} at byte {pos} is {what}; a replay archive holds only regular files"
        )));
    }
    if !KNOWN.contains(&name) {
        return Err(Error::invalid(format!(
            "{shown}: unexpected member {name:?} at byte {pos}; a replay archive holds only {}",
            KNOWN.join(", ")
        )));
    }
    if members.iter().any(|m| m.name == name) {
        return Err(Error::invalid(format!(
            "{shown}: member {name:?} appears twice"
        )));
    }
    Ok(())
}

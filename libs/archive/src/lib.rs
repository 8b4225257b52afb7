//! Replay archives, deterministic tar writing and safe extraction for kerblam.
//!
//! This crate is the one implementation of kerblam's archive formats, used by the CLI and by every
//! backend plugin (docker, podman, tarball, ...). It does no terminal output; long operations take
//! a [`Progress`] callback `(bytes_done, files_done)`.
//!
//! # Deterministic tar ([`DetTar`])
//!
//! A builder over `tar::Builder` that writes normalised GNU headers: one mtime for every entry,
//! uid/gid 0, no user/group names, modes `0644`/`0755` (the executable bit kept), long names via
//! `././@LongLink`. Files are streamed from disk and hashed on the way (each read once); a file that
//! changes size or mtime while read is an error naming the path ([`ErrorKind::ChangedWhileReading`]).
//!
//! **The mtime choice.** [`TarOptions::mtime`] is `SOURCE_DATE_EPOCH` when the caller finds it set
//! ([`TarOptions::from_env`]) and **0** otherwise. So archives are byte-identical for identical
//! inputs whether or not `SOURCE_DATE_EPOCH` is set; original mtimes are not carried (extracted
//! files get the time they are written). Tests pass the mtime explicitly instead of touching the
//! process environment.
//!
//! [`write_build_context`] streams a plan's build [`kerblam_plan::Context`] plus generated entries
//! (Containerfile, kerblam executable, replay script) to any writer: an engine's stdin or
//! `<pipe>.context.tar`.
//!
//! # Replay archives ([`ReplayWriter`], [`ReplayArchive`])
//!
//! Format `kerblam.replay/v2` (the default): an uncompressed tar with, in order, `kerblam.toml`,
//! `name`, `plan.json`, `data.tar.zst` (zstd level 3 on all cores, data paths relative to the project
//! root such as `data/in/precious.txt`), optional `image.tar`, optional `signature.json`, and
//! `SHA256SUMS` last, which lists every member and every data entry as
//! `<hex>  data.tar.zst:data/in/precious.txt`. The archive is written to `<final>.tmp-<pid>-<n>` and
//! renamed when complete; an error or a drop before [`ReplayWriter::finish`] removes the temporary.
//!
//! Format `kerblam-v1` is Kerblam! 1.x's layout, read from its sources (`src/commands/package.rs`,
//! `replay.rs`, `utils.rs` of `MrHedmad/kerblam`):
//!
//! - an uncompressed tar holding, in this order, `kerblam.toml` (the manifest, verbatim),
//!   `data.tar.gz`, `name`, and `signature.json` only with `--sign`; no checksums, no plan;
//! - `data.tar.gz` is a gzip (flate2, default level, one member: 1.x reads it with `GzDecoder`) of a
//!   tar of the precious files with paths **relative to the input data directory** (1.x strips
//!   `input_data_dir()` with `strip_prefix`), files only, no directory entries; replay unpacks it
//!   into `data.paths.input` (default `data/in`; output `data/out`, intermediate `data`);
//! - `name` holds the image tag with no trailing newline (`write!(f, "{}", tag)`);
//! - `signature.json` is `{"name":…,"email":…,"on":…}` from `git config user.name/user.email` and
//!   chrono's `Utc::now().to_string()` — an authorship note, not a cryptographic signature
//!   ([`Signature`]).
//!
//! kerblam writes that layout exactly (with normalised headers and parallel single-member gzip, see
//! [`GzWriter`]) and reads it, whether written by kerblam or by 1.x ([`Layout::KerblamV1`]).
//! Such archives carry no checksums; [`ReplayArchive::verified`] says so.
//!
//! # Safe extraction
//!
//! [`ReplayArchive::open`] parses the outer tar itself (regular members only, known names, no
//! duplicates, intact headers, no truncation, nothing but zeros after the end marker), reads the
//! small members with size caps, checks them against `SHA256SUMS`, and refuses a manifest whose data
//! paths are absolute or escape with `..`. [`ReplayArchive::extract_data`] decompresses the data into
//! a staging directory inside the destination (`dest/.kerblam-replay-<pid>-<n>`), refusing links of
//! any kind (symlinks and hardlinks are refused outright: precious data are plain files), device
//! nodes, FIFOs, `..`, absolute and non-UTF-8 names, over-long names, duplicates, and decompression
//! bombs ([`Limits`]); it checks every entry and the data member against `SHA256SUMS`, and only then
//! moves the files into place, refusing to replace different existing files unless `force`. On any
//! failure the staging directory is removed and the destination is left as it was found.

#![warn(missing_docs)]

mod atomic;
mod context;
mod deterministic_tar;
mod error;
mod extract;
pub mod fault;
mod gzip;
mod hashing_streams;
mod manifest;
mod paths;
#[cfg(feature = "plugin")]
pub mod plugin;
mod read;
mod signature;
mod sums;
mod write;

pub use atomic::{
    AtomicFile, process_alive, remove_stale_temporaries, remove_temporaries, temp_name,
};
pub use context::{
    ContextSummary, ExtraEntry, ExtraSource, WrittenContext, write_build_context,
    write_build_context_file,
};
pub use deterministic_tar::{
    Appended, Cancel, DetTar, Progress, TarOptions, hex, normalise_mode, source_date_epoch,
};
pub use error::{Error, ErrorKind, Result};
pub use extract::{ExtractOptions, ExtractReport, Limits};
pub use gzip::GzWriter;
pub use hashing_streams::{HashReader, HashWriter};
pub use manifest::DataDirs;
pub use paths::{MAX_COMPONENT_BYTES, MAX_PATH_BYTES, safe_relative};
pub use read::{Layout, ReplayArchive};
pub use signature::{Signature, utc_string};
pub use sums::Sums;
pub use write::{FinishedArchive, ReplayContents, ReplayOptions, ReplayWriter, WrittenArchive};

/// The format identifier of the default replay archive layout.
pub const REPLAY_FORMAT_V2: &str = "kerblam.replay/v2";

/// Member names inside a replay archive.
pub mod member {
    /// The project manifest.
    pub const MANIFEST: &str = "kerblam.toml";
    /// The image tag.
    pub const NAME: &str = "name";
    /// The package plan (v2).
    pub const PLAN: &str = "plan.json";
    /// The data archive (v2).
    pub const DATA_ZST: &str = "data.tar.zst";
    /// The data archive (kerblam-v1 / Kerblam! 1.x).
    pub const DATA_GZ: &str = "data.tar.gz";
    /// The embedded image archive (v2, optional).
    pub const IMAGE: &str = "image.tar";
    /// The RO-Crate 1.1 description of the package (v2, optional): the pipe, its inputs with
    /// their checksums, the image and its ID.
    pub const CRATE: &str = "ro-crate-metadata.json";
    /// The packager's signature (optional).
    pub const SIGNATURE: &str = "signature.json";
    /// The checksum list (v2, last).
    pub const SUMS: &str = "SHA256SUMS";
}

/// Which replay archive layout to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFormat {
    /// `kerblam.replay/v2`: zstd data, plan, checksums, optional image.
    V2,
    /// Kerblam! 1.x's layout, so a 1.x install can replay it.
    KerblamV1,
}

impl ReplayFormat {
    /// The format named by `--format` (`None` is the default, v2). Accepts `kerblam-v2`,
    /// `kerblam.replay/v2`, `v2` and `kerblam-v1`; anything else is an error listing them.
    pub fn from_option(value: Option<&str>) -> Result<Self> {
        match value {
            None | Some("kerblam-v2") | Some("v2") | Some(REPLAY_FORMAT_V2) => Ok(ReplayFormat::V2),
            Some("kerblam-v1") | Some("v1") => Ok(ReplayFormat::KerblamV1),
            Some(other) => Err(Error::input(format!(
                "unknown replay archive format {other:?}; expected kerblam-v2 (default) or kerblam-v1"
            ))),
        }
    }
}

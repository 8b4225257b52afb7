//! Raw tar crafting for the replay-archive target: headers written byte by byte (no safety checks of
//! the tar crate), so that the fuzzer can reach every branch of the reader.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn octal(field: &mut [u8], value: u64) {
    let s = format!("{:0width$o}", value, width = field.len() - 1);
    let s = &s.as_bytes()[s.len().saturating_sub(field.len() - 1)..];
    field[..s.len()].copy_from_slice(s);
    field[field.len() - 1] = 0;
}

/// One raw tar entry.
#[derive(Debug, Clone)]
pub struct Raw {
    /// The name bytes (over 100 bytes: a GNU `././@LongLink` entry first).
    pub name: Vec<u8>,
    /// The type flag.
    pub kind: u8,
    /// The link name.
    pub link: Vec<u8>,
    /// The content.
    pub data: Vec<u8>,
    /// The size field, when it should differ from the content's length.
    pub declared: Option<u64>,
    /// One header byte overwritten before the checksum is computed (offset modulo 512).
    pub patch: Option<(u16, u8)>,
    /// Leave the header checksum wrong.
    pub bad_checksum: bool,
}

impl Raw {
    /// A regular file.
    pub fn file(name: &str, data: &[u8]) -> Raw {
        Raw {
            name: name.as_bytes().to_vec(),
            kind: b'0',
            link: vec![],
            data: data.to_vec(),
            declared: None,
            patch: None,
            bad_checksum: false,
        }
    }
}

fn header(e: &Raw, name: &[u8], kind: u8, size: u64, out: &mut Vec<u8>) {
    let short: &[u8] = if name.len() > 100 {
        let mut long = name.to_vec();
        long.push(0);
        let l = Raw {
            kind: b'L',
            link: vec![],
            data: long.clone(),
            declared: None,
            patch: None,
            bad_checksum: false,
            name: b"././@LongLink".to_vec(),
        };
        header(&l, &l.name, b'L', long.len() as u64, out);
        out.extend(pad(&long));
        &name[..100]
    } else {
        name
    };
    let mut h = [0u8; 512];
    h[..short.len()].copy_from_slice(short);
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    if size < 0o77777777777 {
        octal(&mut h[124..136], size);
    } else {
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    octal(&mut h[136..148], 0);
    h[156] = kind;
    let link = &e.link[..e.link.len().min(100)];
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..265].copy_from_slice(b"ustar  \0");
    if let Some((at, b)) = e.patch {
        h[at as usize % 512] = b;
    }
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum::<u32>() + u32::from(e.bad_checksum);
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(&s.as_bytes()[..8]);
    out.extend_from_slice(&h);
}

/// `data` zero-padded to a multiple of 512 bytes.
pub fn pad(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    v.resize(data.len().div_ceil(512) * 512, 0);
    v
}

/// A tar of `entries` with the end-of-archive marker.
pub fn tar(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let size = e.declared.unwrap_or(e.data.len() as u64);
        header(e, &e.name, e.kind, size, &mut out);
        out.extend(pad(&e.data));
    }
    out.extend([0u8; 1024]);
    out
}

/// The lowercase hex SHA-256 of `data`.
pub fn sha(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every path below `root` (not following links): kind, size and content hash, or link target.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.expect("readable dir entry").path();
        let m = fs::symlink_metadata(&p).expect("metadata of an entry just listed");
        let rel = p.strip_prefix(root).expect("below root").to_path_buf();
        if m.file_type().is_symlink() {
            let target = fs::read_link(&p).expect("a link");
            out.insert(rel, format!("link -> {}", target.display()));
        } else if m.is_dir() {
            out.insert(rel, "dir".into());
            walk(root, &p, out);
        } else {
            let data = fs::read(&p).expect("a readable file");
            out.insert(rel, format!("file {} {}", m.len(), sha(&data)));
        }
    }
}

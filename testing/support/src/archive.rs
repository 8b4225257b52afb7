//! Raw tar crafting, fixtures and tree snapshots for replay archives: kerblam-archive's tests and the
//! hostile-archive [`corpus`](crate::corpus) use them.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// One raw tar entry, written without any of the tar crate's safety checks.
pub struct Raw {
    pub name: Vec<u8>,
    pub kind: u8,
    pub link: Vec<u8>,
    pub data: Vec<u8>,
    /// Overrides the size field (to declare more than `data` holds).
    pub declared: Option<u64>,
}

impl Raw {
    pub fn file(name: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> Raw {
        Raw {
            name: name.as_ref().to_vec(),
            kind: b'0',
            link: vec![],
            data: data.as_ref().to_vec(),
            declared: None,
        }
    }
    pub fn kind(name: impl AsRef<[u8]>, kind: u8, link: impl AsRef<[u8]>) -> Raw {
        Raw {
            name: name.as_ref().to_vec(),
            kind,
            link: link.as_ref().to_vec(),
            data: vec![],
            declared: None,
        }
    }
}

fn octal(field: &mut [u8], value: u64) {
    let s = format!("{:0width$o}", value, width = field.len() - 1);
    field[..s.len()].copy_from_slice(s.as_bytes());
    field[field.len() - 1] = 0;
}

/// A 512-byte header. Names over 100 bytes get a GNU `L` entry first (returned before the header).
pub fn header(name: &[u8], kind: u8, size: u64, link: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let short: &[u8] = if name.len() > 100 {
        let mut data = name.to_vec();
        data.push(0);
        out.extend(header(b"././@LongLink", b'L', data.len() as u64, b""));
        out.extend(pad(&data));
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
    h[157..157 + link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
    h[257..265].copy_from_slice(b"ustar  \0");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    out.extend_from_slice(&h);
    out
}

pub fn pad(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    v.resize(data.len().div_ceil(512) * 512, 0);
    v
}

/// A raw tar of `entries` with the end-of-archive marker.
pub fn raw_tar(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.extend(header(
            &e.name,
            e.kind,
            e.declared.unwrap_or(e.data.len() as u64),
            &e.link,
        ));
        out.extend(pad(&e.data));
    }
    out.extend([0u8; 1024]);
    out
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn sha(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub const MANIFEST: &[u8] = b"[data.paths]\ninput = \"data/in\"\noutput = \"data/out\"\n";

/// The members of a well-formed v2 archive around `data` (a compressed data member) whose entries
/// are `entries` (path, content) for SHA256SUMS. Callers mutate the list to make it hostile.
pub fn v2_members(data: Vec<u8>, entries: &[(&str, &[u8])]) -> Vec<(String, u8, Vec<u8>)> {
    let mut m: Vec<(String, u8, Vec<u8>)> = vec![
        ("kerblam.toml".into(), b'0', MANIFEST.to_vec()),
        ("name".into(), b'0', b"proc_exec".to_vec()),
        ("plan.json".into(), b'0', b"{}".to_vec()),
        ("data.tar.zst".into(), b'0', data),
    ];
    let mut sums = String::new();
    for (n, _, d) in &m {
        sums.push_str(&format!("{}  {n}\n", sha(d)));
        if n == "data.tar.zst" {
            for (p, c) in entries {
                sums.push_str(&format!("{}  data.tar.zst:{p}\n", sha(c)));
            }
        }
    }
    m.push(("SHA256SUMS".into(), b'0', sums.into_bytes()));
    m
}

pub fn outer(members: &[(String, u8, Vec<u8>)]) -> Vec<u8> {
    let raws: Vec<Raw> = members
        .iter()
        .map(|(n, k, d)| Raw {
            name: n.clone().into_bytes(),
            kind: *k,
            link: vec![],
            data: d.clone(),
            declared: None,
        })
        .collect();
    raw_tar(&raws)
}

/// Recomputes the SHA256SUMS line of every member except SHA256SUMS (keeps entry lines).
pub fn resum(members: &mut [(String, u8, Vec<u8>)]) {
    let hashes: BTreeMap<String, String> = members
        .iter()
        .map(|(n, _, d)| (n.clone(), sha(d)))
        .collect();
    for (n, _, d) in members.iter_mut() {
        if n == "SHA256SUMS" {
            let text = String::from_utf8(d.clone()).unwrap();
            let mut out = String::new();
            for line in text.lines() {
                let (_, name) = line.split_at(66);
                match hashes.get(name) {
                    Some(h) => out.push_str(&format!("{h}  {name}\n")),
                    None => out.push_str(&format!("{line}\n")),
                }
            }
            *d = out.into_bytes();
        }
    }
}

/// Every path below `root` (not following links): kind, size, content hash or link target.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let m = fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        if m.file_type().is_symlink() {
            out.insert(
                rel,
                format!("link -> {}", fs::read_link(&p).unwrap().display()),
            );
        } else if m.is_dir() {
            out.insert(rel, "dir".into());
            walk(root, &p, out);
        } else {
            out.insert(
                rel,
                format!("file {} {}", m.len(), sha(&fs::read(&p).unwrap())),
            );
        }
    }
}

/// A small project: kerblam.toml and some precious data, with files of several sizes.
pub fn project(root: &Path) -> Vec<String> {
    fs::create_dir_all(root.join("data/in/sub")).unwrap();
    fs::write(root.join("kerblam.toml"), MANIFEST).unwrap();
    fs::write(root.join("data/in/precious.txt"), b"precious\n").unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| b"ACGT\n"[(i % 5) as usize] ^ ((i / 4099) % 3) as u8)
        .collect();
    fs::write(root.join("data/in/sub/big.csv"), &big).unwrap();
    fs::write(root.join("data/in/empty.txt"), b"").unwrap();
    let long = format!("data/in/{}.txt", "l".repeat(150));
    fs::write(root.join(&long), b"long name\n").unwrap();
    vec![
        "data/in/precious.txt".into(),
        "data/in/sub/big.csv".into(),
        "data/in/empty.txt".into(),
        long,
    ]
}

//! The replay-archive reader: `ReplayArchive::open`, `verify`, then `extract_data` into a
//! destination inside a scratch tree, as `kerblam replay` does. Whatever the archive holds, nothing
//! may change outside the destination, a refused archive leaves the whole tree as it was found, and
//! no staging directory survives.
//!
//! The first input byte picks the mode. Even: the rest is the archive file, byte for byte (seeded
//! with archives written by `ReplayWriter` and the hostile corpus). Odd: the rest drives a crafted
//! archive (`Crafted`) whose tar headers, compression and SHA256SUMS are right unless the input says
//! otherwise, so that the fuzzer gets past the checksums to the extraction.
#![no_main]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use kerblam_archive::{ExtractOptions, Limits, ReplayArchive};
use kerblam_fuzz::craft::{Raw, sha, snapshot, tar};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Device,
    Fifo,
    Other(u8),
}

#[derive(Arbitrary, Debug)]
struct Entry {
    /// Prefix the name with the manifest's input directory (v2), as kerblam writes it.
    under_input: bool,
    name: Vec<u8>,
    kind: Kind,
    link: Vec<u8>,
    data: Vec<u8>,
    /// `(byte, n)`: the content is `n` × 4 KiB of `byte` instead (a bomb, a limit).
    fill: Option<(u8, u8)>,
    /// Added to the size field (negative: declares less than it holds).
    declared_delta: Option<i16>,
    patch: Option<(u16, u8)>,
    bad_checksum: bool,
    /// 0: a right SHA256SUMS line; 1: none; 2: a wrong one.
    listed: u8,
}

#[derive(Arbitrary, Debug)]
enum InputDir {
    Default,
    DataIn,
    Dot,
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Dest {
    Missing,
    Empty,
    Keep,
    /// The first component of the input directory is a symlink to `outside/`.
    LinkOutside,
    /// The input directory is a regular file.
    FileInTheWay,
    /// The first regular entry is already there, with the same content or not.
    Present {
        same: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct Crafted {
    v1: bool,
    input: InputDir,
    /// Appended to the manifest (none: the manifest is just `[data.paths]`).
    manifest_extra: Option<String>,
    /// The `name` member (none: a valid image tag).
    name: Option<String>,
    entries: Vec<Entry>,
    inner_trailing: Vec<u8>,
    compressed_trailing: Vec<u8>,
    signature: Option<Vec<u8>>,
    image: Option<Vec<u8>>,
    plan: Option<String>,
    /// A member whose SHA256SUMS line is dropped (index, modulo) or made wrong.
    drop_sum: Option<u8>,
    wrong_sum: Option<u8>,
    extra_sum_line: Option<String>,
    duplicate_member: Option<u8>,
    outer_trailing: Vec<u8>,
    dest: Dest,
    force: bool,
}

/// `KERBLAM_FUZZ_TRACE=1` prints the outcome of every input (to see what a corpus reaches).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("KERBLAM_FUZZ_TRACE").is_some())
}

/// A scratch directory for this process, in memory when possible.
fn base() -> &'static Path {
    static BASE: OnceLock<tempfile::TempDir> = OnceLock::new();
    BASE.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            tempfile::Builder::new()
                .prefix("kerblam-fuzz-")
                .tempdir_in(shm)
        } else {
            tempfile::Builder::new().prefix("kerblam-fuzz-").tempdir()
        }
        .expect("a scratch directory")
    })
    .path()
}

fn input_dir(d: &InputDir) -> Option<String> {
    match d {
        InputDir::Default => None,
        InputDir::DataIn => Some("data/in".into()),
        InputDir::Dot => Some(".".into()),
        InputDir::Raw(s) => Some(s.clone()),
    }
}

/// A file to put into the destination before the run: its path there and its content.
type Present = Option<(String, Vec<u8>)>;

/// The crafted archive's bytes, and its first regular file as it would land in the destination.
fn build(c: &Crafted) -> (Vec<u8>, Present) {
    let input = input_dir(&c.input);
    let mut manifest = String::new();
    if let Some(i) = &input {
        manifest.push_str(&format!(
            "[data.paths]\ninput = {}\n",
            toml_edit::Value::from(i.as_str())
        ));
    }
    manifest.push_str(c.manifest_extra.as_deref().unwrap_or(""));
    // The input directory as the reader normalises it (for entry names).
    let prefix = kerblam_archive::DataDirs::from_manifest(manifest.as_bytes())
        .map(|d| d.input)
        .unwrap_or_else(|_| "data/in".into());
    let mut entry_sums = String::new();
    let mut first_file: Present = None;
    let raws: Vec<Raw> = c
        .entries
        .iter()
        .map(|e| {
            let mut name = Vec::new();
            if e.under_input && !c.v1 && !prefix.is_empty() {
                name.extend_from_slice(prefix.as_bytes());
                name.push(b'/');
            }
            name.extend_from_slice(&e.name);
            let data = match e.fill {
                Some((b, n)) => vec![b; n as usize * 4096],
                None => e.data.clone(),
            };
            let kind = match e.kind {
                Kind::File => b'0',
                Kind::Dir => b'5',
                Kind::Symlink => b'2',
                Kind::Hardlink => b'1',
                Kind::Device => b'3',
                Kind::Fifo => b'6',
                Kind::Other(k) => k,
            };
            let shown = String::from_utf8_lossy(&name).into_owned();
            if kind == b'0' && first_file.is_none() {
                let landed = if c.v1 && !prefix.is_empty() {
                    format!("{prefix}/{shown}")
                } else {
                    shown.clone()
                };
                first_file = Some((landed, data.clone()));
            }
            let sum = match e.listed % 3 {
                0 => Some(sha(&data)),
                1 => None,
                _ => Some(sha(b"not the content")),
            };
            if let Some(sum) = sum
                && !shown.contains('\n')
            {
                entry_sums.push_str(&format!("{sum}  data.tar.zst:{shown}\n"));
            }
            let declared = e
                .declared_delta
                .map(|d| (data.len() as i64 + d as i64).max(0) as u64);
            Raw {
                name,
                kind,
                link: e.link.clone(),
                data,
                declared,
                patch: e.patch,
                bad_checksum: e.bad_checksum,
            }
        })
        .collect();
    let mut inner = tar(&raws);
    inner.extend_from_slice(&c.inner_trailing);
    let mut data = if c.v1 {
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&inner).expect("gzip in memory");
        z.finish().expect("gzip in memory")
    } else {
        zstd::stream::encode_all(&inner[..], 1).expect("zstd in memory")
    };
    data.extend_from_slice(&c.compressed_trailing);

    let name = c.name.as_deref().unwrap_or("fuzz_exec").as_bytes().to_vec();
    let mut members: Vec<(String, Vec<u8>)> = vec![("kerblam.toml".into(), manifest.into_bytes())];
    if c.v1 {
        members.push(("data.tar.gz".into(), data));
        members.push(("name".into(), name.clone()));
    } else {
        members.push(("name".into(), name.clone()));
        let plan = c.plan.clone().unwrap_or_else(|| "{}".into());
        members.push(("plan.json".into(), plan.into_bytes()));
        members.push(("data.tar.zst".into(), data));
        if let Some(image) = &c.image {
            members.push(("image.tar".into(), image.clone()));
        }
    }
    if let Some(sig) = &c.signature {
        members.push(("signature.json".into(), sig.clone()));
    }
    if let Some(i) = c.duplicate_member {
        let m = members[i as usize % members.len()].clone();
        members.push(m);
    }
    if !c.v1 {
        let mut sums = String::new();
        for (i, (n, d)) in members.iter().enumerate() {
            if c.drop_sum.is_some_and(|k| k as usize % members.len() == i) {
                continue;
            }
            let wrong = c.wrong_sum.is_some_and(|k| k as usize % members.len() == i);
            sums.push_str(&format!("{}  {n}\n", sha(if wrong { b"x" } else { d })));
            if n == "data.tar.zst" {
                sums.push_str(&entry_sums);
            }
        }
        if let Some(extra) = &c.extra_sum_line {
            sums.push_str(extra);
        }
        members.push(("SHA256SUMS".into(), sums.into_bytes()));
    }
    let outer: Vec<Raw> = members.iter().map(|(n, d)| Raw::file(n, d)).collect();
    let mut bytes = tar(&outer);
    bytes.extend_from_slice(&c.outer_trailing);
    (bytes, first_file)
}

fn prepare(dest: &Path, outside: &Path, how: &Dest, input: &str, present: &Present) {
    if matches!(how, Dest::Missing) {
        return;
    }
    fs::create_dir_all(dest).expect("dest");
    let first = input
        .split('/')
        .find(|s| !s.is_empty() && *s != ".")
        .unwrap_or("data");
    match how {
        Dest::Missing | Dest::Empty => {}
        Dest::Keep => fs::write(dest.join("keep.txt"), b"mine").expect("keep.txt"),
        Dest::LinkOutside => {
            let _ = std::os::unix::fs::symlink(outside, dest.join(first));
        }
        Dest::FileInTheWay => {
            let _ = fs::write(dest.join(first), b"in the way");
        }
        Dest::Present { same } => {
            // Only names that stay inside the destination: the setup itself must not escape.
            let Some((name, data)) = present else { return };
            if name.starts_with('/') || name.split('/').any(|c| c == "..") || name.contains('\0') {
                return;
            }
            let target = dest.join(name);
            if let Some(p) = target.parent() {
                let _ = fs::create_dir_all(p);
            }
            let _ = fs::write(&target, if *same { &data[..] } else { b"different" });
        }
    }
}

fn run(archive: &[u8], how: &Dest, input: &str, present: &Present, force: bool) {
    let base = base();
    let case = base.join("case");
    let _ = fs::remove_dir_all(&case);
    let outside = case.join("outside");
    fs::create_dir_all(&outside).expect("outside");
    fs::write(outside.join("sentinel.txt"), b"do not touch").expect("sentinel");
    let path = case.join("case.kerblam.tar");
    fs::write(&path, archive).expect("the archive");
    let dest: PathBuf = case.join("nest/dest");
    fs::create_dir_all(case.join("nest")).expect("nest");
    prepare(&dest, &outside, how, input, present);
    let before = snapshot(base);

    let opts = ExtractOptions {
        force,
        // Small limits, so that bombs are cut short and executions stay fast.
        limits: Limits {
            max_total_bytes: 2 << 20,
            max_ratio: 1000,
            ratio_floor: 256 << 10,
            max_entries: 4096,
        },
    };
    let result = ReplayArchive::open(&path).and_then(|a| {
        let _ = (
            a.layout(),
            a.verified(),
            a.manifest(),
            a.data_dirs(),
            a.image_name(),
        );
        let _ = (a.plan_json(), a.signature(), a.sums(), a.image_size());
        a.verify(None)?;
        if a.has_image() {
            a.copy_image_to(&mut std::io::sink(), None)?;
        }
        a.extract_data(&dest, &opts, None)
    });
    let after = snapshot(base);
    if trace() {
        match &result {
            Ok(r) => eprintln!("outcome: extracted {} files", r.written.len()),
            Err(e) => eprintln!("outcome: refused: {e}"),
        }
    }
    match result {
        Err(e) => {
            assert!(!e.message().is_empty(), "an empty error message");
            let _ = e.to_string();
            assert_eq!(after, before, "refused ({e}), but the tree changed");
        }
        Ok(report) => {
            let dest_rel = dest.strip_prefix(base).expect("below base");
            for (p, v) in &after {
                if before.get(p) != Some(v) {
                    // (The destination itself may be new: extraction creates it.)
                    assert!(
                        p.starts_with(dest_rel),
                        "{p:?} changed, outside the destination"
                    );
                }
                assert!(
                    !p.to_string_lossy().contains(".kerblam-replay-"),
                    "a staging directory survived: {p:?}"
                );
            }
            for (p, v) in &before {
                if !p.starts_with(dest_rel) {
                    assert_eq!(
                        after.get(p),
                        Some(v),
                        "{p:?} changed, outside the destination"
                    );
                }
            }
            for w in &report.written {
                let m = fs::symlink_metadata(dest.join(w)).expect("a written file exists");
                assert!(m.is_file(), "{w} is not a regular file");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        return run(rest, &Dest::Empty, "data/in", &None, false);
    }
    let Ok(c) = Crafted::arbitrary_take_rest(Unstructured::new(rest)) else {
        return;
    };
    let (bytes, present) = build(&c);
    let input = input_dir(&c.input).unwrap_or_else(|| "data/in".into());
    run(&bytes, &c.dest, &input, &present, c.force);
});

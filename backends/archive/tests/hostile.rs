//! A corpus of hostile and corrupt replay archives, generated here (no opaque binaries). Every case
//! must be refused with a clear message, write nothing outside the destination, and leave the
//! destination (existing or not) exactly as it was found. The whole tree around the destination is
//! snapshotted before and after.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use common::*;
use kerblam_archive::{ExtractOptions, ReplayArchive};

type Members = Vec<(String, u8, Vec<u8>)>;

const A: &[u8] = b"precious a\n";

fn good_entries() -> Vec<Raw> {
    vec![Raw::file("data/in/a.txt", A)]
}

/// A v2 archive around raw inner `entries`, with SHA256SUMS lines for `sums`.
fn v2(entries: Vec<Raw>, sums: &[(&str, &[u8])]) -> Vec<u8> {
    outer(&v2_members(zstd(&raw_tar(&entries)), sums))
}

/// The good v2 member list, mutated by `f`, with member checksums recomputed afterwards.
fn v2_with(f: impl FnOnce(&mut Members)) -> Vec<u8> {
    let mut m = v2_members(zstd(&raw_tar(&good_entries())), &[("data/in/a.txt", A)]);
    f(&mut m);
    resum(&mut m);
    outer(&m)
}

/// Like [`v2_with`] but without recomputing checksums.
fn v2_raw(f: impl FnOnce(&mut Members)) -> Vec<u8> {
    let mut m = v2_members(zstd(&raw_tar(&good_entries())), &[("data/in/a.txt", A)]);
    f(&mut m);
    outer(&m)
}

fn v1(manifest: &[u8], data_gz: Vec<u8>) -> Vec<u8> {
    outer(&[
        ("kerblam.toml".into(), b'0', manifest.to_vec()),
        ("data.tar.gz".into(), b'0', data_gz),
        ("name".into(), b'0', b"proc_exec".to_vec()),
    ])
}

fn set(m: &mut Members, name: &str, data: Vec<u8>) {
    m.iter_mut().find(|x| x.0 == name).unwrap().2 = data;
}

fn drop_member(m: &mut Members, name: &str) {
    m.retain(|x| x.0 != name);
}

/// A zstd data member holding one entry of `n` zeros, compressed in a stream.
fn zero_bomb(n: u64) -> Vec<u8> {
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    enc.write_all(&header(b"data/in/zeros.bin", b'0', n, b""))
        .unwrap();
    std::io::copy(&mut std::io::repeat(0).take(n), &mut enc).unwrap();
    enc.write_all(&[0u8; 1024]).unwrap();
    enc.finish().unwrap()
}

struct Case {
    name: &'static str,
    archive: Vec<u8>,
    /// A piece of the expected message (lowercase match).
    expect: &'static str,
    /// Prepares the area around `dest` (which exists) before the run.
    setup: Option<fn(&Path, &Path)>,
}

fn case(name: &'static str, archive: Vec<u8>, expect: &'static str) -> Case {
    Case {
        name,
        archive,
        expect,
        setup: None,
    }
}

fn corpus() -> Vec<Case> {
    let good = v2(good_entries(), &[("data/in/a.txt", A)]);
    let mut cases = vec![
        // --- the outer tar ---
        case(
            "outer-truncated-inside-a-member",
            good[..good.len() / 2].to_vec(),
            "truncated",
        ),
        case(
            "outer-without-end-marker",
            good[..good.len() - 1024].to_vec(),
            "truncated",
        ),
        case(
            "outer-trailing-garbage",
            [good.clone(), b"GARBAGE".to_vec(), vec![0; 505]].concat(),
            "trailing garbage",
        ),
        case(
            "outer-member-is-symlink",
            v2_raw(|m| m[0].1 = b'2'),
            "is a symlink",
        ),
        case(
            "outer-member-is-hardlink",
            v2_raw(|m| m[0].1 = b'1'),
            "is a hardlink",
        ),
        case(
            "outer-member-is-device",
            v2_raw(|m| m[0].1 = b'3'),
            "device node",
        ),
        case("outer-member-is-fifo", v2_raw(|m| m[0].1 = b'6'), "fifo"),
        case(
            "outer-duplicate-member",
            v2_raw(|m| m.insert(1, m[0].clone())),
            "appears twice",
        ),
        case(
            "outer-unknown-member-with-dotdot",
            v2_raw(|m| m.push(("../evil".into(), b'0', b"x".to_vec()))),
            "unexpected member",
        ),
        case(
            "outer-corrupt-header",
            {
                let mut a = good.clone();
                a[3] ^= 0x20;
                a
            },
            "checksum mismatch",
        ),
        case(
            "missing-manifest",
            v2_with(|m| drop_member(m, "kerblam.toml")),
            "kerblam.toml (the manifest) is missing",
        ),
        case(
            "missing-checksums",
            v2_raw(|m| drop_member(m, "SHA256SUMS")),
            "sha256sums is missing",
        ),
        case(
            "no-data-member",
            v2_raw(|m| {
                drop_member(m, "data.tar.zst");
                drop_member(m, "SHA256SUMS");
                drop_member(m, "plan.json");
            }),
            "no data.tar.zst or data.tar.gz",
        ),
        // --- checksums ---
        case(
            "manifest-checksum-mismatch",
            v2_raw(|m| {
                set(
                    m,
                    "kerblam.toml",
                    b"[data.paths]\ninput = \"data/in\"\n#x\n".to_vec(),
                )
            }),
            "checksum mismatch for kerblam.toml",
        ),
        case(
            "data-member-checksum-mismatch",
            v2_raw(|m| {
                set(
                    m,
                    "data.tar.zst",
                    zstd::stream::encode_all(&raw_tar(&good_entries())[..], 19).unwrap(),
                )
            }),
            "checksum mismatch for data.tar.zst",
        ),
        case(
            "data-entry-checksum-mismatch",
            v2(good_entries(), &[("data/in/a.txt", b"something else")]),
            "checksum mismatch for data.tar.zst:data/in/a.txt",
        ),
        case(
            "checksums-list-an-absent-entry",
            v2(
                good_entries(),
                &[("data/in/a.txt", A), ("data/in/gone.txt", b"x")],
            ),
            "does not hold",
        ),
        case(
            "entry-missing-from-checksums",
            v2(
                vec![
                    Raw::file("data/in/a.txt", A),
                    Raw::file("data/in/b.txt", b"b"),
                ],
                &[("data/in/a.txt", A)],
            ),
            "has no line in sha256sums",
        ),
        case(
            "member-missing-from-checksums",
            v2_raw(|m| {
                let sums = String::from_utf8(m.last().unwrap().2.clone()).unwrap();
                let kept: String = sums
                    .lines()
                    .filter(|l| !l.ends_with("  plan.json"))
                    .map(|l| format!("{l}\n"))
                    .collect();
                m.last_mut().unwrap().2 = kept.into_bytes();
            }),
            "plan.json has no line",
        ),
        // --- hostile manifests ---
        case(
            "manifest-input-escapes",
            v2_with(|m| {
                set(
                    m,
                    "kerblam.toml",
                    b"[data.paths]\ninput = \"../../outside\"\n".to_vec(),
                )
            }),
            "escapes the project",
        ),
        case(
            "manifest-output-absolute",
            v2_with(|m| {
                set(
                    m,
                    "kerblam.toml",
                    b"[data.paths]\noutput = \"/tmp/kerblam-evil\"\n".to_vec(),
                )
            }),
            "absolute path",
        ),
        case(
            "manifest-not-toml",
            v2_with(|m| set(m, "kerblam.toml", b"[data.paths\ninput = ".to_vec())),
            "not valid toml",
        ),
        // --- the nested data archive ---
        case(
            "data-dotdot",
            v2(
                vec![Raw::file("data/in/../../../outside/evil.txt", b"evil")],
                &[],
            ),
            "`..`",
        ),
        case(
            "data-absolute-path",
            v2(vec![Raw::file("/tmp/kerblam-evil.txt", b"evil")], &[]),
            "absolute path",
        ),
        case(
            "data-symlink-outside",
            v2(vec![Raw::kind("data/in/link", b'2', "/etc")], &[]),
            "is a symlink",
        ),
        case(
            "data-symlink-then-write-through-it",
            v2(
                vec![
                    Raw::kind("data/in/l", b'2', "../../../outside"),
                    Raw::file("data/in/l/evil.txt", b"evil"),
                ],
                &[("data/in/l/evil.txt", b"evil")],
            ),
            "is a symlink",
        ),
        case(
            "data-hardlink-outside",
            v2(vec![Raw::kind("data/in/h", b'1', "/etc/passwd")], &[]),
            "is a hardlink",
        ),
        case(
            "data-char-device",
            v2(vec![Raw::kind("data/in/null", b'3', "")], &[]),
            "device node",
        ),
        case(
            "data-block-device",
            v2(vec![Raw::kind("data/in/sda", b'4', "")], &[]),
            "device node",
        ),
        case(
            "data-fifo",
            v2(vec![Raw::kind("data/in/pipe", b'6', "")], &[]),
            "fifo",
        ),
        case(
            "data-malformed-sparse-file",
            v2(vec![Raw::kind("data/in/sparse", b'S', "")], &[]),
            "corrupt",
        ),
        case(
            "data-duplicate-entry",
            v2(
                vec![
                    Raw::file("data/in/a.txt", A),
                    Raw::file("data/in/a.txt", b"other"),
                ],
                &[("data/in/a.txt", A)],
            ),
            "appears twice",
        ),
        case(
            "data-file-below-a-file",
            v2(
                vec![Raw::file("data/in/a", A), Raw::file("data/in/a/b", b"b")],
                &[("data/in/a", A), ("data/in/a/b", b"b")],
            ),
            "which is a file",
        ),
        case(
            "data-non-utf8-name",
            v2(vec![Raw::file(b"data/in/\xff\xfe.txt", b"x")], &[]),
            "utf-8",
        ),
        case(
            "data-very-long-name",
            v2(
                vec![Raw::file(
                    format!("data/in/{}", "d/".repeat(2500)) + "x",
                    b"x",
                )],
                &[],
            ),
            "longer than the limit",
        ),
        case(
            "data-long-component",
            v2(
                vec![Raw::file(format!("data/in/{}", "c".repeat(300)), b"x")],
                &[],
            ),
            "component of 300 bytes",
        ),
        case(
            "data-outside-input-dir",
            v2(
                vec![Raw::file("src/evil.sh", b"rm -rf ~")],
                &[("src/evil.sh", b"rm -rf ~")],
            ),
            "outside the input data directory",
        ),
        case(
            "data-declares-huge-size",
            v2(
                vec![Raw {
                    declared: Some(1 << 50),
                    ..Raw::file("data/in/huge", b"x")
                }],
                &[],
            ),
            "decompression bomb",
        ),
        case(
            "data-zstd-bomb",
            outer(&v2_members(zero_bomb(200 << 20), &[])),
            "ratio over 1000:1",
        ),
        case(
            "data-entry-truncated",
            v2(
                vec![Raw {
                    declared: Some(5000),
                    ..Raw::file("data/in/short", b"0123456789")
                }],
                &[],
            ),
            "truncated",
        ),
        case(
            "data-stream-truncated",
            v2_with(|m| {
                let d = zstd(&raw_tar(&[Raw::file("data/in/a.txt", vec![b'q'; 100_000])]));
                set(m, "data.tar.zst", d[..d.len() / 2].to_vec());
            }),
            "corrupt",
        ),
        case(
            "data-garbage-after-stream",
            v2_with(|m| {
                let mut d = m[3].2.clone();
                d.extend_from_slice(b"JUNKJUNK");
                set(m, "data.tar.zst", d);
            }),
            "trailing garbage",
        ),
        case(
            "data-garbage-after-tar-end",
            v2_with(|m| {
                let mut t = raw_tar(&good_entries());
                t.extend_from_slice(b"hidden payload");
                set(m, "data.tar.zst", zstd(&t));
            }),
            "trailing data after the end of the data tar",
        ),
        case(
            "data-tar-without-end-marker",
            v2_with(|m| {
                let t = raw_tar(&good_entries());
                set(m, "data.tar.zst", zstd(&t[..t.len() - 1024]));
            }),
            "no end-of-archive marker",
        ),
        case(
            "data-not-zstd",
            v2_with(|m| set(m, "data.tar.zst", b"this is not zstd at all".to_vec())),
            "corrupt",
        ),
        // --- Kerblam! 1.x layout ---
        case(
            "v1-dotdot",
            v1(
                MANIFEST,
                gzip(&raw_tar(&[Raw::file("../../outside/evil.txt", b"evil")])),
            ),
            "`..`",
        ),
        case(
            "v1-symlink",
            v1(MANIFEST, gzip(&raw_tar(&[Raw::kind("link", b'2', "/")]))),
            "is a symlink",
        ),
        case(
            "v1-garbage-after-gzip",
            v1(
                MANIFEST,
                [gzip(&raw_tar(&[Raw::file("a.txt", A)])), b"JUNK".to_vec()].concat(),
            ),
            "trailing garbage",
        ),
        case(
            "v1-manifest-escapes",
            v1(
                b"[data.paths]\ninput = \"../x\"\n",
                gzip(&raw_tar(&[Raw::file("a.txt", A)])),
            ),
            "escapes the project",
        ),
        case(
            "v1-truncated-gzip",
            v1(MANIFEST, {
                let g = gzip(&raw_tar(&[Raw::file("a.txt", vec![b'z'; 50_000])]));
                g[..g.len() - 20].to_vec()
            }),
            "corrupt",
        ),
    ];
    // --- hostile destinations (a valid archive) ---
    cases.push(Case {
        name: "dest-data-dir-is-symlink-outside",
        archive: good.clone(),
        expect: "is a symlink in the destination",
        setup: Some(|root, dest| {
            std::os::unix::fs::symlink(root.join("outside"), dest.join("data")).unwrap()
        }),
    });
    cases.push(Case {
        name: "dest-holds-a-different-file",
        archive: good,
        expect: "--force",
        setup: Some(|_, dest| {
            fs::create_dir_all(dest.join("data/in")).unwrap();
            fs::write(dest.join("data/in/a.txt"), b"mine").unwrap();
        }),
    });
    cases
}

fn run(archive: &Path, dest: &Path) -> Result<(), kerblam_archive::Error> {
    let a = ReplayArchive::open(archive)?;
    a.extract_data(dest, &ExtractOptions::default(), None)
        .map(|_| ())
}

#[test]
fn the_good_archive_of_the_corpus_is_accepted() {
    // The corpus mutates this archive; it must itself be valid, or the cases prove nothing.
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("good.kerblam.tar");
    fs::write(&p, v2(good_entries(), &[("data/in/a.txt", A)])).unwrap();
    run(&p, &t.path().join("dest")).unwrap();
    assert_eq!(fs::read(t.path().join("dest/data/in/a.txt")).unwrap(), A);
    let p1 = t.path().join("good1.kerblam.tar");
    // As `tar czf data.tar.gz -C data/in .` would write it: a `./` entry, then `./a.txt`.
    let entries = [Raw::kind("./", b'5', ""), Raw::file("./a.txt", A)];
    fs::write(&p1, v1(MANIFEST, gzip(&raw_tar(&entries)))).unwrap();
    run(&p1, &t.path().join("dest1")).unwrap();
    assert_eq!(fs::read(t.path().join("dest1/data/in/a.txt")).unwrap(), A);
}

#[test]
fn every_hostile_archive_is_refused_and_nothing_changes() {
    let corpus = corpus();
    assert!(corpus.len() >= 30, "the corpus has {} cases", corpus.len());
    let mut refused = 0;
    for c in &corpus {
        for dest_exists in [true, false] {
            if c.setup.is_some() && !dest_exists {
                continue;
            }
            let t = tempfile::tempdir().unwrap();
            let root = t.path();
            fs::create_dir_all(root.join("outside")).unwrap();
            fs::write(root.join("outside/sentinel.txt"), b"do not touch").unwrap();
            let archive = root.join("case.kerblam.tar");
            fs::write(&archive, &c.archive).unwrap();
            let dest = root.join("dest");
            if dest_exists {
                fs::create_dir_all(&dest).unwrap();
                fs::write(dest.join("keep.txt"), b"mine").unwrap();
                if let Some(setup) = c.setup {
                    setup(root, &dest);
                }
            }
            let before = snapshot(root);
            let result = std::panic::catch_unwind(|| run(&archive, &dest));
            let result = result.unwrap_or_else(|_| panic!("case {}: panicked", c.name));
            let err = match result {
                Ok(()) => panic!("case {} (dest exists: {dest_exists}): accepted", c.name),
                Err(e) => e.to_string(),
            };
            assert!(
                err.to_lowercase().contains(&c.expect.to_lowercase()),
                "case {}: message {err:?} does not say {:?}",
                c.name,
                c.expect
            );
            assert_eq!(
                snapshot(root),
                before,
                "case {} (dest exists: {dest_exists}): the tree changed",
                c.name
            );
            assert!(
                !Path::new("/tmp/kerblam-evil.txt").exists()
                    && !Path::new("/tmp/kerblam-evil").exists()
            );
            if dest_exists {
                refused += 1;
                eprintln!("refused {:<40} {err}", c.name);
            }
        }
    }
    eprintln!("hostile cases refused: {refused} of {}", corpus.len());
    assert_eq!(refused, corpus.len());
}

/// Writes every case of the corpus to `DIR/<case>.kerblam.tar`, `DIR` being `KERBLAM_FUZZ_SEEDS`
/// (the seeds of the `replay_archive` fuzz target, `bash scripts/fuzz.sh`) or a temporary directory.
/// Each case needs a name of its own that is a plain file name, or one seed would overwrite another.
#[test]
fn export_the_corpus_as_fuzz_seeds() {
    let temp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("KERBLAM_FUZZ_SEEDS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| temp.path().to_path_buf());
    fs::create_dir_all(&dir).unwrap();
    let corpus = corpus();
    let mut names = std::collections::HashSet::new();
    for c in &corpus {
        assert!(
            !c.name.is_empty()
                && c.name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "-_".contains(ch)),
            "case name {:?} is not a plain file name",
            c.name
        );
        assert!(names.insert(c.name), "two cases are named {}", c.name);
        let path = dir.join(format!("{}.kerblam.tar", c.name));
        fs::write(&path, &c.archive).unwrap();
        assert_eq!(fs::read(&path).unwrap(), c.archive);
    }
    let written = fs::read_dir(&dir).unwrap().count();
    assert!(
        written >= corpus.len(),
        "{written} seeds for {} cases",
        corpus.len()
    );
}

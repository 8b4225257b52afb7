//! A deterministic mutation run over a valid archive (a poor man's fuzzer, part of the test suite):
//! random byte flips, truncations and insertions must never panic, never write outside the
//! destination, and anything accepted must only have written under the input data directory.

use std::fs;
use std::path::Path;

use kerblam_archive::{ExtractOptions, ReplayArchive};
use kerblam_test_support::archive::*;

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn good(v1: bool) -> Vec<u8> {
    let entries = [
        Raw::file("data/in/a.txt", b"alpha\n"),
        Raw::file("data/in/sub/b.csv", b"1,2\n3,4\n"),
    ];
    if v1 {
        let inner = [
            Raw::file("a.txt", b"alpha\n"),
            Raw::file("sub/b.csv", b"1,2\n3,4\n"),
        ];
        return outer(&[
            ("kerblam.toml".into(), b'0', MANIFEST.to_vec()),
            ("data.tar.gz".into(), b'0', gzip(&raw_tar(&inner))),
            ("name".into(), b'0', b"x".to_vec()),
        ]);
    }
    outer(&v2_members(
        zstd(&raw_tar(&entries)),
        &[
            ("data/in/a.txt", b"alpha\n"),
            ("data/in/sub/b.csv", b"1,2\n3,4\n"),
        ],
    ))
}

fn files_under(dir: &Path, out: &mut Vec<String>, root: &Path) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let m = fs::symlink_metadata(&p).unwrap();
        assert!(
            !m.file_type().is_symlink(),
            "a symlink was created: {}",
            p.display()
        );
        if m.is_dir() {
            files_under(&p, out, root);
        } else {
            out.push(p.strip_prefix(root).unwrap().display().to_string());
        }
    }
}

#[test]
fn mutated_archives_never_panic_or_escape() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    fs::create_dir(root.join("outside")).unwrap();
    fs::write(root.join("outside/sentinel"), b"x").unwrap();
    let mut rng = Rng(0x6b65_7262_6c61_6d21);
    let (mut accepted, mut refused) = (0, 0);
    for round in 0..600 {
        let mut bytes = good(round % 3 == 0);
        match rng.below(4) {
            0 => {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(bytes.len());
                    bytes[i] ^= 1 << rng.below(8);
                }
            }
            1 => {
                let i = rng.below(bytes.len());
                bytes[i] = rng.next() as u8;
            }
            2 => bytes.truncate(rng.below(bytes.len())),
            _ => {
                let i = rng.below(bytes.len());
                let junk: Vec<u8> = (0..1 + rng.below(600)).map(|_| rng.next() as u8).collect();
                bytes.splice(i..i, junk);
            }
        }
        let archive = root.join("m.kerblam.tar");
        fs::write(&archive, &bytes).unwrap();
        let dest = root.join("dest");
        let res = std::panic::catch_unwind(|| {
            ReplayArchive::open(&archive)
                .and_then(|a| a.extract_data(&dest, &ExtractOptions::default(), None))
        })
        .unwrap_or_else(|_| panic!("round {round}: panicked"));
        match res {
            Ok(_) => {
                accepted += 1;
                let mut files = Vec::new();
                files_under(&dest, &mut files, &dest);
                for f in &files {
                    assert!(f.starts_with("data/in/"), "round {round}: wrote {f}");
                }
                fs::remove_dir_all(&dest).unwrap();
            }
            Err(e) => {
                refused += 1;
                assert!(!e.message().is_empty());
                assert!(
                    !dest.exists(),
                    "round {round}: a refused archive left {}",
                    dest.display()
                );
            }
        }
        let mut outside = Vec::new();
        files_under(&root.join("outside"), &mut outside, root);
        assert_eq!(outside, ["outside/sentinel"], "round {round}");
        assert_eq!(
            fs::read_dir(root).unwrap().count(),
            2,
            "round {round}: stray files next to dest"
        );
    }
    eprintln!("mutations: {accepted} accepted (harmless flips), {refused} refused");
    assert!(
        refused > 400,
        "most mutations must be caught: {refused} of 600"
    );
}

//! A corpus of hostile and corrupt replay archives, generated here (no opaque binaries). Every case
//! must be refused with a clear message, write nothing outside the destination, and leave the
//! destination (existing or not) exactly as it was found. The whole tree around the destination is
//! snapshotted before and after.

use std::fs;
use std::path::Path;

use kerblam_archive::{ExtractOptions, ReplayArchive};
use kerblam_test_support::Tally;
use kerblam_test_support::archive::*;
use kerblam_test_support::corpus::*;

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
    // Each case counts once, refused both into an existing destination and into a new one.
    let mut tally = Tally::default();
    for c in &corpus {
        tally.case(c.name, || {
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
                    eprintln!("refused {:<40} {err}", c.name);
                }
            }
        });
    }
    tally.report("hostile cases refused", "");
    assert_eq!(tally.counts(), (corpus.len(), corpus.len()));
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

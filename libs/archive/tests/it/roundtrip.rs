//! Writing and reading replay archives: v2 and kerblam-v1 round trips, determinism, conflicts,
//! temporary files, files that change while read, and build contexts.

use std::cell::Cell;
use std::fs;
use std::io::Read;
use std::path::Path;

use kerblam_archive::*;
use kerblam_test_support::archive::*;

fn opts(format: ReplayFormat, mtime: u64) -> ReplayOptions {
    ReplayOptions {
        format,
        tar: TarOptions { mtime },
        ..ReplayOptions::default()
    }
}

fn contents(plan: &[u8]) -> ReplayContents<'_> {
    ReplayContents {
        manifest: MANIFEST,
        image_name: "proc_exec",
        plan_json: Some(plan),
        input_dir: "data/in",
    }
}

fn write_v2(
    root: &Path,
    out: &Path,
    files: &[String],
    o: ReplayOptions,
    image: Option<&[u8]>,
) -> WrittenArchive {
    let mut w = ReplayWriter::create(out, contents(b"{\"plan\": 1}\n"), o).unwrap();
    w.add_data(root, files, None).unwrap();
    if let Some(mut img) = image {
        w.add_image(&mut img, None).unwrap();
    }
    w.finish(Some(b"{\"name\":\"a\"}")).unwrap()
}

fn member_names(archive: &Path) -> Vec<String> {
    let mut a = tar::Archive::new(fs::File::open(archive).unwrap());
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

#[test]
fn v2_round_trip_gives_identical_bytes() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("project");
    let files = project(&root);
    let out = t.path().join("proc.kerblam.tar");
    let image: Vec<u8> = (0..2_500_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let done = Cell::new((0u64, 0u64));
    let mut w = ReplayWriter::create(
        &out,
        contents(b"{\"plan\": 1}\n"),
        opts(ReplayFormat::V2, 0),
    )
    .unwrap();
    w.add_data(&root, &files, Some(&|b, f| done.set((b, f))))
        .unwrap();
    w.add_image(&mut &image[..], None).unwrap();
    let written = w.finish(Some(b"{\"name\":\"a\"}")).unwrap();
    assert_eq!(
        done.get(),
        (3_000_019, 4),
        "progress reports every byte and file"
    );
    assert_eq!(written.data_files, 4);
    assert_eq!(written.bytes, fs::metadata(&out).unwrap().len());
    assert_eq!(
        written.sha256,
        format!("sha256:{}", sha(&fs::read(&out).unwrap()))
    );
    assert_eq!(
        member_names(&out),
        [
            "kerblam.toml",
            "name",
            "plan.json",
            "data.tar.zst",
            "image.tar",
            "signature.json",
            "SHA256SUMS"
        ]
    );
    let leftovers: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "no temporary file left: {leftovers:?}");

    let a = ReplayArchive::open(&out).unwrap();
    assert_eq!(a.layout(), Layout::V2);
    assert!(a.verified());
    assert_eq!(a.manifest(), MANIFEST);
    assert_eq!(a.image_name(), Some("proc_exec"));
    assert_eq!(a.plan_json(), Some(&b"{\"plan\": 1}\n"[..]));
    assert_eq!(a.signature(), Some(&b"{\"name\":\"a\"}"[..]));
    assert_eq!(a.image_size(), Some(image.len() as u64));
    let mut img = Vec::new();
    a.copy_image_to(&mut img, None).unwrap();
    assert_eq!(img, image);
    a.verify(None).unwrap();
    let sums = String::from_utf8(a.sums().unwrap().render().into_bytes()).unwrap();
    let big = fs::read(root.join("data/in/sub/big.csv")).unwrap();
    assert!(
        sums.contains(&format!(
            "{}  data.tar.zst:data/in/sub/big.csv\n",
            sha(&big)
        )),
        "{sums}"
    );

    let dest = t.path().join("replay");
    let report = a
        .extract_data(&dest, &ExtractOptions::default(), None)
        .unwrap();
    assert_eq!(report.written.len(), 4);
    for f in &files {
        assert_eq!(
            fs::read(dest.join(f)).unwrap(),
            fs::read(root.join(f)).unwrap(),
            "{f}"
        );
    }
    let names: Vec<_> = fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["data"], "the staging directory is gone");

    // Extracting again finds identical files and changes nothing.
    let again = a
        .extract_data(&dest, &ExtractOptions::default(), None)
        .unwrap();
    assert_eq!(again.identical.len(), 4);
    assert!(again.written.is_empty());
}

#[test]
fn v2_archives_are_byte_identical_across_runs_and_core_counts() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("project");
    let files = project(&root);
    let a = t.path().join("a.kerblam.tar");
    let b = t.path().join("b.kerblam.tar");
    let c = t.path().join("c.kerblam.tar");
    write_v2(
        &root,
        &a,
        &files,
        opts(ReplayFormat::V2, 1_700_000_000),
        Some(b"img"),
    );
    // Touch the inputs and reverse the list: neither may change the bytes.
    fs::write(root.join("data/in/precious.txt"), b"precious\n").unwrap();
    let mut rev = files.clone();
    rev.reverse();
    write_v2(
        &root,
        &b,
        &rev,
        ReplayOptions {
            threads: 1,
            ..opts(ReplayFormat::V2, 1_700_000_000)
        },
        Some(b"img"),
    );
    assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
    write_v2(
        &root,
        &c,
        &files,
        opts(ReplayFormat::V2, 1_700_000_001),
        Some(b"img"),
    );
    assert_ne!(
        fs::read(&a).unwrap(),
        fs::read(&c).unwrap(),
        "the mtime is really used"
    );
    let mut ar = tar::Archive::new(fs::File::open(&a).unwrap());
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        assert_eq!(
            (h.mtime().unwrap(), h.uid().unwrap(), h.gid().unwrap()),
            (1_700_000_000, 0, 0)
        );
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.mode().unwrap(), 0o644);
    }
}

#[test]
fn kerblam_v1_layout_matches_kerblam_1_and_round_trips() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("project");
    let files = project(&root);
    fs::set_permissions(
        root.join("data/in/precious.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = t.path().join("proc.kerblam.tar");
    let mut w =
        ReplayWriter::create(&out, contents(b"{}"), opts(ReplayFormat::KerblamV1, 0)).unwrap();
    w.add_data(&root, &files, None).unwrap();
    assert!(
        w.add_image(&mut &b"x"[..], None)
            .unwrap_err()
            .message()
            .contains("v2")
    );
    let sig = Signature {
        name: "Ada".into(),
        email: "ada@example.org".into(),
        on: utc_string(0),
    };
    w.finish(Some(&sig.to_json())).unwrap();
    assert_eq!(
        member_names(&out),
        ["kerblam.toml", "data.tar.gz", "name", "signature.json"]
    );

    // Read it the way Kerblam! 1.x does: unpack, read `name`, gunzip data.tar.gz with a
    // single-member decoder, untar into the input dir.
    let mut outer = tar::Archive::new(fs::File::open(&out).unwrap());
    let mut data_gz = Vec::new();
    for e in outer.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        let mut buf = Vec::new();
        e.read_to_end(&mut buf).unwrap();
        match p.as_str() {
            "name" => assert_eq!(buf, b"proc_exec"),
            "data.tar.gz" => data_gz = buf,
            "signature.json" => {
                assert_eq!(
                    String::from_utf8(buf).unwrap(),
                    r#"{"name":"Ada","email":"ada@example.org","on":"1970-01-01 00:00:00 UTC"}"#
                )
            }
            _ => {}
        }
    }
    let mut tar_bytes = Vec::new();
    flate2::read::GzDecoder::new(&data_gz[..])
        .read_to_end(&mut tar_bytes)
        .unwrap();
    let mut inner = tar::Archive::new(&tar_bytes[..]);
    let mut paths: Vec<String> = Vec::new();
    for e in inner.entries().unwrap() {
        let e = e.unwrap();
        if e.path().unwrap().ends_with("precious.txt") {
            assert_eq!(
                e.header().mode().unwrap(),
                0o755,
                "the executable bit survives"
            );
        }
        paths.push(e.path().unwrap().display().to_string());
    }
    let mut want: Vec<String> = files
        .iter()
        .map(|f| f.trim_start_matches("data/in/").to_string())
        .collect();
    want.sort();
    assert_eq!(
        paths, want,
        "data paths are relative to the input dir, as in 1.x"
    );

    let a = ReplayArchive::open(&out).unwrap();
    assert_eq!(a.layout(), Layout::KerblamV1 { normalised: true });
    assert!(!a.verified());
    assert_eq!(a.plan_json(), None);
    let dest = t.path().join("replay");
    a.extract_data(&dest, &ExtractOptions::default(), None)
        .unwrap();
    for f in &files {
        assert_eq!(
            fs::read(dest.join(f)).unwrap(),
            fs::read(root.join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn reads_an_archive_made_by_kerblam_1() {
    // Built the way 1.x's package_pipe does: tar crate, HeaderMode::Complete (real owners and
    // mtimes), append_path_with_name, flate2 GzEncoder at the default level.
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("project");
    fs::create_dir_all(root.join("inputs/deep")).unwrap();
    let manifest = b"[data.paths]\ninput = \"./inputs\"\n";
    fs::write(root.join("kerblam.toml"), manifest).unwrap();
    fs::write(root.join("inputs/deep/x.csv"), b"a,b\n1,2\n").unwrap();
    fs::write(root.join("name"), b"lab/proc:1").unwrap();
    let data_tar = t.path().join("data.tar");
    {
        let mut b = tar::Builder::new(fs::File::create(&data_tar).unwrap());
        b.append_path_with_name(root.join("inputs/deep/x.csv"), "deep/x.csv")
            .unwrap();
        b.finish().unwrap();
    }
    let gz = gzip(&fs::read(&data_tar).unwrap());
    fs::write(t.path().join("data.tar.gz"), gz).unwrap();
    let out = t.path().join("x.kerblam.tar");
    {
        let mut b = tar::Builder::new(fs::File::create(&out).unwrap());
        // Real files have differing mtimes (and owners), unlike kerblam's normalised headers.
        assert!(
            std::process::Command::new("touch")
                .args(["-d", "@1000000"])
                .arg(root.join("name"))
                .status()
                .unwrap()
                .success()
        );
        b.append_path_with_name(root.join("kerblam.toml"), "kerblam.toml")
            .unwrap();
        b.append_path_with_name(t.path().join("data.tar.gz"), "data.tar.gz")
            .unwrap();
        b.append_path_with_name(root.join("name"), "name").unwrap();
        b.finish().unwrap();
    }
    let a = ReplayArchive::open(&out).unwrap();
    assert_eq!(
        a.layout(),
        Layout::KerblamV1 { normalised: false },
        "real mtimes: made by 1.x"
    );
    assert_eq!(a.image_name(), Some("lab/proc:1"));
    assert_eq!(a.data_dirs().input, "inputs");
    let dest = t.path().join("replay");
    a.extract_data(&dest, &ExtractOptions::default(), None)
        .unwrap();
    assert_eq!(
        fs::read(dest.join("inputs/deep/x.csv")).unwrap(),
        b"a,b\n1,2\n"
    );
}

#[test]
fn extraction_refuses_different_files_unless_forced() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("project");
    let files = project(&root);
    let out = t.path().join("p.kerblam.tar");
    write_v2(&root, &out, &files, opts(ReplayFormat::V2, 0), None);
    let a = ReplayArchive::open(&out).unwrap();
    let dest = t.path().join("dest");
    fs::create_dir_all(dest.join("data/in")).unwrap();
    fs::write(dest.join("data/in/precious.txt"), b"changed\n").unwrap();
    let before = snapshot(&dest);
    let e = a
        .extract_data(&dest, &ExtractOptions::default(), None)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(
        e.message().contains("precious.txt") && e.message().contains("--force"),
        "{e}"
    );
    assert_eq!(snapshot(&dest), before, "nothing written on conflict");
    let r = a
        .extract_data(
            &dest,
            &ExtractOptions {
                force: true,
                ..Default::default()
            },
            None,
        )
        .unwrap();
    assert_eq!(r.replaced, ["data/in/precious.txt"]);
    assert_eq!(
        fs::read(dest.join("data/in/precious.txt")).unwrap(),
        b"precious\n"
    );
    let names: Vec<_> = fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["data"], "no staging or backup directory left");
}

#[test]
fn unfinished_writer_leaves_nothing_and_existing_archive_needs_force() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("project");
    let files = project(&root);
    let out = t.path().join("p.kerblam.tar");
    {
        let mut w = ReplayWriter::create(&out, contents(b"{}"), opts(ReplayFormat::V2, 0)).unwrap();
        w.add_data(&root, &files, None).unwrap();
        // dropped without finish (an error or Ctrl-C unwinding)
    }
    let left: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["project"], "temporary file removed: {left:?}");
    // A failing data file (missing) also leaves nothing.
    let mut w = ReplayWriter::create(&out, contents(b"{}"), opts(ReplayFormat::V2, 0)).unwrap();
    let e = w
        .add_data(&root, &["data/in/missing.txt"], None)
        .unwrap_err();
    assert!(e.message().contains("data/in/missing.txt"), "{e}");
    drop(w);
    assert!(!out.exists());
    assert_eq!(fs::read_dir(t.path()).unwrap().count(), 1);
    write_v2(&root, &out, &files, opts(ReplayFormat::V2, 0), None);
    let e = ReplayWriter::create(&out, contents(b"{}"), opts(ReplayFormat::V2, 0)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    ReplayWriter::create(
        &out,
        contents(b"{}"),
        ReplayOptions {
            force: true,
            ..opts(ReplayFormat::V2, 0)
        },
    )
    .unwrap();
}

#[test]
fn a_file_that_grows_or_shrinks_while_read_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("growing.csv");
    for grow in [true, false] {
        fs::write(&path, vec![b'x'; 5_000_000]).unwrap();
        let fired = Cell::new(false);
        let hook = |_: u64, _: u64| {
            if !fired.replace(true) {
                let f = fs::OpenOptions::new().append(true).open(&path).unwrap();
                if grow {
                    std::io::Write::write_all(&mut &f, b"more rows\n").unwrap();
                } else {
                    f.set_len(100).unwrap();
                }
            }
        };
        let mut tar = DetTar::new(Vec::new(), TarOptions::default()).with_progress(Some(&hook));
        let e = tar.append_file("growing.csv", &path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ChangedWhileReading, "{e}");
        assert!(e.message().contains("growing.csv"), "{e}");
        assert!(
            e.message().contains(if grow { "grew" } else { "shrank" }),
            "{e}"
        );
    }
    // A file whose size lies (procfs reports 0 bytes) is caught the same way.
    let mut tar = DetTar::new(Vec::new(), TarOptions::default());
    let e = tar
        .append_file("status", Path::new("/proc/self/status"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ChangedWhileReading, "{e}");
    // A FIFO is not a regular file.
    let fifo = t.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let e = tar.append_file("fifo", &fifo).unwrap_err();
    assert!(e.message().contains("not a regular file"), "{e}");
}

#[test]
fn build_context_is_sorted_normalised_and_checked() {
    use kerblam_plan::{Context, ContextFile};
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    fs::create_dir_all(root.join("src")).unwrap();
    fs::write(root.join("src/run.sh"), b"echo hi\n").unwrap();
    fs::set_permissions(
        root.join("src/run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    fs::write(root.join("Containerfile"), b"FROM scratch\n").unwrap();
    let long = format!("src/{}/f.txt", "d".repeat(120));
    fs::create_dir_all(root.join(&long).parent().unwrap()).unwrap();
    fs::write(root.join(&long), b"deep").unwrap();
    let cf = |p: &str, size, mode, link: Option<&str>| ContextFile {
        path: p.into(),
        size,
        mode,
        link: link.map(Into::into),
        sha256: None,
    };
    let ctx = Context {
        root: ".".into(),
        excluded: vec![],
        files: vec![
            cf("Containerfile", 13, 0o644, None),
            cf(&long, 4, 0o644, None),
            cf("src/link", 0, 0o777, Some("run.sh")),
            cf("src/run.sh", 8, 0o700, None),
        ],
        total_bytes: 25,
    };
    let extras = [
        ExtraEntry {
            path: "kerblam",
            source: ExtraSource::Bytes(b"#!bin"),
            mode: 0o755,
        },
        ExtraEntry {
            path: ".kerblam/replay.sh",
            source: ExtraSource::File(&root.join("src/run.sh")),
            mode: 0o755,
        },
    ];
    let (bytes, summary) = write_build_context(
        Vec::new(),
        root,
        &ctx,
        &extras,
        TarOptions { mtime: 42 },
        None,
    )
    .unwrap();
    assert_eq!(summary.files, 6);
    let (again, _) = write_build_context(
        Vec::new(),
        root,
        &ctx,
        &extras,
        TarOptions { mtime: 42 },
        None,
    )
    .unwrap();
    assert_eq!(bytes, again);
    let mut a = tar::Archive::new(&bytes[..]);
    let mut seen = Vec::new();
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        assert_eq!(
            (h.mtime().unwrap(), h.uid().unwrap(), h.gid().unwrap()),
            (42, 0, 0)
        );
        let p = e.path().unwrap().display().to_string();
        let mode = h.mode().unwrap();
        match p.as_str() {
            "src/run.sh" | "kerblam" | ".kerblam/replay.sh" => assert_eq!(mode, 0o755, "{p}"),
            "src/link" => assert_eq!(
                e.link_name().unwrap().unwrap().display().to_string(),
                "run.sh"
            ),
            _ => assert_eq!(mode, 0o644, "{p}"),
        }
        seen.push(p);
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    assert!(seen.contains(&long), "GNU long names survive");

    let dup = [ExtraEntry {
        path: "Containerfile",
        source: ExtraSource::Bytes(b"x"),
        mode: 0o644,
    }];
    let e =
        write_build_context(Vec::new(), root, &ctx, &dup, TarOptions::default(), None).unwrap_err();
    assert!(
        e.message().contains("\"Containerfile\" appears twice"),
        "{e}"
    );
    fs::write(root.join("src/run.sh"), b"echo changed since planning\n").unwrap();
    let e =
        write_build_context(Vec::new(), root, &ctx, &[], TarOptions::default(), None).unwrap_err();
    assert!(
        e.message()
            .contains("run.sh changed since the plan was made"),
        "{e}"
    );
}

#[test]
fn a_full_disk_is_reported_against_the_file_being_written() {
    // /dev/full fails every write with ENOSPC, like a full filesystem.
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("x.csv"), vec![b'x'; 100_000]).unwrap();
    let full = fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut tar = DetTar::new(full, TarOptions::default()).with_output_name("/dev/full");
    let e = tar
        .append_file("x.csv", &t.path().join("x.csv"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(
        e.message().contains("/dev/full") && e.message().contains("No space left on device"),
        "{e}"
    );
    assert!(e.is_no_space(), "{e}");
}

#[test]
fn the_writer_refuses_what_replay_would_refuse() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("project");
    project(&root);
    fs::write(root.join("kerblam.toml.bak"), b"x").unwrap();
    let out = t.path().join("p.kerblam.tar");
    let mut w = ReplayWriter::create(&out, contents(b"{}"), opts(ReplayFormat::V2, 0)).unwrap();
    let e = w.add_data(&root, &["kerblam.toml.bak"], None).unwrap_err();
    assert!(
        e.message().contains("not inside the input data directory"),
        "{e}"
    );
    drop(w);
    let bad = ReplayContents {
        input_dir: "inputs",
        ..contents(b"{}")
    };
    let e = ReplayWriter::create(&out, bad, opts(ReplayFormat::V2, 0)).unwrap_err();
    assert!(e.message().contains("differs from kerblam.toml"), "{e}");
    let hostile = ReplayContents {
        manifest: b"[data.paths]\ninput = \"../up\"\n",
        input_dir: "../up",
        ..contents(b"{}")
    };
    assert!(ReplayWriter::create(&out, hostile, opts(ReplayFormat::V2, 0)).is_err());
    assert!(!out.exists());
}

#[test]
fn trees_and_context_files_are_written_deterministically() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("tree");
    fs::create_dir_all(tree.join("b/inner")).unwrap();
    fs::write(tree.join("b/inner/z.txt"), b"z").unwrap();
    fs::write(tree.join("a.sh"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(
        tree.join("a.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o750),
    )
    .unwrap();
    std::os::unix::fs::symlink("b/inner/z.txt", tree.join("c-link")).unwrap();
    let mut tar = DetTar::new(Vec::new(), TarOptions { mtime: 7 });
    tar.append_tree("opt/sw", &tree).unwrap();
    let bytes = tar.finish().unwrap();
    let mut a = tar::Archive::new(&bytes[..]);
    let listed: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            format!(
                "{} {:o}",
                e.path().unwrap().display(),
                e.header().mode().unwrap()
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            "opt/sw/ 755",
            "opt/sw/a.sh 755",
            "opt/sw/b/ 755",
            "opt/sw/b/inner/ 755",
            "opt/sw/b/inner/z.txt 644",
            "opt/sw/c-link 777"
        ]
    );
    assert!(
        std::process::Command::new("mkfifo")
            .arg(tree.join("fifo"))
            .status()
            .unwrap()
            .success()
    );
    let mut tar = DetTar::new(Vec::new(), TarOptions::default());
    let e = tar.append_tree("", &tree).unwrap_err();
    assert!(
        e.message().contains("fifo") && e.message().contains("FIFO"),
        "{e}"
    );

    // A context archive file: written whole under its final name, refused when present.
    use kerblam_plan::{Context, ContextFile};
    let ctx = Context {
        root: "tree".into(),
        excluded: vec![],
        files: vec![ContextFile {
            path: "a.sh".into(),
            size: 10,
            mode: 0o750,
            link: None,
            sha256: None,
        }],
        total_bytes: 10,
    };
    let extras = [ExtraEntry {
        path: "Containerfile",
        source: ExtraSource::Bytes(b"FROM x\n"),
        mode: 0o644,
    }];
    let out = t.path().join("proc.context.tar");
    let w = write_build_context_file(
        &out,
        false,
        t.path(),
        &ctx,
        &extras,
        TarOptions::default(),
        None,
    )
    .unwrap();
    assert_eq!(w.bytes, fs::metadata(&out).unwrap().len());
    assert_eq!(
        w.sha256,
        format!("sha256:{}", sha(&fs::read(&out).unwrap()))
    );
    assert_eq!(member_names(&out), ["Containerfile", "a.sh"]);
    let e = write_build_context_file(
        &out,
        false,
        t.path(),
        &ctx,
        &extras,
        TarOptions::default(),
        None,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(
        fs::read_dir(t.path()).unwrap().count(),
        2,
        "no temporary left"
    );
}

#[test]
fn a_tree_extra_streams_a_host_tree_into_a_build_context_minus_its_excludes() {
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("compat");
    fs::create_dir_all(tree.join("var/cache")).unwrap();
    fs::create_dir_all(tree.join("bin")).unwrap();
    fs::write(tree.join("var/cache/big.bin"), vec![0u8; 4096]).unwrap();
    fs::write(tree.join("var/keep.txt"), b"keep").unwrap();
    fs::write(tree.join("bin/tool"), b"#!/bin/sh\n").unwrap();
    fs::write(tree.join("bin/tool.log"), b"noise").unwrap();
    std::os::unix::fs::symlink("tool", tree.join("bin/alias")).unwrap();
    let exclude = vec!["var/cache".to_string(), "*.log".to_string()];
    let ctx = kerblam_plan::Context {
        root: ".".into(),
        excluded: vec![],
        files: vec![],
        total_bytes: 0,
    };
    let extras = [
        ExtraEntry {
            path: ".kerblam/Containerfile",
            source: ExtraSource::Bytes(b"FROM x\n"),
            mode: 0o644,
        },
        ExtraEntry {
            path: ".kerblam/layer-0",
            source: ExtraSource::Tree {
                path: &tree,
                exclude: &exclude,
            },
            mode: 0o755,
        },
    ];
    let (bytes, summary) = write_build_context(
        Vec::new(),
        t.path(),
        &ctx,
        &extras,
        TarOptions::default(),
        None,
    )
    .unwrap();
    let mut a = tar::Archive::new(&bytes[..]);
    let listed: Vec<String> = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(
        listed,
        [
            ".kerblam/Containerfile",
            ".kerblam/layer-0/",
            ".kerblam/layer-0/bin/",
            ".kerblam/layer-0/bin/alias",
            ".kerblam/layer-0/bin/tool",
            ".kerblam/layer-0/var/",
            ".kerblam/layer-0/var/keep.txt",
        ]
    );
    // Containerfile + tool + keep.txt + the symlink; the excluded 4 KiB are not sent.
    assert_eq!(summary.files, 4);
    assert_eq!(summary.bytes, 7 + 10 + 4);

    let bad = vec!["[z-a]".to_string()];
    let extras = [ExtraEntry {
        path: "t",
        source: ExtraSource::Tree {
            path: &tree,
            exclude: &bad,
        },
        mode: 0o755,
    }];
    let Err(e) = write_build_context(
        Vec::new(),
        t.path(),
        &ctx,
        &extras,
        TarOptions::default(),
        None,
    ) else {
        panic!("an invalid exclude pattern was accepted");
    };
    assert!(e.message().contains("exclude pattern \"[z-a]\""), "{e}");
}

#[test]
fn cancelling_stops_writing_and_extracting_and_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("project");
    let files = project(&root);
    let out = t.path().join("p.kerblam.tar");
    let seen = Cell::new(0u64);
    let progress = |b: u64, _: u64| seen.set(b);
    // Cancel once some bytes went through: mid-way through the big file.
    let cancel = || seen.get() > 1_000_000;
    let mut w = ReplayWriter::create(&out, contents(b"{}"), opts(ReplayFormat::V2, 0)).unwrap();
    let e = w
        .add_data_cancellable(&root, &files, Some(&progress), Some(&cancel))
        .unwrap_err();
    assert!(e.is_cancelled(), "{e}");
    assert!(
        seen.get() < 3_000_000,
        "stopped early, at {} bytes",
        seen.get()
    );
    drop(w);
    assert_eq!(
        fs::read_dir(t.path()).unwrap().count(),
        1,
        "the temporary archive is gone"
    );

    write_v2(&root, &out, &files, opts(ReplayFormat::V2, 0), None);
    let a = ReplayArchive::open(&out).unwrap();
    let dest = t.path().join("dest");
    fs::create_dir(&dest).unwrap();
    let before = snapshot(t.path());
    let calls = Cell::new(0);
    let cancel = || {
        calls.set(calls.get() + 1);
        calls.get() > 2
    };
    let e = a
        .extract_data_cancellable(&dest, &ExtractOptions::default(), None, Some(&cancel))
        .unwrap_err();
    assert!(e.is_cancelled(), "{e}");
    assert_eq!(snapshot(t.path()), before, "dest left as found");
}

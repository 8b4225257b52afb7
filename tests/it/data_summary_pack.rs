//! `kerblam data` (the summary, as Kerblam! 1.x prints it, with each remote file's status) and
//! `kerblam data pack` (a .tar.gz of the precious input and the outputs, at 1.x's default path).

use crate::support;

use support::project::{TestProject, show};

const MANIFEST: &str = r#"
[data.remote]
"https://example.invalid/reference.txt" = "reference.txt"
"https://example.invalid/missing.txt" = "missing.txt"
"_" = "by_hand.txt"
"#;

fn project() -> TestProject {
    let p = TestProject::new(MANIFEST);
    p.write("data/in/precious.txt", "0123456789")
        .write("data/in/reference.txt", vec![b'r'; 1025])
        .write("data/in/by_hand.txt", "hand\n")
        .write("data/x.bin", vec![0u8; 2000])
        .write("data/out/r.txt", vec![b'o'; 3000])
        .write("data/out/sub/.hidden", "h");
    p
}

#[test]
fn data_without_a_subcommand_summarises_the_data_as_kerblam_1_does() {
    let p = project();
    let o = p.kerblam(&["data"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let expected = "./data\t1 KiB [1]\n\
                    └── in\t1 KiB [3]\n\
                    └── out\t2 KiB [2]\n\
                    ──────────────────────\n\
                    Total\t5 KiB [6]\n\
                    └── cleanup\t5 KiB [3] (99.74%)\n\
                    └── remote\t1 KiB [1]\n\
                    There is one undownloaded file.\n\
                    \n\
                    remote files:\n  \
                    present\t5 B\tdata/in/by_hand.txt\t<- _ (cannot be fetched: precious)\n  \
                    missing\t-\tdata/in/missing.txt\t<- https://example.invalid/missing.txt\n  \
                    present\t1 KiB\tdata/in/reference.txt\t<- https://example.invalid/reference.txt\n";
    assert_eq!(out, expected, "{}", show(&o));
}

#[test]
fn an_empty_project_has_an_empty_summary() {
    let p = TestProject::new("");
    let o = p.kerblam(&["data"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("Total\t0 B [0]\n└── cleanup\t0 B [0] (0.00%)\n"),
        "{out}"
    );
    assert!(out.ends_with("There are 0 undownloaded files.\n"), "{out}");
}

#[test]
fn pack_exports_precious_input_and_outputs_to_data_export_tar_gz() {
    let p = project();
    let o = p.kerblam(&["data", "pack"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let archive = p.path("data/data_export.tar.gz");
    let got = support::files::tar_gz(&archive);
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "data/",
            "data/in/",
            "data/in/by_hand.txt",
            "data/in/precious.txt",
            "data/out/",
            "data/out/r.txt",
            "data/out/sub/",
            "data/out/sub/.hidden",
        ],
        "{}",
        show(&o)
    );
    assert_eq!(
        got["data/in/precious.txt"].as_deref(),
        Some(&b"0123456789"[..])
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("data_export.tar.gz"));
    // For others to read, as `tar czf` makes it (not a temporary file's 0600).
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&archive).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);

    // Packing again replaces the export (which is intermediate data itself, and never packed).
    p.write("data/out/r.txt", "new");
    let o = p.kerblam(&["data", "pack"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(
        support::files::tar_gz(&archive)["data/out/r.txt"].as_deref(),
        Some(&b"new"[..])
    );
}

#[test]
fn pack_output_only_and_a_path_of_ones_own() {
    let p = project();
    // OUTPUT is relative to where kerblam starts: -C DIR here.
    let o = p.kerblam(&["data", "pack", "-o", "exports/outputs.tgz"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let got = support::files::tar_gz(&p.path("exports/outputs.tgz"));
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "data/",
            "data/out/",
            "data/out/r.txt",
            "data/out/sub/",
            "data/out/sub/.hidden"
        ]
    );
    assert!(!p.exists("data/data_export.tar.gz"));
}

#[test]
fn pack_with_nothing_to_pack_writes_nothing() {
    let p = TestProject::new("");
    p.write("data/scratch.txt", "intermediate only");
    let o = p.kerblam(&["data", "pack"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Nothing to pack"));
    assert!(!p.exists("data/data_export.tar.gz"));
}

#[test]
fn pack_never_writes_over_a_file_it_did_not_write_nor_into_the_input_dir() {
    let p = project();
    p.write("notes.txt", "my notes");
    let o = p.kerblam(&["data", "pack", "notes.txt"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--force"),
        "{}",
        show(&o)
    );
    assert_eq!(p.read("notes.txt"), "my notes");
    let o = p.kerblam(&["data", "pack", "notes.txt", "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(support::files::tar_gz(&p.path("notes.txt")).contains_key("data/in/precious.txt"));

    let o = p.kerblam(&["data", "pack", "data/in/export.tar.gz"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(!p.exists("data/in/export.tar.gz"));
}

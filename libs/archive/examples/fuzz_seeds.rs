//! Writes small, valid replay archives with [`ReplayWriter`] into a directory, as seeds for the
//! `replay_archive` fuzz target (`bash scripts/fuzz.sh` runs it):
//!
//! ```text
//! cargo run -p kerblam-archive --example fuzz_seeds -- OUT_DIR
//! ```

use std::fs;
use std::path::Path;

use kerblam_archive::*;

const PLAN: &[u8] = b"{\"schema\": \"kerblam.plan/v1\"}\n";

struct Seed {
    name: &'static str,
    format: ReplayFormat,
    manifest: &'static str,
    input_dir: &'static str,
    files: &'static [(&'static str, &'static [u8])],
    image: Option<&'static [u8]>,
    signature: Option<&'static [u8]>,
}

const SEEDS: &[Seed] = &[
    Seed {
        name: "v2-one-file",
        format: ReplayFormat::V2,
        manifest: "[data.paths]\ninput = \"data/in\"\n",
        input_dir: "data/in",
        files: &[("data/in/a.txt", b"precious a\n")],
        image: None,
        signature: None,
    },
    Seed {
        name: "v2-tree-image-signature",
        format: ReplayFormat::V2,
        manifest: "[data.paths]\ninput = \"inputs\"\noutput = \"out\"\n",
        input_dir: "inputs",
        files: &[
            ("inputs/a.csv", b"x,y\n1,2\n"),
            ("inputs/sub/b.txt", b"b\n"),
            ("inputs/sub/deeper/empty", b""),
        ],
        image: Some(b"not really an image tar"),
        signature: Some(b"{\"name\":\"a\",\"email\":\"a@example.org\",\"on\":\"x\"}"),
    },
    Seed {
        name: "v2-no-data",
        format: ReplayFormat::V2,
        manifest: "",
        input_dir: "data/in",
        files: &[],
        image: None,
        signature: None,
    },
    Seed {
        name: "v2-long-name",
        format: ReplayFormat::V2,
        manifest: "[meta]\nversion = \"1\"\n",
        input_dir: "data/in",
        files: &[(
            "data/in/a-name-longer-than-the-one-hundred-bytes-of-a-tar-header-so-that-it-needs-a-gnu-long-name-entry.txt",
            b"long\n",
        )],
        image: None,
        signature: None,
    },
    Seed {
        name: "v1-two-files",
        format: ReplayFormat::KerblamV1,
        manifest: "[data.paths]\ninput = \"data/in\"\n",
        input_dir: "data/in",
        files: &[("data/in/a.txt", b"a\n"), ("data/in/sub/b.txt", b"b\n")],
        image: None,
        signature: Some(b"{\"name\":\"a\",\"email\":\"a@example.org\",\"on\":\"x\"}"),
    },
];

fn main() {
    let out = std::env::args().nth(1).expect("usage: fuzz_seeds OUT_DIR");
    let out = Path::new(&out);
    fs::create_dir_all(out).unwrap();
    let work = tempfile::tempdir().unwrap();
    for s in SEEDS {
        let root = work.path().join(s.name);
        for (path, data) in s.files {
            let p = root.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, data).unwrap();
        }
        fs::create_dir_all(&root).unwrap();
        fs::write(root.join("kerblam.toml"), s.manifest).unwrap();
        let opts = ReplayOptions {
            format: s.format,
            tar: TarOptions { mtime: 0 },
            threads: 1,
            force: true,
            ..ReplayOptions::default()
        };
        let contents = ReplayContents {
            manifest: s.manifest.as_bytes(),
            image_name: "seed_exec",
            plan_json: Some(PLAN),
            input_dir: s.input_dir,
        };
        let path = out.join(format!("{}.kerblam.tar", s.name));
        let mut w = ReplayWriter::create(&path, contents, opts).unwrap();
        let files: Vec<&str> = s.files.iter().map(|(p, _)| *p).collect();
        w.add_data(&root, &files, None).unwrap();
        if let Some(mut image) = s.image {
            w.add_image(&mut image, None).unwrap();
        }
        let written = w.finish(s.signature).unwrap();
        // The seed must itself be accepted, or it seeds nothing but the error paths.
        let a = ReplayArchive::open(&written.path).unwrap();
        a.verify(None).unwrap();
        a.extract_data(
            &work.path().join("check").join(s.name),
            &ExtractOptions::default(),
            None,
        )
        .unwrap();
        println!("{} ({} bytes)", written.path.display(), written.bytes);
    }
}

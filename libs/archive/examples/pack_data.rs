//! Writes a replay archive of every file under `<root>/<dir>`, for measuring throughput by hand:
//!
//! ```text
//! cargo run --release -p kerblam-archive --example pack_data -- ROOT DIR OUT [kerblam-v1]
//! ```
//!
//! Prints the seconds taken, the bytes archived and the archive size. Also `extract ARCHIVE DEST`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use kerblam_archive::*;

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            out.push(p.strip_prefix(root).unwrap().to_str().unwrap().to_string());
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args[0] == "extract" {
        let t = Instant::now();
        let a = ReplayArchive::open(Path::new(&args[1])).unwrap();
        let r = a
            .extract_data(Path::new(&args[2]), &ExtractOptions::default(), None)
            .unwrap();
        println!(
            "extracted {} files, {} bytes in {:.2}s",
            r.written.len(),
            r.bytes,
            t.elapsed().as_secs_f64()
        );
        return;
    }
    let root = PathBuf::from(&args[0]);
    let mut files = Vec::new();
    walk(&root, &root.join(&args[1]), &mut files);
    let format = ReplayFormat::from_option(args.get(3).map(String::as_str)).unwrap();
    let opts = ReplayOptions {
        format,
        tar: TarOptions::from_env().unwrap(),
        force: true,
        ..Default::default()
    };
    let t = Instant::now();
    let contents = ReplayContents {
        manifest: b"",
        image_name: "bench",
        plan_json: Some(b"{}"),
        input_dir: &args[1],
    };
    let mut w = ReplayWriter::create(Path::new(&args[2]), contents, opts).unwrap();
    w.add_data(&root, &files, None).unwrap();
    let done = w.finish(None).unwrap();
    println!(
        "{} files, {} bytes -> {} bytes in {:.2}s",
        done.data_files,
        done.data_bytes,
        done.bytes,
        t.elapsed().as_secs_f64()
    );
}

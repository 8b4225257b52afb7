//! What a directory or a `.tar.gz` holds, as maps that compare and print well in assertions.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// Every path under `rel` of `root`, relative to `root` (directories end with `/`, links are
/// `-> target`), with contents (lossy UTF-8). A `.git` directory is listed but not entered; a
/// missing `rel` gives an empty map.
pub fn tree(root: &Path, rel: &str) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd {
            let e = e.unwrap();
            let rel = e
                .path()
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                let to = std::fs::read_link(e.path()).unwrap();
                out.insert(rel, format!("-> {}", to.display()));
            } else if ft.is_dir() {
                out.insert(format!("{rel}/"), String::new());
                if rel != ".git" {
                    walk(base, &e.path(), out);
                }
            } else {
                out.insert(
                    rel,
                    String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, &root.join(rel), &mut out);
    out
}

/// The entries of a `.tar.gz` (which must be gzip), named without a leading `./`: path →
/// contents, `None` for a directory (whose name ends with `/`).
pub fn tar_gz(path: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "{} is not gzip", path.display());
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut out = BTreeMap::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let name = name
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        if name.is_empty() || name == "." {
            continue;
        }
        if e.header().entry_type().is_dir() {
            out.insert(format!("{name}/"), None);
        } else {
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            out.insert(name, Some(data));
        }
    }
    out
}

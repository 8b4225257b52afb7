//! `scripts/install.sh PREFIX` produces the relocatable layout the README documents, and the
//! installed kerblam finds its four plugins there (through `<exe dir>/../lib/kerblam/backends`),
//! from any working directory, with no KERBLAM_BACKEND_PATH. A debug build keeps the test quick.
//! Installed files are stripped, their debug info in `.debug/NAME.debug` beside them.

use std::path::Path;
use std::process::Command;

#[test]
fn install_sh_lays_out_a_prefix_whose_kerblam_finds_its_plugins() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let t = tempfile::tempdir().unwrap();
    let prefix = t.path().join("prefix");
    let o = Command::new("bash")
        .arg(root.join("scripts/install.sh"))
        .arg(&prefix)
        .env("KERBLAM_INSTALL_PROFILE", "debug")
        .env_remove("KERBLAM_BACKEND_PATH")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    for b in ["docker", "podman", "apptainer", "tarball"] {
        let lib = prefix.join(format!("lib/kerblam/backends/libkerblam_backend_{b}.so"));
        assert!(lib.is_file(), "{} missing\n{err}", lib.display());
    }
    let mut installed = vec![prefix.join("bin/kerblam")];
    installed.extend(
        ["docker", "podman", "apptainer", "tarball"]
            .map(|b| prefix.join(format!("lib/kerblam/backends/libkerblam_backend_{b}.so"))),
    );
    for file in &installed {
        stripped_with_its_debug_info_beside(file);
    }
    // Moved elsewhere, it still works: the layout is relative to the executable.
    let moved = t.path().join("moved");
    std::fs::rename(&prefix, &moved).unwrap();
    let o = Command::new(moved.join("bin/kerblam"))
        .args(["backends", "--json"])
        .current_dir(t.path())
        .env_remove("KERBLAM_BACKEND_PATH")
        .env("XDG_DATA_HOME", t.path().join("no-data-home"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut names: Vec<String> = v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let path = p["path"].as_str().unwrap();
            assert!(path.starts_with(moved.to_str().unwrap()), "{path}");
            p["name"].as_str().unwrap().to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["apptainer", "docker", "podman", "tarball"]);
}

/// The section names of the ELF file `path`, as `readelf` lists them.
fn sections(path: &Path) -> Vec<String> {
    let o = Command::new("readelf")
        .args(["-S", "-W"])
        .arg(path)
        .output()
        .expect("readelf (binutils), which install.sh's objcopy comes with");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_once("] ").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_whitespace().next().map(str::to_string))
        .collect()
}

/// `file` holds no debug info but a `.gnu_debuglink` to `.debug/NAME.debug` beside it, which holds
/// the line tables (what backtraces and gdb read).
fn stripped_with_its_debug_info_beside(file: &Path) {
    let name = file.file_name().unwrap().to_str().unwrap();
    let debug = file.parent().unwrap().join(format!(".debug/{name}.debug"));
    let have = sections(file);
    assert!(
        !have
            .iter()
            .any(|s| s == ".debug_line" || s == ".debug_info"),
        "{} keeps debug info: {have:?}",
        file.display()
    );
    assert!(have.iter().any(|s| s == ".gnu_debuglink"), "{have:?}");
    let link = std::fs::read(file).unwrap();
    let needle = format!("{name}.debug\0");
    assert!(
        link.windows(needle.len()).any(|w| w == needle.as_bytes()),
        "{} does not link {name}.debug",
        file.display()
    );
    assert!(
        sections(&debug).iter().any(|s| s == ".debug_line"),
        "{} holds no line tables",
        debug.display()
    );
}

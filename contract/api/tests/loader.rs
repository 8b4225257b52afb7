//! Discovery and loading of real plugin libraries (C plugins built with gcc here, and the
//! first-party cdylibs built with cargo): search order, skipped files, refused plugins, shadowing,
//! and the unknown-name error.

mod support;

use std::path::Path;

use kerblam_backend_api::Hello;
use kerblam_backend_api::host::{LoadErrorKind, Plugin, Registry, SearchConfig, SearchOrigin};
use support::*;

fn hello() -> Hello {
    Hello::new("kerblam-test", "0")
}

fn only_backend_path(dirs: &[&Path]) -> SearchConfig {
    SearchConfig {
        backend_path: dirs.iter().map(|d| d.to_path_buf()).collect(),
        exe_dir: None,
        data_dir: None,
    }
}

fn reason_for(reg: &Registry, file: &str) -> (LoadErrorKind, String) {
    let s = reg
        .skipped
        .iter()
        .find(|s| s.path.file_name().unwrap() == file)
        .unwrap_or_else(|| panic!("{file} not in skipped: {:?}", reg.skipped));
    (s.kind, s.reason.clone())
}

#[test]
fn bad_libraries_are_skipped_or_refused_with_reasons_and_good_ones_load() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    std::fs::create_dir(&a).unwrap();
    cplugin(&a, "good.so", &["NAME=\"cgood\""]);
    cplugin(&a, "noexec.so", &["NAME=\"cnoexec\"", "NO_EXECUTE"]);
    cplugin(&a, "abi2.so", &["NAME=\"cabi2\"", "ABI=(2u<<16)"]);
    cplugin(&a, "garbage.so", &["GARBAGE_DESCRIBE"]);
    nonplugin_so(&a, "nonplugin.so");
    elf32_so(&a, "elf32.so");
    std::fs::write(a.join("junk.so"), "this is not a library\n").unwrap();
    std::fs::write(a.join("README.txt"), "not a .so, never considered\n").unwrap();

    let reg = Registry::discover(&only_backend_path(&[&a]), &hello());
    assert_eq!(reg.names(), vec!["cgood"]);

    let (k, r) = reason_for(&reg, "noexec.so");
    assert_eq!(k, LoadErrorKind::Refused);
    assert!(
        r.contains("missing symbol `kerblam_backend_execute`"),
        "{r}"
    );

    let (k, r) = reason_for(&reg, "abi2.so");
    assert_eq!(k, LoadErrorKind::Refused);
    assert!(
        r.contains("backend ABI 2.0")
            && r.contains("speaks ABI 1.1")
            && r.contains("KERBLAM_BACKEND_ABI_VERSION of kerblam_backend.h"),
        "{r}"
    );

    let (k, r) = reason_for(&reg, "garbage.so");
    assert_eq!(k, LoadErrorKind::Refused);
    assert!(
        r.contains("describe returned garbage") && r.contains("not valid JSON"),
        "{r}"
    );

    let (k, r) = reason_for(&reg, "nonplugin.so");
    assert_eq!(k, LoadErrorKind::Skipped);
    assert!(
        r.contains("not a kerblam backend (no `kerblam_backend_abi_version` symbol)"),
        "{r}"
    );

    let (k, r) = reason_for(&reg, "elf32.so");
    assert_eq!(k, LoadErrorKind::Skipped);
    assert!(r.contains("wrong ELF class: a 32-bit library"), "{r}");

    let (k, r) = reason_for(&reg, "junk.so");
    assert_eq!(k, LoadErrorKind::Skipped);
    assert!(r.contains("not an ELF shared library"), "{r}");

    assert_eq!(reg.skipped.len(), 6, "{:?}", reg.skipped);
    // Refused plugins are warnings the CLI shows; plain skips are not.
    let warnings = reg.warnings();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(
        warnings
            .iter()
            .all(|w| w.starts_with("refused backend plugin ")),
        "{warnings:?}"
    );
}

#[test]
fn unknown_backend_name_lists_the_installed_ones() {
    let t = tempfile::tempdir().unwrap();
    cplugin(t.path(), "one.so", &["NAME=\"alpha\""]);
    cplugin(t.path(), "two.so", &["NAME=\"beta\""]);
    std::fs::write(t.path().join("junk.so"), "x").unwrap();
    let reg = Registry::discover(&only_backend_path(&[t.path()]), &hello());
    assert!(reg.get("alpha").is_ok());
    let err = reg.get("gamma").unwrap_err().to_string();
    assert!(
        err.starts_with("no backend named \"gamma\"; installed: alpha, beta"),
        "{err}"
    );
    assert!(err.contains(&t.path().display().to_string()), "{err}");
    assert!(err.contains("1 libraries were skipped"), "{err}");

    let empty = tempfile::tempdir().unwrap();
    let reg = Registry::discover(&only_backend_path(&[empty.path()]), &hello());
    let err = reg.get("docker").unwrap_err().to_string();
    assert!(err.contains("no backends are installed"), "{err}");
}

#[test]
fn a_plugin_with_the_same_name_later_on_the_path_is_shadowed_with_a_warning() {
    let t = tempfile::tempdir().unwrap();
    let (first, second) = (t.path().join("first"), t.path().join("second"));
    std::fs::create_dir(&first).unwrap();
    std::fs::create_dir(&second).unwrap();
    let winner = cplugin(&first, "libkerblam_backend_dup.so", &["NAME=\"dup\""]);
    let loser = cplugin(&second, "libkerblam_backend_dup.so", &["NAME=\"dup\""]);
    let reg = Registry::discover(&only_backend_path(&[&first, &second]), &hello());
    assert_eq!(reg.names(), vec!["dup"]);
    assert_eq!(reg.get("dup").unwrap().path(), winner);
    assert_eq!(reg.shadowed.len(), 1);
    let w = reg.warnings();
    assert_eq!(
        w,
        vec![format!(
            "backend \"dup\" at {} is shadowed by {}",
            loser.display(),
            winner.display()
        )]
    );
}

#[test]
fn search_order_is_backend_path_then_exe_dir_then_its_lib_dir_then_the_data_dir() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let (extra, bin, lib, data) = (
        root.join("extra"),
        root.join("prefix/bin"),
        root.join("prefix/lib/kerblam/backends"),
        root.join("data/kerblam/backends"),
    );
    for d in [&extra, &bin, &lib, &data] {
        std::fs::create_dir_all(d).unwrap();
    }
    let file_entry = cplugin(&extra, "explicit-file.so", &["NAME=\"explicit\""]);
    cplugin(&bin, "libkerblam_backend_exe.so", &["NAME=\"exe\""]);
    // In the executable's own directory only kerblam_backend libraries are considered.
    std::fs::write(bin.join("libunrelated.so"), "not looked at").unwrap();
    cplugin(
        &lib,
        "libkerblam_backend_installed.so",
        &["NAME=\"installed\""],
    );
    cplugin(&data, "user.so", &["NAME=\"user\""]);
    let config = SearchConfig {
        backend_path: vec![file_entry.clone(), extra.clone()],
        exe_dir: Some(bin.clone()),
        data_dir: Some(data.clone()),
    };
    let dirs = config.dirs();
    let origins: Vec<SearchOrigin> = dirs.iter().map(|d| d.origin).collect();
    use SearchOrigin::*;
    assert_eq!(
        origins,
        vec![BackendPath, BackendPath, ExeDir, ExeLib, DataDir]
    );
    assert_eq!(dirs[3].path, lib);
    let cwd = std::env::current_dir().unwrap();
    assert!(
        dirs.iter()
            .all(|d| d.path != cwd && d.path != Path::new(".")),
        "{dirs:?}"
    );

    let reg = Registry::discover(&config, &hello());
    assert_eq!(reg.names(), vec!["explicit", "exe", "installed", "user"]);
    assert!(reg.skipped.is_empty(), "{:?}", reg.skipped);
}

#[test]
fn standard_search_uses_xdg_data_home_or_home_and_never_the_working_directory() {
    let config = SearchConfig::standard(vec![]);
    let exe = std::env::current_exe().unwrap();
    assert_eq!(config.exe_dir.as_deref(), exe.parent());
    let data = config.data_dir.expect("HOME is set in tests");
    assert!(data.ends_with("kerblam/backends"), "{}", data.display());
    let expected = match std::env::var_os("XDG_DATA_HOME").filter(|x| Path::new(x).is_absolute()) {
        Some(x) => Path::new(&x).join("kerblam/backends"),
        None => Path::new(&std::env::var_os("HOME").unwrap()).join(".local/share/kerblam/backends"),
    };
    assert_eq!(data, expected);
}

#[test]
fn first_party_plugins_load_for_real_and_describe_themselves() {
    for (_, lib) in FIRST_PARTY {
        let path = first_party(lib);
        let plugin = Plugin::load(&path, &hello()).unwrap_or_else(|e| panic!("{e}"));
        let d = plugin.describe();
        assert_eq!(format!("kerblam_backend_{}", d.name), lib);
        assert_eq!(d.version, env!("CARGO_PKG_VERSION"));
        assert!(
            d.sdk
                .as_deref()
                .unwrap()
                .starts_with("kerblam-backend-api ")
        );
        // Every first-party backend declares what it is built for, even before its actions land.
        assert!(
            !d.capabilities.artifact_kinds.is_empty() && !d.capabilities.base_kinds.is_empty(),
            "{d:?}"
        );
        assert!(d.problems().is_empty(), "{:?}", d.problems());
        assert_eq!(plugin.abi_version(), kerblam_backend_api::ABI_VERSION);
    }
}

#[test]
fn a_backend_path_entry_that_does_not_exist_is_reported() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("nope");
    let reg = Registry::discover(&only_backend_path(&[&missing]), &hello());
    assert_eq!(reg.skipped.len(), 1);
    assert_eq!(reg.skipped[0].path, missing);
    assert!(
        reg.skipped[0]
            .reason
            .starts_with("no such file or directory"),
        "{}",
        reg.skipped[0].reason
    );
}

/// Describe replies that are valid JSON but say the wrong things are refused, each with a reason
/// naming what is wrong.
#[test]
fn describes_that_parse_but_are_wrong_are_refused_with_what_is_wrong() {
    let t = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], &[&str]); 4] = [
        (
            "tag.so",
            &["NAME=\"ctag\"", "WRONG_TAG"],
            &["kerblam.describe/v9"],
        ),
        ("name.so", &["BAD_NAME"], &["Not A Name!"]),
        (
            "range.so",
            &["NAME=\"crange\"", "SCHEMA_RANGE"],
            &["v2", "v3"],
        ),
        (
            "abi.so",
            &["NAME=\"cabi\"", "DESCRIBE_ABI2"],
            &["ABI major 2", "host's 1"],
        ),
    ];
    for (file, defines, _) in &cases {
        cplugin(t.path(), file, defines);
    }
    let reg = Registry::discover(&only_backend_path(&[t.path()]), &hello());
    assert!(reg.names().is_empty(), "{:?}", reg.names());
    for (file, _, says) in &cases {
        let (k, r) = reason_for(&reg, file);
        assert_eq!(k, LoadErrorKind::Refused, "{file}: {r}");
        for s in *says {
            assert!(r.contains(s), "{file}: the reason does not say {s:?}: {r}");
        }
    }
}

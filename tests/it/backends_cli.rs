//! `kerblam backends` and `kerblam backends check`, run as the real binary against real plugin
//! libraries built with cargo (and a broken C plugin built with gcc).

use crate::support;

use support::text;

use std::process::{Command, Output};

use kerblam_backend_api::host::testing;

const PLUGINS: [&str; 4] = [
    "kerblam-backend-docker",
    "kerblam-backend-podman",
    "kerblam-backend-apptainer",
    "kerblam-backend-tarball",
];

fn kerblam(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kerblam"))
        .args(args)
        .env_remove("KERBLAM_BACKEND_PATH")
        .output()
        .unwrap()
}

#[test]
fn backends_lists_plugins_skipped_files_and_shadowed_names() {
    let dir = support::plugin_dir(&PLUGINS);
    let t = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.join(testing::cdylib_file("kerblam_backend_tarball")),
        t.path().join("tarball-copy.so"),
    )
    .unwrap();
    std::fs::write(t.path().join("junk.so"), "not a library").unwrap();
    let bp = format!("{}:{}", t.path().display(), dir.display());
    let out = kerblam(&["backends", "--backend-path", &bp]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    for name in [
        "docker 0.1.0",
        "podman 0.1.0",
        "apptainer 0.1.0",
        "tarball 0.1.0",
    ] {
        assert!(stdout.contains(name), "{name} missing:\n{stdout}");
    }
    assert!(
        stdout.contains(&format!(
            "tarball 0.1.0  {}",
            t.path().join("tarball-copy.so").display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("ABI 1.1, plan schema kerblam.plan/v2"),
        "{stdout}"
    );
    assert!(stdout.contains("\n    actions:   "), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "skipped:\n  {}: not an ELF shared library",
            t.path().join("junk.so").display()
        )),
        "{stdout}"
    );
    assert!(
        stderr.contains("warning: backend \"tarball\" at") && stderr.contains("is shadowed by"),
        "{stderr}"
    );

    let out = kerblam(&["backends", "--json", "--backend-path", &bp]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["tarball", "apptainer", "docker", "podman"]);
    assert_eq!(v["plugins"][0]["abi"], "1.1");
    assert_eq!(v["plugins"][0]["plans"], true);
    assert_eq!(
        v["plugins"][0]["plan_schema"],
        serde_json::json!({"min": 2, "max": 2})
    );
    assert!(
        v["plugins"][0]["capabilities"]["reentrant"].is_boolean(),
        "{v}"
    );
    assert_eq!(v["skipped"][0]["reason"], "not an ELF shared library");
    assert_eq!(v["shadowed"][0]["name"], "tarball");
    assert_eq!(v["searched"][0]["origin"], "backend-path");
}

#[test]
fn backends_check_passes_a_conforming_plugin_and_fails_a_broken_one() {
    let dir = support::plugin_dir(&PLUGINS);
    let lib = dir.join(testing::cdylib_file("kerblam_backend_docker"));
    let out = kerblam(&["backends", "check", lib.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("  pass  panic\n") && stdout.ends_with("conformance: passed\n"),
        "{stdout}"
    );

    let t = tempfile::tempdir().unwrap();
    let so =
        kerblam_backend_api::host::testing::c_fixture(t.path(), "truncated.so", &["TRUNCATED"]);
    let out = kerblam(&["backends", "check", "--json", so.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let minimal = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "golden/minimal")
        .unwrap();
    assert_eq!(minimal["outcome"]["status"], "fail");
    assert!(
        minimal["outcome"]["reason"]
            .as_str()
            .unwrap()
            .contains("truncated"),
        "{minimal}"
    );

    let out = kerblam(&["backends", "check", "/nonexistent/plugin.so"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("/nonexistent/plugin.so: no such plugin file"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_installed_layout_finds_its_plugins_next_to_the_binary_and_never_in_the_working_directory() {
    let dir = support::plugin_dir(&PLUGINS);
    let prefix = tempfile::tempdir().unwrap();
    let (bin, lib) = (
        prefix.path().join("bin"),
        prefix.path().join("lib/kerblam/backends"),
    );
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_kerblam"), bin.join("kerblam")).unwrap();
    for name in ["docker", "podman", "apptainer", "tarball"] {
        let f = testing::cdylib_file(&format!("kerblam_backend_{name}"));
        std::fs::copy(dir.join(&f), lib.join(&f)).unwrap();
    }
    // A plugin in the working directory must not be picked up.
    let cwd = tempfile::tempdir().unwrap();
    let f = testing::cdylib_file("kerblam_backend_docker");
    std::fs::copy(dir.join(&f), cwd.path().join(&f)).unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(bin.join("kerblam"))
        .args(["backends", "--json"])
        .current_dir(cwd.path())
        .env_remove("KERBLAM_BACKEND_PATH")
        .env_remove("XDG_DATA_HOME")
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<&str> = v["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 4, "{v}");
    let lib_via_bin = lib.clone();
    assert!(
        paths
            .iter()
            .all(|p| p.starts_with(lib_via_bin.to_str().unwrap())),
        "{paths:?}"
    );
    assert!(
        v["shadowed"].as_array().unwrap().is_empty() && v["skipped"].as_array().unwrap().is_empty(),
        "{v}"
    );
    let searched: Vec<&str> = v["searched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        searched,
        vec![
            bin.to_str().unwrap().to_string(),
            lib_via_bin.to_str().unwrap().to_string(),
            home.path()
                .join(".local/share/kerblam/backends")
                .to_str()
                .unwrap()
                .to_string()
        ]
    );
}

#[test]
fn kerblam_backend_path_is_split_on_colons_and_searched_first() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let out = Command::new(env!("CARGO_BIN_EXE_kerblam"))
        .args(["backends", "--json"])
        .env(
            "KERBLAM_BACKEND_PATH",
            format!("{}:{}", a.path().display(), b.path().display()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let searched = v["searched"].as_array().unwrap();
    assert_eq!(searched[0]["path"], a.path().to_str().unwrap());
    assert_eq!(searched[1]["path"], b.path().to_str().unwrap());
    assert_eq!(searched[0]["origin"], "backend-path");
    assert_eq!(searched[2]["origin"], "exe-dir");
}

/// kerblam links no backend: every backend, first-party ones included, is a plugin it loads. Its
/// dependency tree holds the plugin contract (`kerblam-backend-api`) and the shared libraries, and
/// no backend crate.
#[test]
fn kerblam_depends_on_no_backend_crate() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["tree", "--offline", "-p", "kerblam", "-e", "normal,build"])
        .args(["--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let tree = text(&out.stdout);
    assert!(tree.contains("kerblam-backend-api"), "{tree}");
    for backend in [
        "kerblam-backend-docker",
        "kerblam-backend-podman",
        "kerblam-backend-apptainer",
        "kerblam-backend-tarball",
        "kerblam-engine",
        "kerblam-render",
    ] {
        assert!(
            !tree.contains(backend),
            "kerblam depends on {backend}:\n{tree}"
        );
    }
}

//! Helpers for tests that load real plugins: build the cdylibs with cargo (once per process) and
//! find the built libraries. Used by this crate's tests, the conformance kit's tests and the CLI's
//! end-to-end tests; there is no in-process shortcut. Test-only: behind the feature `testing`,
//! which only dev-dependencies enable.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Builds already done in this process, by key, with their outcome.
static BUILT: Mutex<Option<HashMap<String, Result<PathBuf, String>>>> = Mutex::new(None);

/// The profile directory (`<target>/debug`) of the running test binary
/// (`<target>/debug/deps/<test>-<hash>`), or of the running executable.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("profile dir").to_path_buf()
    } else {
        dir
    }
}

/// The file name of a cdylib named `lib_name` (`libkerblam_backend_docker.so` on Linux).
pub fn cdylib_file(lib_name: &str) -> String {
    format!(
        "{}{lib_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn profile_args(profile: &Path) -> Vec<String> {
    match profile.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => Vec::new(),
        Some("release") => vec!["--release".into()],
        Some(other) => vec!["--profile".into(), other.into()],
    }
}

fn run_once(
    key: String,
    build: impl FnOnce() -> Result<PathBuf, String>,
) -> Result<PathBuf, String> {
    let mut guard = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(done) = map.get(&key) {
        return done.clone();
    }
    let result = build();
    map.insert(key, result.clone());
    result
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Build workspace `packages` (`cargo build -p ...`) into the running test's target and profile
/// directories, once per process, and return the profile directory holding the libraries.
/// `workspace_manifest` is the workspace's `Cargo.toml`.
pub fn build_workspace_packages(
    workspace_manifest: &Path,
    packages: &[&str],
) -> Result<PathBuf, String> {
    let profile = profile_dir();
    let target = profile.parent().unwrap_or(&profile).to_path_buf();
    let key = format!("ws:{}:{}", workspace_manifest.display(), packages.join(","));
    run_once(key, || {
        let mut cmd = Command::new(cargo());
        cmd.arg("build")
            .arg("--quiet")
            .arg("--manifest-path")
            .arg(workspace_manifest)
            .arg("--target-dir")
            .arg(&target);
        cmd.args(profile_args(&profile));
        for p in packages {
            cmd.arg("-p").arg(p);
        }
        run(&mut cmd)?;
        Ok(profile.clone())
    })
}

/// Build a standalone crate (its own workspace, e.g. `examples/backend-script`) into
/// `<target>/out-of-tree`, once per process, and return its profile directory.
pub fn build_standalone(manifest: &Path) -> Result<PathBuf, String> {
    let profile = profile_dir();
    let target = profile.parent().unwrap_or(&profile).join("out-of-tree");
    let key = format!("standalone:{}", manifest.display());
    run_once(key, || {
        let mut cmd = Command::new(cargo());
        cmd.arg("build")
            .arg("--quiet")
            .arg("--manifest-path")
            .arg(manifest)
            .arg("--target-dir")
            .arg(&target);
        run(&mut cmd)?;
        Ok(target.join("debug"))
    })
}

/// Compile the C test fixture `contract/api/tests/plugins/cplugin.c` (deliberately broken plugins,
/// chosen with `-D` definitions) against `include/kerblam_backend.h` into `dir/file`, with `$CC`
/// or `cc`. Panics with the compiler's output when it fails.
pub fn c_fixture(dir: &Path, file: &str, defines: &[&str]) -> PathBuf {
    let api = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = dir.join(file);
    let mut cmd = Command::new(std::env::var_os("CC").unwrap_or_else(|| "cc".into()));
    cmd.args(["-shared", "-fPIC", "-O1", "-pthread", "-I"])
        .arg(api.join("include"))
        .arg("-o")
        .arg(&out)
        .arg(api.join("tests/plugins/cplugin.c"));
    for d in defines {
        cmd.arg(format!("-D{d}"));
    }
    if let Err(e) = run(&mut cmd) {
        panic!("a C compiler is needed to build the test plugins: {e}");
    }
    out
}

/// Writes `plugin`'s part into `plan` (compiled for it, its backend part empty), as kerblam does
/// before anything runs: the plan request has paths rooted at `root` (outputs there too) and
/// `options`. Panics with the reason when the plugin refuses.
pub fn complete(
    plugin: &super::Plugin,
    plan: &mut kerblam_plan::PackagePlan,
    action: crate::Action,
    root: &Path,
    options: &crate::ExecuteOptions,
) {
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let request = crate::PlanRequest {
        request: crate::PLAN_REQUEST_TAG.to_string(),
        action,
        plan: plan.neutral(),
        paths: crate::Paths {
            root: s(root),
            kerblam: "kerblam".into(),
            output_dir: s(root),
            temp_dir: s(&std::env::temp_dir()),
        },
        options: options.clone(),
    };
    plan.backend = plugin
        .plan(&request)
        .unwrap_or_else(|e| panic!("{} refused the plan: {e}", plugin.name()));
}

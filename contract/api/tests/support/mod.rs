//! Shared helpers: compile C test plugins with gcc, write non-plugin files, build the first-party
//! cdylibs with cargo, and a recording host.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, Once};

use kerblam_backend_api::host::{HostCallbacks, testing};
use kerblam_backend_api::plan::PackagePlan;
use kerblam_backend_api::{Action, ExecuteRequest, Paths};

/// Compile `plugins/cplugin.c` into `dir/file` with the given `-D` definitions.
pub fn cplugin(dir: &Path, file: &str, defines: &[&str]) -> PathBuf {
    testing::c_fixture(dir, file, defines)
}

/// A shared library with no kerblam symbols.
pub fn nonplugin_so(dir: &Path, file: &str) -> PathBuf {
    let src = dir.join("nonplugin.c");
    std::fs::write(&src, "int not_a_backend(void) { return 42; }\n").unwrap();
    let out = dir.join(file);
    let o = Command::new("gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_file(src).unwrap();
    out
}

/// A file with a 32-bit ELF shared-object header (x86, ELFCLASS32), padded to a full header.
pub fn elf32_so(dir: &Path, file: &str) -> PathBuf {
    let mut h = vec![0x7f, b'E', b'L', b'F', 1, 1, 1, 0];
    h.resize(16, 0);
    h.extend_from_slice(&3u16.to_le_bytes()); // e_type ET_DYN
    h.extend_from_slice(&3u16.to_le_bytes()); // e_machine EM_386
    h.resize(52, 0);
    let out = dir.join(file);
    std::fs::write(&out, h).unwrap();
    out
}

/// The workspace's Cargo.toml.
pub fn workspace_manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml")
}

/// The first-party plugin packages and their library names.
pub const FIRST_PARTY: [(&str, &str); 4] = [
    ("kerblam-backend-docker", "kerblam_backend_docker"),
    ("kerblam-backend-podman", "kerblam_backend_podman"),
    ("kerblam-backend-apptainer", "kerblam_backend_apptainer"),
    ("kerblam-backend-tarball", "kerblam_backend_tarball"),
];

/// Build the first-party plugin whose library is `lib` with cargo (once per process; only that
/// package, so a plugin being rewritten elsewhere does not break the others' tests) and return
/// its path.
pub fn first_party(lib: &str) -> PathBuf {
    let (pkg, _) = FIRST_PARTY
        .iter()
        .find(|(_, l)| *l == lib)
        .expect("a first-party library name");
    let dir = testing::build_workspace_packages(&workspace_manifest(), &[pkg])
        .expect("cargo build of the plugin");
    let path = dir.join(testing::cdylib_file(lib));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// Set `KERBLAM_CONFORMANCE=1` once, before any test of this binary goes on (each test calls it
/// first, so nothing reads the environment while it is being written).
pub fn conformance_env() {
    static ONCE: Once = Once::new();
    // SAFETY: every test of the binary calls this first; Once blocks the others until it is done.
    ONCE.call_once(|| unsafe { std::env::set_var("KERBLAM_CONFORMANCE", "1") });
}

/// The conformance kit's minimal golden plan.
pub fn minimal_plan() -> PackagePlan {
    serde_json::from_str(include_str!("../../../conformance/golden/minimal.json")).unwrap()
}

/// A package request for `plan` in a scratch directory.
pub fn request(plan: PackagePlan, dir: &Path) -> ExecuteRequest {
    let s = |p: PathBuf| p.to_string_lossy().into_owned();
    ExecuteRequest::new(
        Action::Package,
        plan,
        Paths {
            root: s(dir.join("root")),
            kerblam: "/bin/true".into(),
            output_dir: s(dir.to_path_buf()),
            temp_dir: s(dir.to_path_buf()),
        },
    )
}

/// Host callbacks that record log lines and answer `is_cancelled` from a flag.
#[derive(Default)]
pub struct Recorder {
    pub logs: Mutex<Vec<String>>,
    pub cancelled: bool,
}

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }
}

impl HostCallbacks for Recorder {
    fn log(&self, _level: i32, message: &str) {
        self.logs.lock().unwrap().push(message.to_string());
    }
    fn is_cancelled(&self) -> bool {
        self.cancelled
    }
}

/// The test plugin `tests/plugins/panicky` (a Rust backend whose own `execute` panics), built on
/// its own with cargo like a third-party plugin.
pub fn panicky_plugin() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugins/panicky/Cargo.toml");
    kerblam_backend_api::host::testing::build_standalone(&manifest)
        .expect("cargo build of tests/plugins/panicky")
        .join(kerblam_backend_api::host::testing::cdylib_file(
            "kerblam_backend_panicky",
        ))
}

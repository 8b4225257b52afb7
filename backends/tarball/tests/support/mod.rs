//! Helpers for the tarball backend's tests: the real plugin (built with cargo and loaded with the
//! api crate's loader), a copy of `examples/process` compiled into a plan, requests, and a host
//! that records progress and log lines.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use kerblam_backend_api::host::{CallError, HostCallbacks, Plugin, testing};
use kerblam_backend_api::plan::PackagePlan;
use kerblam_backend_api::{Action, ExecuteOptions, ExecuteRequest, ExecuteResult, Hello, Paths};
use kerblam_compiler::{CheckOptions, PipeOptions, Project, compile_pipe};

#[allow(unused_imports)]
pub use kerblam_test_support::engines;

/// The workspace's Cargo.toml.
pub fn workspace_manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml")
}

/// The tarball plugin, built into this test's target directory and loaded once.
pub fn plugin() -> &'static Plugin {
    static PLUGIN: OnceLock<Plugin> = OnceLock::new();
    PLUGIN.get_or_init(|| {
        let dir =
            testing::build_workspace_packages(&workspace_manifest(), &["kerblam-backend-tarball"])
                .unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join(testing::cdylib_file("kerblam_backend_tarball"));
        Plugin::load(&path, &Hello::new("kerblam-test", "0")).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// The real kerblam executable (built once), for images that must run it.
pub fn kerblam_bin() -> PathBuf {
    let dir = testing::build_workspace_packages(&workspace_manifest(), &["kerblam"])
        .unwrap_or_else(|e| panic!("{e}"));
    dir.join("kerblam")
}

/// A small executable standing in for kerblam where it is only archived.
pub fn fake_kerblam(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("fake-kerblam");
    std::fs::write(&p, "#!/bin/sh\necho fake kerblam\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let mut entries: Vec<_> = std::fs::read_dir(from)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let (src, dst) = (e.path(), to.join(&name));
        if name == "out" && from.ends_with("data") {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// A copy of `examples/process` at `dir/project`, its recipe's `FROM` replaced by `from` when given.
pub fn process_project(dir: &Path, from: Option<&str>) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/process");
    let root = dir.join("project");
    copy_tree(&src, &root);
    if let Some(image) = from {
        let recipe = root.join("src/dockerfiles/process.dockerfile");
        let text = std::fs::read_to_string(&recipe).unwrap();
        let text: Vec<String> = text
            .lines()
            .map(|l| {
                if l.starts_with("FROM ") {
                    format!("FROM {image}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        std::fs::write(&recipe, text.join("\n") + "\n").unwrap();
    }
    root
}

/// The tarball package plan of pipe `process` in `root`, with an OCI archive when `oci`.
pub fn plan(root: &Path, tag: &str, oci: bool) -> PackagePlan {
    plan_with_image_format(root, tag, oci.then_some("oci"))
}

/// [`plan`] with `--image-format FORMAT` (`oci`, `oci+gzip`, `oci+zstd`), or none.
pub fn plan_with_image_format(root: &Path, tag: &str, format: Option<&str>) -> PackagePlan {
    let project = Project::load(root, CheckOptions::default()).unwrap_or_else(|e| panic!("{e:?}"));
    let opts = PipeOptions {
        pipe: "process".into(),
        backend: Some("tarball".into()),
        tag: Some(tag.into()),
        ..PipeOptions::default()
    };
    let mut plan = compile_pipe(&project, &opts).unwrap_or_else(|e| panic!("{e:?}"));
    complete(&mut plan, root, format);
    plan
}

/// Writes the tarball backend's part into `plan` of the project at `root` (with
/// `--image-format FORMAT` when given).
pub fn complete(plan: &mut PackagePlan, root: &Path, format: Option<&str>) {
    let options = ExecuteOptions {
        format: format.map(String::from),
        ..ExecuteOptions::default()
    };
    testing::complete(plugin(), plan, Action::Package, root, &options);
}

/// A package request: plan paths relative to `root`, artifacts into `out`, temporaries in `out`.
pub fn request(plan: PackagePlan, root: &Path, out: &Path, kerblam: &Path) -> ExecuteRequest {
    let s = |p: &Path| p.to_string_lossy().into_owned();
    ExecuteRequest::new(
        Action::Package,
        plan,
        Paths {
            root: s(root),
            kerblam: s(kerblam),
            output_dir: s(out),
            temp_dir: s(out),
        },
    )
}

/// Host callbacks that record progress reports and log lines.
#[derive(Default)]
pub struct Recorder {
    pub progress: Mutex<Vec<(u64, u64, String)>>,
    pub logs: Mutex<Vec<String>>,
}

impl HostCallbacks for Recorder {
    fn log(&self, _level: i32, message: &str) {
        self.logs.lock().unwrap().push(message.to_string());
    }
    fn progress(&self, done: u64, total: u64, what: &str) {
        self.progress
            .lock()
            .unwrap()
            .push((done, total, what.to_string()));
    }
}

/// Executes `req` with the plugin and a fresh recorder.
pub fn execute(req: &ExecuteRequest) -> (Result<ExecuteResult, CallError>, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let result = plugin().execute(req, rec.clone(), None);
    (result, rec)
}

/// The names in `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The member names of a tar file, in order.
pub fn tar_names(path: &Path) -> Vec<String> {
    let mut a = tar::Archive::new(std::fs::File::open(path).unwrap());
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// The content of member `name` of a tar file.
pub fn tar_member(path: &Path, name: &str) -> Vec<u8> {
    use std::io::Read;
    let mut a = tar::Archive::new(std::fs::File::open(path).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == name {
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            return v;
        }
    }
    panic!("{} has no member {name}", path.display())
}

/// Host callbacks that ask to cancel once `after` progress reports have arrived.
pub struct CancelAfter {
    pub after: usize,
    pub seen: Mutex<usize>,
}

impl HostCallbacks for CancelAfter {
    fn progress(&self, _done: u64, _total: u64, _what: &str) {
        *self.seen.lock().unwrap() += 1;
    }
    fn is_cancelled(&self) -> bool {
        *self.seen.lock().unwrap() >= self.after
    }
}

/// Executes `req` with a host that cancels after `after` progress reports.
pub fn execute_cancelling(req: &ExecuteRequest, after: usize) -> Result<ExecuteResult, CallError> {
    let host = Arc::new(CancelAfter {
        after,
        seen: Mutex::new(0),
    });
    plugin().execute(req, host, None)
}

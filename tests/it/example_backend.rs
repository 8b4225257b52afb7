//! The README's "Writing a backend" walk-throughs, for real, for both out-of-tree examples: the
//! Rust one (`examples/backend-script`, its own `cargo build`) and the C one (`examples/backend-c`,
//! `cc` alone). Each passes `kerblam backends check` (the whole conformance kit), and carries out
//! `kerblam package process` on a compiled plan: it writes its build script, kerblam writes the
//! replay archive. With docker running, the build script builds the image, and `kerblam replay`
//! of the archive runs it with docker and writes the pipe's outputs.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use kerblam_backend_api::host::testing;
use support::engines;
use support::project::{TestProject, show};

/// A built example: its name as a backend, and the directory holding its library.
struct Example {
    backend: &'static str,
    dir: PathBuf,
    lib: PathBuf,
    /// The checks of the conformance kit that do not apply to it, as its README says.
    skips: &'static [&'static str],
}

fn rust_example() -> Example {
    let dir = testing::build_standalone(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/backend-script/Cargo.toml"),
    )
    .expect("cargo build of examples/backend-script");
    let lib = dir.join(testing::cdylib_file("kerblam_backend_script"));
    Example {
        backend: "script",
        dir,
        lib,
        skips: &["golden/oci-image"],
    }
}

/// `examples/backend-c/build.sh OUTDIR`, as its README says, into a directory of this test's.
fn c_example(out: &Path) -> Example {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/backend-c/build.sh");
    let o = Command::new("sh").arg(&script).arg(out).output().unwrap();
    assert!(o.status.success(), "{}", show(&o));
    Example {
        backend: "cbuild",
        dir: out.to_path_buf(),
        lib: out.join("libkerblam_backend_cbuild.so"),
        // examples/backend-c/README.md: "Every check passes but two that do not apply".
        skips: &["golden/oci-image", "panic"],
    }
}

/// `kerblam --backend-path <e's dir> COMMAND process --backend <e> EXTRA...` in `p`.
fn with_example(
    p: &TestProject,
    e: &Example,
    command: &str,
    extra: &[&str],
) -> std::process::Output {
    let dir = e.dir.to_str().unwrap();
    let args = [
        &[
            "--backend-path",
            dir,
            command,
            "process",
            "--backend",
            e.backend,
        ][..],
        extra,
    ]
    .concat();
    p.kerblam(&args)
}

fn package(p: &TestProject, e: &Example, extra: &[&str]) -> std::process::Output {
    with_example(p, e, "package", extra)
}

fn plan(p: &TestProject, e: &Example, extra: &[&str]) -> std::process::Output {
    with_example(p, e, "plan", extra)
}

/// Packages `examples/process` with `e`: the conformance kit passes; its build script and
/// kerblam's replay archive are written, the script parses; with docker, the script builds the
/// image and the archive replays with it.
fn packages_and_replays(e: &Example) {
    let p = TestProject::example("process");
    let check = p.kerblam(&["backends", "check", e.lib.to_str().unwrap()]);
    assert!(check.status.success(), "{}", show(&check));
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(report.ends_with("conformance: passed\n"), "{report}");
    let skipped: Vec<&str> = report
        .lines()
        .filter_map(|l| l.strip_prefix("  skip  "))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(skipped, e.skips, "{report}");

    let planned = plan(&p, e, &[]);
    assert!(planned.status.success(), "{}", show(&planned));
    let plan: serde_json::Value = serde_json::from_slice(&planned.stdout).unwrap();
    assert_eq!(plan["backend"]["name"], e.backend);
    assert_eq!(plan["backend"]["artifacts"][0]["path"], "process.build.sh");
    let shown = with_example(&p, e, "plan", &["--show", "Containerfile"]);
    assert!(shown.status.success(), "{}", show(&shown));
    assert_eq!(
        plan["backend"]["rendered"][0]["text"],
        String::from_utf8_lossy(&shown.stdout).as_ref()
    );

    let o = package(&p, e, &[]);
    assert!(o.status.success(), "{}", show(&o));
    let root = p.root().canonicalize().unwrap();
    assert!(
        show(&o).contains(&format!(
            "to use it, from {}:\n  build the image with: sh process.build.sh",
            root.display()
        )),
        "{}",
        show(&o)
    );
    let archive = kerblam_archive::ReplayArchive::open(&p.path("process.kerblam.tar")).unwrap();
    assert_eq!(archive.image_name(), Some("process_exec"));
    let sh = p.path("process.build.sh");
    let syntax = Command::new("sh").arg("-n").arg(&sh).output().unwrap();
    assert!(syntax.status.success(), "{}", show(&syntax));

    // The build script builds the image on a real engine (from the local base: nothing is
    // pulled), and the replay archive runs with it.
    let Some(docker) = engines::engine("docker") else {
        return;
    };
    let base = engines::ensure_base_image(&docker, Path::new(env!("CARGO_BIN_EXE_kerblam")));
    let b = TestProject::example("process");
    b.write(
        "src/dockerfiles/process.dockerfile",
        format!("FROM {base}\nWORKDIR /\nCOPY . .\n"),
    );
    let tag = format!("kerblam-example-{}-test:1", e.backend);
    let o = package(&b, e, &["--tag", &tag]);
    assert!(o.status.success(), "{}", show(&o));
    // Image removals by other tests of this process wait while this builds and runs.
    let building = engines::building();
    let build = Command::new("sh")
        .arg(b.path("process.build.sh"))
        .env("ENGINE", &docker.program)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(build.status.success(), "{}", show(&build));
    let inspect = docker.output(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Entrypoint}}",
        &tag,
    ]);
    assert!(inspect.status.success(), "{}", show(&inspect));
    let entrypoint: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(entrypoint, plan["entrypoint"]);

    // Replay: unpack, put the remote input where `kerblam data fetch` finds it already (no
    // network), run with docker.
    let dest = tempfile::tempdir().unwrap();
    let archive = b.path("process.kerblam.tar");
    let (a, d) = (archive.to_str().unwrap(), dest.path().to_str().unwrap());
    let unpacked = b.kerblam(&["replay", a, d, "--no-run"]);
    assert!(unpacked.status.success(), "{}", show(&unpacked));
    std::fs::copy(
        b.path("data-server/remote.txt"),
        dest.path().join("data/in/remote.txt"),
    )
    .unwrap();
    let replayed = b.kerblam(&["replay", a, d, "--no-decompress", "--backend", "docker"]);
    assert!(replayed.status.success(), "{}", show(&replayed));
    assert_eq!(
        std::fs::read_to_string(dest.path().join("data/out/count.txt")).unwrap(),
        "lines: 4\n"
    );
    drop(building);
    docker.remove_image(&tag);
    docker.remove_image(&format!("{tag}-base"));
}

#[test]
fn the_rust_example_backend_packages_a_pipe_as_the_readme_says() {
    packages_and_replays(&rust_example());
}

#[test]
fn the_c_example_backend_packages_a_pipe_as_the_readme_says() {
    let out = tempfile::tempdir().unwrap();
    packages_and_replays(&c_example(out.path()));
}

/// A plan checked into a project stays fresh after a package, for a backend kerblam knows nothing
/// about too: the files the backend wrote leave the build context without being listed, and its
/// part of the plan (whose room figure counts the context) is asked for again without them.
#[test]
fn a_checked_in_plan_stays_fresh_after_a_package_with_a_third_party_backend() {
    let out = tempfile::tempdir().unwrap();
    let e = c_example(out.path());
    let p = TestProject::example("process");
    let checked_in = p.path("process.plan.json");
    let checked_in = checked_in.to_str().unwrap();
    let o = plan(&p, &e, &["-o", checked_in]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let o = package(&p, &e, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let o = plan(&p, &e, &["--check", checked_in]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stale after a package:\n{}",
        show(&o)
    );
}

/// A backend's plain file (`process.build.sh`) is replaced by the next package only when kerblam
/// recorded writing it (its sha256 in the crate beside it, unchanged); a user's file of that name,
/// or one changed since, stays unless `--force`.
#[test]
fn a_plain_artifact_is_replaced_only_when_kerblam_recorded_writing_it() {
    let out = tempfile::tempdir().unwrap();
    let e = c_example(out.path());
    let p = TestProject::example("process");
    p.write(
        "process.build.sh",
        "#!/bin/sh\necho the user's own script\n",
    );
    let o = package(&p, &e, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        show(&o).contains(
            "kerblam has no record of writing it in the ro-crate-metadata.json beside it"
        ),
        "{}",
        show(&o)
    );
    assert_eq!(
        p.read("process.build.sh"),
        "#!/bin/sh\necho the user's own script\n"
    );
    let o = package(&p, &e, &["--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    // Written and recorded by kerblam: replaced without a word of --force.
    let o = package(&p, &e, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(show(&o).contains("replacing"), "{}", show(&o));
    // Changed since: the user's now.
    p.write("process.build.sh", "#!/bin/sh\necho edited\n");
    let o = package(&p, &e, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert_eq!(p.read("process.build.sh"), "#!/bin/sh\necho edited\n");
}

/// A stand-in for `docker`: `build ... DIR` records the files of the context DIR it was given, in
/// `$RECORD/<tag>.files` (the tag's `/` and `:` as `_`), and builds nothing.
const FAKE_ENGINE: &str = r#"#!/bin/sh
tag=
while [ $# -gt 1 ]; do
    [ "$1" = -t ] && tag=$2
    shift
done
(cd "$1" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) > "$RECORD/$(printf %s "$tag" | tr '/:' '__').files"
"#;

/// The build script builds a recipe base on the plan's build context, as `docker build` of the
/// project would with its `.dockerignore`: the files the plan lists, and no data directory.
fn builds_the_base_on_the_plans_context(e: &Example) {
    let p = TestProject::example("process");
    let planned = plan(&p, e, &[]);
    assert!(planned.status.success(), "{}", show(&planned));
    let plan: serde_json::Value = serde_json::from_slice(&planned.stdout).unwrap();
    let mut listed: Vec<String> = plan["context"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    assert!(!listed.is_empty() && listed.iter().all(|f| !f.starts_with("data/")));
    assert!(
        p.path("data/in").read_dir().unwrap().next().is_some(),
        "data to leave out"
    );
    let o = package(&p, e, &[]);
    assert!(o.status.success(), "{}", show(&o));

    let t = tempfile::tempdir().unwrap();
    let engine = t.path().join("engine");
    std::fs::write(&engine, FAKE_ENGINE).unwrap();
    let build = Command::new("sh")
        .arg(p.path("process.build.sh"))
        .env("ENGINE", format!("sh {}", engine.display()))
        .env("RECORD", t.path())
        .output()
        .unwrap();
    assert!(build.status.success(), "{}", show(&build));
    let staged = std::fs::read_to_string(t.path().join("process_exec-base.files")).unwrap();
    let staged: Vec<&str> = staged.lines().collect();
    assert_eq!(staged, listed, "{}", p.read("process.build.sh"));
}

#[test]
fn the_rust_example_backend_builds_the_base_on_the_plans_context() {
    builds_the_base_on_the_plans_context(&rust_example());
}

#[test]
fn the_c_example_backend_builds_the_base_on_the_plans_context() {
    let out = tempfile::tempdir().unwrap();
    builds_the_base_on_the_plans_context(&c_example(out.path()));
}

/// The Rust skeleton of `contract/api/README.md`, built as its own crate: it claims what a pipe's
/// plan needs, so `kerblam plan` shows its part (only its `execute` is left to write).
#[test]
fn the_readmes_rust_skeleton_plans_a_pipe() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(repo.join("contract/api/README.md")).unwrap();
    let start = readme
        .find("```rust\nuse kerblam_backend_api::")
        .expect("the Rust skeleton in contract/api/README.md");
    let code = &readme[start + "```rust\n".len()..];
    let code = &code[..code.find("```").unwrap()];
    let t = tempfile::tempdir().unwrap();
    let krate = t.path().join("mine");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(krate.join("src/lib.rs"), code).unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        format!(
            "[package]\nname = \"kerblam-backend-mine\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [workspace]\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\n\
             kerblam-backend-api = {{ path = {:?} }}\n",
            repo.join("contract/api").display().to_string()
        ),
    )
    .unwrap();
    // The versions examples/backend-script is locked to: nothing to fetch.
    std::fs::copy(
        repo.join("examples/backend-script/Cargo.lock"),
        krate.join("Cargo.lock"),
    )
    .unwrap();
    let dir = testing::build_standalone(&krate.join("Cargo.toml")).expect("cargo build");
    assert!(
        dir.join(testing::cdylib_file("kerblam_backend_mine"))
            .is_file()
    );
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.join(testing::cdylib_file("kerblam_backend_mine")),
        plugins
            .path()
            .join(testing::cdylib_file("kerblam_backend_mine")),
    )
    .unwrap();
    let p = TestProject::example("process");
    let plan = p.kerblam(&[
        "--backend-path",
        plugins.path().to_str().unwrap(),
        "plan",
        "process",
        "--backend",
        "mine",
    ]);
    assert!(plan.status.success(), "{}", show(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["backend"]["name"], "mine");
    assert_eq!(plan["backend"]["artifacts"][0]["path"], "process.txt");
}

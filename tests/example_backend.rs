//! The README's "Writing a backend" walk-through, for real: the out-of-tree example backend
//! (`examples/backend-script`) is built with its own `cargo build`, passes `kerblam backends check`,
//! and carries out `kerblam package process --backend script` on a compiled plan: it writes the
//! plan, a build script and the replay archive. With docker running, the build script builds the
//! image the plan describes.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use kerblam_backend_api::host::testing;
use support::engines;
use support::project::{TestProject, show};

/// The directory `cargo build` of the example wrote its library into.
fn example_dir() -> PathBuf {
    testing::build_standalone(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/backend-script/Cargo.toml"),
    )
    .expect("cargo build of examples/backend-script")
}

#[test]
fn the_example_backend_packages_a_pipe_as_the_readme_says() {
    let dir = example_dir();
    let lib = dir.join(testing::cdylib_file("kerblam_backend_script"));
    let p = TestProject::example("process");
    let check = p.kerblam(&["backends", "check", lib.to_str().unwrap()]);
    assert!(check.status.success(), "{}", show(&check));

    let o = p.kerblam(&[
        "--backend-path",
        dir.to_str().unwrap(),
        "package",
        "process",
        "--backend",
        "script",
    ]);
    assert!(o.status.success(), "{}", show(&o));
    let sh = p.path("process.build.sh");
    assert!(show(&o).contains(&format!("sh {}", sh.canonicalize().unwrap().display())));
    let plan: serde_json::Value =
        serde_json::from_str(&p.read("process.plan.json")).expect("the plan it wrote");
    assert_eq!(plan["backend"], "script");
    let archive = kerblam_archive::ReplayArchive::open(&p.path("process.kerblam.tar")).unwrap();
    assert_eq!(archive.image_name(), Some("process_exec"));
    let syntax = Command::new("sh").arg("-n").arg(&sh).output().unwrap();
    assert!(syntax.status.success(), "{}", show(&syntax));

    // The build script builds the image on a real engine (from the local base: nothing is pulled).
    let Some(docker) = engines::engine("docker") else {
        return;
    };
    let base = engines::ensure_base_image(&docker, Path::new(env!("CARGO_BIN_EXE_kerblam")));
    let b = TestProject::example("process");
    b.write(
        "src/dockerfiles/process.dockerfile",
        format!("FROM {base}\nWORKDIR /\nCOPY . .\n"),
    );
    let tag = "kerblam-example-script-test:1";
    let o = b.kerblam(&[
        "--backend-path",
        dir.to_str().unwrap(),
        "package",
        "process",
        "--backend",
        "script",
        "--tag",
        tag,
    ]);
    assert!(o.status.success(), "{}", show(&o));
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
        tag,
    ]);
    assert!(inspect.status.success(), "{}", show(&inspect));
    let plan: serde_json::Value = serde_json::from_str(&b.read("process.plan.json")).unwrap();
    let entrypoint: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(entrypoint, plan["entrypoint"]);
    docker.remove_image(tag);
    docker.remove_image(&format!("{tag}-base"));
}

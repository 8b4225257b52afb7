//! `kerblam plan --show NAME` / `--show-def`: the file a backend renders to build from, as the
//! loaded plugin renders it (the apptainer definition file, a Containerfile, a third-party
//! backend's own), and `kerblam plan --backend X` showing both parts of the plan for any X.

use crate::support;

use support::project::{TestProject, show};

#[test]
fn show_def_prints_the_definition_file() {
    let p = TestProject::example("process");
    let out = p.kerblam(&["plan", "process", "--backend", "apptainer", "--show-def"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Bootstrap: docker\nFrom: docker.io/library/buildpack-deps:bookworm\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "\n%runscript\n    cd / || exit 1\n    exec /bin/sh /kerblam-replay.sh \"$@\"\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("\n%labels\n    dev.kerblam.manifest-digest sha256:"),
        "{text}"
    );
    // -o writes it to a file instead.
    let dest = p.path("process.def");
    let dest = dest.to_str().unwrap();
    let out = p.kerblam(&[
        "plan",
        "process",
        "--backend",
        "apptainer",
        "--show-def",
        "-o",
        dest,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(p.read("process.def"), text);
}

/// `--base FILE` shows the definition file `package --base FILE` builds: bootstrapped from the
/// archive instead of the recipe's registry image.
#[test]
fn show_def_with_a_base_archive_bootstraps_from_it() {
    let p = TestProject::example("process");
    let base = p.path("base.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&base).unwrap());
    let manifest = br#"[{"Config":"c.json","RepoTags":["base:1"],"Layers":[]}]"#;
    let mut h = tar::Header::new_gnu();
    h.set_size(manifest.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "manifest.json", &manifest[..])
        .unwrap();
    b.finish().unwrap();
    let args = [
        "plan",
        "process",
        "--backend",
        "apptainer",
        "--show-def",
        "--base",
    ];
    let out = p.kerblam(&[&args[..], &[base.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let want = format!("Bootstrap: docker-archive\nFrom: {}\n", base.display());
    assert!(text.contains(&want), "{text}");
    // Without --show-def, the plan itself shows the same definition file.
    let out = p.kerblam(&[&args[..4], &["--base", base.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["backend"]["rendered"][0]["text"], text.as_str());
}

#[test]
fn show_def_needs_a_backend_that_renders_one() {
    let p = TestProject::example("process");
    let out = p.kerblam(&["plan", "process", "--backend", "docker", "--show-def"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        show(&out).contains(
            "the docker backend renders Containerfile for this plan, not a definition file (*.def)"
        ),
        "{}",
        show(&out)
    );
    let out = p.kerblam(&["plan", "process", "--backend", "docker", "--show", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(show(&out).contains("renders Containerfile for this plan, not nope"));
}

/// `--show NAME` prints exactly what the plan's backend part holds: for docker, the recipe
/// followed by kerblam's instructions.
#[test]
fn show_prints_the_rendered_containerfile() {
    let p = TestProject::example("process");
    let out = p.kerblam(&["plan", "process", "--backend", "docker"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["backend"]["rendered"][0]["name"], "Containerfile");
    let out = p.kerblam(&[
        "plan",
        "process",
        "--backend",
        "docker",
        "--show",
        "Containerfile",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(plan["backend"]["rendered"][0]["text"], text.as_str());
    assert!(
        text.starts_with(&p.read("src/dockerfiles/process.dockerfile")),
        "{text}"
    );
    assert!(
        text.contains("COPY [\".kerblam/kerblam\", \"/kerblam\"]\n"),
        "{text}"
    );
}

/// A third-party backend, written in C, gets its own part into the plan through the ABI: the
/// artifact it says it writes is in `backend.artifacts`, printed deterministically.
#[test]
fn a_third_party_backends_part_is_in_the_plan() {
    let p = TestProject::example("process");
    let plugins = tempfile::tempdir().unwrap();
    kerblam_backend_api::host::testing::c_fixture(
        plugins.path(),
        "libthird.so",
        &["NAME=\"third\"", "CLAIM_ALL", "PLAN_ARTIFACT"],
    );
    let dir = plugins.path().to_str().unwrap();
    let args = [
        "--backend-path",
        dir,
        "plan",
        "process",
        "--backend",
        "third",
    ];
    let out = p.kerblam(&args);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["backend"]["name"], "third");
    assert_eq!(plan["backend"]["artifacts"][0]["kind"], "file");
    assert_eq!(plan["backend"]["artifacts"][0]["path"], "cplugin.out");
    // The compiler's part names no artifact of the backend's: only kerblam's replay archive.
    assert_eq!(plan["artifacts"].as_array().unwrap().len(), 1);
    assert_eq!(plan["artifacts"][0]["kind"], "replay-archive");
    assert_eq!(p.kerblam(&args).stdout, out.stdout, "deterministic");
}

#[test]
fn an_apptainer_plan_says_how_to_see_its_definition_file() {
    let p = TestProject::example("process");
    let out = p.kerblam(&["plan", "process", "--backend", "apptainer"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    // stdout stays the plan, for people who check it in; the hint goes to stderr.
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["backend"]["name"], "apptainer");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--show definition.def"),
        "{}",
        show(&out)
    );
    let quiet = p.kerblam(&["-q", "plan", "process", "--backend", "apptainer"]);
    assert!(quiet.stderr.is_empty(), "{}", show(&quiet));
}

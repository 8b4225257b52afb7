//! `kerblam plan --backend apptainer --show-def`: the Apptainer definition file a package would be
//! built from, rendered by the apptainer backend crate.

mod support;

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
    // Without --show-def it has nothing to do.
    let out = p.kerblam(&["plan", "process", "--base", base.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
}

#[test]
fn show_def_needs_the_apptainer_backend() {
    let p = TestProject::example("process");
    let out = p.kerblam(&["plan", "process", "--backend", "docker", "--show-def"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(show(&out).contains("--backend apptainer"), "{}", show(&out));
}

#[test]
fn an_apptainer_plan_says_how_to_see_its_definition_file() {
    let p = TestProject::example("process");
    let out = p.kerblam(&["plan", "process", "--backend", "apptainer"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    // stdout stays the plan, for people who check it in; the hint goes to stderr.
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["backend"], "apptainer");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--show-def"),
        "{}",
        show(&out)
    );
    let quiet = p.kerblam(&["-q", "plan", "process", "--backend", "apptainer"]);
    assert!(quiet.stderr.is_empty(), "{}", show(&quiet));
}

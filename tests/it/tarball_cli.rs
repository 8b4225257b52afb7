//! `kerblam package --backend tarball` end to end: the CLI loads the real tarball plugin, which
//! writes the context and replay archives next to the project and prints the build commands; with
//! `-q` and off a terminal nothing but the paths is printed; a destination under a file is refused
//! with its path and nothing is written.

use crate::support;

use std::path::Path;

use support::project::{TestProject, show};

/// The workspace plugins these tests load (built by `support::plugin_dir`).
const PLUGINS: &[&str] = &["kerblam-backend-tarball"];

/// `kerblam --backend-path <the built plugins> ARGS...` in `p`.
fn with_plugins(p: &TestProject, args: &[&str]) -> std::process::Output {
    let dir = support::plugin_dir(PLUGINS);
    p.kerblam(&[&["--backend-path", dir.to_str().unwrap()][..], args].concat())
}

fn package(p: &TestProject, extra: &[&str]) -> std::process::Output {
    with_plugins(
        p,
        &[&["package", "process", "--backend", "tarball"][..], extra].concat(),
    )
}

#[test]
fn kerblam_package_with_the_tarball_backend_writes_both_archives() {
    let p = TestProject::example("process");
    let o = package(&p, &[]);
    assert!(o.status.success(), "{}", show(&o));
    let root = p.root().canonicalize().unwrap();
    let ctx = root.join("process.context.tar");
    let replay = root.join("process.kerblam.tar");
    assert!(ctx.is_file() && replay.is_file(), "{}", show(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains(&ctx.display().to_string()), "{}", show(&o));
    assert!(
        stdout.contains(&replay.display().to_string()),
        "{}",
        show(&o)
    );
    // The backend's usage lines, from the directory they are written for.
    let stderr = String::from_utf8_lossy(&o.stderr);
    let usage = format!(
        "to use it, from {}:\n  build the image with: docker build -t process_exec - < process.context.tar\n  build the image with: podman build -t process_exec - < process.context.tar\n",
        root.display()
    );
    assert!(stderr.contains(&usage), "{}", show(&o));
    // Not a terminal: no progress output.
    assert!(!stderr.contains("files)"), "{}", show(&o));
    let archive = kerblam_archive::ReplayArchive::open(&replay).unwrap();
    assert_eq!(archive.image_name(), Some("process_exec"));
}

/// What `kerblam package` puts into the replay archive, checked from outside: `plan.json` is the
/// plan `kerblam plan` prints (the backend's part included), byte for byte; `SHA256SUMS` has the
/// right line for every data file; the archive verifies.
#[test]
fn the_replay_archive_holds_the_printed_plan_and_a_checksum_of_every_data_file() {
    use sha2::Digest;
    let p = TestProject::example("process");
    let o = package(&p, &[]);
    assert!(o.status.success(), "{}", show(&o));
    let printed = with_plugins(
        &p,
        &[
            "plan",
            "process",
            "--backend",
            "tarball",
            "--format",
            "json",
        ],
    );
    assert!(printed.status.success(), "{}", show(&printed));
    let archive = kerblam_archive::ReplayArchive::open(&p.path("process.kerblam.tar")).unwrap();
    archive.verify(None).unwrap();
    assert!(archive.verified());
    let plan_json = archive.plan_json().unwrap();
    assert_eq!(
        String::from_utf8_lossy(plan_json),
        String::from_utf8_lossy(&printed.stdout)
    );
    let plan: serde_json::Value = serde_json::from_slice(plan_json).unwrap();
    assert_eq!(plan["backend"]["name"], "tarball");
    assert_eq!(
        plan["backend"]["artifacts"][0]["path"], "process.context.tar",
        "{plan:#}"
    );
    let sums = archive.sums().unwrap();
    let mut data = 0;
    for entry in std::fs::read_dir(p.path("data/in")).unwrap() {
        let entry = entry.unwrap();
        let name = format!("data/in/{}", entry.file_name().to_string_lossy());
        let sha: [u8; 32] = sha2::Sha256::digest(std::fs::read(entry.path()).unwrap()).into();
        assert_eq!(
            sums.get(&format!("data.tar.zst:{name}")),
            Some(&sha),
            "{name}:\n{}",
            sums.render()
        );
        data += 1;
    }
    assert!(data >= 2, "the example has precious data");
}

#[test]
fn quiet_prints_only_the_paths() {
    let p = TestProject::example("process");
    let o = package(&p, &["-q"]);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "", "{}", show(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().count(),
        2,
        "{}",
        show(&o)
    );
}

#[test]
fn a_destination_under_a_file_is_refused_and_nothing_is_written() {
    let p = TestProject::example("process");
    p.write("blocker", "not a directory");
    let out = p.path("blocker/sub/process.kerblam.tar");
    let o = package(&p, &["-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    // miette wraps long lines as "\n  | ": join them again.
    let stderr = String::from_utf8_lossy(&o.stderr).replace("\n  | ", " ");
    assert!(stderr.contains("is not a directory"), "{}", show(&o));
    assert!(stderr.contains("blocker"), "{}", show(&o));
    assert!(!p.exists("process.context.tar"), "{}", show(&o));
    assert_eq!(p.read("blocker"), "not a directory");
}

/// The manifest and the layer media types of an OCI archive.
fn oci_layers(path: &Path) -> (serde_json::Value, Vec<String>) {
    let member = |name: &str| -> Vec<u8> {
        let mut a = tar::Archive::new(std::fs::File::open(path).unwrap());
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().to_string_lossy() == name {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut v).unwrap();
                return v;
            }
        }
        panic!("{} has no {name}", path.display())
    };
    let json = |b: Vec<u8>| -> serde_json::Value { serde_json::from_slice(&b).unwrap() };
    let blob = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    let index = json(member("index.json"));
    let manifest = json(member(&blob(
        index["manifests"][0]["digest"].as_str().unwrap(),
    )));
    let types = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_string())
        .collect();
    (manifest, types)
}

#[test]
fn image_format_oci_also_writes_an_oci_archive() {
    let p = TestProject::example("process");
    let o = package(&p, &["--image-format", "oci"]);
    assert!(o.status.success(), "{}", show(&o));
    let oci = p.root().canonicalize().unwrap().join("process.oci.tar");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&oci.display().to_string()),
        "{}",
        show(&o)
    );
    let (_, types) = oci_layers(&oci);
    assert!(!types.is_empty());
    assert!(
        types
            .iter()
            .all(|t| t == "application/vnd.oci.image.layer.v1.tar+gzip"),
        "{types:?}"
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("podman load -i"),
        "{}",
        show(&o)
    );
    // The plan names the same artifact.
    let plan = p.kerblam(&[
        "plan",
        "process",
        "--backend",
        "tarball",
        "--image-format",
        "oci",
    ]);
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains("\"process.oci.tar\""),
        "{}",
        show(&plan)
    );

    let z = TestProject::example("process");
    let o = package(&z, &["--image-format", "oci+zstd"]);
    assert!(o.status.success(), "{}", show(&o));
    let (_, types) = oci_layers(&z.path("process.oci.tar"));
    assert!(
        types
            .iter()
            .all(|t| t == "application/vnd.oci.image.layer.v1.tar+zstd"),
        "{types:?}"
    );
}

#[test]
fn base_puts_the_oci_archive_on_a_base_archive() {
    let b = TestProject::example("process");
    let o = package(&b, &["--image-format", "oci", "--tag", "base:1"]);
    assert!(o.status.success(), "{}", show(&o));
    let base = b.path("process.oci.tar");
    let (base_manifest, _) = oci_layers(&base);
    let n_base = base_manifest["layers"].as_array().unwrap().len();

    let p = TestProject::example("process");
    let o = package(
        &p,
        &["--image-format", "oci", "--base", base.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("OCI base: "),
        "{}",
        show(&o)
    );
    let (m, types) = oci_layers(&p.path("process.oci.tar"));
    assert_eq!(types.len(), 2 * n_base, "{m}");
    assert_eq!(
        m["layers"].as_array().unwrap()[..n_base],
        base_manifest["layers"].as_array().unwrap()[..]
    );
}

#[test]
fn bad_image_format_and_base_options_are_usage_errors() {
    let p = TestProject::example("process");
    let before = p.snapshot(".");
    let o = package(&p, &["--image-format", "squashfs"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(show(&o).contains("oci+zstd"), "{}", show(&o));
    let o = with_plugins(
        &p,
        &[
            "package",
            "process",
            "--backend",
            "docker",
            "--image-format",
            "oci",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        show(&o).contains(
            "backend \"docker\" cannot carry out this plan: it does not support format \"oci\""
        ),
        "{}",
        show(&o)
    );
    let o = package(&p, &["--image-format", "oci", "--base", "no-such-base.tar"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(show(&o).contains("no-such-base.tar"), "{}", show(&o));
    let data = p.path("data");
    let o = package(
        &p,
        &["--image-format", "oci", "--base", data.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(show(&o).contains("not a file"), "{}", show(&o));
    assert_eq!(p.snapshot("."), before, "nothing was written");
    // A file that is neither an OCI nor a docker archive.
    p.write("junk.tar", "not an archive");
    let before = p.snapshot(".");
    let junk = p.path("junk.tar");
    let o = package(
        &p,
        &["--image-format", "oci", "--base", junk.to_str().unwrap()],
    );
    assert_ne!(o.status.code(), Some(0), "{}", show(&o));
    assert!(show(&o).contains("junk.tar"), "{}", show(&o));
    assert_eq!(p.snapshot("."), before, "nothing was written");
}

/// `-o` naming the file the backend writes (the context archive) is the user's clash, not the
/// backend's fault: a usage error naming both, before anything is written. However the path is
/// spelled.
#[test]
fn a_replay_archive_where_the_backend_writes_is_a_usage_error() {
    let p = TestProject::example("process");
    let root = p.root().canonicalize().unwrap();
    let context = root.join("process.context.tar");
    let before = p.snapshot(".");
    let dir = support::plugin_dir(PLUGINS);
    for o in [
        "process.context.tar",
        "./process.context.tar",
        "data/../process.context.tar",
    ] {
        let out = p
            .command(&[
                "--backend-path",
                dir.to_str().unwrap(),
                "package",
                "process",
                "--backend",
                "tarball",
                "-o",
                o,
            ])
            .current_dir(p.root())
            .output()
            .unwrap();
        let msg = show(&out).replace("\n  | ", " ");
        assert_eq!(out.status.code(), Some(2), "{o}: {msg}");
        assert!(
            msg.contains(&format!(
                "kerblam is to write the replay archive at {}, where the tarball backend writes its context archive (process.context.tar): write the replay archive elsewhere (-o PATH)",
                context.display()
            )),
            "{o}: {msg}"
        );
        assert!(!msg.contains("failed"), "{o}: {msg}");
        assert_eq!(p.snapshot("."), before, "{o}: nothing was written");
    }
}

/// `kerblam package` where no engine is installed, with no backend named anywhere: the tarball
/// backend is the default, and says so. A manifest that names its backend gets that backend.
#[test]
fn the_tarball_backend_is_the_default_where_no_engine_is_installed() {
    let dir = support::plugin_dir(PLUGINS);
    let empty = tempfile::tempdir().unwrap();
    let no_engine = |p: &TestProject| {
        p.command(&[
            "--backend-path",
            dir.to_str().unwrap(),
            "package",
            "process",
        ])
        .env("PATH", empty.path())
        .env_remove("DOCKER_HOST")
        .env_remove("KERBLAM_DOCKER")
        .env_remove("KERBLAM_PODMAN")
        .output()
        .unwrap()
    };
    let p = TestProject::example("process");
    let o = no_engine(&p);
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        show(&o).contains(
            "no container engine found (no podman, and no docker with a daemon socket): \
             packaging with the tarball backend; set execution.backend or pass --backend to choose"
        ),
        "{}",
        show(&o)
    );
    assert!(p.exists("process.context.tar") && p.exists("process.kerblam.tar"));

    let named = TestProject::example("process");
    let manifest = named.read("kerblam.toml");
    named.write(
        "kerblam.toml",
        format!("{manifest}\n[execution]\nbackend = \"docker\"\n"),
    );
    let o = no_engine(&named);
    assert_ne!(o.status.code(), Some(0), "{}", show(&o));
    assert!(show(&o).contains("docker"), "{}", show(&o));
    assert!(!named.exists("process.context.tar") && !named.exists("process.kerblam.tar"));
}

/// On a terminal (a pty from `script`), long writes draw a progress bar with bytes and files; with
/// `-q` they stay quiet there too.
#[test]
fn a_terminal_gets_progress_bars_and_quiet_gets_none() {
    if !support::terminal::available() {
        return;
    }
    let dir = support::plugin_dir(PLUGINS);
    let on_pty = |p: &TestProject, quiet: bool| {
        let cmd = format!(
            "'{}' {} --backend-path '{}' -C '{}' package process --backend tarball",
            env!("CARGO_BIN_EXE_kerblam"),
            if quiet { "-q" } else { "" },
            dir.display(),
            p.root().display()
        );
        let o = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("TERM", "xterm")
            .env_remove("NO_COLOR")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", show(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let p = TestProject::example("process");
    p.write("data/in/big.bin", vec![7u8; 8 << 20]);
    let shown = on_pty(&p, false);
    assert!(shown.contains("writing process.context.tar"), "{shown}");
    assert!(shown.contains("archiving precious data"), "{shown}");
    assert!(shown.contains("MiB") && shown.contains("files)"), "{shown}");
    let q = TestProject::example("process");
    q.write("data/in/big.bin", vec![7u8; 8 << 20]);
    let quiet = on_pty(&q, true);
    assert!(!quiet.contains("archiving precious data"), "{quiet}");
    assert!(!quiet.contains("MiB"), "{quiet}");
}

/// A `KERBLAM_CANCEL_GRACE` too large for a duration is taken as unset (10 s), as a value that
/// is not a number is: it used to panic (exit 101) on the first backend call.
#[test]
fn a_cancel_grace_out_of_range_falls_back_to_the_default() {
    let p = TestProject::example("process");
    for bad in ["1e20", "-1", "soon"] {
        let o = p
            .command(&["package", "process", "--backend", "tarball", "--force"])
            .env("KERBLAM_CANCEL_GRACE", bad)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{bad}: {}", show(&o));
    }
}

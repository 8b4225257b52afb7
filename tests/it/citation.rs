//! Identifiers to cite, end to end with the tarball backend (no engine): `kerblam package` prints
//! the sha256 of what it wrote, records it in `ro-crate-metadata.json` and `CITATION.cff` beside
//! the replay archive and in a crate inside it; ro-crate-py and cffconvert read them back;
//! `kerblam verify` recomputes and checks them, and finds what changed; files someone else wrote
//! are left alone.

use crate::support;

use std::path::Path;

use serde_json::Value;
use sha2::Digest;
use support::project::{TestProject, show, stripped_kerblam};
use support::python;

const AUTHOR: &str = "Jane Q. Doe <jane@example.org>";
/// 2023-11-14.
const EPOCH: &str = "1700000000";

/// The workspace plugins these tests load (built by `support::plugin_dir`).
const PLUGINS: &[&str] = &["kerblam-backend-tarball"];

/// `kerblam ARGS` in `p` with the tarball plugin, a fixed date and no git identity.
fn kerblam(p: &TestProject, args: &[&str]) -> std::process::Output {
    let dir = support::plugin_dir(PLUGINS);
    let mut all = vec!["--backend-path", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    let home = p.path(".home");
    std::fs::create_dir_all(&home).unwrap();
    p.command_of(&stripped_kerblam(), &all)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("HOME", &home)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap()
}

fn package(p: &TestProject, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["package", "process", "--backend", "tarball"];
    args.extend_from_slice(extra);
    kerblam(p, &args)
}

fn sha256(path: &Path) -> String {
    let d = sha2::Sha256::digest(std::fs::read(path).unwrap());
    format!("sha256:{}", hex(&d))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The entity `id` of a crate.
fn entity<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["@graph"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["@id"] == id)
        .unwrap_or_else(|| panic!("no entity {id} in {doc:#}"))
}

/// The member `name` of an uncompressed tar.
fn member(tar_path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut a = tar::Archive::new(std::fs::File::open(tar_path).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some(name) {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut out).unwrap();
            return Some(out);
        }
    }
    None
}

#[test]
fn a_package_records_its_identifiers_beside_it_and_inside_its_archive() {
    let p = TestProject::example("process");
    let o = package(&p, &["--author", AUTHOR]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let root = p.root().canonicalize().unwrap();
    let archive = root.join("process.kerblam.tar");
    let context = root.join("process.context.tar");
    let (archive_sha, context_sha) = (sha256(&archive), sha256(&context));
    // Printed, each with what it identifies.
    let stdout = String::from_utf8_lossy(&o.stdout);
    for (path, sha) in [(&archive, &archive_sha), (&context, &context_sha)] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&path.display().to_string())
                    && l.ends_with(&format!(", {sha})"))),
            "{}",
            show(&o)
        );
    }
    // The crate beside the archive: both files with their sha256, the inputs with theirs.
    let doc = json(&root.join("ro-crate-metadata.json"));
    assert_eq!(doc["@context"], "https://w3id.org/ro/crate/1.1/context");
    for (name, sha) in [
        ("process.kerblam.tar", &archive_sha),
        ("process.context.tar", &context_sha),
    ] {
        let e = entity(&doc, name);
        assert_eq!(e["@type"], "File");
        assert_eq!(&format!("sha256:{}", e["sha256"].as_str().unwrap()), sha);
        assert_eq!(e["identifier"], sha.as_str());
    }
    let root_entity = entity(&doc, "./");
    assert_eq!(root_entity["datePublished"], "2023-11-14");
    let input = entity(&doc, "#package/process/input/data/in/precious.txt");
    assert_eq!(
        format!("sha256:{}", input["sha256"].as_str().unwrap()),
        sha256(&root.join("data/in/precious.txt"))
    );
    let author = entity(&doc, "#package/process/author");
    assert_eq!(
        (&author["name"], &author["email"]),
        (
            &Value::from("Jane Q. Doe"),
            &Value::from("jane@example.org")
        )
    );
    // CITATION.cff cites both identifiers.
    let cff = p.read("CITATION.cff");
    assert!(cff.contains(&format!("value: \"{archive_sha}\"")), "{cff}");
    assert!(cff.contains("family-names: \"Doe\""), "{cff}");
    assert!(cff.contains("date-released: \"2023-11-14\""), "{cff}");

    // Inside the archive: the same description of the inputs, with the members as its files,
    // listed in SHA256SUMS like every member.
    let inner_bytes = member(&archive, "ro-crate-metadata.json").expect("a crate in the archive");
    let inner: Value = serde_json::from_slice(&inner_bytes).unwrap();
    assert_eq!(
        entity(&inner, "#package/process/input/data/in/precious.txt")["sha256"],
        input["sha256"]
    );
    let manifest = member(&archive, "kerblam.toml").unwrap();
    assert_eq!(
        entity(&inner, "kerblam.toml")["sha256"],
        hex(&sha2::Sha256::digest(&manifest))
    );
    let sums = String::from_utf8(member(&archive, "SHA256SUMS").unwrap()).unwrap();
    assert!(
        sums.contains(&format!(
            "{}  ro-crate-metadata.json\n",
            hex(&sha2::Sha256::digest(&inner_bytes))
        )),
        "{sums}"
    );

    // kerblam verify agrees, and a replay still reads the archive.
    let v = kerblam(&p, &["verify", archive.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{}", show(&v));
    assert!(String::from_utf8_lossy(&v.stdout).starts_with(&archive_sha));
    let dest = tempfile::tempdir().unwrap();
    let r = kerblam(
        &p,
        &[
            "replay",
            archive.to_str().unwrap(),
            dest.path().join("r").to_str().unwrap(),
            "--no-run",
        ],
    );
    assert_eq!(r.status.code(), Some(0), "{}", show(&r));

    // ro-crate-py reads both crates and finds the identifiers; cffconvert validates the citation.
    let Some(py) = python::citation_readers() else {
        return;
    };
    let unpacked = tempfile::tempdir().unwrap();
    let mut a = tar::Archive::new(std::fs::File::open(&archive).unwrap());
    a.unpack(unpacked.path()).unwrap();
    let read = r#"
import sys
from rocrate.rocrate import ROCrate
crate = ROCrate(sys.argv[1])
print("date", crate.root_dataset["datePublished"])
for e in crate.get_entities():
    if e.get("sha256"):
        print(e.id, e.get("sha256"))
"#;
    for (dir, file, sha) in [
        (root.as_path(), "process.kerblam.tar", archive_sha.as_str()),
        (
            unpacked.path(),
            "kerblam.toml",
            &format!("sha256:{}", hex(&sha2::Sha256::digest(&manifest))),
        ),
    ] {
        let out = python::run(&py, read, &[dir]);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(said.contains("date 2023-11-14"), "{said}");
        assert!(
            said.contains(&format!("{file} {}", sha.trim_start_matches("sha256:"))),
            "{said}"
        );
        assert!(
            said.contains("#package/process/input/data/in/precious.txt "),
            "{said}"
        );
    }
    let validate = r#"
import sys
from cffconvert.cli.cli import cli
sys.argv = ["cffconvert", "--validate", "-i", sys.argv[1]]
cli()
"#;
    let out = python::run(&py, validate, &[&root.join("CITATION.cff")]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn verify_finds_a_changed_artifact_a_changed_record_and_nothing_to_check() {
    let p = TestProject::example("process");
    let o = package(&p, &["--author", AUTHOR]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let root = p.root().canonicalize().unwrap();
    let crate_path = root.join("ro-crate-metadata.json");
    let context = root.join("process.context.tar");
    let recorded = sha256(&context);

    // The artifact changed: exit 1, both checksums and the crate named.
    let mut bytes = std::fs::read(&context).unwrap();
    bytes.push(0);
    std::fs::write(&context, &bytes).unwrap();
    let now = sha256(&context);
    let v = kerblam(&p, &["verify", context.to_str().unwrap()]);
    let said = show(&v);
    assert_eq!(v.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "{} has changed: its sha256 is {now}, but {} records {recorded}",
            context.display(),
            crate_path.display()
        )),
        "{said}"
    );
    assert!(said.contains("CITATION.cff cites"), "{said}");

    // The record changed (the archive did not): exit 1 too.
    let archive = root.join("process.kerblam.tar");
    let archive_sha = sha256(&archive);
    let cff = p.read("CITATION.cff");
    let bad = format!("sha256:{}", "f".repeat(64));
    p.write("CITATION.cff", cff.replace(&archive_sha, &bad));
    let v = kerblam(&p, &["verify", archive.to_str().unwrap()]);
    let said = show(&v);
    assert_eq!(v.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("CITATION.cff cites {bad}")),
        "{said}"
    );

    // A crate that is no RO-Crate: exit 2, naming it.
    std::fs::write(&crate_path, "{\"@graph\": []}").unwrap();
    let v = kerblam(&p, &["verify", archive.to_str().unwrap()]);
    let said = show(&v);
    assert_eq!(v.status.code(), Some(2), "{said}");
    assert!(
        said.contains(&format!(
            "{} is not a usable RO-Crate",
            crate_path.display()
        )),
        "{said}"
    );

    // Nothing beside it to check against: exit 2, saying so.
    let lone = tempfile::tempdir().unwrap();
    let file = lone.path().join("thing.tar.zst");
    std::fs::write(&file, b"x").unwrap();
    let v = kerblam(&p, &["verify", file.to_str().unwrap()]);
    let said = show(&v);
    assert_eq!(v.status.code(), Some(2), "{said}");
    assert!(said.contains("nothing to check"), "{said}");
    assert!(
        said.contains("no ro-crate-metadata.json beside it"),
        "{said}"
    );
    let v = kerblam(
        &p,
        &["verify", lone.path().join("absent").to_str().unwrap()],
    );
    assert_eq!(v.status.code(), Some(2), "{}", show(&v));
}

#[test]
fn files_someone_else_wrote_are_left_alone_and_kerblams_own_are_merged() {
    // The user's own citation and crate stay byte for byte.
    let p = TestProject::example("process");
    let theirs_cff =
        "cff-version: 1.2.0\nmessage: cite the paper\ntitle: My study\nauthors:\n  - name: Lab\n";
    let theirs_crate = "{\"@context\": \"https://w3id.org/ro/crate/1.1/context\", \"@graph\": []}";
    p.write("CITATION.cff", theirs_cff);
    p.write("ro-crate-metadata.json", theirs_crate);
    let o = package(&p, &["--author", AUTHOR]);
    let said = show(&o);
    assert_eq!(o.status.code(), Some(0), "{said}");
    assert_eq!(p.read("CITATION.cff"), theirs_cff);
    assert_eq!(p.read("ro-crate-metadata.json"), theirs_crate);
    let root = p.root().canonicalize().unwrap();
    for f in ["ro-crate-metadata.json", "CITATION.cff"] {
        assert!(
            said.contains(&format!(
                "warning: {} was not written by kerblam: it is left as it is",
                root.join(f).display()
            )),
            "{said}"
        );
    }

    // kerblam's own crate is merged with: a second archive of the same project adds to it, a
    // re-package replaces its own description.
    let p = TestProject::example("process");
    let first = package(&p, &["--author", AUTHOR]);
    assert_eq!(first.status.code(), Some(0), "{}", show(&first));
    let again = p.path("again.kerblam.tar");
    let other = package(
        &p,
        &["-o", again.to_str().unwrap(), "--force", "--author", AUTHOR],
    );
    assert_eq!(other.status.code(), Some(0), "{}", show(&other));
    // kerblam's records are not part of the next build context (it would change with each).
    let context = std::fs::File::open(p.path("process.context.tar")).unwrap();
    let listed: Vec<String> = tar::Archive::new(context)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(listed.iter().any(|n| n == "kerblam.toml"), "{listed:?}");
    for own in ["ro-crate-metadata.json", "CITATION.cff"] {
        assert!(!listed.iter().any(|n| n == own), "{own} in {listed:?}");
    }
    let doc = json(&p.path("ro-crate-metadata.json"));
    let parts: Vec<&str> = entity(&doc, "./")["hasPart"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["@id"].as_str().unwrap())
        .collect();
    assert_eq!(
        parts,
        [
            "again.kerblam.tar",
            "process.context.tar",
            "process.kerblam.tar"
        ]
    );
    let ids: Vec<&str> = doc["@graph"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["@id"].as_str().unwrap())
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    assert_eq!(
        format!(
            "sha256:{}",
            entity(&doc, "process.context.tar")["sha256"]
                .as_str()
                .unwrap()
        ),
        sha256(&p.path("process.context.tar"))
    );
}

#[test]
fn without_an_author_there_is_a_crate_but_no_citation_file() {
    let p = TestProject::example("process");
    let o = package(&p, &[]);
    let said = show(&o);
    assert_eq!(o.status.code(), Some(0), "{said}");
    assert!(p.exists("ro-crate-metadata.json"), "{said}");
    assert!(!p.exists("CITATION.cff"), "{said}");
    assert!(
        said.contains("no CITATION.cff for process: it names no author (pass --author"),
        "{said}"
    );
}

/// A tarball freeze records the same: its tarball's identifier, its modules and its spec, in the
/// destination; a second freeze there is added to the crate, and the citation is the newest's.
#[test]
fn a_freeze_records_its_identifiers_in_its_destination() {
    let plugins = support::plugin_dir(PLUGINS);
    let t = tempfile::tempdir().unwrap();
    let s = kerblam_compiler::freeze::synthetic::create(&t.path().join("eessi"), false);
    let dest = t.path().join("dist");
    let freeze = |name: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kerblam"))
            .args(["freeze", "--from-env", "-a", AUTHOR, "-n", name])
            .args(["--backend", "tarball", "-d", dest.to_str().unwrap()])
            .arg("--backend-path")
            .arg(&plugins)
            .current_dir(t.path())
            .env_clear()
            .envs(&s.env)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let o = freeze("Stack");
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let tarball = dest.join("Stack-2023-11-14.tar.zst");
    let sha = sha256(&tarball);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Stack-2023-11-14.tar.zst ("),
        "{}",
        show(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&sha),
        "{}",
        show(&o)
    );
    let doc = json(&dest.join("ro-crate-metadata.json"));
    let e = entity(&doc, "Stack-2023-11-14.tar.zst");
    assert_eq!(format!("sha256:{}", e["sha256"].as_str().unwrap()), sha);
    assert_eq!(e["version"], "2023-11-14");
    let module = entity(
        &doc,
        "#freeze/Stack-2023-11-14/module/GROMACS/2020.4-foss-2020a",
    );
    assert_eq!(module["name"], "GROMACS");
    let action = entity(&doc, "#freeze/Stack-2023-11-14");
    assert_eq!(action["@type"], "CreateAction");
    assert!(
        action["result"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({ "@id": "Stack-2023-11-14.tar.zst" })),
        "{action:#}"
    );
    let cff = std::fs::read_to_string(dest.join("CITATION.cff")).unwrap();
    assert!(
        cff.contains("title: \"Stack\"\nversion: \"2023-11-14\"\n"),
        "{cff}"
    );
    assert!(cff.contains("  - \"GROMACS/2020.4-foss-2020a\"\n"), "{cff}");
    assert!(cff.contains(&sha), "{cff}");
    let v = std::process::Command::new(env!("CARGO_BIN_EXE_kerblam"))
        .arg("verify")
        .arg(&tarball)
        .output()
        .unwrap();
    assert_eq!(v.status.code(), Some(0), "{}", show(&v));

    // A second freeze into the same destination: both in the crate, the citation is the newest.
    let o = freeze("Other");
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let doc = json(&dest.join("ro-crate-metadata.json"));
    entity(&doc, "Stack-2023-11-14.tar.zst");
    entity(&doc, "Other-2023-11-14.tar.zst");
    let cff = std::fs::read_to_string(dest.join("CITATION.cff")).unwrap();
    assert!(cff.contains("title: \"Other\""), "{cff}");

    let Some(py) = python::citation_readers() else {
        return;
    };
    let out = python::run(
        &py,
        "import sys\nfrom rocrate.rocrate import ROCrate\nc = ROCrate(sys.argv[1])\nprint(sorted(e.id for e in c.data_entities))",
        &[&dest],
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("'Stack-2023-11-14.tar.zst'"), "{said}");
    assert!(said.contains("'Other-2023-11-14.tar.zst'"), "{said}");
}

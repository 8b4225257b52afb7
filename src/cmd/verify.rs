//! `kerblam verify ARTIFACT`: recompute an artifact's identifier and check it against what kerblam
//! recorded when it made it: the `ro-crate-metadata.json` and `CITATION.cff` beside it and, for a
//! replay archive, its checksums and the crate inside it.

use std::path::{Path, PathBuf};

use clap::Args;
use kerblam_archive::{ReplayArchive, Sums, member};

use crate::citation::cff;
use crate::citation::ro_crate::{self, Crate};
use crate::cli::GlobalArgs;
use crate::exit::invalid;
use crate::exit::{self, Exit};
use crate::output;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The artifact: a replay archive, a freeze tarball, a SIF, an OCI archive, ...
    pub artifact: PathBuf,
}

pub fn run(_global: &GlobalArgs, args: VerifyArgs) -> miette::Result<u8> {
    let path = &args.artifact;
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(invalid(format!("{} is not a file", path.display()))),
        Err(e) => return Err(invalid(format!("cannot read {}: {e}", path.display()))),
    }
    let shown = path.display().to_string();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let sha = kerblam_compiler::digest::sha256_file(path)
        .map_err(|e| invalid(format!("cannot read {shown}: {e}")))?;
    outln!("{sha}  {shown}");

    let mut v = Verdict::default();
    beside_crate(&dir.join(ro_crate::FILE_NAME), &name, &sha, &shown, &mut v)?;
    beside_citation(&dir.join(cff::FILE_NAME), &name, &sha, &shown, &mut v);
    if name.ends_with(".kerblam.tar") || ReplayArchive::open(path).is_ok() {
        replay_archive(path, &mut v);
    }
    if v.checked.is_empty() && v.problems.is_empty() {
        return Err(invalid(format!(
            "nothing to check {shown} against: there is no {} beside it\nhelp: kerblam writes one beside what `kerblam package` and `kerblam freeze` make; keep it with the artifact",
            ro_crate::FILE_NAME
        )));
    }
    for c in &v.checked {
        output::info(format!("ok: {c}"));
    }
    if v.problems.is_empty() {
        output::info(format!("{shown} is what kerblam recorded"));
        return Ok(exit::OK);
    }
    let n = v.problems.len();
    Err(Exit::failure(format!(
        "{shown} does not match what kerblam recorded ({n} problem{}):\n  {}",
        if n == 1 { "" } else { "s" },
        v.problems.join("\n  ")
    ))
    .into())
}

/// What was checked and what did not match.
#[derive(Default)]
struct Verdict {
    checked: Vec<String>,
    problems: Vec<String>,
}

/// The crate beside the artifact: it must be a valid RO-Crate, list the artifact as a part, and
/// record the same sha256.
fn beside_crate(
    crate_path: &Path,
    name: &str,
    sha: &str,
    shown: &str,
    v: &mut Verdict,
) -> miette::Result<()> {
    let shown_crate = crate_path.display().to_string();
    let bytes = match std::fs::read(crate_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(invalid(format!("cannot read {shown_crate}: {e}"))),
    };
    let c = Crate::parse(&bytes)
        .map_err(|e| invalid(format!("{shown_crate} is not a usable RO-Crate: {e}")))?;
    let Some(recorded) = c.file_digest(name) else {
        return Err(invalid(format!(
            "{shown_crate} does not describe {name} (no data entity with its sha256)"
        )));
    };
    if !c.has_part(name) {
        v.problems.push(format!(
            "{shown_crate} describes {name} but does not list it in its root's hasPart"
        ));
    }
    if recorded == sha {
        v.checked
            .push(format!("the identifier {sha} recorded in {shown_crate}"));
    } else {
        v.problems.push(format!(
            "{shown} has changed: its sha256 is {sha}, but {shown_crate} records {recorded}"
        ));
    }
    Ok(())
}

/// The CITATION.cff beside the artifact, when kerblam wrote it for this artifact.
fn beside_citation(cff_path: &Path, name: &str, sha: &str, shown: &str, v: &mut Verdict) {
    let Ok(text) = std::fs::read_to_string(cff_path) else {
        return;
    };
    if !cff::is_kerblams(&text) {
        return;
    }
    let about = format!("sha256 of {name}");
    let shown_cff = cff_path.display();
    for (value, description) in cff::identifiers(&text) {
        if description != about {
            continue;
        }
        if value == sha {
            v.checked.push(format!("the identifier in {shown_cff}"));
        } else {
            v.problems.push(format!(
                "{shown} has changed: its sha256 is {sha}, but {shown_cff} cites {value}"
            ));
        }
    }
}

/// A replay archive: its members against `SHA256SUMS`, and the crate inside it against both.
fn replay_archive(path: &Path, v: &mut Verdict) {
    let shown = path.display();
    let archive = match ReplayArchive::open(path) {
        Ok(a) => a,
        Err(e) => {
            v.problems.push(format!("{e}"));
            return;
        }
    };
    let Some(sums) = archive.sums() else {
        v.checked.push(format!(
            "{shown} is in Kerblam! 1.x's layout, which carries no checksums: only its structure was checked"
        ));
        return;
    };
    match archive.verify(None) {
        Ok(()) => v.checked.push(format!(
            "every member of {shown} matches its SHA256SUMS line"
        )),
        Err(e) => v.problems.push(format!("{e}")),
    }
    let Some(inner) = archive.ro_crate() else {
        v.checked.push(format!(
            "{shown} holds no {} (it was made before kerblam recorded identifiers in archives)",
            member::CRATE
        ));
        return;
    };
    match Crate::parse(inner) {
        Ok(c) => {
            let before = v.problems.len();
            inner_crate(&c, sums, &shown.to_string(), v);
            if v.problems.len() == before {
                v.checked.push(format!(
                    "the {} inside {shown} agrees with its checksums",
                    member::CRATE
                ));
            }
        }
        Err(e) => v.problems.push(format!(
            "{shown}: its {} is not a usable RO-Crate: {e}",
            member::CRATE
        )),
    }
}

/// Every checksum the inner crate records (members and inputs) equals the archive's.
fn inner_crate(c: &Crate, sums: &Sums, shown: &str, v: &mut Verdict) {
    let hex = |sha: &[u8; 32]| kerblam_archive::hex(sha);
    for (name, sha) in &sums.lines {
        if name.contains(':') || name == member::CRATE || name == member::SIGNATURE {
            continue;
        }
        match c.file_digest(name) {
            Some(rec) if rec == format!("sha256:{}", hex(sha)) => {}
            Some(rec) => v.problems.push(format!(
                "{shown}: its crate records {rec} for {name}, but SHA256SUMS lists sha256:{}",
                hex(sha)
            )),
            None => v.problems.push(format!(
                "{shown}: its crate does not describe the member {name}"
            )),
        }
    }
    for (id, e) in c.under("#package/") {
        // An input's id is percent-encoded; its name is the path as the archive lists it.
        let (true, Some(path)) = (
            id.contains("/input/"),
            e.get("name").and_then(|n| n.as_str()),
        ) else {
            continue;
        };
        let recorded = e.get("sha256").and_then(|s| s.as_str()).unwrap_or_default();
        let listed = if path == member::MANIFEST {
            sums.get(member::MANIFEST)
        } else {
            sums.get(&format!("{}:{path}", member::DATA_ZST))
        };
        match listed {
            Some(sha) if hex(sha) == recorded => {}
            Some(sha) => v.problems.push(format!(
                "{shown}: its crate records sha256:{recorded} for the input {path}, but SHA256SUMS lists sha256:{}",
                hex(sha)
            )),
            None => v.problems.push(format!(
                "{shown}: its crate describes the input {path}, which the archive does not hold"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inner_crate_that_disagrees_with_the_checksums_is_named() {
        let text = format!(
            r##"{{"@context":"https://w3id.org/ro/crate/1.1/context","@graph":[
            {{"@id":"ro-crate-metadata.json","conformsTo":{{"@id":"https://w3id.org/ro/crate/1.1"}},"about":{{"@id":"./"}}}},
            {{"@id":"./","@type":"Dataset","datePublished":"2026-12-07"}},
            {{"@id":"kerblam.toml","@type":"File","sha256":"{a}"}},
            {{"@id":"#package/p/input/data/in/x%20y","@type":"File","name":"data/in/x y","sha256":"{a}"}},
            {{"@id":"#package/p/input/data/in/gone","@type":"File","name":"data/in/gone","sha256":"{a}"}}]}}"##,
            a = "a".repeat(64)
        );
        let c = Crate::parse(text.as_bytes()).unwrap();
        let mut sums = Sums::default();
        sums.push("kerblam.toml", [0xaa; 32]);
        sums.push("plan.json", [0xbb; 32]);
        sums.push("data.tar.zst:data/in/x y", [0xcc; 32]);
        let mut v = Verdict::default();
        inner_crate(&c, &sums, "p.kerblam.tar", &mut v);
        let all = v.problems.join("\n");
        assert_eq!(v.problems.len(), 3, "{all}");
        assert!(
            all.contains("does not describe the member plan.json"),
            "{all}"
        );
        assert!(
            all.contains(&format!(
                "for the input data/in/x y, but SHA256SUMS lists sha256:{}",
                "cc".repeat(32)
            )),
            "{all}"
        );
        assert!(
            all.contains("describes the input data/in/gone, which the archive does not hold"),
            "{all}"
        );
    }
}

//! Holding a backend to its plan.
//!
//! A plugin may be written by anyone, in any language, so the host believes nothing it says
//! without looking. Two checks, shared by `kerblam` and the conformance kit:
//!
//! - [`plan_problems`]: the backend's part of a plan, as `kerblam_backend_plan` returned it, is
//!   well formed: it names this backend, writes no artifact kerblam writes itself (the replay
//!   archive), names each file once, none where kerblam writes and none outside the plan's output
//!   directory, and renders files with plain names. Paths are compared as files, not strings
//!   ([`normal_path`]): `./x.tar`, `x.tar` and `/out/x.tar` are one file under `/out`.
//! - [`result_problems`]: after `package`, every artifact of the backend's part exists with its
//!   kind ([`kind_problem`] looks at the file), and the result reports each once and nothing else.
//!
//! [`Before`] records what was at each planned path before `execute`, so that the host can remove
//! what a backend left behind when it did not hold to its plan, and nothing else.

use std::io::{Read, Seek};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use kerblam_plan::{Artifact, ArtifactKind, BackendPlan, PackagePlan};

use crate::{Action, ExecuteResult, Paths, ProducedArtifact};

/// The absolute path of an artifact: as is when absolute, else under `paths.output_dir`.
pub fn artifact_path(paths: &Paths, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        Path::new(&paths.output_dir).join(p)
    }
}

/// [`artifact_path`] with its `.` components and repeated or trailing slashes dropped and each
/// `..` taken back, without looking at the filesystem: two spellings of one file
/// (`./process.tar`, `process.tar`, `/out/process.tar` with `/out` the output directory) give one
/// path, which is how the host compares artifact paths.
pub fn normal_path(paths: &Paths, path: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in artifact_path(paths, path).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Whether an artifact path is unusable: empty, or holding a NUL or a line break.
fn bad_path(path: &str) -> bool {
    path.trim().is_empty() || path.contains(['\0', '\n', '\r'])
}

/// Where the backend's part of a plan puts a file where kerblam writes one of its own (the replay
/// archive): the message for the user, naming both, when it does. This is a clash of what the user
/// asked for (`-o` naming the backend's file) with what the backend writes, so the host refuses it
/// as bad input, before anything runs; [`plan_problems`] lists it too.
pub fn host_clash(plan: &PackagePlan, part: &BackendPlan, paths: &Paths) -> Option<String> {
    let said = |k: ArtifactKind| k.to_string().replace('-', " ");
    for a in part.artifacts.iter().filter(|a| a.kind.is_file()) {
        let at = normal_path(paths, &a.path);
        if let Some(h) = plan
            .artifacts
            .iter()
            .find(|h| normal_path(paths, &h.path) == at)
        {
            return Some(format!(
                "kerblam is to write the {} at {}, where the {} backend writes its {} ({}): write the {} elsewhere (-o PATH)",
                said(h.kind),
                at.display(),
                part.name,
                said(a.kind),
                a.path,
                said(h.kind)
            ));
        }
    }
    None
}

/// What is wrong with `part`, the reply of backend `backend` to a plan request for `plan` (the
/// plan without its backend part) with `paths`. Empty when it can be written into the plan.
pub fn plan_problems(
    backend: &str,
    plan: &PackagePlan,
    part: &BackendPlan,
    paths: &Paths,
) -> Vec<String> {
    let mut out = Vec::new();
    if part.name != backend {
        out.push(format!(
            "it names the backend {:?}, but the plugin is {backend:?}",
            part.name
        ));
    }
    artifact_problems(plan, part, paths, &mut out);
    rendered_problems(part, &mut out);
    if let Some(line) = part.usage.iter().find(|l| l.contains('\n')) {
        out.push(format!("a usage line holds a line break: {line:?}"));
    }
    out
}

/// What is wrong with the artifacts `part` lists, pushed to `out`: a kind kerblam writes itself, an
/// unusable path, an image or a file named twice, a file where kerblam writes one of `plan`'s own
/// artifacts or outside the plan's output directory.
fn artifact_problems(plan: &PackagePlan, part: &BackendPlan, paths: &Paths, out: &mut Vec<String>) {
    let output_dir = normal_path(paths, &plan.output.dir);
    let hosts: Vec<(PathBuf, &Artifact)> = plan
        .artifacts
        .iter()
        .map(|h| (normal_path(paths, &h.path), h))
        .collect();
    // Files by their normal path, engine images by their tag.
    let mut files: Vec<PathBuf> = Vec::new();
    let mut images: Vec<&str> = Vec::new();
    for a in &part.artifacts {
        if a.kind.is_host_written() {
            out.push(format!(
                "it lists a {} artifact ({}), which kerblam writes itself",
                a.kind, a.path
            ));
        }
        if bad_path(&a.path) {
            out.push(format!(
                "a {} artifact has the path {:?}, which is empty or holds a line break",
                a.kind, a.path
            ));
            continue;
        }
        if !a.kind.is_file() {
            if images.contains(&a.path.as_str()) {
                out.push(format!("the image {} is named twice", a.path));
            }
            images.push(&a.path);
            continue;
        }
        let at = normal_path(paths, &a.path);
        if let Some((_, h)) = hosts.iter().find(|(p, _)| *p == at) {
            out.push(format!(
                "its {} artifact {} is the file kerblam writes the {} to ({})",
                a.kind,
                a.path,
                h.kind,
                at.display()
            ));
        } else if files.contains(&at) {
            out.push(format!("the file {} is named twice", at.display()));
        }
        if at == output_dir || !at.starts_with(&output_dir) {
            out.push(format!(
                "its {} artifact {} is not under the plan's output directory {}",
                a.kind,
                at.display(),
                output_dir.display()
            ));
        }
        files.push(at);
    }
}

/// What is wrong with the names of the files `part` renders, pushed to `out`: a name that is not
/// one plain word, or a name used twice.
fn rendered_problems(part: &BackendPlan, out: &mut Vec<String>) {
    let mut names: Vec<&str> = Vec::new();
    for r in &part.rendered {
        if r.name.is_empty() || r.name.contains(['/', '\0', '\n']) {
            out.push(format!(
                "a rendered file is called {:?}; a name is one plain word such as Containerfile",
                r.name
            ));
        } else if names.contains(&r.name.as_str()) {
            out.push(format!("the rendered file {} is named twice", r.name));
        }
        names.push(&r.name);
    }
}

/// What a planned path held before `execute`: nothing, or a file with this identity.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Was {
    Absent,
    File {
        dev: u64,
        ino: u64,
        mtime: i64,
        mtime_ns: i64,
        size: u64,
    },
    Other,
}

fn was(path: &Path) -> Was {
    match std::fs::symlink_metadata(path) {
        Err(_) => Was::Absent,
        Ok(m) if m.is_file() => Was::File {
            dev: m.dev(),
            ino: m.ino(),
            mtime: m.mtime(),
            mtime_ns: m.mtime_nsec(),
            size: m.size(),
        },
        Ok(_) => Was::Other,
    }
}

/// The state of every file artifact of a plan's backend part, taken before `execute`.
#[derive(Debug, Clone)]
pub struct Before {
    files: Vec<(PathBuf, Was)>,
}

impl Before {
    /// Record what is at each path the backend's part names.
    pub fn take(plan: &PackagePlan, paths: &Paths) -> Before {
        let files = plan
            .backend
            .artifacts
            .iter()
            .filter(|a| a.kind.is_file())
            .map(|a| {
                let p = artifact_path(paths, &a.path);
                let w = was(&p);
                (p, w)
            })
            .collect();
        Before { files }
    }

    /// The planned files that `execute` created or replaced: regular files whose identity
    /// differs from what was there before. Only these may be removed after a broken promise.
    pub fn written_since(&self) -> Vec<PathBuf> {
        self.files
            .iter()
            .filter(|(p, before)| {
                let now = was(p);
                matches!(now, Was::File { .. }) && now != *before
            })
            .map(|(p, _)| p.clone())
            .collect()
    }
}

/// What is wrong with `result`, the reply of a backend to `execute` of `plan` with `action`. Empty
/// when the backend did what its part of the plan says: after `package` every artifact it planned
/// exists with its kind and the result names each of them and nothing else; after `run` it names
/// none and gives the exit code.
pub fn result_problems(
    plan: &PackagePlan,
    paths: &Paths,
    action: Action,
    result: &ExecuteResult,
) -> Vec<String> {
    let mut out = Vec::new();
    if action == Action::Run {
        for a in &result.artifacts {
            out.push(format!(
                "a run reported the {} artifact {}; a run writes no artifacts",
                a.kind, a.path
            ));
        }
        if result.exit_code.is_none() {
            out.push("a run did not report the exit code of what it ran".into());
        }
        return out;
    }
    let planned = &plan.backend.artifacts;
    for (i, a) in result.artifacts.iter().enumerate() {
        if result.artifacts[..i]
            .iter()
            .any(|b| same_report(paths, a, b))
        {
            out.push(format!(
                "it reported the {} artifact {} twice",
                a.kind, a.path
            ));
            continue;
        }
        if !planned.iter().any(|p| same(paths, p, a)) {
            let why = if plan.artifacts.iter().any(|h| same(paths, h, a)) {
                "which kerblam writes itself"
            } else {
                "which its plan does not name"
            };
            out.push(format!(
                "it reported a {} artifact at {}, {why}",
                a.kind, a.path
            ));
        }
    }
    for p in planned {
        let reported = result.artifacts.iter().find(|a| same(paths, p, a));
        if reported.is_none() {
            out.push(format!(
                "it did not report the {} artifact {} its plan names",
                p.kind, p.path
            ));
        }
        if let Some(problem) = kind_problem(paths, p, reported) {
            out.push(problem);
        }
    }
    out
}

/// Whether two spellings name one artifact: the same kind, and the same file (see
/// [`normal_path`]; an engine image by its tag).
fn same_path(paths: &Paths, kind: ArtifactKind, a: &str, b: &str) -> bool {
    if kind.is_file() {
        normal_path(paths, a) == normal_path(paths, b)
    } else {
        a == b
    }
}

/// Whether a reported artifact is the planned one: the same kind, and the same path.
fn same(paths: &Paths, planned: &Artifact, reported: &ProducedArtifact) -> bool {
    planned.kind == reported.kind && same_path(paths, planned.kind, &planned.path, &reported.path)
}

/// Whether two reported artifacts are one.
fn same_report(paths: &Paths, a: &ProducedArtifact, b: &ProducedArtifact) -> bool {
    a.kind == b.kind && same_path(paths, a.kind, &a.path, &b.path)
}

/// Why the planned artifact `a` is not there as its kind says, if it is not. An engine image lives
/// in an engine kerblam does not know: the backend must report it with its image ID. A file must
/// be a regular file whose first bytes are those of its kind (see [`sniff`]) and whose size is the
/// one reported.
pub fn kind_problem(
    paths: &Paths,
    a: &Artifact,
    reported: Option<&ProducedArtifact>,
) -> Option<String> {
    if !a.kind.is_file() {
        let id = reported.and_then(|r| r.sha256.as_deref());
        return match id {
            Some(id) if is_digest(id) => None,
            Some(id) => Some(format!(
                "the image {} was reported with the ID {id:?}, which is not sha256:<64 hex digits>",
                a.path
            )),
            None if reported.is_none() => None,
            None => Some(format!(
                "the image {} was reported without its image ID (sha256)",
                a.path
            )),
        };
    }
    let path = artifact_path(paths, &a.path);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(_) => {
            return Some(format!(
                "the {} artifact {} does not exist",
                a.kind,
                path.display()
            ));
        }
    };
    if !meta.is_file() {
        return Some(format!(
            "the {} artifact {} is not a regular file",
            a.kind,
            path.display()
        ));
    }
    if let Some(bytes) = reported.and_then(|r| r.bytes)
        && bytes != meta.len()
    {
        return Some(format!(
            "the {} artifact {} was reported as {bytes} bytes but holds {}",
            a.kind,
            path.display(),
            meta.len()
        ));
    }
    sniff(&path, a.kind)
        .err()
        .map(|why| format!("the {} artifact {} {why}", a.kind, path.display()))
}

fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether the file at `path` starts as a `kind` does: a tar (`ustar` at byte 257) for archives,
/// holding `oci-layout` and `index.json` for an OCI archive and `manifest.json` or `index.json` for
/// an image archive; zstd, gzip or tar for a tarball; the `SIF_MAGIC` at byte 32 for a SIF; a JSON
/// object for metadata; text for a script. `Err` says what it is not.
pub fn sniff(path: &Path, kind: ArtifactKind) -> Result<(), String> {
    let mut head = [0u8; 512];
    let n = std::fs::File::open(path)
        .and_then(|mut f| read_up_to(&mut f, &mut head))
        .map_err(|e| format!("cannot be read: {e}"))?;
    let head = &head[..n];
    let is_tar = n >= 262 && &head[257..262] == b"ustar";
    match kind {
        ArtifactKind::EngineImage | ArtifactKind::File => Ok(()),
        ArtifactKind::ReplayArchive | ArtifactKind::ContextArchive => is_tar
            .then_some(())
            .ok_or_else(|| "is not a tar archive".into()),
        ArtifactKind::OciArchive => tar_holds(path, is_tar, &[&["oci-layout"], &["index.json"]]),
        ArtifactKind::ImageArchive => tar_holds(path, is_tar, &[&["manifest.json", "index.json"]]),
        ArtifactKind::Tarball => {
            let zstd = head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
            let gzip = head.starts_with(&[0x1f, 0x8b]);
            let xz = head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]);
            (zstd || gzip || xz || is_tar)
                .then_some(())
                .ok_or_else(|| "is neither a tar archive nor zstd, gzip or xz".into())
        }
        ArtifactKind::Sif => (n >= 42 && &head[32..42] == b"SIF_MAGIC\0")
            .then_some(())
            .ok_or_else(|| "is not a SIF file (no SIF_MAGIC at byte 32)".into()),
        ArtifactKind::MetadataJson => {
            let text = std::fs::read(path).map_err(|e| format!("cannot be read: {e}"))?;
            match serde_json::from_slice::<serde_json::Value>(&text) {
                Ok(serde_json::Value::Object(_)) => Ok(()),
                _ => Err("is not a JSON object".into()),
            }
        }
        ArtifactKind::ActivateScript => (!head.contains(&0) && is_text_start(head))
            .then_some(())
            .ok_or_else(|| "is not a text file".into()),
    }
}

/// Whether `head`, the first bytes of a file, is UTF-8 text, allowing a character cut short at
/// its end (the rest of it lies past the bytes read).
fn is_text_start(head: &[u8]) -> bool {
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// A tar archive with, for each group of `wanted`, an entry named one of its names (at the top).
fn tar_holds(path: &Path, is_tar: bool, wanted: &[&[&str]]) -> Result<(), String> {
    if !is_tar {
        return Err("is not a tar archive".into());
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
    tar_names_hold(std::io::BufReader::new(file), wanted)
}

/// [`tar_holds`] on an open archive. It reads the entries' headers only, seeking over their data
/// (an image archive may be gigabytes), and stops once every group is found.
fn tar_names_hold<R: Read + Seek>(reader: R, wanted: &[&[&str]]) -> Result<(), String> {
    let mut archive = tar::Archive::new(reader);
    let mut found = vec![false; wanted.len()];
    let entries = archive
        .entries_with_seek()
        .map_err(|e| format!("is not a readable tar archive: {e}"))?;
    for e in entries {
        let e = e.map_err(|e| format!("is not a readable tar archive: {e}"))?;
        let name = e.path_bytes();
        let name = String::from_utf8_lossy(&name);
        let name = name.trim_start_matches("./");
        for (group, hit) in wanted.iter().zip(found.iter_mut()) {
            *hit |= group.contains(&name);
        }
        if found.iter().all(|f| *f) {
            return Ok(());
        }
    }
    match wanted.iter().zip(&found).find(|(_, hit)| !**hit) {
        Some((group, _)) => Err(format!("holds no {}", group.join(" or "))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The conformance kit's minimal golden plan: kerblam writes `golden.kerblam.tar`, the output
    /// directory is `.`.
    fn plan() -> PackagePlan {
        serde_json::from_str(include_str!("../../../conformance/golden/minimal.json")).unwrap()
    }

    fn paths() -> Paths {
        Paths {
            root: "/project".into(),
            kerblam: "/bin/kerblam".into(),
            output_dir: "/project".into(),
            temp_dir: "/tmp".into(),
        }
    }

    fn file(path: &str) -> Artifact {
        Artifact {
            kind: ArtifactKind::File,
            path: path.into(),
            format: None,
            contents: vec![],
        }
    }

    fn part(artifacts: Vec<Artifact>) -> BackendPlan {
        BackendPlan {
            artifacts,
            ..BackendPlan::named("any")
        }
    }

    fn problems(artifacts: Vec<Artifact>) -> Vec<String> {
        plan_problems("any", &plan(), &part(artifacts), &paths())
    }

    #[test]
    fn spellings_of_one_path_are_one_path() {
        let p = paths();
        for spelling in [
            "x.tar",
            "./x.tar",
            "/project/x.tar",
            "/project//./x.tar",
            "sub/../x.tar",
        ] {
            assert_eq!(normal_path(&p, spelling), Path::new("/project/x.tar"));
        }
    }

    #[test]
    fn a_script_cut_inside_a_character_at_the_sniffed_bytes_is_still_text() {
        let t = tempfile::tempdir().unwrap();
        let script = t.path().join("activate.sh");
        // 511 bytes, then "é" (0xc3 0xa9), whose second byte is byte 512: past what is sniffed.
        let mut text = format!("# {}\n", "a".repeat(508)).into_bytes();
        assert_eq!(text.len(), 511);
        text.extend_from_slice("é is a letter\n".as_bytes());
        std::fs::write(&script, &text).unwrap();
        assert_eq!(sniff(&script, ArtifactKind::ActivateScript), Ok(()));
        // A byte that is never UTF-8 is not text, wherever it is.
        text[100] = 0xff;
        std::fs::write(&script, &text).unwrap();
        assert_eq!(
            sniff(&script, ArtifactKind::ActivateScript),
            Err("is not a text file".into())
        );
    }

    /// A reader that counts the bytes read from it.
    struct Counting<R> {
        inner: R,
        read: std::rc::Rc<std::cell::Cell<u64>>,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read.set(self.read.get() + n as u64);
            Ok(n)
        }
    }

    impl<R: Seek> Seek for Counting<R> {
        fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    #[test]
    fn looking_into_an_oci_archive_reads_its_headers_not_its_blobs() {
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8]| {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, data).unwrap();
        };
        let blob = vec![7u8; 8 << 20];
        add("blobs/sha256/aa", &blob);
        add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
        add("blobs/sha256/bb", &blob);
        add("index.json", b"{}");
        let bytes = b.into_inner().unwrap();
        let read = std::rc::Rc::new(std::cell::Cell::new(0));
        let reader = Counting {
            inner: std::io::Cursor::new(bytes.clone()),
            read: read.clone(),
        };
        assert_eq!(
            tar_names_hold(reader, &[&["oci-layout"], &["index.json"]]),
            Ok(())
        );
        assert!(
            read.get() < 64 * 1024,
            "{} of {} bytes read to find two names",
            read.get(),
            bytes.len()
        );
        let reader = std::io::Cursor::new(bytes);
        assert_eq!(
            tar_names_hold(reader, &[&["manifest.json"]]),
            Err("holds no manifest.json".into())
        );
    }

    #[test]
    fn a_backend_file_at_kerblams_replay_archive_is_refused_however_it_is_spelled() {
        for spelling in [
            "golden.kerblam.tar",
            "./golden.kerblam.tar",
            "/project/golden.kerblam.tar",
        ] {
            let found = problems(vec![file(spelling)]);
            assert!(
                found.iter().any(|p| p.contains(&format!(
                    "its file artifact {spelling} is the file kerblam writes the replay-archive to (/project/golden.kerblam.tar)"
                ))),
                "{spelling}: {found:?}"
            );
            let clash = host_clash(&plan(), &part(vec![file(spelling)]), &paths()).unwrap();
            assert_eq!(
                clash,
                format!(
                    "kerblam is to write the replay archive at /project/golden.kerblam.tar, where the any backend writes its file ({spelling}): write the replay archive elsewhere (-o PATH)"
                )
            );
        }
        assert_eq!(
            host_clash(&plan(), &part(vec![file("golden.build.sh")]), &paths()),
            None
        );
    }

    #[test]
    fn a_backend_file_outside_the_output_directory_is_refused() {
        for (spelling, at) in [
            ("../golden.sh", "/golden.sh"),
            ("/etc/golden.sh", "/etc/golden.sh"),
            ("sub/../../golden.sh", "/golden.sh"),
            (".", "/project"),
        ] {
            let found = problems(vec![file(spelling)]);
            assert_eq!(
                found,
                [format!(
                    "its file artifact {at} is not under the plan's output directory /project"
                )],
                "{spelling}"
            );
        }
        // Under it, in a subdirectory or by its absolute path, is fine.
        assert_eq!(
            problems(vec![file("out/golden.sh"), file("/project/golden.txt")]),
            Vec::<String>::new()
        );
        // The output directory is the plan's: a freeze's `-d DIR`.
        let mut freeze = plan();
        freeze.output.dir = "/dest".into();
        let p = paths();
        assert!(plan_problems("any", &freeze, &part(vec![file("/dest/f.tar")]), &p).is_empty());
        assert_eq!(
            plan_problems("any", &freeze, &part(vec![file("f.tar")]), &p),
            ["its file artifact /project/f.tar is not under the plan's output directory /dest"]
        );
    }

    #[test]
    fn one_file_named_twice_is_refused_however_it_is_spelled() {
        assert_eq!(
            problems(vec![file("golden.sh"), file("./golden.sh")]),
            ["the file /project/golden.sh is named twice"]
        );
    }

    fn reported(path: &str) -> ProducedArtifact {
        ProducedArtifact {
            kind: ArtifactKind::File,
            path: path.into(),
            bytes: None,
            sha256: None,
        }
    }

    #[test]
    fn a_result_reporting_one_artifact_twice_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().to_string_lossy().into_owned();
        let p = Paths {
            output_dir: dir.clone(),
            root: dir.clone(),
            ..paths()
        };
        std::fs::write(t.path().join("golden.sh"), "echo\n").unwrap();
        let mut plan = plan();
        plan.backend = part(vec![file("golden.sh")]);
        let once = ExecuteResult {
            artifacts: vec![reported(&format!("{dir}/golden.sh"))],
            exit_code: None,
            notes: vec![],
            pushed: None,
        };
        assert_eq!(
            result_problems(&plan, &p, Action::Package, &once),
            Vec::<String>::new()
        );
        let twice = ExecuteResult {
            artifacts: vec![
                reported(&format!("{dir}/golden.sh")),
                reported(&format!("{dir}/./golden.sh")),
            ],
            ..once
        };
        assert_eq!(
            result_problems(&plan, &p, Action::Package, &twice),
            [format!(
                "it reported the file artifact {dir}/./golden.sh twice"
            )]
        );
    }
}

//! The bad-manifest corpus: every file under `tests/fixtures/invalid/` is rejected by `kerblam validate`
//! with exit code 2 and a located, underlined diagnostic, and never panics. Each rendered report is
//! snapshotted (`tests/it/snapshots/it__validate_corpus__*.snap`). The files under `tests/fixtures/valid/`
//! are accepted.
//!
//! To accept changed snapshots after an intended change: `INSTA_UPDATE=always cargo test --test
//! it validate_corpus::`, then review the diff of `tests/it/snapshots/`.

use crate::support;

use support::text;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind)
}

/// Every `*.toml` file of a fixture dir, sorted.
fn fixture_files(kind: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures(kind))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    names
}

/// `kerblam validate` run in the fixture dir on a relative file name, so the reported file name is
/// stable; no colour, fixed width (kerblam renders at 100 columns).
fn validate(kind: &str, file: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kerblam"))
        .current_dir(fixtures(kind))
        .args(["--color", "never", "validate"])
        .args(extra)
        .arg(file)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env_remove("KERBLAM_BACKEND_PATH")
        .output()
        .unwrap()
}

/// True when `stderr` holds a report header `[file:line:col]` for `file`.
fn has_located_header(stderr: &str, file: &str) -> bool {
    stderr.lines().any(|l| {
        let Some(rest) = l.trim_start().strip_prefix(",-[") else {
            return false;
        };
        let Some(loc) = rest.strip_suffix(']') else {
            return false;
        };
        let mut parts = loc.rsplitn(3, ':');
        let col = parts.next().unwrap_or("");
        let line = parts.next().unwrap_or("");
        let name = parts.next().unwrap_or("");
        name == file && line.parse::<u32>().is_ok() && col.parse::<u32>().is_ok()
    })
}

/// True when a source line of the report is followed by an underline (`^^^` or the `|` of a
/// one-character span) in the ASCII rendering.
fn has_underline(stderr: &str) -> bool {
    stderr.lines().any(|l| {
        let t = l.trim_start();
        t.starts_with(": ") && (t.contains('^') || t[2..].trim_start().starts_with('|'))
    })
}

#[test]
fn the_corpus_is_large_enough() {
    let n = fixture_files("invalid").len();
    assert!(n >= 30, "only {n} bad manifests in tests/fixtures/invalid");
}

#[test]
fn every_bad_manifest_is_rejected_with_a_located_snapshotted_report() {
    let mut failures = Vec::new();
    let mut reports = Vec::new();
    let files = fixture_files("invalid");
    let mut good = 0;
    for file in &files {
        let file = file.as_str();
        let failed_before = failures.len();
        let out = validate("invalid", file, &[]);
        let stderr = text(&out.stderr);
        let code = out.status.code();
        if stderr.contains("panicked") {
            failures.push(format!("{file}: panicked:\n{stderr}"));
            continue;
        }
        if code != Some(2) {
            failures.push(format!("{file}: exit code {code:?}, want 2:\n{stderr}"));
        }
        if !has_located_header(&stderr, file) {
            failures.push(format!("{file}: no [{file}:line:col] header:\n{stderr}"));
        }
        if !has_underline(&stderr) {
            failures.push(format!("{file}: nothing underlined:\n{stderr}"));
        }
        if !out.stdout.is_empty() {
            failures.push(format!("{file}: unexpected stdout: {}", text(&out.stdout)));
        }
        if failures.len() == failed_before {
            good += 1;
        }
        reports.push((file.trim_end_matches(".toml").to_string(), code, stderr));
    }
    // Counted before the verdict, so a partial result shows; the README gives the figure.
    eprintln!(
        "bad manifests rejected with a located error: {good} of {}",
        files.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let row = format!("| bad manifests with a located error (file:line:col) | **{good}** |");
    assert!(readme.contains(&row), "README.md should say: {row}");
    for (name, code, stderr) in reports {
        insta::assert_snapshot!(name, format!("exit code: {code:?}\n{stderr}"));
    }
}

/// Typos of known keys get a "did you mean" naming the right key.
#[test]
fn typos_of_known_keys_get_did_you_mean() {
    let cases = [
        ("unknown-top-level-typo.toml", "executon", "execution"),
        ("unknown-data-path.toml", "path", "paths"),
        ("unknown-paths-intput.toml", "intput", "input"),
        ("unknown-code-pipe-dir.toml", "pipe_dir", "pipes_dir"),
        ("unknown-execution-worddir.toml", "worddir", "workdir"),
        ("unknown-meta-versoin.toml", "versoin", "version"),
        ("unknown-data-remotes.toml", "remotes", "remote"),
        ("unknown-inline-table.toml", "ouput", "output"),
        ("unknown-dotted-key.toml", "intermediat", "intermediate"),
        ("combined-typo-path-url.toml", "executon", "execution"),
    ];
    for (file, bad, good) in cases {
        let stderr = text(&validate("invalid", file, &[]).stderr);
        assert!(
            stderr.contains(&format!("unknown key `{bad}`")),
            "{file}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("did you mean `{good}`?")),
            "{file}: {stderr}"
        );
    }
    // A key close to nothing lists the known keys instead.
    let stderr = text(&validate("invalid", "unknown-top-level-far.toml", &[]).stderr);
    assert!(!stderr.contains("did you mean"), "{stderr}");
    assert!(
        stderr.contains("known keys here: code, data, execution, meta"),
        "{stderr}"
    );
}

/// A file with several problems reports each of them, not only the first kind found.
#[test]
fn every_problem_of_a_file_is_reported() {
    let stderr = text(&validate("invalid", "combined-typo-path-url.toml", &[]).stderr);
    for want in [
        "unknown key `executon`",
        "data.paths.input `/abs/in` is absolute",
        "remote URL `ftp//example.org/x` does not parse",
        "3 errors",
    ] {
        assert!(stderr.contains(want), "missing {want:?}:\n{stderr}");
    }
    let stderr = text(&validate("invalid", "combined-types-and-unknown.toml", &[]).stderr);
    for want in [
        "`meta.version`",
        "unknown key `author`",
        "`code.env_dir`",
        "code.pipes_dir `../p` escapes",
        "4 errors",
    ] {
        assert!(stderr.contains(want), "missing {want:?}:\n{stderr}");
    }
}

#[test]
fn json_output_gives_level_code_and_location() {
    let out = validate("invalid", "unknown-execution-worddir.toml", &["--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    insta::assert_json_snapshot!("json_unknown_key", v);
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["level"], "error");
    assert_eq!(list[0]["code"], "kerblam::unknown-key");
    assert_eq!(list[0]["file"], "unknown-execution-worddir.toml");
    assert_eq!(list[0]["line"], 3);
    assert_eq!(list[0]["column"], 1);
    assert_eq!(list[0]["help"], "did you mean `workdir`?");

    let out = validate("invalid", "syntax-unclosed-table-header.toml", &["--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    insta::assert_json_snapshot!("json_syntax_error", v);
    assert_eq!(v[0]["code"], "kerblam::toml-syntax");
    assert_eq!(v[0]["line"], 2);

    let out = validate("invalid", "combined-typo-path-url.toml", &["--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let lines: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2, 5, 7], "findings in document order: {v}");
}

#[test]
fn allow_unknown_turns_unknown_keys_into_warnings() {
    let out = validate("valid", "allow-unknown.toml", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = validate("valid", "allow-unknown.toml", &["--allow-unknown"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("unknown key `timeout`"), "{stderr}");
    assert!(
        stderr.contains("ignored because of --allow-unknown"),
        "{stderr}"
    );
    assert!(stderr.contains("allow-unknown.toml: ok"), "{stderr}");
    assert!(
        has_located_header(&stderr, "allow-unknown.toml"),
        "{stderr}"
    );
    insta::assert_snapshot!("allow_unknown_warning", stderr);

    // A warning does not hide an error: a bad path still fails with --allow-unknown.
    let out = validate(
        "invalid",
        "combined-typo-path-url.toml",
        &["--allow-unknown"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    let out = validate(
        "valid",
        "allow-unknown.toml",
        &["--allow-unknown", "--json"],
    );
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["level"], "warning");
}

#[test]
fn valid_manifests_pass() {
    let files = fixture_files("valid");
    for want in ["empty.toml", "full.toml", "allow-unknown.toml"] {
        assert!(files.iter().any(|f| f == want), "missing valid/{want}");
    }
    for file in files {
        if file == "allow-unknown.toml" {
            continue;
        }
        let out = validate("valid", &file, &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{file}: {stderr}");
        assert_eq!(stderr, format!("{file}: ok\n"));
        // -q silences the "ok".
        let out = validate("valid", &file, &["-q"]);
        assert_eq!(out.status.code(), Some(0));
        assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    }
    assert_eq!(
        std::fs::metadata(fixtures("valid").join("empty.toml"))
            .unwrap()
            .len(),
        0,
        "empty.toml must stay empty"
    );
}

/// `kerblam validate` without a file checks the project's kerblam.toml, found by walking up.
#[test]
fn validate_without_a_file_finds_the_project_manifest() {
    let t = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures("invalid").join("unknown-paths-intput.toml"),
        t.path().join("kerblam.toml"),
    )
    .unwrap();
    std::fs::create_dir_all(t.path().join("sub/dir")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kerblam"))
        .current_dir(t.path().join("sub/dir"))
        .args(["--color", "never", "validate"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("kerblam.toml:2:1]"), "{stderr}");

    let out = Command::new(env!("CARGO_BIN_EXE_kerblam"))
        .args(["--color", "never", "-C"])
        .arg(t.path())
        .args(["validate", "kerblam.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Thousands of mutations of valid and invalid manifests (bytes deleted, inserted, lines duplicated or
/// swapped) go through the checker and the renderer without a panic, and every finding's span is
/// inside the file on character boundaries.
#[test]
fn mutated_manifests_never_panic_and_spans_stay_in_bounds() {
    use kerblam_compiler::{CheckOptions, SourceFile, diag::render_plain, manifest};
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for kind in ["valid", "invalid"] {
        for f in fixture_files(kind) {
            seeds.push(std::fs::read(fixtures(kind).join(f)).unwrap());
        }
    }
    let alphabet: &[&[u8]] = &[
        b"[",
        b"]",
        b"[[",
        b"=",
        b"\"",
        b"'",
        b".",
        b",",
        b"{",
        b"}",
        b"\n",
        b"#",
        b"\\",
        b" ",
        b"\t",
        b"data",
        b"paths",
        b"remote",
        b"1",
        b"-",
        b"_",
        "é".as_bytes(),
        b"\xff",
        b"\r\n",
        b"\"\"\"",
        b"nan",
        b"1979-05-27",
        b"true",
        b"/",
        b"..",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut findings_seen = 0;
    for round in 0..3000 {
        let mut bytes = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(4) {
                0 if !bytes.is_empty() => {
                    let end = (at + 1 + rng.below(8)).min(bytes.len());
                    bytes.drain(at.min(end)..end);
                }
                1 => {
                    let piece = alphabet[rng.below(alphabet.len())];
                    bytes.splice(at..at, piece.iter().copied());
                }
                2 => {
                    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
                    let l = lines[rng.below(lines.len())].to_vec();
                    bytes.splice(at..at, l.into_iter().chain([b'\n']));
                }
                _ => {
                    let mut lines: Vec<Vec<u8>> =
                        bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
                    let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                    lines.swap(a, b);
                    bytes = lines.join(&b'\n');
                }
            }
        }
        let findings = match SourceFile::from_bytes("m.toml", bytes.clone()) {
            Ok(source) => {
                let opts = CheckOptions {
                    allow_unknown: round % 2 == 0,
                };
                manifest::check(source, opts).1
            }
            Err(f) => vec![f],
        };
        for f in &findings {
            findings_seen += 1;
            let text = &f.source.text;
            if let Some(span) = &f.span {
                assert!(
                    span.start <= span.end
                        && span.end <= text.len()
                        && text.is_char_boundary(span.start)
                        && text.is_char_boundary(span.end),
                    "round {round}: span {span:?} out of bounds in {:?}",
                    String::from_utf8_lossy(&bytes)
                );
            }
            let rendered = render_plain(f);
            assert!(rendered.contains(f.code), "round {round}: {rendered}");
            let _ = f.to_json();
        }
    }
    assert!(findings_seen > 1000, "{findings_seen}");
}

/// Every corpus snapshot belongs to a fixture that still exists (no stale snapshots left behind when
/// a fixture is renamed or removed).
#[test]
fn no_snapshot_outlives_its_fixture() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/snapshots");
    let fixtures = fixture_files("invalid");
    let others = [
        "json_unknown_key",
        "json_syntax_error",
        "allow_unknown_warning",
    ];
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        let Some(stem) = name
            .strip_prefix("it__validate_corpus__")
            .and_then(|n| n.strip_suffix(".snap"))
        else {
            continue;
        };
        assert!(
            others.contains(&stem) || fixtures.contains(&format!("{stem}.toml")),
            "tests/it/snapshots/{name} has no fixture tests/fixtures/invalid/{stem}.toml; delete it"
        );
    }
}

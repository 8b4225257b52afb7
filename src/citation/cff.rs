//! `CITATION.cff` (Citation File Format 1.2.0) for a [`Work`]: what GitHub, Zenodo and reference
//! managers read to cite it.
//!
//! Strings are written as double-quoted YAML scalars with JSON escapes (JSON strings are YAML), so
//! no name or path can break the file.

use super::work::{Work, file_name};

/// The file's name.
pub const FILE_NAME: &str = "CITATION.cff";
/// The first line of every CITATION.cff kerblam writes: only such a file is replaced (and left
/// out of build contexts).
pub const MARK: &str = kerblam_compiler::CITATION_MARK;

/// Whether `text` is a CITATION.cff kerblam wrote.
pub fn is_kerblams(text: &str) -> bool {
    text.starts_with(MARK)
}

/// The CITATION.cff of `work`, or `None` when it has no author (CFF requires one).
pub fn render(work: &Work) -> Option<String> {
    let author = work.author.as_ref()?;
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let mut out = String::new();
    let first = work
        .artifacts
        .first()
        .map(|a| file_name(&a.path))
        .unwrap_or(&work.title);
    out.push_str(&format!(
        "{MARK} {} for {first}: `kerblam verify {first}` checks its identifier.\n",
        work.kerblam_version
    ));
    out.push_str("cff-version: 1.2.0\n");
    let what = if work.action == "freeze" {
        "software environment"
    } else {
        "packaged pipeline"
    };
    out.push_str(&format!(
        "message: {}\n",
        q(&format!("If you use this {what}, please cite it as below."))
    ));
    out.push_str("type: software\n");
    out.push_str(&format!("title: {}\n", q(&work.title)));
    if let Some(v) = &work.version {
        out.push_str(&format!("version: {}\n", q(v)));
    }
    out.push_str(&format!("date-released: {}\n", q(&work.date)));
    out.push_str(&format!("abstract: {}\n", q(&work.description)));
    out.push_str("authors:\n");
    let (given, family) = author.cff_names();
    let mut first_key = true;
    let mut key = |out: &mut String, k: &str, v: &str| {
        out.push_str(if first_key { "  - " } else { "    " });
        first_key = false;
        out.push_str(&format!("{k}: {}\n", q(v)));
    };
    if let Some(f) = family {
        key(&mut out, "family-names", f);
    }
    if let Some(g) = given {
        key(&mut out, "given-names", g);
    }
    if let Some(e) = &author.email {
        key(&mut out, "email", e);
    }
    out.push_str("identifiers:\n");
    for a in &work.artifacts {
        out.push_str(&format!(
            "  - type: other\n    value: {}\n    description: {}\n",
            q(&a.sha256),
            q(&format!("sha256 of {}", file_name(&a.path)))
        ));
    }
    if let Some(img) = &work.image {
        out.push_str(&format!(
            "  - type: other\n    value: {}\n    description: {}\n",
            q(&img.id),
            q(&format!("image ID of {}", img.tag))
        ));
    }
    for (reference, what) in &work.published {
        out.push_str(&format!(
            "  - type: other\n    value: {}\n    description: {}\n",
            q(reference),
            q(what)
        ));
    }
    if !work.modules.is_empty() {
        out.push_str("keywords:\n");
        for m in &work.modules {
            out.push_str(&format!("  - {}\n", q(m)));
        }
    }
    Some(out)
}

/// The identifiers a CITATION.cff lists, as `(value, description)` pairs: read back from the
/// lines [`render`] writes.
pub fn identifiers(text: &str) -> Vec<(String, String)> {
    let unq =
        |s: &str| serde_json::from_str::<String>(s.trim()).unwrap_or_else(|_| s.trim().into());
    let mut out = Vec::new();
    let mut value: Option<String> = None;
    for line in text.lines() {
        let l = line.trim_start();
        if let Some(v) = l.strip_prefix("value: ") {
            value = Some(unq(v));
        } else if let (Some(d), Some(v)) = (l.strip_prefix("description: "), value.take()) {
            out.push((v, unq(d)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::citation::person::Person;
    use crate::citation::work::{Digested, ImageId};

    fn work() -> Work {
        Work {
            id: "package/p".into(),
            action: "package",
            title: "process: \"all\"".into(),
            version: None,
            description: "line one\nline two".into(),
            date: "2026-12-07".into(),
            author: Person::parse("Jane Q. Doe <jane@example.org>"),
            modules: vec![],
            inputs: vec![],
            artifacts: vec![Digested {
                path: "/p/process.kerblam.tar".into(),
                bytes: Some(1),
                sha256: format!("sha256:{}", "d".repeat(64)),
                media_type: None,
            }],
            image: Some(ImageId {
                tag: "process_exec".into(),
                id: format!("sha256:{}", "e".repeat(64)),
            }),
            published: Vec::new(),
            kerblam_version: "1.0.0".into(),
        }
    }

    #[test]
    fn it_quotes_everything_and_lists_each_identifier() {
        let text = render(&work()).unwrap();
        assert!(is_kerblams(&text), "{text}");
        assert!(text.contains("title: \"process: \\\"all\\\"\"\n"), "{text}");
        assert!(
            text.contains("abstract: \"line one\\nline two\"\n"),
            "{text}"
        );
        assert!(text.contains("  - family-names: \"Doe\"\n    given-names: \"Jane Q.\"\n    email: \"jane@example.org\"\n"), "{text}");
        assert_eq!(
            identifiers(&text),
            vec![
                (
                    format!("sha256:{}", "d".repeat(64)),
                    "sha256 of process.kerblam.tar".to_string()
                ),
                (
                    format!("sha256:{}", "e".repeat(64)),
                    "image ID of process_exec".to_string()
                ),
            ]
        );
    }

    #[test]
    fn without_an_author_there_is_no_citation_file() {
        let mut w = work();
        w.author = None;
        assert_eq!(render(&w), None);
    }
}

//! The compiler's own rules for a manifest, beyond what the schema can say.

use std::collections::BTreeMap;

use crate::diag::Finding;
use crate::manifest::Manifest;
use crate::paths::{check_relative, normalize};
use crate::toml_doc::{Seg, TomlDoc};

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

/// Check the rules the schema cannot express, locating each finding in `doc`.
pub fn check(m: &Manifest, doc: &TomlDoc) -> Vec<Finding> {
    let mut out = Vec::new();
    let src = &doc.source;
    let path_finding = |out: &mut Vec<Finding>, span, value: &str, what: &str| {
        if let Some(why) = check_relative(value) {
            out.push(
                Finding::error(src, "kerblam::bad-path", format!("{what} `{value}` {why}"))
                    .at(span, why)
                    .help("use a path relative to the directory holding kerblam.toml, without `..` above it"),
            );
        }
    };
    let path_rule = |out: &mut Vec<Finding>, path: Vec<Seg>, value: &str, what: &str| {
        path_finding(out, doc.locate(&path), value, what);
    };
    // Profile files and remote targets are files of the input directory.
    let data_file = |out: &mut Vec<Finding>,
                     span: Option<std::ops::Range<usize>>,
                     value: &str,
                     what: &str| {
        let why = match check_relative(value) {
            Some(why) => why,
            None if normalize(value) == "." => "names the input directory itself, not a file in it",
            None => return,
        };
        let why = why.replace("the project root", "the input directory");
        out.push(
            Finding::error(src, "kerblam::bad-path", format!("{what} `{value}` {why}"))
                .at(span, why.clone())
                .help("use the path of a file relative to the input directory (data.paths.input), without `..` above it"),
        );
    };
    path_rule(
        &mut out,
        vec![key("data"), key("paths"), key("input")],
        &m.data.paths.input,
        "data.paths.input",
    );
    path_rule(
        &mut out,
        vec![key("data"), key("paths"), key("output")],
        &m.data.paths.output,
        "data.paths.output",
    );
    path_rule(
        &mut out,
        vec![key("data"), key("paths"), key("intermediate")],
        &m.data.paths.intermediate,
        "data.paths.intermediate",
    );
    // A data dir that is the project root itself would make every project file data: the build
    // context would be empty, and cleaning outputs would delete the project.
    for (name, value) in [
        ("input", &m.data.paths.input),
        ("output", &m.data.paths.output),
        ("intermediate", &m.data.paths.intermediate),
    ] {
        if check_relative(value).is_none() && normalize(value) == "." {
            let path = vec![key("data"), key("paths"), key(name)];
            out.push(
                Finding::error(
                    src,
                    "kerblam::bad-path",
                    format!("data.paths.{name} `{value}` is the project root itself"),
                )
                .at(doc.locate(&path), "the project root")
                .help("use a subdirectory, e.g. \"data/in\", \"data/out\" or \"data\""),
            );
        }
    }
    path_rule(
        &mut out,
        vec![key("code"), key("env_dir")],
        &m.code.env_dir,
        "code.env_dir",
    );
    path_rule(
        &mut out,
        vec![key("code"), key("pipes_dir")],
        &m.code.pipes_dir,
        "code.pipes_dir",
    );
    for (name, files) in &m.data.profiles {
        for (from, to) in files {
            let at = vec![key("data"), key("profiles"), key(name)];
            // The file is a key: underline the key, not the table.
            data_file(&mut out, doc.locate_key(&at, from), from, "profile file");
            if to != "_" {
                let mut p = at.clone();
                p.push(key(from));
                data_file(&mut out, doc.locate(&p), to, "profile target");
            }
        }
    }
    let mut targets: BTreeMap<String, &str> = BTreeMap::new();
    for (url, target) in &m.data.remote {
        let at = vec![key("data"), key("remote")];
        let key_span = doc.locate_key(&at, url);
        if url != "_" {
            match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https" | "ftp" | "file") => {}
                Ok(u) => out.push(
                    Finding::error(src, "kerblam::bad-url", format!("remote URL `{url}` uses the unsupported scheme `{}`", u.scheme()))
                        .at(key_span.clone(), "unsupported scheme")
                        .help("use an http://, https://, ftp:// or file:// URL, or `_` for a file that cannot be fetched"),
                ),
                Err(e) => out.push(
                    Finding::error(src, "kerblam::bad-url", format!("remote URL `{url}` does not parse: {e}"))
                        .at(key_span.clone(), "not a URL")
                        .help("write a full URL such as \"https://example.org/file.csv\", or `_` for a file that cannot be fetched"),
                ),
            }
        }
        let mut p = at.clone();
        p.push(key(url));
        data_file(&mut out, doc.locate(&p), target, "remote target");
        let norm = normalize(target);
        if let Some(first) = targets.insert(norm.clone(), url) {
            out.push(
                Finding::error(
                    src,
                    "kerblam::duplicate-target",
                    format!("`{norm}` is the target of two remote URLs"),
                )
                .at(doc.locate(&p), "second URL for the same file")
                .help(format!(
                    "it is also the target of `{first}`; give each URL its own file"
                )),
            );
        }
    }
    out
}

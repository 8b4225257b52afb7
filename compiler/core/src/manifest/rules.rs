//! The compiler's own rules for a manifest, beyond what the schema can say.

use std::collections::BTreeMap;

use crate::diag::Finding;
use crate::manifest::Manifest;
use crate::paths::{check_relative, normalize};
use crate::toml_doc::{Seg, TomlDoc};

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

/// Check the rules the schema cannot express, locating each finding in `doc`: the directories,
/// then the profiles, then the remote files.
pub fn check(m: &Manifest, doc: &TomlDoc) -> Vec<Finding> {
    let mut out = Vec::new();
    directory_rules(m, doc, &mut out);
    profile_rules(m, doc, &mut out);
    remote_rules(m, doc, &mut out);
    out
}

/// A directory of the manifest is relative to the project root, without `..` above it.
fn path_rule(doc: &TomlDoc, out: &mut Vec<Finding>, path: Vec<Seg>, value: &str, what: &str) {
    if let Some(why) = check_relative(value) {
        out.push(doc.bad_path(
            &path,
            what,
            value,
            why,
            "use a path relative to the directory holding kerblam.toml, without `..` above it",
        ));
    }
}

/// Profile files and remote targets are files of the input directory.
fn data_file_rule(
    doc: &TomlDoc,
    out: &mut Vec<Finding>,
    span: Option<std::ops::Range<usize>>,
    value: &str,
    what: &str,
) {
    let why = match check_relative(value) {
        Some(why) => why,
        None if normalize(value) == "." => "names the input directory itself, not a file in it",
        None => return,
    };
    let why = why.replace("the project root", "the input directory");
    out.push(
        Finding::error(&doc.source, "kerblam::bad-path", format!("{what} `{value}` {why}"))
            .at(span, why.clone())
            .help("use the path of a file relative to the input directory (data.paths.input), without `..` above it"),
    );
}

/// The data directories and the code directories: relative, and no data directory is the
/// project root itself.
fn directory_rules(m: &Manifest, doc: &TomlDoc, out: &mut Vec<Finding>) {
    let data_dirs = [
        ("input", &m.data.paths.input),
        ("output", &m.data.paths.output),
        ("intermediate", &m.data.paths.intermediate),
    ];
    for (name, value) in data_dirs {
        path_rule(
            doc,
            out,
            vec![key("data"), key("paths"), key(name)],
            value,
            &format!("data.paths.{name}"),
        );
    }
    // A data dir that is the project root itself would make every project file data: the build
    // context would be empty, and cleaning outputs would delete the project.
    for (name, value) in data_dirs {
        if check_relative(value).is_none() && normalize(value) == "." {
            let path = vec![key("data"), key("paths"), key(name)];
            out.push(
                Finding::error(
                    &doc.source,
                    "kerblam::bad-path",
                    format!("data.paths.{name} `{value}` is the project root itself"),
                )
                .at(doc.locate(&path), "the project root")
                .help("use a subdirectory, e.g. \"data/in\", \"data/out\" or \"data\""),
            );
        }
    }
    path_rule(
        doc,
        out,
        vec![key("code"), key("env_dir")],
        &m.code.env_dir,
        "code.env_dir",
    );
    path_rule(
        doc,
        out,
        vec![key("code"), key("pipes_dir")],
        &m.code.pipes_dir,
        "code.pipes_dir",
    );
}

/// Each profile swaps files of the input directory.
fn profile_rules(m: &Manifest, doc: &TomlDoc, out: &mut Vec<Finding>) {
    for (name, files) in &m.data.profiles {
        for (from, to) in files {
            let at = vec![key("data"), key("profiles"), key(name)];
            // The file is a key: underline the key, not the table.
            data_file_rule(doc, out, doc.locate_key(&at, from), from, "profile file");
            if to != "_" {
                let mut p = at.clone();
                p.push(key(from));
                data_file_rule(doc, out, doc.locate(&p), to, "profile target");
            }
        }
    }
}

/// Each remote file has a URL of a supported scheme (or `_`) and its own target file.
fn remote_rules(m: &Manifest, doc: &TomlDoc, out: &mut Vec<Finding>) {
    let src = &doc.source;
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
        data_file_rule(doc, out, doc.locate(&p), target, "remote target");
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
}

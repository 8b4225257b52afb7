//! The compiler's own rules for a freeze spec, beyond what the schema can say. Each finding is
//! located in the spec's text.

use std::collections::BTreeSet;

use crate::diag::Finding;
use crate::freeze::spec::FreezeSpec;
use crate::tag::check_tag;
use crate::toml_doc::{Seg, TomlDoc};

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

/// Image label keys kerblam fills itself; a spec may not set them.
pub const RESERVED_LABELS: [&str; 6] = [
    "org.opencontainers.image.title",
    "org.opencontainers.image.version",
    "org.opencontainers.image.authors",
    "org.opencontainers.image.created",
    "org.opencontainers.image.description",
    "org.opencontainers.image.revision",
];

/// Why `s` is not acceptable as a name part made of `allowed` punctuation, if it is not.
fn check_word(s: &str, allowed: &str) -> Option<String> {
    if s.is_empty() {
        return Some("is empty".into());
    }
    s.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || allowed.contains(*c)))
        .map(|c| format!("contains {c:?}"))
}

/// Why an absolute host path is not acceptable, if it is not.
fn check_absolute(p: &str) -> Option<&'static str> {
    if p.is_empty() {
        Some("is empty")
    } else if !p.starts_with('/') {
        Some("is not absolute")
    } else if p.contains('\0') || p.contains('\n') {
        Some("contains a NUL byte or a newline")
    } else if p.split('/').any(|s| s == "..") {
        Some("contains `..`")
    } else {
        None
    }
}

/// Whether an environment pattern is made of variable-name characters and `*`/`?`.
fn check_env_pattern(p: &str) -> bool {
    !p.is_empty()
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '*' | '?'))
}

/// Whether `name` is a shell variable name.
pub fn is_var_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Check the rules the schema cannot express, locating each finding in `doc`. The findings come
/// in the order of the spec: the image, the EESSI stack, the modules, the trees, the environment.
pub fn check(s: &FreezeSpec, doc: &TomlDoc) -> Vec<Finding> {
    let mut out = Vec::new();
    image_rules(s, doc, &mut out);
    eessi_rules(s, doc, &mut out);
    module_rules(s, doc, &mut out);
    tree_rules(s, doc, &mut out);
    env_rules(s, doc, &mut out);
    out
}

/// An error at `path` in the spec, its span labelled `label`.
fn err(doc: &TomlDoc, code: &'static str, msg: String, path: &[Seg], label: &str) -> Finding {
    Finding::error(&doc.source, code, msg).at(doc.locate(path), label.to_string())
}

/// A host path of the spec must be absolute, with no `..`.
fn absolute_rule(doc: &TomlDoc, out: &mut Vec<Finding>, path: Vec<Seg>, value: &str, what: &str) {
    if let Some(why) = check_absolute(value) {
        out.push(doc.bad_path(
            &path,
            what,
            value,
            why,
            "frozen trees are named by absolute host paths, which are also their paths in the image",
        ));
    }
}

/// The image: author, name, version suffix, destination, base and labels.
fn image_rules(s: &FreezeSpec, doc: &TomlDoc, out: &mut Vec<Finding>) {
    if s.author.trim().is_empty() {
        out.push(
            err(
                doc,
                "kerblam::freeze-author",
                "`author` is empty; the author is mandatory".into(),
                &[key("author")],
                "empty author",
            )
            .help("write who made the freeze, e.g. author = \"Jane Doe <jane@example.org>\" (or pass -a/--author)"),
        );
    }
    if let Some(n) = &s.name
        && let Some(why) = check_word(n, "._+-")
    {
        out.push(
            err(
                doc,
                "kerblam::freeze-name",
                format!("`name` {n:?} {why}"),
                &[key("name")],
                "not a valid image name",
            )
            .help("use letters, digits, `.`, `_`, `+` and `-` (module names use `_` for `/`)"),
        );
    }
    if let Some(v) = &s.version
        && let Some(why) = check_word(v, "._-")
    {
        out.push(
            err(
                doc,
                "kerblam::freeze-version",
                format!("`version` suffix {v:?} {why}"),
                &[key("version")],
                "not a valid version suffix",
            )
            .help("use letters, digits, `.`, `_` and `-`; the ISO date is always prepended"),
        );
    }
    if let Some(d) = &s.destination
        && d.trim().is_empty()
    {
        out.push(err(
            doc,
            "kerblam::bad-path",
            "`destination` is empty".into(),
            &[key("destination")],
            "empty path",
        ));
    }
    if s.base != "scratch"
        && let Err(why) = check_tag(&s.base)
    {
        out.push(
            err(
                doc,
                "kerblam::freeze-base",
                format!("`base` {:?}: {why}", s.base),
                &[key("base")],
                "not an image reference",
            )
            .help("use an image reference such as \"debian:12\", or \"scratch\""),
        );
    }
    for k in s.labels.keys() {
        if k.starts_with("dev.kerblam.") || RESERVED_LABELS.contains(&k.as_str()) {
            out.push(
                Finding::error(
                    &doc.source,
                    "kerblam::freeze-label",
                    format!("label `{k}` is set by kerblam itself"),
                )
                .at(doc.locate_key(&[key("labels")], k), "reserved label")
                .help("choose another key; kerblam fills the author, version, creation date, modules and CPU target"),
            );
        }
    }
}

/// The EESSI stack: absolute paths, single-component names, a software subdir of the CPU family.
fn eessi_rules(s: &FreezeSpec, doc: &TomlDoc, out: &mut Vec<Finding>) {
    let e = &s.eessi;
    absolute_rule(
        doc,
        out,
        vec![key("eessi"), key("prefix")],
        &e.prefix,
        "eessi.prefix",
    );
    for (i, m) in e.module_path.iter().enumerate() {
        absolute_rule(
            doc,
            out,
            vec![key("eessi"), key("module_path"), Seg::Index(i)],
            m,
            "module path",
        );
    }
    if let Some(rc) = &e.lmod_rc {
        absolute_rule(
            doc,
            out,
            vec![key("eessi"), key("lmod_rc")],
            rc,
            "eessi.lmod_rc",
        );
    }
    for (label, value) in [("os_type", &e.os_type), ("cpu_family", &e.cpu_family)] {
        if let Some(why) = check_word(value, "._-") {
            out.push(err(
                doc,
                "kerblam::freeze-eessi",
                format!("eessi.{label} {value:?} {why}"),
                &[key("eessi"), key(label)],
                "not a single path component",
            ));
        }
    }
    let subdir_ok = e.software_subdir == e.cpu_family
        || e.software_subdir.starts_with(&format!("{}/", e.cpu_family));
    if !subdir_ok
        || e.software_subdir
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
    {
        out.push(
            err(
                doc,
                "kerblam::freeze-eessi",
                format!(
                    "eessi.software_subdir `{}` is not a subdir of the CPU family `{}`",
                    e.software_subdir, e.cpu_family
                ),
                &[key("eessi"), key("software_subdir")],
                "does not start with the CPU family",
            )
            .help(format!(
                "EESSI subdirs look like `{}/intel/haswell` or `{}/generic`",
                e.cpu_family, e.cpu_family
            )),
        );
    }
}

/// The modules: at least one, each a module name, listed once, with an absolute root.
fn module_rules(s: &FreezeSpec, doc: &TomlDoc, out: &mut Vec<Finding>) {
    if s.modules.is_empty() {
        out.push(
            err(
                doc,
                "kerblam::freeze-modules",
                "no module is listed; a freeze needs at least one loaded module".into(),
                &[key("modules")],
                "empty",
            )
            .help("add [[modules]] tables in load order, or make the spec with `kerblam freeze --from-env` after `module load`"),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, m) in s.modules.iter().enumerate() {
        let at = vec![key("modules"), Seg::Index(i)];
        if m.name.trim().is_empty() || m.name.contains(['\n', '\0', ' ', ':']) {
            let mut p = at.clone();
            p.push(key("name"));
            out.push(err(
                doc,
                "kerblam::freeze-modules",
                format!("module name {:?} is not a module name", m.name),
                &p,
                "empty, or holds a space, a colon or a newline",
            ));
        } else if !seen.insert(m.name.as_str()) {
            let mut p = at.clone();
            p.push(key("name"));
            out.push(err(
                doc,
                "kerblam::freeze-modules",
                format!("module `{}` is listed twice", m.name),
                &p,
                "listed again",
            ));
        }
        if let Some(root) = &m.root {
            let mut p = at.clone();
            p.push(key("root"));
            absolute_rule(
                doc,
                out,
                p,
                root,
                &format!("the root of module `{}`", m.name),
            );
        }
    }
}

/// The trees: absolute extra paths and gitignore exclude patterns.
fn tree_rules(s: &FreezeSpec, doc: &TomlDoc, out: &mut Vec<Finding>) {
    for (i, p) in s.extra_paths.iter().enumerate() {
        absolute_rule(
            doc,
            out,
            vec![key("extra_paths"), Seg::Index(i)],
            p,
            "extra path",
        );
    }
    for (i, pat) in s.exclude.iter().enumerate() {
        let mut b = ignore::gitignore::GitignoreBuilder::new("/");
        let bad = pat.trim().is_empty() || b.add_line(None, pat).is_err() || b.build().is_err();
        if bad {
            out.push(
                err(
                    doc,
                    "kerblam::freeze-exclude",
                    format!("exclude pattern {pat:?} is not a gitignore pattern"),
                    &[key("exclude"), Seg::Index(i)],
                    "invalid pattern",
                )
                .help("patterns use gitignore syntax relative to each tree, e.g. \"var/cache\" or \"*.log\""),
            );
        }
    }
}

/// The environment: variable-name patterns and variable names.
fn env_rules(s: &FreezeSpec, doc: &TomlDoc, out: &mut Vec<Finding>) {
    for (list, pats) in [("include", &s.env.include), ("exclude", &s.env.exclude)] {
        for (i, pat) in pats.iter().enumerate() {
            if !check_env_pattern(pat) {
                out.push(
                    err(
                        doc,
                        "kerblam::freeze-env",
                        format!("env.{list} pattern {pat:?} is not a variable name pattern"),
                        &[key("env"), key(list), Seg::Index(i)],
                        "letters, digits, `_`, `*` and `?` only",
                    )
                    .help("e.g. \"EBROOT*\" or \"LMOD_RC\""),
                );
            }
        }
    }
    for (table, vars) in [("captured", &s.env.captured), ("set", &s.env.set)] {
        for name in vars.keys() {
            if !is_var_name(name) {
                out.push(
                    Finding::error(
                        &doc.source,
                        "kerblam::freeze-env",
                        format!("env.{table}: `{name}` is not a variable name"),
                    )
                    .at(
                        doc.locate_key(&[key("env"), key(table)], name),
                        "letters, digits and `_`, not starting with a digit",
                    ),
                );
            }
        }
    }
}

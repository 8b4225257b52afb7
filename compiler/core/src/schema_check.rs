//! Checking a TOML document against the JSON Schema generated from its Rust type.
//!
//! The schema is the single source of truth for which keys exist and what types they take: the
//! committed schemas under `schemas/`, editor validation and the compiler all agree by construction.
//! Every schema error is mapped back to the TOML text, and unknown keys get a "did you mean".

use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::diag::{Finding, SourceFile};
use crate::toml_doc::{Seg, TomlDoc};

/// How unknown keys are treated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Report unknown keys as warnings and ignore them (for manifests written for newer versions).
    pub allow_unknown: bool,
}

/// The outcome of checking a document: the typed value when there were no errors, and every finding.
pub struct Checked<T> {
    /// The typed value, when no finding is an error.
    pub value: Option<T>,
    /// Errors and warnings, in document order.
    pub findings: Vec<Finding>,
    /// The parsed document, for further located checks.
    pub doc: Option<TomlDoc>,
    /// A best-effort value even when there were errors: unknown keys and every value the schema
    /// rejected are left out (so their defaults apply). Lets further rules report their own findings
    /// in the same run instead of one class of problem at a time. `None` after a syntax error.
    pub partial: Option<T>,
}

/// The JSON Schema of `T` as a JSON value.
pub fn schema_value<T: JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(T)).expect("a schema serializes")
}

/// Parse `source` as TOML and check it against `T`'s schema, then deserialize it.
pub fn check_toml<T: DeserializeOwned + JsonSchema>(
    source: SourceFile,
    opts: CheckOptions,
) -> Checked<T> {
    let doc = match TomlDoc::parse(source) {
        Ok(doc) => doc,
        Err(finding) => {
            return Checked {
                value: None,
                findings: vec![finding],
                doc: None,
                partial: None,
            };
        }
    };
    let schema = schema_value::<T>();
    let mut json = doc.to_json();
    // Kerblam! 1.x and editors read TOML 1.0: what only TOML 1.1 allows is an error here too.
    let mut findings = crate::toml_dialect::toml_1_1_syntax(&doc.source);
    let (unknown, mut rejected) = schema_findings(&doc, &schema, &json, &mut findings);
    for (path, key) in &unknown {
        let finding = unknown_key(&doc, &schema, path, key);
        if opts.allow_unknown {
            findings.push(
                finding
                    .warning()
                    .help_suffix("ignored because of --allow-unknown"),
            );
            remove_key(&mut json, path, key);
        } else {
            findings.push(finding);
        }
    }
    lossy_value_findings(&doc, &mut findings, &mut rejected);
    let partial = partial_value::<T>(&json, &unknown, &rejected);
    findings.sort_by_key(|f| f.span.as_ref().map_or(0, |s| s.start));
    let has_error = findings
        .iter()
        .any(|f| f.level == crate::diag::Level::Error);
    let value = if has_error {
        None
    } else {
        match serde_json::from_value::<T>(json) {
            Ok(v) => Some(v),
            Err(e) => {
                findings.push(Finding::error(
                    &doc.source,
                    "kerblam::schema",
                    e.to_string(),
                ));
                None
            }
        }
    };
    Checked {
        value,
        findings,
        doc: Some(doc),
        partial,
    }
}

/// An unknown key: `(path of its table, key)`.
type UnknownKey = (Vec<Seg>, String);

/// Validates `json` against `schema`: a finding for each missing key and rejected value (pushed to
/// `findings`), and the unknown keys and the paths of the rejected values, returned. Errors the
/// compiler's own rules report better are left to them.
fn schema_findings(
    doc: &TomlDoc,
    schema: &Value,
    json: &Value,
    findings: &mut Vec<Finding>,
) -> (Vec<UnknownKey>, Vec<Vec<Seg>>) {
    let mut unknown: Vec<UnknownKey> = Vec::new();
    let mut rejected: Vec<Vec<Seg>> = Vec::new();
    let validator = jsonschema::validator_for(schema).expect("generated schemas are valid");
    for err in validator.iter_errors(json) {
        let pattern = match err.kind() {
            ValidationErrorKind::Pattern { pattern } => Some(pattern.as_str()),
            _ => None,
        };
        if crate::schema_patterns::left_to_rules(err.kind().keyword(), pattern) {
            continue;
        }
        let path: Vec<Seg> = err
            .instance_path()
            .segments()
            .map(|s| match s {
                LocationSegment::Property(p) => Seg::Key(p.to_string()),
                LocationSegment::Index(i) => Seg::Index(i),
            })
            .collect();
        match err.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for key in unexpected {
                    unknown.push((path.clone(), key.clone()));
                }
            }
            ValidationErrorKind::Required { property } => {
                findings.push(missing_key(doc, schema, &path, property));
            }
            _ => {
                findings.push(rejected_value(doc, schema, &path, &err));
                rejected.push(path);
            }
        }
    }
    (unknown, rejected)
}

/// A value the schema rejects at `path`, with the field's description as help.
fn rejected_value(
    doc: &TomlDoc,
    schema: &Value,
    path: &[Seg],
    err: &jsonschema::ValidationError<'_>,
) -> Finding {
    let kind = err.kind();
    let span = doc.locate(path);
    let where_ = dotted(path);
    let message = if where_.is_empty() {
        err.to_string()
    } else {
        format!("`{where_}`: {err}")
    };
    let expected = describe_expected(schema, path);
    // For a wrong type, say what was found in TOML's words rather than JSON's
    // (`2 is not of types "null", "string"` becomes `expected a string, found an
    // integer`).
    let message = match kind {
        ValidationErrorKind::Type { .. } if expected.starts_with("expected") => {
            let found = format!("{expected}, found {}", toml_kind(err.instance()));
            if where_.is_empty() {
                found
            } else {
                format!("`{where_}`: {found}")
            }
        }
        _ => message,
    };
    let label = match kind {
        ValidationErrorKind::Type { .. } => expected,
        ValidationErrorKind::Pattern { pattern } => {
            format!("does not match `{pattern}`")
        }
        ValidationErrorKind::Enum { .. } => "not one of the allowed values".into(),
        _ => "invalid value".into(),
    };
    let mut finding = Finding::error(&doc.source, "kerblam::schema", message).at(span, label);
    if let Some(d) = description_at(schema, path) {
        finding = finding.help(d);
    }
    finding
}

/// An unknown key, with a "did you mean" or the list of the keys known there.
fn unknown_key(doc: &TomlDoc, schema: &Value, path: &[Seg], key: &str) -> Finding {
    let span = doc.locate_key(path, key);
    let table = dotted(path);
    let known = known_keys(schema, path);
    let finding = Finding::error(
        &doc.source,
        "kerblam::unknown-key",
        if table.is_empty() {
            format!("unknown key `{key}`")
        } else {
            format!("unknown key `{key}` in `[{table}]`")
        },
    )
    .at(span, "not a known key");
    match did_you_mean(key, &known) {
        Some(best) => finding.help(format!("did you mean `{best}`?")),
        None if !known.is_empty() => finding.help(format!("known keys here: {}", known.join(", "))),
        None => finding,
    }
}

/// No field of a manifest or a freeze spec is a datetime or a non-finite float; JSON made
/// strings of them, which the schema took. Report them instead, located, and drop the
/// schema's complaint about the same value (it saw a string). Kerblam! 1.x refuses them too.
fn lossy_value_findings(doc: &TomlDoc, findings: &mut Vec<Finding>, rejected: &mut Vec<Vec<Seg>>) {
    for lossy in doc.lossy_values() {
        findings.retain(|f| !(f.code == "kerblam::schema" && f.span == lossy.span));
        findings.push(
            Finding::error(
                &doc.source,
                "kerblam::schema",
                format!(
                    "`{}`: {} is not accepted here",
                    dotted(&lossy.path),
                    lossy.what
                ),
            )
            .at(lossy.span, "expected a string")
            .help("quote the value to make it a string"),
        );
        rejected.push(lossy.path);
    }
}

/// The best-effort value: `json` without the unknown keys and the rejected values, so their
/// defaults apply; `None` when even that does not deserialize.
fn partial_value<T: DeserializeOwned>(
    json: &Value,
    unknown: &[UnknownKey],
    rejected: &[Vec<Seg>],
) -> Option<T> {
    let mut best = json.clone();
    for (path, key) in unknown {
        remove_key(&mut best, path, key);
    }
    for path in rejected {
        if let Some((last, parent)) = path.split_last() {
            match last {
                Seg::Key(k) => remove_key(&mut best, parent, k),
                // An array element cannot be left out without shifting the others; the typed
                // value is then only available if the array as a whole deserializes.
                Seg::Index(_) => {}
            }
        }
    }
    serde_json::from_value::<T>(best).ok()
}

/// A required key missing from the table at `path`: located at the table (its header, or the
/// document's first line for the top level), with the key's own description as help.
fn missing_key(doc: &TomlDoc, schema: &Value, path: &[Seg], property: &Value) -> Finding {
    let key = property.as_str().unwrap_or_default();
    let table = dotted(path);
    let (message, span, label) = if table.is_empty() {
        let first = doc.source.text.lines().next().map_or(0, str::len);
        (
            format!("missing required key `{key}`"),
            Some(0..first),
            format!("`{key}` is missing from the top-level table"),
        )
    } else {
        (
            format!("missing required key `{key}` in `[{table}]`"),
            doc.locate(path),
            format!("`{key}` is missing from this table"),
        )
    };
    let mut finding = Finding::error(&doc.source, "kerblam::schema", message).at(span, label);
    let mut at_key = path.to_vec();
    at_key.push(Seg::Key(key.to_string()));
    if let Some(d) = description_at(schema, &at_key) {
        finding = finding.help(d);
    }
    finding
}

trait HelpSuffix {
    fn help_suffix(self, extra: &str) -> Self;
}

impl HelpSuffix for Finding {
    fn help_suffix(mut self, extra: &str) -> Self {
        self.help = Some(match self.help.take() {
            Some(h) => format!("{h} ({extra})"),
            None => extra.to_string(),
        });
        self
    }
}

/// `a.b[2].c` for a path.
pub fn dotted(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                if k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    out.push_str(k);
                } else {
                    out.push_str(&format!("{k:?}"));
                }
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn remove_key(json: &mut Value, path: &[Seg], key: &str) {
    let mut cur = json;
    for seg in path {
        cur = match (seg, cur) {
            (Seg::Key(k), Value::Object(m)) => match m.get_mut(k) {
                Some(v) => v,
                None => return,
            },
            (Seg::Index(i), Value::Array(a)) => match a.get_mut(*i) {
                Some(v) => v,
                None => return,
            },
            _ => return,
        };
    }
    if let Value::Object(m) = cur {
        m.remove(key);
    }
}

/// Follow `$ref`s to the sub-schema that applies at `path`.
fn schema_at<'a>(root: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    let mut cur = resolve(root, root);
    for seg in path {
        cur = match seg {
            Seg::Key(k) => cur
                .get("properties")
                .and_then(|p| p.get(k))
                .or_else(|| cur.get("additionalProperties").filter(|a| a.is_object()))?,
            Seg::Index(_) => cur.get("items")?,
        };
        cur = resolve(root, cur);
    }
    Some(cur)
}

fn resolve<'a>(root: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(r) = schema.get("$ref").and_then(Value::as_str) else {
            break;
        };
        let Some(ptr) = r.strip_prefix('#') else {
            break;
        };
        match root.pointer(ptr) {
            Some(next) => schema = next,
            None => break,
        }
    }
    schema
}

/// The `description` of the property at `path` (looked up on the property itself, then on what it
/// refers to).
fn description_at(root: &Value, path: &[Seg]) -> Option<String> {
    let (last, parent) = path.split_last()?;
    let parent = schema_at(root, parent)?;
    let prop = match last {
        Seg::Key(k) => parent
            .get("properties")
            .and_then(|p| p.get(k))
            .or_else(|| parent.get("additionalProperties").filter(|a| a.is_object()))?,
        Seg::Index(_) => parent.get("items")?,
    };
    prop.get("description")
        .or_else(|| resolve(root, prop).get("description"))
        .and_then(Value::as_str)
        .map(|d| d.replace('\n', " "))
}

fn known_keys(root: &Value, path: &[Seg]) -> Vec<String> {
    schema_at(root, path)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn describe_expected(root: &Value, path: &[Seg]) -> String {
    match schema_at(root, path).and_then(|s| s.get("type")) {
        Some(Value::String(t)) => format!("expected {}", article(t)),
        Some(Value::Array(ts)) => {
            let names: Vec<_> = ts
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect();
            format!(
                "expected {}",
                names
                    .iter()
                    .map(|t| article(t))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )
        }
        _ => "invalid value".into(),
    }
}

/// What a TOML value is, for messages (the JSON twin of a TOML document has no nulls).
fn toml_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_object) => "an array of tables",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

fn article(t: &str) -> String {
    match t {
        "object" => "a table".into(),
        "array" => "an array".into(),
        "integer" => "an integer".into(),
        other => format!("a {other}"),
    }
}

/// The known key closest to `key`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(key: &str, known: &'a [String]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| {
            (
                strsim::jaro_winkler(&key.to_lowercase(), &k.to_lowercase()),
                k,
            )
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.as_str())
}

//! A parsed TOML document that remembers where every key and value is, and its JSON twin.
//!
//! Validation runs the JSON Schema over the JSON twin; each error's instance path is mapped back to a
//! span of the TOML text with [`TomlDoc::locate`].

use std::ops::Range;

use serde_json::{Map, Number, Value};
use toml_edit::{Document, Item, Table, TableLike};

use crate::diag::{Finding, SourceFile};

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A key of a table.
    Key(String),
    /// An index of an array.
    Index(usize),
}

/// A parsed TOML file.
pub struct TomlDoc {
    /// The file and its text.
    pub source: SourceFile,
    doc: Document<String>,
}

impl TomlDoc {
    /// A `kerblam::bad-path` finding at `path`: "WHAT `VALUE` WHY", labelled WHY, with `help`.
    pub fn bad_path(
        &self,
        path: &[Seg],
        what: &str,
        value: &str,
        why: &str,
        help: &str,
    ) -> Finding {
        Finding::error(
            &self.source,
            "kerblam::bad-path",
            format!("{what} `{value}` {why}"),
        )
        .at(self.locate(path), why.to_string())
        .help(help.to_string())
    }

    /// Parse `source`; a syntax error becomes a located finding.
    #[allow(clippy::result_large_err)] // the error is the finding itself, rendered once
    pub fn parse(source: SourceFile) -> Result<Self, Finding> {
        match Document::parse(source.text.to_string()) {
            Ok(doc) => Ok(TomlDoc { source, doc }),
            Err(err) => {
                let span = err.span().map(|s| widen(&source.text, s));
                let message = err.message().trim().to_string();
                Err(Finding::error(
                    &source,
                    "kerblam::toml-syntax",
                    format!("invalid TOML: {message}"),
                )
                .at(span, message))
            }
        }
    }

    /// The document as JSON (datetimes become strings; non-finite floats become strings).
    pub fn to_json(&self) -> Value {
        item_to_json(self.doc.as_item()).unwrap_or(Value::Object(Map::new()))
    }

    /// The span of the value at `path` (or, for a table, of its header or first key).
    pub fn locate(&self, path: &[Seg]) -> Option<Range<usize>> {
        let mut node = Node::Item(self.doc.as_item());
        let mut span = None;
        for seg in path {
            let (next, key_span) = node.child(seg)?;
            span = next.span().or(key_span).or(span);
            node = next;
        }
        span
    }

    /// The span of the key named `key` in the table at `path`.
    pub fn locate_key(&self, path: &[Seg], key: &str) -> Option<Range<usize>> {
        let mut node = Node::Item(self.doc.as_item());
        for seg in path {
            node = node.child(seg)?.0;
        }
        let (k, v) = node.table_like()?.get_key_value(key)?;
        k.span().or_else(|| v.span())
    }
}

/// A TOML value that JSON cannot represent, which [`TomlDoc::to_json`] turned into a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LossyValue {
    /// Where it is.
    pub path: Vec<Seg>,
    /// Its span.
    pub span: Option<Range<usize>>,
    /// What it is: "a TOML datetime" or "a non-finite float".
    pub what: &'static str,
}

impl TomlDoc {
    /// Every value JSON has no type for: datetimes and `nan`/`inf` floats, with their paths and
    /// spans. [`TomlDoc::to_json`] turns them into strings; callers whose schema has no such field use
    /// this to reject them (they are not strings to Kerblam! 1.x either).
    pub fn lossy_values(&self) -> Vec<LossyValue> {
        let mut out = Vec::new();
        collect_lossy(Node::Item(self.doc.as_item()), &mut Vec::new(), &mut out);
        out
    }
}

fn collect_lossy(node: Node<'_>, path: &mut Vec<Seg>, out: &mut Vec<LossyValue>) {
    let value = match node {
        Node::Item(Item::Value(v)) | Node::Value(v) => Some(v),
        _ => None,
    };
    let mut push = |span, what| {
        out.push(LossyValue {
            path: path.clone(),
            span,
            what,
        })
    };
    match value {
        Some(toml_edit::Value::Datetime(d)) => push(d.span(), "a TOML datetime"),
        Some(toml_edit::Value::Float(f)) if !f.value().is_finite() => {
            push(f.span(), "a non-finite float")
        }
        Some(toml_edit::Value::Array(a)) => {
            for (i, v) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                collect_lossy(Node::Value(v), path, out);
                path.pop();
            }
        }
        Some(toml_edit::Value::InlineTable(_)) | None => {
            if let Node::Item(Item::ArrayOfTables(a)) = node {
                for (i, t) in a.iter().enumerate() {
                    path.push(Seg::Index(i));
                    collect_lossy(Node::Table(t), path, out);
                    path.pop();
                }
            } else if let Some(t) = node.table_like() {
                for (k, item) in t.iter() {
                    path.push(Seg::Key(k.to_string()));
                    collect_lossy(Node::Item(item), path, out);
                    path.pop();
                }
            }
        }
        Some(_) => {}
    }
}

/// A position while walking a document.
#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Table(&'a Table),
    Value(&'a toml_edit::Value),
}

impl<'a> Node<'a> {
    fn table_like(self) -> Option<&'a dyn TableLike> {
        match self {
            Node::Item(i) => i.as_table_like(),
            Node::Table(t) => Some(t),
            Node::Value(v) => v.as_inline_table().map(|t| t as &dyn TableLike),
        }
    }

    fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Item(i) => i.span(),
            Node::Table(t) => t.span(),
            Node::Value(v) => v.span(),
        }
    }

    fn child(self, seg: &Seg) -> Option<(Node<'a>, Option<Range<usize>>)> {
        match seg {
            Seg::Key(k) => {
                let (key, item) = self.table_like()?.get_key_value(k)?;
                Some((Node::Item(item), key.span()))
            }
            Seg::Index(i) => match self {
                Node::Item(Item::ArrayOfTables(a)) => a.get(*i).map(|t| (Node::Table(t), None)),
                Node::Item(Item::Value(v)) | Node::Value(v) => {
                    v.as_array()?.get(*i).map(|v| (Node::Value(v), None))
                }
                _ => None,
            },
        }
    }
}

fn widen(text: &str, span: Range<usize>) -> Range<usize> {
    let visible_end = text.trim_end().len();
    if span.is_empty() && span.start >= text.len() && visible_end > 0 {
        // At the end of the file (e.g. an unclosed `[table` on the last line): an empty span there
        // has nothing to underline, so point at the last visible character instead.
        let mut start = visible_end - 1;
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        return start..visible_end;
    }
    if span.is_empty() && span.end < text.len() {
        let mut end = span.end + 1;
        while end < text.len() && !text.is_char_boundary(end) {
            end += 1;
        }
        span.start..end
    } else {
        span
    }
}

fn item_to_json(item: &Item) -> Option<Value> {
    match item {
        Item::None => None,
        Item::Value(v) => Some(value_to_json(v)),
        Item::Table(t) => Some(table_to_json(t)),
        Item::ArrayOfTables(a) => Some(Value::Array(a.iter().map(|t| table_to_json(t)).collect())),
    }
}

fn table_to_json(t: &dyn TableLike) -> Value {
    let mut map = Map::new();
    for (k, v) in t.iter() {
        if let Some(j) = item_to_json(v) {
            map.insert(k.to_string(), j);
        }
    }
    Value::Object(map)
}

fn value_to_json(v: &toml_edit::Value) -> Value {
    use toml_edit::Value as TomlValue;
    match v {
        TomlValue::String(s) => Value::String(s.value().clone()),
        TomlValue::Integer(i) => Value::Number((*i.value()).into()),
        TomlValue::Float(f) => Number::from_f64(*f.value())
            .map_or_else(|| Value::String(f.value().to_string()), Value::Number),
        TomlValue::Boolean(b) => Value::Bool(*b.value()),
        TomlValue::Datetime(d) => Value::String(d.value().to_string()),
        TomlValue::Array(a) => Value::Array(a.iter().map(value_to_json).collect()),
        TomlValue::InlineTable(t) => table_to_json(t),
    }
}

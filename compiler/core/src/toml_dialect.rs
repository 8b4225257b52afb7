//! The TOML dialect of kerblam's files: TOML 1.0, as Kerblam! 1.x and editors read it.
//!
//! kerblam parses with toml_edit, which reads TOML 1.1. Kerblam! 1.x (the `toml` 0.8 crate), taplo
//! (the engine of the Even Better TOML editor extension) and most TOML readers read TOML 1.0, so a
//! file that uses what 1.1 added would pass `kerblam validate` and be refused everywhere else,
//! including by the Kerblam! 1.x that replays a `--format kerblam-v1` archive. TOML 1.1 added
//! exactly four things, and toml_edit has no switch to turn them off, so [`toml_1_1_syntax`] finds
//! each of them in a document toml_edit has already accepted:
//!
//! - the escapes `\e` and `\xHH` in basic strings (values and quoted keys);
//! - inline tables over several lines (a newline or a comment between `{` and `}`);
//! - a trailing comma before an inline table's `}`;
//! - times without seconds (`07:32`, `1979-05-27T07:32Z`).

use std::ops::Range;

use toml_parser::decoder::Encoding;
use toml_parser::parser::{Event, EventKind, parse_document};

use crate::diag::{Finding, SourceFile};

/// The code of every finding about TOML 1.1 syntax.
pub const CODE: &str = "kerblam::toml-1.1";

/// Every TOML 1.1 construct of `source`, a document toml_edit has parsed, as located errors.
pub fn toml_1_1_syntax(source: &SourceFile) -> Vec<Finding> {
    let text: &str = &source.text;
    let tokens: Vec<_> = toml_parser::Source::new(text).lex().collect();
    let mut events: Vec<Event> = Vec::new();
    parse_document(&tokens, &mut |e: Event| events.push(e), &mut ());

    let mut found: Vec<Toml11> = Vec::new();
    // The open arrays and inline tables, innermost last.
    let mut open: Vec<Open> = Vec::new();
    for e in &events {
        let span = e.span().start()..e.span().end();
        let raw = &text[span.clone()];
        if let Some(Open::Table(t)) = open.last_mut() {
            match e.kind() {
                EventKind::Newline | EventKind::Comment => t.multi_line = true,
                EventKind::ValueSep => t.comma = Some(span.clone()),
                EventKind::Whitespace | EventKind::InlineTableClose => {}
                _ => t.comma = None,
            }
        }
        match e.kind() {
            EventKind::InlineTableOpen => open.push(Open::Table(InlineTable {
                open: span,
                multi_line: false,
                comma: None,
            })),
            EventKind::ArrayOpen => open.push(Open::Array),
            EventKind::ArrayClose => {
                open.pop();
            }
            EventKind::InlineTableClose => {
                if let Some(Open::Table(t)) = open.pop() {
                    found.extend(inline_table_syntax(t));
                }
            }
            EventKind::Scalar | EventKind::SimpleKey => match e.encoding() {
                Some(Encoding::BasicString | Encoding::MlBasicString) => {
                    found.extend(new_escape_syntax(raw, &span));
                }
                None if e.kind() == EventKind::Scalar => {
                    found.extend(time_syntax(raw, span));
                }
                _ => {}
            },
            _ => {}
        }
    }
    found
        .into_iter()
        .map(|f| {
            Finding::error(
                source,
                CODE,
                format!(
                    "TOML 1.1 syntax; Kerblam! 1.x and editors read TOML 1.0: {}",
                    f.what
                ),
            )
            .at(Some(f.span), f.label)
            .help(f.help)
        })
        .collect()
}

/// One TOML 1.1 construct: where, what it is, the label of its span and how to write it in 1.0.
struct Toml11 {
    span: Range<usize>,
    what: String,
    label: &'static str,
    help: String,
}

/// A closed inline table over several lines, or with a trailing comma.
fn inline_table_syntax(t: InlineTable) -> Option<Toml11> {
    match (t.multi_line, t.comma) {
        (true, comma) => Some(Toml11 {
            span: t.open,
            what: "an inline table over several lines".into(),
            label: "this inline table goes on over several lines",
            help: format!(
                "write it on one line{}, e.g. `{{ a = 1, b = 2 }}`, or make it a [table] section",
                if comma.is_some() {
                    " without the comma before `}`"
                } else {
                    ""
                }
            ),
        }),
        (false, Some(comma)) => Some(Toml11 {
            span: comma,
            what: "a trailing comma in an inline table".into(),
            label: "trailing comma",
            help: "remove the comma before `}`".into(),
        }),
        (false, None) => None,
    }
}

/// The escapes `\e` and `\xHH` of a basic string (`raw`, at `span`).
fn new_escape_syntax(raw: &str, span: &Range<usize>) -> Vec<Toml11> {
    new_escapes(raw)
        .into_iter()
        .map(|(at, esc)| {
            let instead = if esc == "\\e" {
                "\\u001B".to_string()
            } else {
                format!("\\u00{}", esc[2..].to_ascii_uppercase())
            };
            Toml11 {
                span: span.start + at..span.start + at + esc.len(),
                what: format!("the escape `{esc}`"),
                label: "TOML 1.1 escape",
                help: format!("write `{instead}` instead"),
            }
        })
        .collect()
}

/// A time without seconds (`07:32`).
fn time_syntax(raw: &str, span: Range<usize>) -> Option<Toml11> {
    let minutes_end = time_without_seconds(raw)?;
    let fixed = format!("{}:00{}", &raw[..minutes_end], &raw[minutes_end..]);
    Some(Toml11 {
        span,
        what: format!("a time without seconds (`{raw}`)"),
        label: "no seconds",
        help: format!("write `{fixed}`"),
    })
}

enum Open {
    Array,
    Table(InlineTable),
}

struct InlineTable {
    /// The `{`.
    open: Range<usize>,
    /// A newline or a comment was seen between the braces (not inside a nested value).
    multi_line: bool,
    /// The last comma, while nothing but whitespace, newlines and comments followed it.
    comma: Option<Range<usize>>,
}

/// The `\e` and `\xHH` escapes of a basic string's raw text (quotes included), with their offsets.
fn new_escapes(raw: &str) -> Vec<(usize, &str)> {
    let bytes = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'e') => out.push((i, &raw[i..i + 2])),
            Some(b'x') => {
                let end = (i + 4).min(bytes.len());
                let end = (i + 2..=end)
                    .rev()
                    .find(|e| raw.is_char_boundary(*e))
                    .unwrap_or(i + 2);
                out.push((i, &raw[i..end]));
            }
            _ => {}
        }
        // Every escape is a backslash and at least one more character (`\\` included).
        i += 2;
    }
    out
}

/// For the raw text of a bare value: when it is a time or a date-time whose time has no seconds,
/// the offset just after its minutes.
fn time_without_seconds(raw: &str) -> Option<usize> {
    // Only times hold a colon in a bare value, and their first colon separates hours and minutes.
    let colon = raw.find(':')?;
    let minutes_end = colon + 3;
    let rest = raw.as_bytes().get(minutes_end..)?;
    (rest.first() != Some(&b':')).then_some(minutes_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(String, String)> {
        let source = SourceFile::new("k.toml", text);
        assert!(
            text.parse::<toml_edit::DocumentMut>().is_ok(),
            "toml_edit refuses {text:?}"
        );
        toml_1_1_syntax(&source)
            .into_iter()
            .map(|f| {
                let span = f.span.clone().unwrap();
                (text[span].to_string(), f.message)
            })
            .collect()
    }

    #[test]
    fn the_new_escapes_are_found_in_values_and_keys() {
        let f = found("a = \"x\\ey\"\n\"k\\x41\" = '\\e'\nb = \"\"\"\n\\x7f\\\\e\"\"\"\n");
        let spans: Vec<_> = f.iter().map(|(s, _)| s.as_str()).collect();
        // `'\e'` is a literal string and `\\e` an escaped backslash: neither is an escape.
        assert_eq!(spans, ["\\e", "\\x41", "\\x7f"], "{f:?}");
        assert_eq!(
            f[0].1,
            "TOML 1.1 syntax; Kerblam! 1.x and editors read TOML 1.0: the escape `\\e`"
        );
    }

    #[test]
    fn inline_tables_over_lines_and_trailing_commas_are_found() {
        let f = found("a = { b = 1, }\nc = {\n  d = 1,\n  e = [\n 1,\n 2,\n ],\n}\n");
        let what: Vec<_> = f.iter().map(|(s, m)| (s.as_str(), m.as_str())).collect();
        assert_eq!(
            what,
            [
                (
                    ",",
                    "TOML 1.1 syntax; Kerblam! 1.x and editors read TOML 1.0: a trailing comma in an inline table"
                ),
                (
                    "{",
                    "TOML 1.1 syntax; Kerblam! 1.x and editors read TOML 1.0: an inline table over several lines"
                )
            ]
        );
        // A comment inside, and a nested table over lines inside a one-line table.
        assert_eq!(found("a = { b = 1 # c\n}\n").len(), 1);
        let f = found("a = { b = {\nc = 1 } }\n");
        assert_eq!(f.len(), 1, "{f:?}");
        // TOML 1.0: arrays and multi-line strings may span lines inside an inline table.
        assert!(
            found("a = { b = [\n1,\n2,\n], c = \"\"\"x\ny\"\"\" }\nd = {}\ne = { }\n").is_empty()
        );
    }

    #[test]
    fn times_without_seconds_are_found() {
        let f = found(
            "a = 07:32\nb = 1979-05-27T07:32\nc = 1979-05-27 07:32-07:00\nd = 1979-05-27t07:32z\n",
        );
        let spans: Vec<_> = f.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            spans,
            [
                "07:32",
                "1979-05-27T07:32",
                "1979-05-27 07:32-07:00",
                "1979-05-27t07:32z"
            ]
        );
        let source = SourceFile::new("k.toml", "c = 1979-05-27 07:32-07:00\n");
        let help = toml_1_1_syntax(&source)[0].help.clone().unwrap();
        assert_eq!(help, "write `1979-05-27 07:32:00-07:00`");
        assert!(
            found(
                "a = 07:32:00\nb = 1979-05-27T07:32:00.5Z\nc = 1979-05-27\nd = 1979-05-27 07:32:00\ne = 1.5\n"
            )
            .is_empty()
        );
    }

    #[test]
    fn toml_1_0_documents_have_no_finding() {
        let text = "# a comment with \\e and { ,}\n[meta]\nversion = \"1.0\\u001B\\t\\\\x41\"\n\
                    [data.remote]\n\"https://e.org/a\" = 'a\\x41.csv'\n[data.profiles.p]\n\
                    \"x.csv\" = \"\"\"y\\\n   .csv\"\"\"\n";
        assert!(found(text).is_empty(), "{:?}", found(text));
    }
}

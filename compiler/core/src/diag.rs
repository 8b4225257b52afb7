//! Located findings: one problem in one file, with the offending text's span.
//!
//! A [`Finding`] is a miette diagnostic, so the CLI renders it as `file:line:col` with the text
//! underlined. Findings also expose their line and column for `--json` output.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, Severity, SourceCode};

/// A source file shared by all the findings about it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The name shown to the user (a path relative to the working directory when possible).
    pub name: String,
    /// The file's text.
    pub text: Arc<str>,
}

impl SourceFile {
    /// A new source file.
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> Self {
        SourceFile {
            name: name.into(),
            text: text.into(),
        }
    }

    /// A source file from raw bytes. Text that is not UTF-8 is an error finding located at the first
    /// bad byte (the returned finding's source holds the text with that byte replaced by U+FFFD, so
    /// the line around it can still be shown).
    #[allow(clippy::result_large_err)] // a Finding is the error, as for TomlDoc::parse
    pub fn from_bytes(name: impl Into<String>, bytes: Vec<u8>) -> Result<Self, Finding> {
        match String::from_utf8(bytes) {
            Ok(text) => Ok(SourceFile::new(name, text)),
            Err(e) => {
                let err = e.utf8_error();
                let at = err.valid_up_to();
                let bad =
                    &e.as_bytes()[at..at + err.error_len().unwrap_or(e.as_bytes().len() - at)];
                let hex: Vec<String> = bad.iter().map(|b| format!("0x{b:02X}")).collect();
                let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
                // The lossy text is identical up to `at`, where U+FFFD (3 bytes) replaces the bad bytes.
                let source = SourceFile::new(name, text);
                Err(Finding::error(
                    &source,
                    "kerblam::not-utf8",
                    format!(
                        "the file is not UTF-8 text (invalid byte {})",
                        hex.join(" ")
                    ),
                )
                .at(Some(at..at + '\u{FFFD}'.len_utf8()), "not UTF-8")
                .help("save the file as UTF-8"))
            }
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Reported, but the manifest is still accepted.
    Warning,
    /// The manifest is rejected.
    Error,
}

/// One problem in one file.
#[derive(Debug, Clone)]
pub struct Finding {
    /// A stable identifier, e.g. `kerblam::unknown-key`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// The text the finding is about.
    pub span: Option<Range<usize>>,
    /// A short label under the underlined text.
    pub label: String,
    /// How to fix it.
    pub help: Option<String>,
    /// Error or warning.
    pub level: Level,
    /// The file.
    pub source: SourceFile,
}

impl Finding {
    /// A new error finding.
    pub fn error(source: &SourceFile, code: &'static str, message: impl Into<String>) -> Self {
        Finding {
            code,
            message: message.into(),
            span: None,
            label: String::new(),
            help: None,
            level: Level::Error,
            source: source.clone(),
        }
    }

    /// Attach the span of the offending text and its label.
    pub fn at(mut self, span: Option<Range<usize>>, label: impl Into<String>) -> Self {
        self.span = span;
        self.label = label.into();
        self
    }

    /// Attach a hint.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Turn the finding into a warning.
    pub fn warning(mut self) -> Self {
        self.level = Level::Warning;
        self
    }

    /// 1-based line and column of the finding's start, if it has a span.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        self.span.as_ref().map(|s| self.source.line_col(s.start))
    }

    /// `file:line:col` (or just `file`) of the finding.
    pub fn location(&self) -> String {
        match self.line_col() {
            Some((l, c)) => format!("{}:{l}:{c}", self.source.name),
            None => self.source.name.clone(),
        }
    }

    /// A JSON object for `--json` output.
    pub fn to_json(&self) -> serde_json::Value {
        let (line, column) = self.line_col().unzip();
        serde_json::json!({
            "level": self.level,
            "code": self.code,
            "message": self.message,
            "file": self.source.name,
            "line": line,
            "column": column,
            "help": self.help,
        })
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Finding {}

impl Diagnostic for Finding {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<Severity> {
        Some(match self.level {
            Level::Warning => Severity::Warning,
            Level::Error => Severity::Error,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span.clone()?;
        let label = (!self.label.is_empty()).then(|| self.label.clone());
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            label, span,
        ))))
    }
}

impl SourceCode for SourceFile {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let inner =
            self.text
                .as_ref()
                .read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            inner.column(),
            inner.line_count(),
        )))
    }
}

/// Render a diagnostic as plain text (no colour, ASCII-safe unicode box drawing), as `kerblam validate`
/// prints it with `--color never`. Used by snapshot tests.
pub fn render_plain(diag: &dyn Diagnostic) -> String {
    let mut out = String::new();
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100)
            .with_links(false);
    let _ = handler.render_report(&mut out, diag);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_utf8_bytes_are_a_located_finding() {
        let f = SourceFile::from_bytes("m.toml", b"[meta]\nversion = \"1\xff\"\n".to_vec())
            .unwrap_err();
        assert_eq!(f.code, "kerblam::not-utf8");
        assert_eq!(f.location(), "m.toml:2:13");
        assert!(f.message.contains("0xFF"), "{}", f.message);
        let span = f.span.clone().unwrap();
        assert_eq!(&f.source.text[span], "\u{FFFD}");
        // A truncated sequence at the end of the file.
        let f = SourceFile::from_bytes("m.toml", b"a = 1\n\xe2\x82".to_vec()).unwrap_err();
        assert_eq!(f.location(), "m.toml:2:1");
        assert!(SourceFile::from_bytes("m.toml", b"a = 1".to_vec()).is_ok());
    }
}

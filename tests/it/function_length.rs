//! No function in the product code is longer than 80 lines unless a comment says why.
//!
//! The test reads every `.rs` file under `src/` and `{contract,compiler,libs,backends}/*/src`, finds each
//! named function (`fn name`, with a body), and measures it from the line of `fn` to the line of
//! its closing brace, both included. Code under `#[cfg(test)]` (an inline `mod tests { ... }` or a
//! `mod tests;` file) is not product code and is skipped.
//!
//! A function may be longer when it says why: a comment containing `long:` in the three lines above
//! the `fn` line, or anywhere in its doc comment and attributes, such as
//!
//! ```text
//! // long: one match arm per message of the ABI; splitting it would hide the table
//! fn dispatch(...) { ... }
//! ```
//!
//! Split a long function by meaning first; the marker is for the few that read best as one piece
//! (generated text, a flat table).
//!
//! The scanner is a small lexer, not a parser: it blanks comments, strings and character literals
//! before counting braces, which is enough for this code base.

use std::fs;
use std::path::{Path, PathBuf};

/// The longest function, in lines, that needs no reason.
const MAX_LINES: usize = 80;

/// The comment text that gives the reason for a longer function.
const MARKER: &str = "long:";

/// How many lines above the `fn` line a marker may be, besides the doc comment and attributes.
const MARKER_REACH: usize = 3;

#[test]
fn no_function_is_longer_than_80_lines_without_a_reason() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut too_long = Vec::new();
    for file in product_sources(root) {
        let text = fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let shown = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        for f in functions(&text) {
            if f.lines > MAX_LINES && !has_reason(&lines, f.line) {
                too_long.push(format!("{shown}:{} {} ({} lines)", f.line, f.name, f.lines));
            }
        }
    }
    assert!(
        too_long.is_empty(),
        "{} function(s) are longer than {MAX_LINES} lines with no `// {MARKER} <why>` comment above \
         them; split them by meaning, or say why they read best as one piece:\n{}",
        too_long.len(),
        too_long.join("\n")
    );
}

/// The `.rs` files of the product code, sorted, without the files of `#[cfg(test)] mod x;`.
fn product_sources(root: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![root.join("src")];
    for group in ["contract", "compiler", "libs", "backends"] {
        for krate in fs::read_dir(root.join(group)).unwrap() {
            let src = krate.unwrap().path().join("src");
            if src.is_dir() {
                dirs.push(src);
            }
        }
    }
    let mut files = Vec::new();
    for dir in dirs {
        rust_files(&dir, &mut files);
    }
    let test_modules: Vec<PathBuf> = files
        .iter()
        .flat_map(|f| test_module_files(f, &fs::read_to_string(f).unwrap()))
        .collect();
    files.retain(|f| !test_modules.contains(f));
    files.sort();
    files
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether the function whose `fn` is on line `fn_line` (1-based) has a `long:` comment above it:
/// within [`MARKER_REACH`] lines, or in the doc comments, comments and attributes right above it.
fn has_reason(lines: &[&str], fn_line: usize) -> bool {
    let above = &lines[..fn_line - 1];
    let near = above.iter().rev().take(MARKER_REACH);
    let header = above.iter().rev().take_while(|l| {
        let l = l.trim_start();
        l.starts_with("//") || l.starts_with("#[")
    });
    near.chain(header).any(|l| is_marker(l))
}

/// A comment line holding [`MARKER`].
fn is_marker(line: &str) -> bool {
    line.trim_start().starts_with("//") && line.contains(MARKER)
}

/// A function found in a source file.
struct Function {
    name: String,
    /// The 1-based line of its `fn` keyword.
    line: usize,
    /// From the `fn` line to the line of the closing brace, both included.
    lines: usize,
}

/// The named functions with a body in `text`, outside `#[cfg(test)]` modules.
fn functions(text: &str) -> Vec<Function> {
    let code = blank_comments_and_literals(text);
    let skipped = inline_test_modules(&code);
    let line_of = |at: usize| code[..at].iter().filter(|&&b| b == b'\n').count() + 1;
    let mut found = Vec::new();
    for (at, word) in words(&code) {
        if word != b"fn" || skipped.iter().any(|r| r.contains(&at)) {
            continue;
        }
        let Some((name, after_name)) = next_word(&code, at + 2) else {
            continue; // `fn(...)`, a function pointer type
        };
        let Some(open) = body_start(&code, after_name) else {
            continue; // a declaration without a body
        };
        let Some(close) = matching_brace(&code, open) else {
            continue;
        };
        let line = line_of(at);
        found.push(Function {
            name: String::from_utf8_lossy(name).into_owned(),
            line,
            lines: line_of(close) - line + 1,
        });
    }
    found
}

/// The byte ranges of `#[cfg(test)] mod name { ... }` in blanked code.
fn inline_test_modules(code: &[u8]) -> Vec<std::ops::Range<usize>> {
    test_module_declarations(code)
        .filter_map(|(_, after)| {
            let open = after + skip_space(&code[after..]);
            (code.get(open) == Some(&b'{'))
                .then(|| matching_brace(code, open).map(|close| open..close))
                .flatten()
        })
        .collect()
}

/// The files of the `#[cfg(test)] mod name;` declarations in `file`.
fn test_module_files(file: &Path, text: &str) -> Vec<PathBuf> {
    let code = blank_comments_and_literals(text);
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let dir = match stem {
        "mod" | "lib" | "main" => file.parent().unwrap().to_path_buf(),
        _ => file.with_extension(""),
    };
    test_module_declarations(&code)
        .filter(|&(_, after)| code.get(after + skip_space(&code[after..])) == Some(&b';'))
        .flat_map(|(name, _)| {
            let name = String::from_utf8_lossy(name).into_owned();
            [
                dir.join(format!("{name}.rs")),
                dir.join(name).join("mod.rs"),
            ]
        })
        .collect()
}

/// Each `#[cfg(test)] (pub) mod name` in blanked code: the name, and the offset after it.
fn test_module_declarations(code: &[u8]) -> impl Iterator<Item = (&[u8], usize)> {
    const ATTRIBUTE: &[u8] = b"#[cfg(test)]";
    (0..code.len())
        .filter(|&at| code[at..].starts_with(ATTRIBUTE))
        .filter_map(|at| {
            let mut next = next_word(code, at + ATTRIBUTE.len())?;
            if next.0 == b"pub" {
                next = next_word(code, next.1)?;
            }
            if next.0 != b"mod" {
                return None;
            }
            next_word(code, next.1)
        })
}

/// Every identifier or keyword in blanked code, with its offset.
fn words(code: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    (0..code.len())
        .filter(|&at| is_word_start(code[at]) && (at == 0 || !is_word_byte(code[at - 1])))
        .map(|at| (at, word_at(code, at)))
}

/// The identifier starting after spaces at `from`, and the offset after it.
fn next_word(code: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let at = from + skip_space(code.get(from..)?);
    let word = word_at(code, at);
    (!word.is_empty() && is_word_start(word[0])).then_some((word, at + word.len()))
}

fn word_at(code: &[u8], at: usize) -> &[u8] {
    let len = code[at..].iter().take_while(|&&b| is_word_byte(b)).count();
    &code[at..at + len]
}

fn skip_space(code: &[u8]) -> usize {
    code.iter().take_while(|b| b.is_ascii_whitespace()).count()
}

fn is_word_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The offset of the `{` opening the body of a function whose signature starts at `from`, or
/// `None` when a `;` outside brackets comes first (a declaration in a trait or `extern` block).
fn body_start(code: &[u8], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (at, &b) in code.iter().enumerate().skip(from) {
        match b {
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth = depth.saturating_sub(1),
            b'{' if depth == 0 => return Some(at),
            b';' if depth == 0 => return None,
            _ => {}
        }
    }
    None
}

/// The offset of the `}` closing the `{` at `open`.
fn matching_brace(code: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (at, &b) in code.iter().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(at);
                }
            }
            _ => {}
        }
    }
    None
}

/// `text` with every comment, string literal and character literal replaced by spaces (newlines
/// kept), so that the braces left are the braces of the code and offsets still match lines.
fn blank_comments_and_literals(text: &str) -> Vec<u8> {
    let mut code = text.as_bytes().to_vec();
    let mut at = 0;
    while at < code.len() {
        let end = match code[at] {
            b'/' if code.get(at + 1) == Some(&b'/') => line_comment_end(&code, at),
            b'/' if code.get(at + 1) == Some(&b'*') => block_comment_end(&code, at),
            b'"' => string_end(&code, at),
            b'r' if starts_raw_string(&code, at) => raw_string_end(&code, at),
            b'\'' => match char_literal_end(&code, at) {
                Some(end) => end,
                None => at + 1, // a lifetime
            },
            _ => {
                at += 1;
                continue;
            }
        };
        for b in &mut code[at..end.min(text.len())] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
        at = end;
    }
    code
}

fn line_comment_end(code: &[u8], at: usize) -> usize {
    code[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(code.len(), |n| at + n)
}

/// Block comments nest in Rust.
fn block_comment_end(code: &[u8], at: usize) -> usize {
    let (mut depth, mut i) = (0usize, at);
    while i + 1 < code.len() {
        match (code[i], code[i + 1]) {
            (b'/', b'*') => (depth, i) = (depth + 1, i + 2),
            (b'*', b'/') => {
                (depth, i) = (depth - 1, i + 2);
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    code.len()
}

/// The offset after the closing quote of the string opening at `at`, escapes skipped.
fn string_end(code: &[u8], at: usize) -> usize {
    let mut i = at + 1;
    while i < code.len() {
        match code[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    code.len()
}

/// `r"`, `r#"`, `r##"`, ... not preceded by an identifier byte other than the `b` or `c` of
/// `br"..."` and `cr"..."`.
fn starts_raw_string(code: &[u8], at: usize) -> bool {
    let prefix_ok = at == 0
        || !is_word_byte(code[at - 1])
        || (matches!(code[at - 1], b'b' | b'c') && (at == 1 || !is_word_byte(code[at - 2])));
    let hashes = code[at + 1..].iter().take_while(|&&b| b == b'#').count();
    prefix_ok && code.get(at + 1 + hashes) == Some(&b'"')
}

fn raw_string_end(code: &[u8], at: usize) -> usize {
    let hashes = code[at + 1..].iter().take_while(|&&b| b == b'#').count();
    let mut closing = vec![b'"'];
    closing.extend(std::iter::repeat_n(b'#', hashes));
    let body = at + 1 + hashes + 1;
    code[body..]
        .windows(closing.len())
        .position(|w| w == closing.as_slice())
        .map_or(code.len(), |n| body + n + closing.len())
}

/// The offset after a character literal opening at `at` (`'x'`, `'\n'`, `'\u{..}'`, `'é'`), or
/// `None` when the quote starts a lifetime or a label.
fn char_literal_end(code: &[u8], at: usize) -> Option<usize> {
    if code.get(at + 1) == Some(&b'\\') {
        // the escaped character itself may be a quote: `'\''`
        let close = code.get(at + 3..)?.iter().position(|&b| b == b'\'')?;
        return Some(at + 3 + close + 1);
    }
    let first = *code.get(at + 1)?;
    let width = match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    };
    (code.get(at + 1 + width) == Some(&b'\'')).then_some(at + 2 + width)
}

/// The scanner on a small sample: what it counts, what it skips, and where it finds reasons.
#[test]
fn the_scanner_measures_functions_and_skips_tests() {
    let sample = r##"
fn short() { let s = "}"; let c = '{'; }
/* a { block /* nested } */ comment */
fn tall<'a>(x: &'a str) -> &'a str {
    // a } in a comment
    let raw = r#"{ "quoted" }"#;
    x
}
trait T { fn declared(&self); }
#[cfg(test)]
mod tests {
    fn hidden() {}
}
"##;
    let found: Vec<(String, usize, usize)> = functions(sample)
        .into_iter()
        .map(|f| (f.name, f.line, f.lines))
        .collect();
    assert_eq!(
        found,
        vec![("short".into(), 2, 1), ("tall".into(), 4, 5)],
        "{sample}"
    );

    let lines = [
        "/// Does things.",
        "// long: a flat table",
        "#[inline]",
        "fn f() {}",
    ];
    assert!(has_reason(&lines, 4));
    let lines = ["// long: too far", "", "", "", "", "fn f() {}"];
    assert!(!has_reason(&lines, 6));
}

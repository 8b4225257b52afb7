//! Escaping values for definition files and the shell scripts inside them.
//!
//! A definition file is parsed line by line: a line whose first word starts with `%` opens a
//! section, header values end at `#`, `%labels` lines are `key value` split at the first space and
//! trimmed, and `%files` lines are `source destination` split at the first space. Every value kerblam
//! writes goes through one of the functions here, which either return a form that cannot break
//! the file or an [`Unwritable`] saying why the value cannot be represented.

pub use crate::error::Unwritable;

/// Characters that need no quoting in a shell word, a `%files` path or a header value.
fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c)
}

/// Whether `s` is made only of characters that need no quoting anywhere in a definition file.
pub fn is_plain(s: &str) -> bool {
    !s.is_empty() && s.chars().all(plain)
}

/// Quote `s` as one POSIX sh word that is safe inside a definition-file section.
///
/// Single quotes protect quotes, spaces and `$`. A newline is written as `"` newline `"` between
/// single-quoted parts, so the next physical line starts with `"` and can never be read as a
/// section header (`%...`). NUL bytes cannot be represented.
pub fn sh_word(s: &str) -> Result<String, Unwritable> {
    if s.contains('\0') {
        return Err(Unwritable::Nul);
    }
    if is_plain(s) {
        return Ok(s.to_string());
    }
    let parts: Vec<String> = s
        .split('\n')
        .map(|p| format!("'{}'", p.replace('\'', r"'\''")))
        .collect();
    Ok(parts.join("\"\n\""))
}

/// Quote every word of `argv` with [`sh_word`] and join them with spaces.
pub fn sh_words(argv: &[String]) -> Result<String, Unwritable> {
    argv.iter()
        .map(|a| sh_word(a))
        .collect::<Result<Vec<_>, _>>()
        .map(|v| v.join(" "))
}

fn control(s: &str) -> Option<char> {
    s.chars().find(|c| c.is_control())
}

/// A `%labels` key: non-empty, no whitespace or control characters, not starting with `#` or `%`.
pub fn label_key(k: &str) -> Result<String, Unwritable> {
    if k.is_empty() {
        return Err(Unwritable::EmptyKey);
    }
    if let Some(c) = k.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(Unwritable::KeySpace(c));
    }
    if k.starts_with('#') || k.starts_with('%') {
        return Err(Unwritable::KeyMarker);
    }
    Ok(k.to_string())
}

/// A `%labels` value: any text on one line, without leading or trailing whitespace (Apptainer
/// trims it) and without control characters.
pub fn label_value(v: &str) -> Result<String, Unwritable> {
    if let Some(c) = control(v) {
        return Err(Unwritable::LabelControl(c));
    }
    if v.trim() != v {
        return Err(Unwritable::LabelSpaces);
    }
    Ok(v.to_string())
}

/// A header value (`From:`): one line, no `#` (a header comment starts there), no control
/// characters, no surrounding whitespace.
pub fn header_value(v: &str) -> Result<String, Unwritable> {
    if v.is_empty() {
        return Err(Unwritable::EmptyValue);
    }
    if let Some(c) = control(v) {
        return Err(Unwritable::HeaderControl(c));
    }
    if v.contains('#') {
        return Err(Unwritable::HeaderHash);
    }
    if v.trim() != v {
        return Err(Unwritable::HeaderSpaces);
    }
    Ok(v.to_string())
}

/// Text placed verbatim in a section (`%help`, or a shell command in `%post`/`%test`): no NUL, and
/// no line whose first word starts with `%`, which would open a new section.
pub fn section_text(t: &str) -> Result<String, Unwritable> {
    if t.contains('\0') {
        return Err(Unwritable::Nul);
    }
    for (i, line) in t.lines().enumerate() {
        if line.trim_start().starts_with('%') {
            return Err(Unwritable::SectionLine(i + 1));
        }
    }
    Ok(t.to_string())
}

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn env_name(n: &str) -> Result<String, Unwritable> {
    let mut chars = n.chars();
    let ok = matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric());
    if ok {
        Ok(n.to_string())
    } else {
        Err(Unwritable::EnvName)
    }
}

/// Text for a `#` comment line: control characters become `?`.
pub fn comment(t: &str) -> String {
    t.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sh_word_quotes_and_splits_newlines_so_no_line_starts_with_percent() {
        assert_eq!(sh_word("/a/b").unwrap(), "/a/b");
        assert_eq!(sh_word("it's $HOME").unwrap(), r"'it'\''s $HOME'");
        let w = sh_word("a\n%post").unwrap();
        assert_eq!(w, "'a'\"\n\"'%post'");
        assert!(w.lines().skip(1).all(|l| l.starts_with('"')));
        assert!(sh_word("a\0b").is_err());
        assert_eq!(sh_word("").unwrap(), "''");
    }

    #[test]
    fn labels_refuse_what_apptainer_would_mangle() {
        assert!(label_key("has space").is_err());
        assert!(label_key("%x").is_err());
        assert!(label_value("two\nlines").is_err());
        assert!(label_value(" padded").is_err());
        assert_eq!(label_value("say \"hi\" $USER").unwrap(), "say \"hi\" $USER");
        assert!(header_value("img#tag").is_err());
        assert!(section_text("ok\n  %post evil").is_err());
        assert!(env_name("1A").is_err());
        assert!(env_name("A_1").is_ok());
    }
}

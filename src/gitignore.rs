//! A project's `.gitignore`, edited as Kerblam! 1.x edits it (`kerblam ignore`, `kerblam new`).
//!
//! - An addition is appended after a newline: `text + "\n" + addition`.
//! - A path is added as written, trimmed, without one trailing `/` nor a leading `./`.
//! - `--compress` drops every non-empty line already seen above (the first stays), then leading
//!   and trailing blank lines; a run of blank lines becomes one empty line, and every line but
//!   the last loses its trailing blanks. The result has no final newline (as 1.x writes it).
//! - A language name is GitHub's template `<NAME>.gitignore` (case-sensitive: `Python`, `R`,
//!   `Global/macOS`), downloaded from [`TEMPLATE_BASE`] (`KERBLAM_GITIGNORE_URL` overrides it, a
//!   `file://` URL included); that needs a network.

use std::collections::HashSet;

/// Where 1.x downloads language templates from.
pub const TEMPLATE_BASE: &str = "https://raw.githubusercontent.com/github/gitignore/main";
/// The environment variable overriding [`TEMPLATE_BASE`].
pub const TEMPLATE_BASE_ENV: &str = "KERBLAM_GITIGNORE_URL";

/// The line a path adds.
pub fn path_line(path: &str) -> String {
    let p = path.trim();
    let p = p.strip_suffix('/').unwrap_or(p);
    let p = p.strip_prefix("./").unwrap_or(p);
    format!("{p}\n")
}

/// `text` with `addition` appended.
pub fn append(text: &str, addition: &str) -> String {
    format!("{text}\n{addition}")
}

/// 1.x's `--compress`.
pub fn compress(text: &str) -> String {
    let mut seen = HashSet::new();
    let lines: Vec<&str> = text
        .split('\n')
        .filter(|l| l.is_empty() || seen.insert(*l))
        .collect();
    if lines.len() < 2 {
        return lines.join("\n");
    }
    let blank = |l: &str| l.chars().all(|c| matches!(c, ' ' | '\t' | '\n'));
    let Some(start) = lines.iter().position(|l| !blank(l)) else {
        return String::new();
    };
    // A blank line right after a blank line goes; so does the last run of blank lines.
    let kept: Vec<&str> = (start..lines.len())
        .filter(|&i| i == start || !(blank(lines[i]) && blank(lines[i - 1])))
        .map(|i| lines[i])
        .collect();
    let ends_blank = lines.last().is_some_and(|l| blank(l));
    let mut out: Vec<&str> = kept[..kept.len() - 1]
        .iter()
        .map(|l| l.trim_end())
        .collect();
    if !ends_blank {
        out.push(kept[kept.len() - 1]);
    }
    out.join("\n")
}

/// The URL of a language template.
pub fn template_url(name: &str) -> String {
    let base = std::env::var(TEMPLATE_BASE_ENV).unwrap_or_else(|_| TEMPLATE_BASE.to_string());
    format!("{}/{name}.gitignore", base.trim_end_matches('/'))
}

/// Download a language template; the error names the URL and says a network is needed.
pub fn template(name: &str) -> Result<String, String> {
    let url = template_url(name);
    crate::fetch::text(&crate::fetch::agent(), &url).map_err(|why| {
        format!(
            "cannot download the gitignore template `{name}` from {url}: {why} (language templates come from GitHub's gitignore collection and need a network; names are case-sensitive, e.g. Python, R)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_added_as_kerblam_1_adds_them() {
        assert_eq!(path_line(" ./data/out/ "), "data/out\n");
        assert_eq!(path_line("env"), "env\n");
        assert_eq!(append("a\n", "b\n"), "a\n\nb\n");
    }

    #[test]
    fn compress_drops_repeats_and_blank_runs() {
        assert_eq!(
            compress("\n\nhello!   \n   \n  \nhow are you?\n\nfine    thanks"),
            "hello!\n\nhow are you?\n\nfine    thanks"
        );
        assert_eq!(compress("a\nb\na\n\n\nb\nc\n"), "a\nb\n\nc");
        assert_eq!(compress(""), "");
        assert_eq!(compress("\n\n"), "");
        assert_eq!(compress("x"), "x");
        assert_eq!(compress("# c\nx\n# c\n"), "# c\nx");
        // The last line keeps its trailing blanks, the others lose them.
        assert_eq!(compress("a  \nb  "), "a\nb  ");
    }
}

//! Container image references (`--tag`).

/// Check an image reference the way Docker does (`[host[:port]/]name[:tag]`, lowercase name parts
/// separated by `.`, `_`, `__` or `-`). Returns what is wrong.
pub fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("the tag is empty".into());
    }
    if tag.len() > 255 {
        return Err("the tag is longer than 255 characters".into());
    }
    let (name, version) = match tag.rsplit_once(':') {
        Some((n, v)) if !v.contains('/') => (n, Some(v)),
        _ => (tag, None),
    };
    if let Some(v) = version {
        let ok = !v.is_empty()
            && v.len() <= 128
            && v.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return Err(format!(
                "`{v}` is not a valid tag version (letters, digits, `_`, `.`, `-`; at most 128)"
            ));
        }
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost")
    {
        parts.remove(0);
    }
    for part in parts {
        let ok = !part.is_empty()
            && part.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            })
            && part
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            && part
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        if !ok {
            return Err(format!(
                "`{part}` is not a valid image name component (lowercase letters, digits and `.`, `_`, `-` between them)"
            ));
        }
    }
    Ok(())
}

/// The default tag for a pipe: `<pipe>_exec`, lowercased, with other characters replaced by `_`.
pub fn default_tag(pipe: &str, suffix: &str) -> String {
    let mut s: String = pipe
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    s = s.trim_start_matches(['.', '-', '_']).to_string();
    if s.is_empty() {
        s.push_str("pipe");
    }
    format!("{s}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert!(check_tag("process_exec").is_ok());
        assert!(check_tag("registry.example:5000/lab/proc:1.0").is_ok());
        assert!(check_tag("localhost/x").is_ok());
        assert!(check_tag("Upper").is_err());
        assert!(check_tag("a:b c").is_err());
        assert!(check_tag("").is_err());
        assert_eq!(default_tag("My Pipe", "_exec"), "my_pipe_exec");
    }
}

//! Helpers for the relative, `/`-separated paths that plans and manifests use.

use std::path::{Component, Path};

/// Why a user-given relative path is not acceptable, if it is not.
pub fn check_relative(p: &str) -> Option<&'static str> {
    if p.is_empty() {
        return Some("is empty");
    }
    if p.starts_with('/') || p.starts_with('\\') || Path::new(p).is_absolute() {
        return Some("is absolute; it must be relative to the project root");
    }
    if p.contains('\0') {
        return Some("contains a NUL byte");
    }
    let mut depth: i64 = 0;
    for part in p.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return Some("escapes the project root");
                }
            }
            _ => depth += 1,
        }
    }
    None
}

/// Normalise a relative path: `/` separators, no `.` parts, no trailing slash; `.` for the empty path.
pub fn normalize(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// Join two relative paths.
pub fn join(a: &str, b: &str) -> String {
    if a == "." || a.is_empty() {
        normalize(b)
    } else {
        normalize(&format!("{a}/{b}"))
    }
}

/// Join a container directory and a relative path: `("/", "data/in")` → `/data/in`.
pub fn container_join(dir: &str, rel: &str) -> String {
    let rel = normalize(rel);
    let dir = dir.trim_end_matches('/');
    if rel == "." {
        if dir.is_empty() {
            "/".into()
        } else {
            dir.into()
        }
    } else {
        format!("{dir}/{rel}")
    }
}

/// True when `path` is `dir` or lies under it (both normalised relative paths).
pub fn is_within(path: &str, dir: &str) -> bool {
    dir == "." || path == dir || path.starts_with(&format!("{dir}/"))
}

/// A path relative to `root` as a `/`-separated string (`None` if `path` is not under `root`).
pub fn rel_to(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<String> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    Some(if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_checked() {
        assert_eq!(check_relative("data/in"), None);
        assert_eq!(check_relative("a/../b"), None);
        assert!(check_relative("/abs").is_some());
        assert!(check_relative("../up").is_some());
        assert!(check_relative("a/../../up").is_some());
        assert!(check_relative("").is_some());
    }

    #[test]
    fn joins_and_normalises() {
        assert_eq!(normalize("./a//b/"), "a/b");
        assert_eq!(join(".", "x"), "x");
        assert_eq!(join("data/in", "x.txt"), "data/in/x.txt");
        assert_eq!(container_join("/", "data/in"), "/data/in");
        assert_eq!(container_join("/work/", "data"), "/work/data");
        assert!(is_within("data/in/x", "data/in"));
        assert!(!is_within("data/inner", "data/in"));
    }
}

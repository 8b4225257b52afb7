//! Validation of the relative paths found in archives and manifests.

use crate::error::{Error, Result};

/// The longest path accepted inside an archive, in bytes (Linux's `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// The longest single path component accepted inside an archive, in bytes (Linux's `NAME_MAX`).
pub const MAX_COMPONENT_BYTES: usize = 255;

/// Checks that raw name bytes from an archive form a safe, relative, UTF-8 path and returns it
/// normalised: `/`-separated, no `.` components, no trailing `/`.
///
/// Refused: non-UTF-8 bytes, NUL, an empty name, absolute paths, `..` components, names longer than
/// [`MAX_PATH_BYTES`] or with a component longer than [`MAX_COMPONENT_BYTES`]. `what` names the
/// archive member the path comes from, for the message.
pub fn safe_relative(raw: &[u8], what: &str) -> Result<String> {
    let shown = String::from_utf8_lossy(raw);
    let Ok(text) = std::str::from_utf8(raw) else {
        return Err(Error::invalid(format!(
            "{what}: entry name {shown:?} is not valid UTF-8"
        )));
    };
    if raw.len() > MAX_PATH_BYTES {
        return Err(Error::invalid(format!(
            "{what}: entry name of {} bytes is longer than the limit of {MAX_PATH_BYTES} bytes (starts with {:?})",
            raw.len(),
            text.chars().take(40).collect::<String>()
        )));
    }
    if text.contains('\0') {
        return Err(Error::invalid(format!(
            "{what}: entry name {shown:?} contains a NUL byte"
        )));
    }
    if text.starts_with('/') {
        return Err(Error::invalid(format!(
            "{what}: entry {text:?} is an absolute path"
        )));
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => continue,
            ".." => {
                return Err(Error::invalid(format!(
                    "{what}: entry {text:?} has a `..` component (it would escape the destination)"
                )));
            }
            p if p.len() > MAX_COMPONENT_BYTES => {
                return Err(Error::invalid(format!(
                    "{what}: entry {text:?} has a component of {} bytes, over the limit of {MAX_COMPONENT_BYTES}",
                    p.len()
                )));
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(Error::invalid(format!(
            "{what}: entry {text:?} has an empty name"
        )));
    }
    Ok(parts.join("/"))
}

/// Checks a data directory named by a manifest (`data/in`, `./data`): it must be relative and stay
/// inside the project. Returns it normalised (`data/in`); `.` becomes the empty string.
pub fn manifest_dir(value: &str, key: &str) -> Result<String> {
    if value.starts_with('/') || value.starts_with('\\') {
        return Err(Error::invalid(format!(
            "kerblam.toml: data.paths.{key} = {value:?} is an absolute path; a replay only writes inside its destination"
        )));
    }
    let mut parts = Vec::new();
    for part in value.split(['/', '\\']) {
        match part {
            "" | "." => continue,
            ".." => {
                return Err(Error::invalid(format!(
                    "kerblam.toml: data.paths.{key} = {value:?} escapes the project with `..`"
                )));
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// True when `path` is `dir` or lies below it (both normalised; an empty `dir` holds everything).
pub fn is_under(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path == dir
        || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_refuses() {
        assert_eq!(
            safe_relative(b"./data//in/x.txt", "t").unwrap(),
            "data/in/x.txt"
        );
        assert!(
            safe_relative(b"../x", "t")
                .unwrap_err()
                .message()
                .contains("`..`")
        );
        assert!(safe_relative(b"a/../../x", "t").is_err());
        assert!(
            safe_relative(b"/etc/passwd", "t")
                .unwrap_err()
                .message()
                .contains("absolute")
        );
        assert!(
            safe_relative(b"a/\xff", "t")
                .unwrap_err()
                .message()
                .contains("UTF-8")
        );
        assert!(
            safe_relative(b"./", "t")
                .unwrap_err()
                .message()
                .contains("empty")
        );
        assert!(
            safe_relative(&[b'a'; 300], "t")
                .unwrap_err()
                .message()
                .contains("255")
        );
        assert_eq!(manifest_dir("./data/in", "input").unwrap(), "data/in");
        assert!(manifest_dir("../up", "input").is_err());
        assert!(manifest_dir("/etc", "input").is_err());
        assert!(is_under("data/in/x", "data/in"));
        assert!(!is_under("data/input/x", "data/in"));
    }
}

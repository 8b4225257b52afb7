//! Image references: `REGISTRY/REPO[:TAG][@sha256:HEX]`.

use std::fmt;

use crate::error::{Error, Result};

/// A reference to a manifest in a registry, with the registry named explicitly (kerblam never
/// guesses a registry: a package pushed "somewhere" cannot be cited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`, e.g. `ghcr.io` or `127.0.0.1:5000`.
    pub registry: String,
    /// The repository path, e.g. `lab/process`.
    pub repository: String,
    /// The tag, when given.
    pub tag: Option<String>,
    /// `sha256:<64 hex digits>`, when given.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses `text`. The first path component must be a registry host (it holds a `.` or a `:`,
    /// or is `localhost`), as docker and podman tell registries from Docker Hub user names.
    pub fn parse(text: &str) -> Result<Reference> {
        let bad = |why: &str| Error::BadReference {
            reference: text.to_string(),
            why: why.to_string(),
        };
        let (rest, digest) = match text.split_once('@') {
            Some((rest, d)) => {
                if !is_digest(d) {
                    return Err(bad(
                        "the digest must be sha256: and 64 lowercase hex digits",
                    ));
                }
                (rest, Some(d.to_string()))
            }
            None => (text, None),
        };
        let Some((registry, path)) = rest.split_once('/') else {
            return Err(bad(
                "it names no registry (write REGISTRY/REPOSITORY, e.g. ghcr.io/lab/process)",
            ));
        };
        if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
            return Err(bad(
                "its first part is not a registry host (write REGISTRY/REPOSITORY, e.g. ghcr.io/lab/process or docker.io/lab/process)",
            ));
        }
        // A ':' after the last '/' starts the tag.
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag.to_string())),
            _ => (path, None),
        };
        if !is_repository(repository) {
            return Err(bad(
                "the repository must be lowercase letters, digits and . _ - separated by /",
            ));
        }
        if let Some(t) = &tag {
            if !is_tag(t) {
                return Err(bad(
                    "a tag is at most 128 letters, digits, _ . and -, not starting with . or -",
                ));
            }
        }
        Ok(Reference {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// `text` when it is a reference pinned by a digest (what `--push` records and a replay may
    /// pull: never a tag, which can move); `None` for a plain tag or anything else.
    pub fn parse_pinned(text: &str) -> Option<Reference> {
        Reference::parse(text).ok().filter(|r| r.digest.is_some())
    }

    /// The same repository, pinned to `digest` (no tag).
    pub fn pinned(&self, digest: &str) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest.to_string()),
        }
    }

    /// `REGISTRY/REPO`.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What to ask the registry for: the digest when pinned, else the tag, else `latest`.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// Whether `other` names the same repository in the same registry.
    pub fn same_repository(&self, other: &Reference) -> bool {
        self.registry == other.registry && self.repository == other.repository
    }

    /// Whether the registry is on the loopback interface, where plain HTTP is used.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.registry)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Whether `host[:port]` is `localhost`, in `127.0.0.0/8`, or `[::1]`.
pub fn is_loopback_host(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        registry.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `sha256:` and 64 lowercase hex digits.
pub fn is_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn is_repository(r: &str) -> bool {
    !r.is_empty()
        && r.split('/').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && part
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric())
                && part
                    .bytes()
                    .last()
                    .is_some_and(|b| b.is_ascii_alphanumeric())
        })
}

fn is_tag(t: &str) -> bool {
    (1..=128).contains(&t.len())
        && t.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_registries_ports_tags_and_digests() {
        let r = Reference::parse("127.0.0.1:5000/lab/process:v1").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "lab/process");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert!(r.is_loopback());
        let pinned = Reference::parse(&format!("ghcr.io/lab/process@{D}")).unwrap();
        assert_eq!(pinned.digest.as_deref(), Some(D));
        assert_eq!(pinned.to_string(), format!("ghcr.io/lab/process@{D}"));
        assert!(!pinned.is_loopback());
        assert_eq!(
            r.pinned(D).to_string(),
            format!("127.0.0.1:5000/lab/process@{D}")
        );
        assert_eq!(
            Reference::parse("localhost/x")
                .unwrap()
                .manifest_reference(),
            "latest"
        );
    }

    #[test]
    fn refuses_what_a_registry_would_not_take() {
        for bad in [
            "process",
            "lab/process",
            "ghcr.io/Lab/process",
            "ghcr.io/lab/process:-x",
            "ghcr.io/lab/process@sha256:abc",
            "ghcr.io/",
            "ghcr.io/lab//process",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback_host("localhost:5000"));
        assert!(is_loopback_host("127.3.4.5"));
        assert!(is_loopback_host("[::1]:5000"));
        assert!(!is_loopback_host("10.0.0.1:5000"));
        assert!(!is_loopback_host("registry.example.org"));
    }
}

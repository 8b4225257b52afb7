//! `--push`: the host's side of putting a package in an OCI registry, and of taking it back out.
//!
//! The backend pushes the image with its engine's own client (or, for the tarball backend, its
//! OCI archive through the registry API) and reports the digest-pinned reference. kerblam does
//! not take its word: it fetches that manifest from the registry itself, checks that its bytes
//! hash to the digest, and only then names the image by it in the replay archive. The archive
//! then goes to the same repository as an OCI 1.1 artifact whose `subject` is the image: its
//! digest-pinned reference is the one identifier of the whole package, printed last.

use std::path::Path;

use kerblam_backend_api::ExecuteResult;
use kerblam_registry::artifact::{self, Descriptor, Fetched};
use kerblam_registry::{Client, Reference};

use crate::exit::{self, Exit};

/// A registry error as an exit: a reference that cannot be one exits 2, the rest 1. The message
/// keeps the registry's help line.
pub fn error(e: kerblam_registry::Error) -> Exit {
    let code = match e {
        kerblam_registry::Error::BadReference { .. } => exit::INVALID,
        _ => exit::FAILURE,
    };
    Exit {
        code,
        message: e.with_help(),
    }
}

/// `--push REGISTRY/REPO[:TAG]`, checked before any work.
pub fn target(arg: &str) -> Result<Reference, Exit> {
    let r = Reference::parse(arg).map_err(error)?;
    if r.digest.is_some() {
        return Err(Exit::invalid(format!(
            "--push {arg}: a push names a repository and maybe a tag; the registry gives the digest"
        )));
    }
    Ok(r)
}

/// The image the backend pushed, as kerblam checked it in the registry.
#[derive(Debug, Clone)]
pub struct PushedImage {
    /// `REGISTRY/REPO@sha256:...`.
    pub reference: Reference,
    /// Its manifest, as the artifact's `subject`.
    pub descriptor: Descriptor,
}

/// Holds the backend to its push: it reported a reference when, and only when, it was asked;
/// the reference is in the repository asked for, pinned by digest; and the registry serves a
/// manifest whose bytes hash to that digest.
pub fn check_pushed(
    backend: &str,
    asked: Option<&Reference>,
    result: &ExecuteResult,
) -> Result<Option<PushedImage>, Exit> {
    let breach = |what: String| {
        Exit::failure(format!(
            "backend {backend:?} broke its contract: {what}\nhelp: this is a bug in the backend plugin; package without --push, or with another backend"
        ))
    };
    let (asked, reported) = match (asked, &result.pushed) {
        (None, None) => return Ok(None),
        (None, Some(r)) => {
            return Err(breach(format!(
                "it reports pushing {r}, which nobody asked for"
            )));
        }
        (Some(a), None) => {
            return Err(breach(format!(
                "it was asked to push to {a} and reports no push"
            )));
        }
        (Some(a), Some(r)) => (a, r),
    };
    let pinned = Reference::parse_pinned(reported)
        .filter(|p| p.tag.is_none())
        .ok_or_else(|| {
            breach(format!(
                "it reports pushing {reported:?}, which is not REGISTRY/REPO@sha256:<digest>"
            ))
        })?;
    if !pinned.same_repository(asked) {
        return Err(breach(format!(
            "it was asked to push to {} and reports {pinned}",
            asked.repository_name()
        )));
    }
    let client = Client::new(&pinned).map_err(error)?;
    let digest = pinned.digest.clone().unwrap_or_default();
    let manifest = client.manifest(&digest).map_err(|e| match e {
        kerblam_registry::Error::NotFound { .. } => breach(format!(
            "it reports pushing {pinned}, which the registry does not hold"
        )),
        other => error(other),
    })?;
    Ok(Some(PushedImage {
        descriptor: Descriptor {
            media_type: manifest.media_type,
            digest: manifest.digest,
            size: manifest.bytes.len() as u64,
            artifact_type: None,
            annotations: Default::default(),
        },
        reference: pinned,
    }))
}

/// Pushes the replay archive at `path` next to `image`, tagged `<tag>.kerblam` (so that registries
/// that remove untagged manifests keep it), and returns the reference to cite.
pub fn push_archive(
    path: &Path,
    asked: &Reference,
    image: &PushedImage,
) -> Result<Reference, Exit> {
    let mut to = asked.clone();
    to.tag = Some(format!(
        "{}.kerblam",
        asked.tag.as_deref().unwrap_or("latest")
    ));
    let client = Client::new(&to).map_err(error)?;
    let pushed = artifact::push_replay_archive(&client, path, &to, image.descriptor.clone())
        .map_err(|e| {
            let mut exit = error(e);
            exit.message = format!(
                "the image is in the registry as {}, but its replay archive could not follow: {}\nthe replay archive {} is complete; package again with --push to publish both",
                image.reference,
                exit.message,
                path.display()
            );
            exit
        })?;
    Ok(pushed)
}

/// A replay archive fetched from a registry into a temporary file.
pub struct FetchedArchive {
    /// The temporary file (removed when dropped).
    pub file: tempfile::NamedTempFile,
    /// What the artifact says of it.
    pub fetched: Fetched,
}

/// Whether `arg` is meant as a registry reference rather than a file: no such file, and it parses
/// as a reference.
pub fn as_reference(arg: &str, start: &Path) -> Option<Reference> {
    if start.join(arg).exists() {
        return None;
    }
    Reference::parse(arg).ok()
}

/// Fetches the replay archive artifact `reference` into a temporary file: by digest only, every
/// byte checked against it.
pub fn fetch_archive(reference: &Reference) -> Result<FetchedArchive, Exit> {
    if reference.digest.is_none() {
        return Err(Exit::invalid(format!(
            "{reference}: a replay from a registry needs the digest (REGISTRY/REPO@sha256:...), which names exactly one package; a tag can move"
        )));
    }
    let client = Client::new(reference).map_err(error)?;
    let mut file = tempfile::Builder::new()
        .prefix("kerblam-replay-")
        .suffix(".kerblam.tar")
        .tempfile()
        .map_err(|e| {
            Exit::failure(format!(
                "cannot create a temporary file for {reference}: {e}"
            ))
        })?;
    let fetched = {
        let mut out = std::io::BufWriter::new(file.as_file_mut());
        let fetched =
            artifact::fetch_replay_archive(&client, reference, &mut out).map_err(error)?;
        std::io::Write::flush(&mut out).map_err(|e| {
            Exit::failure(format!(
                "cannot write the fetched archive of {reference}: {e}"
            ))
        })?;
        fetched
    };
    Ok(FetchedArchive { file, fetched })
}

/// The archive's `name` must be the image its artifact refers to: the same repository, pinned to
/// the `subject`'s digest.
pub fn check_subject(
    reference: &Reference,
    fetched: &Fetched,
    name: Option<&str>,
) -> Result<(), Exit> {
    let Some(subject) = &fetched.subject else {
        return Ok(());
    };
    let named = name.and_then(|n| Reference::parse(n).ok());
    match named {
        Some(n) if n.digest.as_deref() == Some(subject.digest.as_str()) => Ok(()),
        _ => Err(Exit::invalid(format!(
            "{reference}: the replay archive names the image {:?}, but the artifact refers to {}; refusing to replay a package whose parts disagree",
            name.unwrap_or(""),
            subject.digest
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(pushed: Option<&str>) -> ExecuteResult {
        ExecuteResult {
            pushed: pushed.map(String::from),
            ..ExecuteResult::default()
        }
    }

    fn refused(asked: Option<&str>, pushed: Option<&str>) -> String {
        let asked = asked.map(|a| Reference::parse(a).unwrap());
        match check_pushed("liar", asked.as_ref(), &result(pushed)) {
            Ok(_) => panic!("{pushed:?} for {asked:?} was believed"),
            Err(e) => {
                assert_eq!(e.code, exit::FAILURE);
                assert!(
                    e.message.contains("backend \"liar\" broke its contract"),
                    "{}",
                    e.message
                );
                e.message
            }
        }
    }

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// What the host refuses of a backend's push without asking the registry.
    #[test]
    fn a_push_report_that_cannot_be_true_is_a_breach() {
        assert!(check_pushed("b", None, &result(None)).unwrap().is_none());
        let m = refused(None, Some(&format!("127.0.0.1:1/lab/x@{D}")));
        assert!(m.contains("nobody asked for"), "{m}");
        let m = refused(Some("127.0.0.1:1/lab/x:v1"), None);
        assert!(m.contains("reports no push"), "{m}");
        let m = refused(Some("127.0.0.1:1/lab/x:v1"), Some("127.0.0.1:1/lab/x:v1"));
        assert!(m.contains("not REGISTRY/REPO@sha256"), "{m}");
        let m = refused(
            Some("127.0.0.1:1/lab/x:v1"),
            Some(&format!("127.0.0.1:1/lab/other@{D}")),
        );
        assert!(m.contains("asked to push to 127.0.0.1:1/lab/x"), "{m}");
    }

    #[test]
    fn a_push_target_names_a_repository_not_a_digest() {
        assert!(target("ghcr.io/lab/x:v1").is_ok());
        assert_eq!(target("lab/x").unwrap_err().code, exit::INVALID);
        assert_eq!(
            target(&format!("ghcr.io/lab/x@{D}")).unwrap_err().code,
            exit::INVALID
        );
    }
}

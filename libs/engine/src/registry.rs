//! The engine and registries: which engine a backend talks to ([`Endpoint`]), pushing an image
//! and pulling one by digest, with the engine's own client and the user's own login.

use std::process::Command;

use kerblam_registry::Reference;

use crate::engine::{Engine, Flavor};
use crate::error::{EngineError, Result};
use crate::process;

/// Where an engine's service is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix:///var/run/docker.sock`, `tcp://build:2376`, `ssh://user@build`, or `local` for a
    /// podman that runs containers itself.
    pub address: String,
    /// The service may be on another machine (`tcp://`, `ssh://`): it cannot see this machine's
    /// files, so bind mounts of them are meaningless there.
    pub remote: bool,
}

impl Endpoint {
    /// `docker at unix:///var/run/docker.sock`, `podman at ssh://build (remote)`.
    pub fn describe(&self, engine: &str) -> String {
        let remote = if self.remote { " (remote)" } else { "" };
        format!("{engine} at {}{remote}", self.address)
    }
}

/// Whether a service address may be on another machine: anything but a unix socket or a named
/// pipe on this one.
fn is_remote(address: &str) -> bool {
    !(address.starts_with("unix://") || address.starts_with("npipe://") || address == "local")
}

impl Engine {
    /// The service this engine's CLI talks to: `DOCKER_HOST` for docker (else its default
    /// socket), `CONTAINER_HOST` for podman (which then talks to a `podman system service`;
    /// else podman runs containers itself).
    pub fn endpoint(&self) -> Endpoint {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let address = match self.flavor() {
            Flavor::Docker => {
                var("DOCKER_HOST").unwrap_or_else(|| "unix:///var/run/docker.sock".into())
            }
            Flavor::Podman => var("CONTAINER_HOST").unwrap_or_else(|| "local".into()),
        };
        Endpoint {
            remote: is_remote(&address),
            address,
        }
    }

    /// Pushes the local image `image` to `target` (tagging it there) with the engine's own push
    /// and the user's own login, and returns the reference pinned to the manifest digest the
    /// registry now holds.
    pub fn push(&self, image: &str, target: &Reference) -> Result<Reference> {
        let named = target.to_string();
        match self.flavor() {
            Flavor::Docker => {
                self.checked(self.command().args(["tag", image, &named]))?;
                self.streamed(self.command().args(["push", &named]))?;
                let digests = self.repo_digests(&named)?;
                let repo = format!("{}@", target.repository_name());
                let digest = digests
                    .iter()
                    .find_map(|d| d.strip_prefix(&repo))
                    .ok_or_else(|| EngineError::Failed {
                        command: format!("docker image inspect {named}"),
                        status: "0".into(),
                        output: format!(
                            "docker pushed {named} but records no digest for it in {}",
                            target.repository_name()
                        ),
                    })?;
                Ok(target.pinned(digest))
            }
            Flavor::Podman => {
                let dir = tempfile::tempdir().map_err(|e| {
                    EngineError::io("creating a temporary directory for the pushed digest", e)
                })?;
                let file = dir.path().join("digest");
                let mut cmd = self.command();
                cmd.arg("push");
                if target.is_loopback() {
                    cmd.arg("--tls-verify=false");
                }
                cmd.arg("--digestfile").arg(&file).args([image, &named]);
                self.streamed(&mut cmd)?;
                let digest = std::fs::read_to_string(&file)
                    .map_err(|e| EngineError::io("reading the digest podman pushed", e))?;
                let digest = digest.trim();
                if !kerblam_registry::is_digest(digest) {
                    return Err(EngineError::Failed {
                        command: process::command_line(&cmd),
                        status: "0".into(),
                        output: format!("podman wrote {digest:?} as the pushed digest"),
                    });
                }
                Ok(target.pinned(digest))
            }
        }
    }

    /// Pulls `pinned` (`REGISTRY/REPO@sha256:...`) and checks that the engine now holds the image
    /// under exactly that digest.
    pub fn pull(&self, pinned: &Reference) -> Result<()> {
        let named = pinned.to_string();
        let mut cmd = self.command();
        cmd.arg("pull");
        if self.flavor() == Flavor::Podman && pinned.is_loopback() {
            cmd.arg("--tls-verify=false");
        }
        cmd.arg(&named);
        self.streamed(&mut cmd)?;
        if !self.image_exists(&named)? {
            return Err(EngineError::Failed {
                command: process::command_line(&cmd),
                status: "0".into(),
                output: format!(
                    "{} pulled {named} but holds no image by that digest",
                    self.name()
                ),
            });
        }
        if self.flavor() == Flavor::Docker && !self.repo_digests(&named)?.contains(&named) {
            return Err(EngineError::Failed {
                command: process::command_line(&cmd),
                status: "0".into(),
                output: format!("docker pulled {named} but records another digest for it"),
            });
        }
        Ok(())
    }

    /// `REPO@sha256:...` names the engine records for `image`.
    fn repo_digests(&self, image: &str) -> Result<Vec<String>> {
        let out = self.checked(self.command().args([
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            image,
        ]))?;
        Ok(serde_json::from_str::<Option<Vec<String>>>(out.trim())
            .ok()
            .flatten()
            .unwrap_or_default())
    }

    /// Runs `cmd` capturing its output; its stdout when it succeeds.
    fn checked(&self, cmd: &mut Command) -> Result<String> {
        let out = process::run_captured(cmd, self.name())?;
        if !out.status.success() {
            return Err(process::failed(cmd, out.status, process::output_tail(&out)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `cmd` with its progress on stderr.
    fn streamed(&self, cmd: &mut Command) -> Result<()> {
        let done = process::run_streamed(cmd, self.name(), None, true)?;
        if !done.status.success() {
            return Err(process::failed(cmd, done.status, done.tail));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_sockets_are_this_machine() {
        assert!(!is_remote("unix:///var/run/docker.sock"));
        assert!(!is_remote("local"));
        assert!(is_remote("tcp://127.0.0.1:2375"));
        assert!(is_remote("ssh://builder@build"));
        let e = Endpoint {
            address: "ssh://build".into(),
            remote: true,
        };
        assert_eq!(e.describe("docker"), "docker at ssh://build (remote)");
    }
}

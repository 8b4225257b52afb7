//! `Engine::build`: build an image from a build-context tar stream.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::engine::{Engine, Flavor};
use crate::error::{EngineError, Result};
use crate::process;
use crate::run::Network;

/// Which Docker builder to use. Podman always builds with buildah and ignores this.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Builder {
    /// What the user's environment selects: `DOCKER_BUILDKIT=1`/`true` means [`Builder::BuildKit`]
    /// (with its fallback), `0`/`false` [`Builder::Legacy`], anything else the CLI's own default
    /// (the legacy builder with Debian's docker.io 20.10).
    #[default]
    Default,
    /// The legacy builder: `DOCKER_BUILDKIT=0`.
    Legacy,
    /// BuildKit: `DOCKER_BUILDKIT=1`. A docker CLI ≥ 23 needs the buildx plugin for it; when the
    /// engine's CLI has neither buildx nor integrated BuildKit (CLI < 23), another `docker` on `PATH`
    /// that has one is used for the build, with a note on stderr.
    BuildKit,
}

impl Builder {
    /// [`Builder::Default`] made explicit from `DOCKER_BUILDKIT` when that is set to a boolean.
    pub fn resolve(self) -> Builder {
        self.resolve_with(std::env::var("DOCKER_BUILDKIT").ok().as_deref())
    }

    fn resolve_with(self, docker_buildkit: Option<&str>) -> Builder {
        if self != Builder::Default {
            return self;
        }
        match docker_buildkit.map(str::to_ascii_lowercase).as_deref() {
            Some("1" | "true") => Builder::BuildKit,
            Some("0" | "false") => Builder::Legacy,
            _ => Builder::Default,
        }
    }
}

/// Options of [`Engine::build`].
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Build without the engine's layer cache (`--no-cache`).
    pub no_cache: bool,
    /// Docker builder selection.
    pub builder: Builder,
    /// Image labels (`--label k=v`), in key order.
    pub labels: BTreeMap<String, String>,
    /// Network of `RUN` steps; `None` leaves the engine default (a bridge on a normal machine). With
    /// dockerd started `--bridge=none`, BuildKit `RUN` steps fail unless this is `Some`.
    pub network: Option<Network>,
    /// Do not echo the engine's output to stderr (it is still kept for error messages).
    pub quiet: bool,
}

impl Engine {
    /// Build the image `tag` from the build context `context`, a tar stream whose members are the
    /// context's files; `containerfile` is the recipe's path inside that tar (e.g. `Containerfile`
    /// or `src/dockerfiles/x.dockerfile`).
    ///
    /// The tar is streamed to the engine's stdin (`docker build -f F -` / `podman build -f F -`); no
    /// copy is made here. (Podman 4.3 accepts the `-` context and unpacks it into its own temp dir.)
    /// The engine's output goes to stderr as it comes, unless `opts.quiet`. On failure the error
    /// carries the last lines of that output.
    pub fn build(
        &self,
        tag: &str,
        containerfile: &str,
        context: &mut dyn Read,
        opts: &BuildOptions,
    ) -> Result<()> {
        if containerfile.is_empty() || Path::new(containerfile).is_absolute() {
            return Err(EngineError::InvalidInput(format!(
                "the Containerfile path must be relative to the build context, got {containerfile:?}"
            )));
        }
        let mut cmd = match (self.flavor(), opts.builder.resolve()) {
            (Flavor::Docker, Builder::BuildKit) => {
                let program = self.buildkit_program()?;
                let mut c = Command::new(program);
                c.env("DOCKER_BUILDKIT", "1")
                    .args(["build", "--progress", "plain"]);
                c
            }
            (Flavor::Docker, Builder::Legacy) => {
                let mut c = self.command();
                c.env("DOCKER_BUILDKIT", "0").arg("build");
                c
            }
            _ => {
                let mut c = self.command();
                c.env("BUILDKIT_PROGRESS", "plain").arg("build");
                c
            }
        };
        cmd.args(["-t", tag, "-f", containerfile]);
        // The legacy builder keeps the container of a failed step unless told otherwise; a failed
        // build must leave nothing behind. (BuildKit and podman remove them anyway.)
        cmd.arg("--force-rm");
        if opts.no_cache {
            cmd.arg("--no-cache");
        }
        for (k, v) in &opts.labels {
            cmd.arg("--label").arg(format!("{k}={v}"));
        }
        if let Some(net) = opts.network {
            cmd.args(["--network", net.as_arg()]);
        }
        cmd.arg("-");
        let done = process::run_streamed(&mut cmd, self.name(), Some(context), !opts.quiet)?;
        if done.status.success() {
            Ok(())
        } else {
            Err(process::failed(&cmd, done.status, done.tail))
        }
    }

    /// Whether this docker CLI can build with BuildKit: it has the buildx plugin, or it is older than
    /// 23 (BuildKit built in, selected by `DOCKER_BUILDKIT=1`).
    pub fn has_buildkit(&self) -> bool {
        cli_has_buildkit(self.program())
    }

    /// The docker program to run a BuildKit build with: this engine's, or another `docker` on PATH.
    fn buildkit_program(&self) -> Result<PathBuf> {
        if cli_has_buildkit(self.program()) {
            return Ok(self.program().to_path_buf());
        }
        let mine = which(self.program()).and_then(|p| p.canonicalize().ok());
        let other = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(|dir| dir.join("docker"))
            .filter(|p| p.is_file())
            .filter(|p| p.canonicalize().ok() != mine)
            .find(|p| cli_has_buildkit(p));
        match other {
            Some(p) => {
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "note: {} has no BuildKit (no buildx plugin); building with {}",
                    self.program().display(),
                    p.display()
                );
                Ok(p)
            }
            None => Err(EngineError::Unsupported(format!(
                "BuildKit was requested but {} has no buildx plugin and no other docker CLI on PATH has \
                 BuildKit; install the buildx plugin, use the legacy builder, or set KERBLAM_DOCKER to a \
                 docker CLI older than 23 (e.g. Debian's /usr/bin/docker)",
                self.program().display()
            ))),
        }
    }
}

/// The absolute path `program` runs as (itself if it has a slash).
fn which(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return Some(program.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn cli_has_buildkit(program: &Path) -> bool {
    let quiet = |args: &[&str]| {
        let mut c = Command::new(program);
        c.args(args);
        process::run_captured(&mut c, "docker").ok()
    };
    if quiet(&["buildx", "version"]).is_some_and(|o| o.status.success()) {
        return true;
    }
    let Some(out) = quiet(&["version", "--format", "{{.Client.Version}}"]) else {
        return false;
    };
    let v = String::from_utf8_lossy(&out.stdout);
    v.trim()
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok())
        .is_some_and(|major| major < 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_builder_follows_docker_buildkit() {
        assert_eq!(Builder::Default.resolve_with(Some("1")), Builder::BuildKit);
        assert_eq!(
            Builder::Default.resolve_with(Some("True")),
            Builder::BuildKit
        );
        assert_eq!(Builder::Default.resolve_with(Some("0")), Builder::Legacy);
        assert_eq!(Builder::Default.resolve_with(None), Builder::Default);
        assert_eq!(Builder::Default.resolve_with(Some("")), Builder::Default);
        assert_eq!(Builder::Legacy.resolve_with(Some("1")), Builder::Legacy);
    }

    #[test]
    fn relative_containerfile_required() {
        let e = Engine::new("/nonexistent/docker");
        let err = e
            .build(
                "t",
                "/abs/Containerfile",
                &mut [0u8; 0].as_slice(),
                &BuildOptions::default(),
            )
            .unwrap_err();
        assert!(err.to_string().contains("must be relative"), "{err}");
    }
}

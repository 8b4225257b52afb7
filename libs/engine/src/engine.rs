//! [`Engine`]: which CLI to drive, availability checks and image management.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::error::{EngineError, Result};
use crate::process::{self, Tail};

/// Which command-line dialect an engine speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// The `docker` CLI (Docker Engine daemon behind it).
    Docker,
    /// The `podman` CLI (daemonless; builds with buildah).
    Podman,
}

/// A container engine CLI: `docker`, `podman`, or a program that behaves like one of them.
///
/// Cheap to clone; every operation spawns the CLI.
#[derive(Debug, Clone)]
pub struct Engine {
    program: PathBuf,
    name: String,
    flavor: Flavor,
}

impl Engine {
    /// Docker: the program in `KERBLAM_DOCKER` if set, else `docker` from `PATH`.
    pub fn docker() -> Self {
        let program =
            std::env::var_os("KERBLAM_DOCKER").unwrap_or_else(|| OsString::from("docker"));
        Engine {
            program: program.into(),
            name: "docker".into(),
            flavor: Flavor::Docker,
        }
    }

    /// Podman: the program in `KERBLAM_PODMAN` if set, else `podman` from `PATH`.
    pub fn podman() -> Self {
        let program =
            std::env::var_os("KERBLAM_PODMAN").unwrap_or_else(|| OsString::from("podman"));
        Engine {
            program: program.into(),
            name: "podman".into(),
            flavor: Flavor::Podman,
        }
    }

    /// An engine run as `program` (a name on `PATH` or a path). Its flavor is [`Flavor::Podman`] when
    /// the file name contains `podman`, else [`Flavor::Docker`]; its name is that flavor's name.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        let program = program.into();
        let file = program
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let flavor = if file.contains("podman") {
            Flavor::Podman
        } else {
            Flavor::Docker
        };
        Engine {
            program,
            name: match flavor {
                Flavor::Docker => "docker".into(),
                Flavor::Podman => "podman".into(),
            },
            flavor,
        }
    }

    /// The engine by backend name: `docker` or `podman`; `None` for other names.
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "docker" => Some(Self::docker()),
            "podman" => Some(Self::podman()),
            _ => None,
        }
    }

    /// `docker` or `podman`, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The command-line dialect.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The program that is spawned.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// A [`Command`] for this engine's program (no arguments yet).
    pub fn command(&self) -> Command {
        Command::new(&self.program)
    }

    /// Check that the program exists and its service answers (`docker info` / `podman info`).
    ///
    /// Errors: [`EngineError::NotInstalled`] or [`EngineError::NotRunning`], whose
    /// [`help`](EngineError::help) says how to install or start it.
    pub fn check_available(&self) -> Result<()> {
        let mut cmd = self.command();
        cmd.args(["info", "--format", "{{json .}}"]);
        let out = process::run_captured(&mut cmd, &self.name)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(EngineError::NotRunning {
                engine: self.name.clone(),
                program: self.program.display().to_string(),
                output: process::output_tail(&out),
            })
        }
    }

    /// The engine's own version string (client version of the CLI).
    pub fn version(&self) -> Result<String> {
        let mut cmd = self.command();
        cmd.args(["version", "--format", "{{.Client.Version}}"]);
        self.stdout_of(&mut cmd)
    }

    /// Runs `cmd` and returns its stdout, trimmed; a non-zero exit is an error with its output.
    fn stdout_of(&self, cmd: &mut Command) -> Result<String> {
        let out = process::run_captured(cmd, &self.name)?;
        if !out.status.success() {
            return Err(process::failed(cmd, out.status, process::output_tail(&out)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Whether the engine holds an image named `tag`.
    pub fn image_exists(&self, tag: &str) -> Result<bool> {
        let mut cmd = self.command();
        match self.flavor {
            Flavor::Podman => {
                cmd.args(["image", "exists", tag]);
                let out = process::run_captured(&mut cmd, &self.name)?;
                match out.status.code() {
                    Some(0) => Ok(true),
                    Some(1) => Ok(false),
                    _ => Err(process::failed(
                        &cmd,
                        out.status,
                        process::output_tail(&out),
                    )),
                }
            }
            Flavor::Docker => {
                cmd.args(["image", "inspect", "--format", "{{.Id}}", tag]);
                let out = process::run_captured(&mut cmd, &self.name)?;
                if out.status.success() {
                    return Ok(true);
                }
                let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
                if err.contains("no such image") || err.contains("not found") {
                    Ok(false)
                } else {
                    Err(process::failed(
                        &cmd,
                        out.status,
                        process::output_tail(&out),
                    ))
                }
            }
        }
    }

    /// The image ID of `tag` (`sha256:<hex>`, the digest of its configuration), as
    /// `image inspect` reports it.
    pub fn image_id(&self, tag: &str) -> Result<String> {
        let mut cmd = self.command();
        cmd.args(["image", "inspect", "--format", "{{.Id}}", tag]);
        let id = self.stdout_of(&mut cmd)?;
        // podman prints the bare hex; docker prefixes it with the algorithm.
        Ok(if id.contains(':') {
            id
        } else {
            format!("sha256:{id}")
        })
    }

    /// Remove the image `tag` (untag it if it has other names). `Ok(false)` if it was not there.
    pub fn remove_image(&self, tag: &str) -> Result<bool> {
        if !self.image_exists(tag)? {
            return Ok(false);
        }
        let mut cmd = self.command();
        cmd.args(["image", "rm", tag]);
        let out = process::run_captured(&mut cmd, &self.name)?;
        if out.status.success() {
            Ok(true)
        } else {
            Err(process::failed(
                &cmd,
                out.status,
                process::output_tail(&out),
            ))
        }
    }

    /// Stream the image `tag` as an archive into `writer` (`docker save`; `podman save --format
    /// docker-archive`, which both engines can load). Returns the number of bytes written.
    pub fn save(&self, tag: &str, writer: &mut dyn Write) -> Result<u64> {
        let mut cmd = self.command();
        cmd.arg("save");
        if self.flavor == Flavor::Podman {
            cmd.args(["--format", "docker-archive"]);
        }
        cmd.arg(tag);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = process::spawn(&mut cmd, &self.name)?;
        let tail = Arc::new(Mutex::new(Tail::default()));
        let err = process::pump_lines(child.stderr.take().expect("piped"), tail.clone(), false);
        let mut stdout = child.stdout.take().expect("piped");
        let copied = io::copy(&mut stdout, writer);
        drop(stdout);
        let status = child.wait().map_err(|e| {
            EngineError::io(format!("waiting for `{}`", process::command_line(&cmd)), e)
        })?;
        let _ = err.join();
        let tail = tail.lock().unwrap_or_else(|p| p.into_inner()).text();
        if !status.success() {
            return Err(process::failed(&cmd, status, tail));
        }
        copied.map_err(|e| EngineError::io(format!("writing the image archive of {tag}"), e))
    }

    /// Load an image archive (`docker save`/`podman save` output) read from `reader`.
    ///
    /// Returns the names the engine reports as loaded (`Loaded image: NAME`; podman names images from
    /// Docker archives `localhost/NAME` when they have no registry). Docker 20.10 cannot load OCI
    /// archives; podman can.
    pub fn load(&self, reader: &mut dyn Read) -> Result<Vec<String>> {
        let mut cmd = self.command();
        cmd.arg("load");
        let done = process::run_streamed(&mut cmd, &self.name, Some(reader), false)?;
        if !done.status.success() {
            return Err(process::failed(&cmd, done.status, done.tail));
        }
        Ok(loaded_names(&done.tail))
    }

    /// How the engine runs containers ([`Security`]), from one `info` call: rootless (docker's
    /// `SecurityOptions` hold `name=rootless`; podman's `Host.Security.Rootless`), and whether
    /// its cgroups are version 2 (`CgroupVersion` / `Host.CgroupsVersion`).
    pub fn security(&self) -> Result<Security> {
        let format = match self.flavor {
            Flavor::Docker => "{{json .SecurityOptions}}|{{.CgroupVersion}}",
            Flavor::Podman => "{{.Host.Security.Rootless}}|{{.Host.CgroupsVersion}}",
        };
        let mut cmd = self.command();
        cmd.args(["info", "--format", format]);
        let out = process::run_captured(&mut cmd, &self.name)?;
        if !out.status.success() {
            return Err(EngineError::NotRunning {
                engine: self.name.clone(),
                program: self.program.display().to_string(),
                output: process::output_tail(&out),
            });
        }
        Ok(Security::parse(
            self.flavor,
            &String::from_utf8_lossy(&out.stdout),
        ))
    }

    /// Where the engine keeps its images and where it stages builds, as it reports them: docker's
    /// `DockerRootDir` for both (the daemon unpacks build contexts under `<root>/tmp`); podman's
    /// graph root, and its image copy temp dir (`$TMPDIR` of the podman process, else
    /// `/var/tmp`), where it unpacks a `build -` context and writes layer blobs. The paths are the
    /// engine's: with a remote daemon they need not exist on this machine.
    pub fn storage_dirs(&self) -> Result<StorageDirs> {
        let query = |format: &str| -> Result<Option<String>> {
            let mut cmd = self.command();
            cmd.args(["info", "--format", format]);
            let out = process::run_captured(&mut cmd, &self.name)?;
            if !out.status.success() {
                return Ok(None);
            }
            let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
            Ok((!v.is_empty() && v != "<no value>").then_some(v))
        };
        let field = match self.flavor {
            Flavor::Docker => "{{.DockerRootDir}}",
            Flavor::Podman => "{{.Store.GraphRoot}}",
        };
        let Some(storage) = query(field)? else {
            return Err(EngineError::Unsupported(format!(
                "{} info does not report its storage directory ({field})",
                self.name
            )));
        };
        let storage = PathBuf::from(storage);
        let temp = match self.flavor {
            Flavor::Docker => storage.join("tmp"),
            // Older podman has no ImageCopyTmpDir field; it then uses $TMPDIR, else /var/tmp.
            Flavor::Podman => query("{{.Store.ImageCopyTmpDir}}")?
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    std::env::var_os("TMPDIR")
                        .filter(|t| !t.is_empty())
                        .map_or_else(|| PathBuf::from("/var/tmp"), PathBuf::from)
                }),
        };
        Ok(StorageDirs { storage, temp })
    }
}

/// How an engine runs containers ([`Engine::security`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Security {
    /// The engine runs without root: container root is the calling user, other container ids are
    /// the user's subordinate ids.
    pub rootless: bool,
    /// Its cgroups are version 2 (rootless engines can set resource limits only there).
    pub cgroup_v2: bool,
}

impl Security {
    /// Reads the answer of the `info` format [`Engine::security`] asks for.
    pub fn parse(flavor: Flavor, answer: &str) -> Security {
        let (first, cgroup) = answer.trim().split_once('|').unwrap_or((answer.trim(), ""));
        let rootless = match flavor {
            Flavor::Docker => first.contains("name=rootless"),
            Flavor::Podman => first.trim() == "true",
        };
        let cgroup = cgroup.trim();
        Security {
            rootless,
            cgroup_v2: cgroup == "2" || cgroup == "v2",
        }
    }
}

/// The directories of an engine ([`Engine::storage_dirs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageDirs {
    /// Where images and container layers live (docker's root dir, podman's graph root).
    pub storage: PathBuf,
    /// Where the engine unpacks build contexts and stages layer blobs while building.
    pub temp: PathBuf,
}

/// Names from `Loaded image: X` / `Loaded image(s): X,Y` / `Loaded image ID: X` lines.
fn loaded_names(output: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in output.lines() {
        let line = line.trim();
        let rest = ["Loaded image(s):", "Loaded image ID:", "Loaded image:"]
            .iter()
            .find_map(|p| line.strip_prefix(p));
        if let Some(rest) = rest {
            names.extend(
                rest.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavor_from_program_name() {
        assert_eq!(Engine::new("/usr/bin/podman").flavor(), Flavor::Podman);
        assert_eq!(Engine::new("podman-remote").name(), "podman");
        assert_eq!(
            Engine::new("/usr/local/bin/docker").flavor(),
            Flavor::Docker
        );
        assert!(Engine::by_name("apptainer").is_none());
    }

    #[test]
    fn parses_security_answers() {
        let d = Security::parse(Flavor::Docker, "[\"name=seccomp,profile=default\"]|1\n");
        assert_eq!(d, Security::default());
        let d = Security::parse(
            Flavor::Docker,
            "[\"name=seccomp,profile=default\",\"name=rootless\",\"name=cgroupns\"]|2",
        );
        assert!(d.rootless && d.cgroup_v2);
        let p = Security::parse(Flavor::Podman, "true|v1");
        assert!(p.rootless && !p.cgroup_v2);
        let p = Security::parse(Flavor::Podman, "false|v2\n");
        assert!(!p.rootless && p.cgroup_v2);
    }

    #[test]
    fn parses_loaded_names() {
        let out = "Copying blob sha256:abc\nLoaded image: localhost/x:1\nLoaded image(s): a:1, b:2\n\
                   Loaded image ID: sha256:0123\n";
        assert_eq!(
            loaded_names(out),
            ["localhost/x:1", "a:1", "b:2", "sha256:0123"]
        );
    }
}

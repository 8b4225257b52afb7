//! `Engine::run`: run a container with bind mounts and report its exit code.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;

use kerblam_backend_api::Owner;

use crate::engine::{Engine, Flavor};
use crate::error::{EngineError, Result};
use crate::process;

/// The network a container (or a build's `RUN` steps) gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Network {
    /// No network at all (`--network none`), the default.
    #[default]
    None,
    /// The host's network stack (`--network host`), e.g. to reach a server on 127.0.0.1.
    Host,
}

impl Network {
    /// The value of `--network`.
    pub fn as_arg(self) -> &'static str {
        match self {
            Network::None => "none",
            Network::Host => "host",
        }
    }
}

/// A bind mount of a host path into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Absolute host path; it must exist.
    pub host: PathBuf,
    /// Absolute path inside the container.
    pub container: String,
    /// Mount read-only.
    pub read_only: bool,
}

/// Options of [`Engine::run`].
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Bind mounts, in order.
    pub mounts: Vec<Mount>,
    /// Working directory inside the container (`-w`); `None` keeps the image's.
    pub workdir: Option<String>,
    /// Replace the image's entrypoint: the first element is the program (`--entrypoint`), the rest
    /// come before the run's arguments. `None` keeps the image's entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Environment variables (`-e K=V`).
    pub env: BTreeMap<String, String>,
    /// Network; [`Network::None`] unless set.
    pub network: Network,
    /// Run as this user and group (`--user UID:GID`); `None` keeps the image's user.
    pub user: Option<Owner>,
    /// Rootless podman: the calling user keeps their id in the container (`--userns=keep-id`).
    pub keep_id: bool,
    /// A private, writable `HOME`: a tmpfs at [`HOME_IN_CONTAINER`] (mode 0700, owned by the
    /// container's user), with `HOME` set to it, so that tools which write there work whoever
    /// the container runs as, on a read-only root filesystem too.
    pub tmpfs_home: bool,
    /// The least privilege for an image that is not the user's own; `None` keeps the engine's
    /// defaults.
    pub confine: Option<Confinement>,
}

/// Where [`RunOptions::tmpfs_home`] mounts `HOME`.
pub const HOME_IN_CONTAINER: &str = "/kerblam-home";

/// What a confined container gets: every capability dropped (`--cap-drop=ALL`) but `cap_add`,
/// no new privileges (`--security-opt=no-new-privileges`: no set-user-ID program gains any), a
/// read-only root filesystem with tmpfs `/tmp` and `/var/tmp`, and at most `pids_limit`
/// processes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confinement {
    /// Capabilities given back (e.g. `DAC_OVERRIDE`, for root to write into the user's data
    /// directories).
    pub cap_add: Vec<String>,
    /// The process limit (`--pids-limit`); `None` when the engine cannot set one.
    pub pids_limit: Option<u32>,
}

impl Confinement {
    /// The process limit of a confined run: enough for a parallel make, not for a fork bomb.
    pub const PIDS_LIMIT: u32 = 1024;
}

/// The `run` arguments for who the container runs as and what it may do (`--user`,
/// `--userns`, `HOME`, the [`Confinement`]), for `flavor`.
pub fn identity_args(flavor: Flavor, opts: &RunOptions) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    if opts.keep_id {
        a.push("--userns=keep-id".into());
    }
    if let Some(u) = &opts.user {
        a.push(format!("--user={}", u.spec()));
    }
    if opts.tmpfs_home {
        match flavor {
            // Docker passes tmpfs options to the kernel: uid= and gid= own it.
            Flavor::Docker => {
                let owner = match &opts.user {
                    Some(u) => format!(",uid={},gid={}", u.uid, u.gid),
                    // The image's user is not known here: anyone may write (sticky, as /tmp).
                    None => String::new(),
                };
                let mode = if opts.user.is_some() { "0700" } else { "1777" };
                a.push(format!(
                    "--tmpfs={HOME_IN_CONTAINER}:rw,nosuid,nodev,mode={mode}{owner}"
                ));
            }
            // Podman 4 refuses uid= in --tmpfs; `U=true` gives the mount to the container's user.
            Flavor::Podman => a.push(format!(
                "--mount=type=tmpfs,destination={HOME_IN_CONTAINER},tmpfs-mode=0700,U=true"
            )),
        }
        a.push(format!("--env=HOME={HOME_IN_CONTAINER}"));
    }
    if let Some(c) = &opts.confine {
        a.push("--cap-drop=ALL".into());
        for cap in &c.cap_add {
            a.push(format!("--cap-add={cap}"));
        }
        a.push("--security-opt=no-new-privileges".into());
        a.push("--read-only".into());
        for t in ["/tmp", "/var/tmp"] {
            a.push(format!("--tmpfs={t}:rw,nosuid,nodev,mode=1777"));
        }
        if let Some(n) = c.pids_limit {
            a.push(format!("--pids-limit={n}"));
        }
    }
    a
}

impl Engine {
    /// Run `image` with `args` (appended to the entrypoint) and return the container's exit code
    /// (128 + N when the engine process was killed by signal N).
    ///
    /// Always `--rm`, `--pull never` (nothing is ever fetched), `--network none` unless
    /// `opts.network` says otherwise. The container's stdout and stderr are the caller's; stdin is
    /// closed. Who it runs as and what it may do come from `opts` ([`identity_args`]); as root,
    /// podman refuses `--userns=keep-id`, so only a rootless podman's caller asks for it.
    ///
    /// Errors (before anything runs) when a mount's host path is not absolute or missing, or the
    /// image is not in the engine.
    pub fn run(&self, image: &str, args: &[String], opts: &RunOptions) -> Result<i32> {
        self.run_cancellable(image, args, opts, &|| false)
    }

    /// [`Engine::run`] that stops the container when `cancelled` returns true (polled ten times a
    /// second). The container is named `kerblam-<pid>-<n>` so that it can be killed by name
    /// (`docker kill` / `podman kill`): a signal to the engine CLI alone would not do, since a
    /// pipe's shell or make running as the container's PID 1 ignores SIGTERM. The exit code is then
    /// the killed container's (137).
    pub fn run_cancellable(
        &self,
        image: &str,
        args: &[String],
        opts: &RunOptions,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<i32> {
        static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let name = format!(
            "kerblam-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut cmd = self.run_command(&name, image, args, opts)?;
        if !self.image_exists(image)? {
            return Err(EngineError::InvalidInput(format!(
                "image {image} is not in {}; build or load it first",
                self.name()
            )));
        }
        cmd.stdin(Stdio::null());
        let mut child = process::spawn(&mut cmd, self.name())?;
        let waiting =
            |e| EngineError::io(format!("waiting for `{}`", process::command_line(&cmd)), e);
        let status = self.wait_or_kill(&mut child, &name, cancelled, waiting)?;
        Ok(exit_code(status))
    }

    /// The `run` command of the container `name`: `image` with `args`, as `opts` say. Refuses a
    /// mount that an engine cannot carry and an empty entrypoint override.
    fn run_command(
        &self,
        name: &str,
        image: &str,
        args: &[String],
        opts: &RunOptions,
    ) -> Result<std::process::Command> {
        let mut cmd = self.command();
        cmd.args([
            "run",
            "--name",
            name,
            "--rm",
            "--pull",
            "never",
            "--network",
            opts.network.as_arg(),
        ]);
        cmd.args(identity_args(self.flavor(), opts));
        for m in &opts.mounts {
            cmd.arg("--mount").arg(mount_arg(m)?);
        }
        if let Some(w) = &opts.workdir {
            cmd.args(["-w", w]);
        }
        for (k, v) in &opts.env {
            cmd.arg("-e").arg(format!("{k}={v}"));
        }
        let mut rest: &[String] = &[];
        if let Some(ep) = &opts.entrypoint {
            let (first, tail) = ep.split_first().ok_or_else(|| {
                EngineError::InvalidInput("the entrypoint override is empty".into())
            })?;
            cmd.args(["--entrypoint", first]);
            rest = tail;
        }
        cmd.arg(image).args(rest).args(args);
        Ok(cmd)
    }

    /// Waits for the engine CLI running the container `name`, polling ten times a second. When
    /// `cancelled`: `kill NAME` once a second until the CLI exits (the container may not exist yet
    /// when cancellation comes right after the spawn); after 30 s, kill the CLI and force-remove
    /// the container. `waiting` makes the error of a failed wait.
    fn wait_or_kill(
        &self,
        child: &mut std::process::Child,
        name: &str,
        cancelled: &dyn Fn() -> bool,
        waiting: impl Fn(std::io::Error) -> EngineError,
    ) -> Result<std::process::ExitStatus> {
        let mut last_kill: Option<std::time::Instant> = None;
        let mut first_kill: Option<std::time::Instant> = None;
        loop {
            if let Some(status) = child.try_wait().map_err(&waiting)? {
                return Ok(status);
            }
            if first_kill.is_some() || cancelled() {
                let now = std::time::Instant::now();
                let first = *first_kill.get_or_insert(now);
                if last_kill
                    .is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_secs(1))
                {
                    let mut kill = self.command();
                    kill.args(["kill", name]);
                    let _ = process::run_captured(&mut kill, self.name());
                    last_kill = Some(now);
                }
                if now.duration_since(first) > std::time::Duration::from_secs(30) {
                    let _ = child.kill();
                    let mut rm = self.command();
                    rm.args(["rm", "-f", name]);
                    let _ = process::run_captured(&mut rm, self.name());
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// `type=bind,source=...,target=...[,readonly]`, refusing what that syntax cannot carry.
fn mount_arg(m: &Mount) -> Result<String> {
    let host = m.host.to_str().ok_or_else(|| {
        EngineError::InvalidInput(format!("mount source {} is not UTF-8", m.host.display()))
    })?;
    if !m.host.is_absolute() {
        return Err(EngineError::InvalidInput(format!(
            "mount source {host} is not an absolute path"
        )));
    }
    if !m.container.starts_with('/') {
        return Err(EngineError::InvalidInput(format!(
            "mount target {} is not an absolute path",
            m.container
        )));
    }
    for p in [host, m.container.as_str()] {
        if p.contains([',', '\n', '"']) {
            return Err(EngineError::InvalidInput(format!(
                "mount path {p:?} contains a comma, quote or newline, which engines cannot mount"
            )));
        }
    }
    if !m.host.exists() {
        return Err(EngineError::InvalidInput(format!(
            "mount source {host} does not exist"
        )));
    }
    let mut s = format!("type=bind,source={host},target={}", m.container);
    if m.read_only {
        s.push_str(",readonly");
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_confinement_arguments() {
        assert!(identity_args(Flavor::Docker, &RunOptions::default()).is_empty());
        let user = Owner {
            uid: 1001,
            gid: 1002,
        };
        let opts = RunOptions {
            user: Some(user),
            tmpfs_home: true,
            confine: Some(Confinement {
                cap_add: vec!["DAC_OVERRIDE".into()],
                pids_limit: Some(1024),
            }),
            ..RunOptions::default()
        };
        assert_eq!(
            identity_args(Flavor::Docker, &opts),
            [
                "--user=1001:1002",
                "--tmpfs=/kerblam-home:rw,nosuid,nodev,mode=0700,uid=1001,gid=1002",
                "--env=HOME=/kerblam-home",
                "--cap-drop=ALL",
                "--cap-add=DAC_OVERRIDE",
                "--security-opt=no-new-privileges",
                "--read-only",
                "--tmpfs=/tmp:rw,nosuid,nodev,mode=1777",
                "--tmpfs=/var/tmp:rw,nosuid,nodev,mode=1777",
                "--pids-limit=1024",
            ]
        );
        let rootless = RunOptions {
            keep_id: true,
            tmpfs_home: true,
            ..RunOptions::default()
        };
        assert_eq!(
            identity_args(Flavor::Podman, &rootless),
            [
                "--userns=keep-id",
                "--mount=type=tmpfs,destination=/kerblam-home,tmpfs-mode=0700,U=true",
                "--env=HOME=/kerblam-home",
            ]
        );
    }

    #[test]
    fn mount_arguments() {
        let dir = std::env::temp_dir();
        let m = Mount {
            host: dir.clone(),
            container: "/data".into(),
            read_only: true,
        };
        assert_eq!(
            mount_arg(&m).unwrap(),
            format!("type=bind,source={},target=/data,readonly", dir.display())
        );
        let rel = Mount {
            host: "rel/dir".into(),
            ..m.clone()
        };
        assert!(
            mount_arg(&rel)
                .unwrap_err()
                .to_string()
                .contains("rel/dir is not an absolute")
        );
        let comma = Mount {
            host: "/a,b".into(),
            ..m.clone()
        };
        assert!(mount_arg(&comma).unwrap_err().to_string().contains("comma"));
        let missing = Mount {
            host: "/definitely/not/here".into(),
            ..m
        };
        assert!(
            mount_arg(&missing)
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
    }
}

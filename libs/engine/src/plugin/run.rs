//! Action `run`: run the built (or loaded) image with the plan's mounts, workdir and entrypoint plus
//! `options.args`, with no network unless `options.network` is `host`; report its exit code.
//!
//! Who the container runs as ([`identity`]): with `options.owner` set, on a rootful engine the
//! container runs as that user (`--user UID:GID`, a tmpfs `HOME`), so that its outputs are theirs;
//! a rootless podman keeps the caller's id (`--userns=keep-id`); a rootless docker already maps
//! container root to the caller. A pipe whose manifest says `execution.user = "root"` runs as root
//! instead, and on a rootful engine what the run created under the writable mounts is given back
//! to the owner afterwards ([`give_back`]); nothing else is touched. With `options.confine` (a
//! replay) the container also gets the least privilege of [`Confinement`].

use std::fs::File;
use std::path::Path;

use kerblam_archive::ReplayArchive;
use kerblam_backend_api::confine::mount_dir;
use kerblam_backend_api::ownership::{Created, Snapshot};
use kerblam_backend_api::plan::RunUser;
use kerblam_backend_api::{ErrorMessage, ExecuteRequest, ExecuteResult, Host, Owner};

use super::errors;
use super::pipe::pipe;
use crate::{Confinement, Engine, Flavor, Mount, Network, RunOptions, Security};

/// Runs the plan's image with `engine`.
pub fn run(
    engine: &Engine,
    req: &ExecuteRequest,
    host: &Host<'_>,
) -> Result<ExecuteResult, ErrorMessage> {
    let plan = &req.plan;
    let network = network(req.options.network.as_deref())?;
    let root = Path::new(&req.paths.root);
    let mounts = mounts(req, root)?;
    let service = engine.endpoint();
    if service.remote {
        return Err(remote_refused(engine, &service));
    }
    engine.check_available().map_err(errors::engine)?;
    let tag = &plan.image.tag;
    ensure_image(engine, req, host)?;
    host.check_cancelled()?;
    let who = identity(engine, req)?;
    let opts = RunOptions {
        mounts,
        workdir: Some(plan.workdir.clone()),
        entrypoint: (!plan.entrypoint.is_empty()).then(|| plan.entrypoint.clone()),
        network,
        user: who.user,
        keep_id: who.keep_id,
        tmpfs_home: who.tmpfs_home,
        confine: who.confine.clone(),
        ..RunOptions::default()
    };
    announce(engine, tag, network, &who, host);
    let before = who
        .give_back_to
        .map(|_| Snapshot::take(&writable_dirs(&opts.mounts)));
    let cancelled = || host.is_cancelled();
    let ran = engine.run_cancellable(tag, &req.options.args, &opts, &cancelled);
    // Whatever the run's outcome, what it created goes back to the user.
    let gave = match (who.give_back_to, &before) {
        (Some(owner), Some(snapshot)) => {
            give_back(engine, tag, &opts.mounts, snapshot, owner, host)
        }
        _ => Ok(()),
    };
    let code = ran.map_err(errors::engine)?;
    gave?;
    Ok(ExecuteResult {
        artifacts: vec![],
        exit_code: Some(code),
        notes: vec![],
        pushed: None,
    })
}

/// Makes sure the plan's image is in `engine`: pulls it by its digest when the plan pins one and
/// no image archive is given, or loads the image archive the options name (tagging what it holds
/// as the plan's image when the other engine named it differently).
fn ensure_image(
    engine: &Engine,
    req: &ExecuteRequest,
    host: &Host<'_>,
) -> Result<(), ErrorMessage> {
    let tag = &req.plan.image.tag;
    if req.options.image_archive.is_none()
        && let Some(pinned) = kerblam_registry::Reference::parse_pinned(tag)
        && !engine.image_exists(tag).map_err(errors::engine)?
    {
        host.info(&format!(
            "{tag} is not in {}: pulling it by its digest",
            engine.name()
        ));
        engine.pull(&pinned).map_err(errors::engine)?;
    }
    if !engine.image_exists(tag).map_err(errors::engine)? {
        let Some(archive) = &req.options.image_archive else {
            return Err(ErrorMessage::invalid_input(format!(
                "image {tag} is not in {}",
                engine.name()
            ))
            .with_help(
                "build it with `kerblam package`, load it with `docker load`/`podman load`, or replay an archive made with --embed-image",
            ));
        };
        let loaded = load(engine, Path::new(archive), host)?;
        if !engine.image_exists(tag).map_err(errors::engine)? {
            retag(engine, &loaded, tag)?;
        }
        if !engine.image_exists(tag).map_err(errors::engine)? {
            return Err(ErrorMessage::invalid_input(format!(
                "{archive} was loaded into {} but holds no image named {tag}",
                engine.name()
            )));
        }
    }
    Ok(())
}

/// Tells the user how the image runs: its network and identity, a root run refused, and the
/// process limit a rootless engine cannot set.
fn announce(engine: &Engine, tag: &str, network: Network, who: &Identity, host: &Host<'_>) {
    host.info(&format!(
        "running {tag} with {} (network {}{})",
        engine.name(),
        network.as_arg(),
        who.describe()
    ));
    if who.root_refused {
        host.warn(&format!(
            "the pipe asks to run as root (execution.user); this replay runs it as {} instead, since giving back what root made would run the image's own chown with privileges: replay with --trust-image if the image is yours",
            who.user.map(|u| u.spec()).unwrap_or_default()
        ));
    }
    if who.confine.as_ref().is_some_and(|c| c.pids_limit.is_none()) {
        host.info(&format!(
            "no process limit: a rootless {} on cgroups v1 cannot set one",
            engine.name()
        ));
    }
}

/// A remote engine cannot mount this machine's directories: refuse before anything runs.
pub(crate) fn remote_refused(engine: &Engine, service: &crate::Endpoint) -> ErrorMessage {
    ErrorMessage::unsupported(format!(
        "{} talks to the engine at {}, which may be on another machine: it cannot mount this machine's data directories, so a pipe cannot run there",
        engine.name(),
        service.address
    ))
    .with_help(match engine.flavor() {
        Flavor::Docker => "run on the engine's machine, or unset DOCKER_HOST to use the local engine; package and freeze do work with a remote engine",
        Flavor::Podman => "run on the engine's machine, or unset CONTAINER_HOST to use the local podman; package and freeze do work with a remote engine",
    })
}

/// Who a container runs as and what it may do ([`identity`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// `--user`.
    pub user: Option<Owner>,
    /// `--userns=keep-id` (rootless podman).
    pub keep_id: bool,
    /// A tmpfs `HOME`.
    pub tmpfs_home: bool,
    /// The least privilege of a replay.
    pub confine: Option<Confinement>,
    /// The container runs as root on a rootful engine for a pipe that asked for it: what it
    /// creates under the writable mounts goes back to this user afterwards.
    pub give_back_to: Option<Owner>,
    /// The pipe asked to run as root, and runs as the owner instead (see [`decide`]).
    pub root_refused: bool,
}

impl Identity {
    /// `, as UID:GID, confined` and the like, for the "running" line.
    fn describe(&self) -> String {
        let mut s = String::new();
        if let Some(u) = &self.user {
            s.push_str(&format!(", as {}", u.spec()));
        }
        if self.keep_id {
            s.push_str(", keeping the user's id");
        }
        if self.confine.is_some() {
            s.push_str(", confined");
        }
        s
    }
}

/// How to run the plan's image with `engine` for `req` (see [`decide`]).
fn identity(engine: &Engine, req: &ExecuteRequest) -> Result<Identity, ErrorMessage> {
    if req.options.owner.is_none() && !req.options.confine {
        return Ok(Identity::default());
    }
    let security = engine.security().map_err(errors::engine)?;
    let as_root = req
        .plan
        .pipe
        .as_ref()
        .is_some_and(|p| p.user == RunUser::Root);
    // SAFETY: geteuid cannot fail.
    let kerblam_is_root = unsafe { libc::geteuid() } == 0;
    Ok(decide(
        engine.flavor(),
        security,
        req.options.owner,
        as_root,
        req.options.confine,
        kerblam_is_root,
    ))
}

/// Who the container runs as, for an engine with `security`, a run whose outputs must be
/// `owner`'s (if known), a pipe that runs `as_root` or not, `confine`d (a replay) or not, by a
/// kerblam that runs as root (`kerblam_is_root`, under `sudo`) or not:
///
/// - rootless podman: `--userns=keep-id` (the container runs as the caller, who owns its files),
///   unless the pipe runs as root: container root is the caller already;
/// - rootless docker: nothing (container root is the caller; `--user` would give a subordinate id);
/// - rootful: `--user` the owner with a tmpfs `HOME`; a pipe that runs as root gets `--user 0:0`
///   and its new files are given back to the owner afterwards. A confined one does not, when
///   kerblam is not root: giving the files back would then take a container of the image running
///   its own `chown` with `CAP_CHOWN`, which a stranger's image may have replaced. It runs as
///   the owner ([`Identity::root_refused`]);
/// - confined: every capability dropped (but `DAC_OVERRIDE` for a root pipe writing into another
///   user's directories), no new privileges, a read-only root filesystem with tmpfs `/tmp` and
///   `HOME`, and a process limit where the engine can set one.
pub fn decide(
    flavor: Flavor,
    security: Security,
    owner: Option<Owner>,
    as_root: bool,
    confine: bool,
    kerblam_is_root: bool,
) -> Identity {
    let root = Owner { uid: 0, gid: 0 };
    let mut id = Identity::default();
    if security.rootless {
        if flavor == Flavor::Podman && !as_root {
            id.keep_id = true;
            id.tmpfs_home = true;
        }
    } else if let Some(o) = owner {
        let root_refused = as_root && confine && !o.is_root() && !kerblam_is_root;
        if as_root && !root_refused {
            id.user = Some(root);
            id.give_back_to = (!o.is_root()).then_some(o);
        } else {
            id.user = Some(o);
            id.tmpfs_home = !o.is_root();
            id.root_refused = root_refused;
        }
    }
    if confine {
        id.tmpfs_home = true;
        let cap_add = if id.give_back_to.is_some() {
            vec!["DAC_OVERRIDE".to_string()]
        } else {
            vec![]
        };
        id.confine = Some(Confinement {
            cap_add,
            pids_limit: (!security.rootless || security.cgroup_v2)
                .then_some(Confinement::PIDS_LIMIT),
        });
    }
    id
}

/// The host directories of the writable mounts.
fn writable_dirs(mounts: &[Mount]) -> Vec<std::path::PathBuf> {
    mounts
        .iter()
        .filter(|m| !m.read_only)
        .map(|m| m.host.clone())
        .collect()
}

/// Gives what the run created under the writable mounts (since `before`) back to `owner`: with
/// `lchown` when kerblam runs as root, else with short containers of `tag` running `chown -h` as
/// root with only `CAP_CHOWN` (and `CAP_DAC_READ_SEARCH`, to reach into directories the run made
/// unreadable), the same mounts and no network. A directory the user could not read is listed on
/// the next round, once it is theirs.
fn give_back(
    engine: &Engine,
    tag: &str,
    mounts: &[Mount],
    before: &Snapshot,
    owner: Owner,
    host: &Host<'_>,
) -> Result<(), ErrorMessage> {
    // SAFETY: geteuid cannot fail.
    let as_root = unsafe { libc::geteuid() } == 0;
    let mut total = 0;
    let mut previous: Option<Created> = None;
    loop {
        let created = before.created(owner);
        if created.is_empty() {
            break;
        }
        if previous.as_ref() == Some(&created) {
            let names: Vec<String> = created
                .tops
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            return Err(ErrorMessage::backend(format!(
                "could not give what the pipe created as root back to {}: {}",
                owner.spec(),
                names.join(", ")
            ))
            .with_help(chown_help(owner, mounts)));
        }
        total += created.all.len();
        if as_root {
            kerblam_backend_api::ownership::restore(&created, owner)
                .map_err(|e| ErrorMessage::backend(e).with_help(chown_help(owner, mounts)))?;
        } else {
            chown_in_container(engine, tag, mounts, &created.all, owner)?;
        }
        previous = Some(created);
    }
    if total > 0 {
        host.info(&format!(
            "gave the {total} files and directories the pipe created as root back to {}",
            owner.spec()
        ));
    }
    Ok(())
}

fn chown_help(owner: Owner, mounts: &[Mount]) -> String {
    let dirs: Vec<String> = writable_dirs(mounts)
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    format!(
        "give them back by hand: `sudo chown -R {} {}`",
        owner.spec(),
        dirs.join(" ")
    )
}

/// `chown -h OWNER PATHS...` in containers of `tag` as root with only `CAP_CHOWN` and
/// `CAP_DAC_READ_SEARCH`, the host paths translated to the mounts' container paths.
fn chown_in_container(
    engine: &Engine,
    tag: &str,
    mounts: &[Mount],
    paths: &[std::path::PathBuf],
    owner: Owner,
) -> Result<(), ErrorMessage> {
    let resolved: Vec<(std::path::PathBuf, &Mount)> = mounts
        .iter()
        .filter(|m| !m.read_only)
        .map(|m| (m.host.canonicalize().unwrap_or_else(|_| m.host.clone()), m))
        .collect();
    let mut inside = Vec::with_capacity(paths.len());
    for p in paths {
        // The deepest mount holding it: that is where the container sees it.
        let Some((rest, m)) = resolved
            .iter()
            .filter_map(|(h, m)| p.strip_prefix(h).ok().map(|r| (r, *m)))
            .min_by_key(|(r, _)| r.components().count())
        else {
            continue;
        };
        let base = m.container.trim_end_matches('/');
        inside.push(format!("{base}/{}", rest.display()));
    }
    let opts = RunOptions {
        mounts: mounts.to_vec(),
        entrypoint: Some(vec!["chown".into(), "-h".into(), owner.spec()]),
        user: Some(Owner { uid: 0, gid: 0 }),
        confine: Some(Confinement {
            cap_add: vec!["CHOWN".into(), "DAC_READ_SEARCH".into()],
            pids_limit: None,
        }),
        ..RunOptions::default()
    };
    for chunk in inside.chunks(512) {
        let code = engine.run(tag, chunk, &opts).map_err(errors::engine)?;
        if code != 0 {
            return Err(ErrorMessage::backend(format!(
                "giving the files the pipe created as root back to {} failed: `chown` in {tag} exited with code {code}",
                owner.spec()
            ))
            .with_help(chown_help(owner, mounts)));
        }
    }
    Ok(())
}

/// `none` (default) or `host`; a bridge is never used.
fn network(value: Option<&str>) -> Result<Network, ErrorMessage> {
    match value {
        None | Some("none") => Ok(Network::None),
        Some("host") => Ok(Network::Host),
        Some(other) => Err(ErrorMessage::invalid_input(format!(
            "unknown network {other:?}; expected \"none\" or \"host\""
        ))),
    }
}

/// The plan's mounts under `root`, creating missing host directories. A host path that is absolute
/// or climbs out of the root with `..` is refused; a symlink in the project (a data dir on another
/// disk) is followed. A replay's host has checked that none leaves its destination.
fn mounts(req: &ExecuteRequest, root: &Path) -> Result<Vec<Mount>, ErrorMessage> {
    let mut out = Vec::with_capacity(req.plan.mounts.len());
    for m in &req.plan.mounts {
        let host = mount_dir(root, &m.host).map_err(|e| {
            ErrorMessage::invalid_input(format!("refusing to mount {}: {e}", m.host))
        })?;
        out.push(Mount {
            host,
            container: m.container.clone(),
            read_only: m.read_only,
        });
    }
    Ok(out)
}

/// Loads an image archive: a replay archive's embedded `image.tar` (streamed and checked against its
/// checksum), or a `docker save`/`podman save` archive.
fn load(engine: &Engine, path: &Path, host: &Host<'_>) -> Result<Vec<String>, ErrorMessage> {
    host.info(&format!(
        "loading the image from {} into {}",
        path.display(),
        engine.name()
    ));
    if let Ok(archive) = ReplayArchive::open(path) {
        if !archive.has_image() {
            return Err(ErrorMessage::invalid_input(format!(
                "{} embeds no image (package it with --embed-image)",
                path.display()
            )));
        }
        let cancelled = || host.is_cancelled();
        let (mut out, mut input) = pipe(&cancelled);
        return std::thread::scope(|s| {
            let copier = s.spawn(move || match archive.copy_image_to(&mut out, None) {
                Ok(_) => {
                    out.finish();
                    Ok(())
                }
                Err(e) => {
                    let m = e.message().to_string();
                    out.fail(m);
                    Err(e)
                }
            });
            let loaded = engine.load(&mut input);
            drop(input);
            let copied = copier.join().unwrap_or_else(|_| {
                Err(kerblam_archive::Error::new(
                    kerblam_archive::ErrorKind::Io,
                    "image copy panicked",
                ))
            });
            copied.map_err(errors::archive)?;
            loaded.map_err(errors::engine)
        });
    }
    let mut f = File::open(path).map_err(|e| {
        ErrorMessage::invalid_input(format!(
            "cannot open the image archive {}: {e}",
            path.display()
        ))
    })?;
    engine.load(&mut f).map_err(errors::engine)
}

/// `name` without a `localhost/` registry and a `:latest` tag, to compare image names across
/// engines (podman saves `process_exec` as `localhost/process_exec:latest`, docker keeps that
/// name when it loads it).
fn bare(name: &str) -> &str {
    let n = name.strip_prefix("localhost/").unwrap_or(name);
    n.strip_suffix(":latest").unwrap_or(n)
}

/// Tags the loaded image that is `tag` under another engine's naming as `tag` itself.
fn retag(engine: &Engine, loaded: &[String], tag: &str) -> Result<(), ErrorMessage> {
    let Some(found) = loaded.iter().find(|n| bare(n) == bare(tag)) else {
        return Ok(());
    };
    let mut cmd = engine.command();
    cmd.args(["tag", found, tag]);
    let out = crate::process::run_captured(&mut cmd, engine.name()).map_err(errors::engine)?;
    if !out.status.success() {
        return Err(errors::engine(crate::process::failed(
            &cmd,
            out.status,
            crate::process::output_tail(&out),
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: Owner = Owner {
        uid: 1000,
        gid: 1000,
    };
    const ROOT: Owner = Owner { uid: 0, gid: 0 };
    const ROOTFUL: Security = Security {
        rootless: false,
        cgroup_v2: false,
    };
    const ROOTLESS_V1: Security = Security {
        rootless: true,
        cgroup_v2: false,
    };

    #[test]
    fn rootful_engines_run_as_the_owner() {
        let id = decide(Flavor::Docker, ROOTFUL, Some(ALICE), false, false, false);
        assert_eq!(id.user, Some(ALICE));
        assert!(id.tmpfs_home && !id.keep_id && id.confine.is_none());
        assert_eq!(id.give_back_to, None);
        // Root running kerblam: root's container, HOME as the image has it.
        let id = decide(Flavor::Podman, ROOTFUL, Some(ROOT), false, false, true);
        assert_eq!(id.user, Some(ROOT));
        assert!(!id.tmpfs_home);
        // No owner given: the engine's default.
        assert_eq!(
            decide(Flavor::Docker, ROOTFUL, None, false, false, false),
            Identity::default()
        );
    }

    #[test]
    fn rootless_engines_keep_the_callers_id() {
        let id = decide(Flavor::Podman, ROOTLESS_V1, Some(ALICE), false, true, false);
        assert!(id.keep_id && id.tmpfs_home && id.user.is_none());
        // cgroups v1: a rootless engine cannot limit processes.
        assert_eq!(id.confine.unwrap().pids_limit, None);
        // Container root is the caller already.
        let id = decide(Flavor::Podman, ROOTLESS_V1, Some(ALICE), true, false, false);
        assert!(!id.keep_id && id.user.is_none() && id.give_back_to.is_none());
        let id = decide(
            Flavor::Docker,
            ROOTLESS_V1,
            Some(ALICE),
            false,
            false,
            false,
        );
        assert!(!id.keep_id && id.user.is_none());
    }

    #[test]
    fn a_root_pipe_runs_as_root_and_gives_its_files_back() {
        let id = decide(Flavor::Docker, ROOTFUL, Some(ALICE), true, false, false);
        assert_eq!(id.user, Some(ROOT));
        assert_eq!(id.give_back_to, Some(ALICE));
        // Confined under sudo: root with only DAC_OVERRIDE, files given back by kerblam.
        let id = decide(Flavor::Docker, ROOTFUL, Some(ALICE), true, true, true);
        assert_eq!(id.user, Some(ROOT));
        let c = id.confine.unwrap();
        assert_eq!(c.cap_add, ["DAC_OVERRIDE"]);
        assert_eq!(c.pids_limit, Some(Confinement::PIDS_LIMIT));
        // Confined, kerblam not root: the owner's container, and the refusal is said.
        let id = decide(Flavor::Docker, ROOTFUL, Some(ALICE), true, true, false);
        assert_eq!(id.user, Some(ALICE));
        assert!(id.root_refused && id.give_back_to.is_none());
        assert!(id.confine.unwrap().cap_add.is_empty());
    }
}

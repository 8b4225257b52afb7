//! An unprivileged user for tests that check who owns what a container wrote (CI runs as root).
//!
//! [`test_user`] creates `kerblam-tester` once (with `useradd`, in the `docker` group when there is
//! one, with subordinate ids for rootless podman) and returns it; [`TestUser::command`] runs a
//! command as that user through `setpriv`, with its own `HOME`. The user is left in place for the
//! next test process (creating it again is a no-op). Without root (or `useradd`/`setpriv`) the
//! tests print why and return, unless `KERBLAM_REQUIRE_ENGINES=1` (CI must not skip them).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The user's name.
pub const NAME: &str = "kerblam-tester";

/// An unprivileged user of this machine.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    /// Whether `/etc/subuid` and `/etc/subgid` give it ids (rootless podman needs them).
    pub subids: bool,
}

/// The test user, created when missing; `None` (printed) when this process cannot.
pub fn test_user() -> Option<TestUser> {
    static USER: OnceLock<Result<TestUser, String>> = OnceLock::new();
    crate::require(USER.get_or_init(create).clone())
}

fn create() -> Result<TestUser, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("creating a test user needs root".into());
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        return Err("setpriv (util-linux) is not installed".into());
    }
    if id(&["-u", NAME]).is_none() {
        let mut useradd = Command::new("useradd");
        useradd.args(["--create-home", "--user-group", "--shell", "/bin/sh", NAME]);
        let out = useradd
            .output()
            .map_err(|e| format!("cannot run useradd: {e}"))?;
        // 9: it exists (another test process made it meanwhile).
        if !out.status.success() && out.status.code() != Some(9) {
            return Err(format!(
                "useradd {NAME} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    let has_docker_group = Command::new("getent")
        .args(["group", "docker"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_docker_group {
        let ok = Command::new("usermod")
            .args(["-aG", "docker", NAME])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!("usermod -aG docker {NAME} failed"));
        }
    }
    let uid = id(&["-u", NAME]).ok_or("no uid for the test user")?;
    let gid = id(&["-g", NAME]).ok_or("no gid for the test user")?;
    let home = PathBuf::from(format!("/home/{NAME}"));
    std::fs::create_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;
    std::os::unix::fs::chown(&home, Some(uid), Some(gid))
        .map_err(|e| format!("{}: {e}", home.display()))?;
    let listed = |f: &str| {
        std::fs::read_to_string(f)
            .is_ok_and(|t| t.lines().any(|l| l.starts_with(&format!("{NAME}:"))))
    };
    Ok(TestUser {
        name: NAME.into(),
        uid,
        gid,
        home,
        subids: listed("/etc/subuid") && listed("/etc/subgid"),
    })
}

fn id(args: &[&str]) -> Option<u32> {
    let out = Command::new("id").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

impl TestUser {
    /// `cmd` (its program, arguments, environment and directory) run as this user, with its
    /// groups, `HOME`, `USER` and no `XDG_RUNTIME_DIR` of root's.
    pub fn command(&self, cmd: &Command) -> Command {
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--init-groups")
            .arg("--")
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .stdin(Stdio::null())
            .env_remove("XDG_RUNTIME_DIR")
            .env("HOME", &self.home)
            .env("USER", &self.name)
            .env("LOGNAME", &self.name);
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            c.current_dir(d);
        }
        c
    }

    /// `program args...` as this user, from `dir`.
    pub fn run(&self, dir: &Path, program: &str, args: &[&str]) -> std::process::Output {
        let mut c = Command::new(program);
        c.args(args).current_dir(dir);
        self.command(&c).output().expect("run as the test user")
    }

    /// Gives `dir` and everything under it to this user, and lets it reach `dir` through its
    /// parents (a temporary directory is 0700).
    pub fn own(&self, dir: &Path) {
        fn walk(p: &Path, f: &dyn Fn(&Path)) {
            f(p);
            if std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()) {
                for e in std::fs::read_dir(p).unwrap() {
                    walk(&e.unwrap().path(), f);
                }
            }
        }
        walk(dir, &|p| {
            std::os::unix::fs::lchown(p, Some(self.uid), Some(self.gid)).unwrap();
        });
        for a in dir.ancestors().skip(1) {
            let Ok(m) = std::fs::metadata(a) else {
                continue;
            };
            if m.mode() & 0o001 == 0 {
                use std::os::unix::fs::PermissionsExt;
                let mode = m.mode() | 0o011;
                std::fs::set_permissions(a, std::fs::Permissions::from_mode(mode)).unwrap();
            }
        }
    }

    /// Whether every entry under `dir` (and `dir`) is this user's, naming the first that is not.
    pub fn owns_all(&self, dir: &Path) -> Result<(), String> {
        fn walk(p: &Path, f: &mut dyn FnMut(&Path) -> Result<(), String>) -> Result<(), String> {
            f(p)?;
            let m = std::fs::symlink_metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
            if m.is_dir() {
                for e in std::fs::read_dir(p).unwrap() {
                    walk(&e.unwrap().path(), f)?;
                }
            }
            Ok(())
        }
        walk(dir, &mut |p| {
            let m = std::fs::symlink_metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
            if (m.uid(), m.gid()) == (self.uid, self.gid) {
                Ok(())
            } else {
                Err(format!(
                    "{} is {}:{}, not {}'s ({}:{})",
                    p.display(),
                    m.uid(),
                    m.gid(),
                    self.name,
                    self.uid,
                    self.gid
                ))
            }
        })
    }
}

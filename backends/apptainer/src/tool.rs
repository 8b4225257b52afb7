//! Driving the `apptainer` (or `singularity`) executable: finding it, the fakeroot preflight, the
//! `build` and `run` command lines, and streaming their output to the host.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kerblam_backend_api::Host;

use crate::error::Error;

/// Who kerblam runs as, and where the subordinate id files are (overridable for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The effective uid.
    pub uid: u32,
    /// The user name (or the uid as text when it has none).
    pub user: String,
    /// `/etc/subuid`.
    pub subuid: PathBuf,
    /// `/etc/subgid`.
    pub subgid: PathBuf,
}

impl Identity {
    /// The identity of this process.
    pub fn current() -> Identity {
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        let user = user_name(uid).unwrap_or_else(|| uid.to_string());
        Identity {
            uid,
            user,
            subuid: PathBuf::from("/etc/subuid"),
            subgid: PathBuf::from("/etc/subgid"),
        }
    }

    /// Whether `apptainer build` needs `--fakeroot`.
    pub fn needs_fakeroot(&self) -> bool {
        self.uid != 0
    }
}

fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
    })
}

/// The apptainer executable: `apptainer`, else `singularity`, on `PATH`.
pub fn find() -> Option<PathBuf> {
    find_in(&std::env::var_os("PATH").unwrap_or_default())
}

/// [`find`] over an explicit search path (`PATH` syntax).
pub fn find_in(path: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    ["apptainer", "singularity"].into_iter().find_map(|name| {
        std::env::split_paths(path).map(|d| d.join(name)).find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

fn has_entry(file: &Path, id: &Identity) -> bool {
    std::fs::read_to_string(file).is_ok_and(|t| {
        t.lines().any(|l| {
            let owner = l.split(':').next().unwrap_or("").trim();
            !l.trim_start().starts_with('#') && (owner == id.user || owner == id.uid.to_string())
        })
    })
}

/// The fakeroot preflight: when not root, `id.user` needs entries in both subordinate id files.
pub fn check_fakeroot(id: &Identity) -> Result<(), Error> {
    if !id.needs_fakeroot() {
        return Ok(());
    }
    let missing: Vec<String> = [&id.subuid, &id.subgid]
        .into_iter()
        .filter(|f| !has_entry(f, id))
        .map(|f| f.display().to_string())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::NoSubordinateIds {
        user: id.user.clone(),
        uid: id.uid,
        files: missing.join(" and "),
    })
}

/// The arguments of `apptainer build` (without the program).
pub fn build_args(def: &Path, dest: &Path, fakeroot: bool, force: bool) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["build".into()];
    if fakeroot {
        a.push("--fakeroot".into());
    }
    if force {
        a.push("--force".into());
    }
    a.push(dest.into());
    a.push(def.into());
    a
}

/// One `--bind` value, `host:container[:ro]`; an error when a path holds `:` or `,`, which the
/// bind syntax cannot quote.
pub fn bind_spec(host: &Path, container: &str, read_only: bool) -> Result<String, Error> {
    let h = host.to_string_lossy();
    for (what, p) in [("host path", h.as_ref()), ("container path", container)] {
        if p.contains(':') || p.contains(',') {
            return Err(Error::BindPath {
                what,
                path: p.to_string(),
            });
        }
    }
    Ok(format!(
        "{h}:{container}{}",
        if read_only { ":ro" } else { "" }
    ))
}

/// The arguments of `apptainer run` (without the program). Always `--cleanenv` (the host's
/// environment stays out); `confine` (a replay) adds `--containall` (none of the host's `HOME`,
/// `/tmp` or working directory, private PID and IPC namespaces: only the binds are shared) and
/// `--no-privs` (a container started as root drops every capability).
pub fn run_args(
    image: &Path,
    binds: &[String],
    isolate_network: bool,
    confine: bool,
    args: &[String],
) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["run".into(), "--cleanenv".into()];
    if confine {
        a.extend(["--containall".into(), "--no-privs".into()]);
    }
    if isolate_network {
        a.extend(["--net".into(), "--network".into(), "none".into()]);
    }
    for b in binds {
        a.push("--bind".into());
        a.push(b.into());
    }
    a.push(image.into());
    a.extend(args.iter().map(OsString::from));
    a
}

/// What a finished command did.
#[derive(Debug)]
pub struct Finished {
    /// Its exit code (128 + signal when killed).
    pub code: i32,
    /// Its last output lines, for error messages.
    pub tail: Vec<String>,
}

/// Run `program args`, forwarding each output line to the host as it comes (stdout at info,
/// stderr at warn), and return its exit code.
pub fn stream(
    program: &Path,
    args: &[OsString],
    cwd: Option<&Path>,
    host: &Host<'_>,
) -> Result<Finished, Error> {
    stream_env(program, args, cwd, &[], host)
}

/// [`stream`] with the command's environment changed: each variable set to its value, or
/// removed where the value is `None`.
pub fn stream_env(
    program: &Path,
    args: &[OsString],
    cwd: Option<&Path>,
    env: &[(&str, Option<&std::ffi::OsStr>)],
    host: &Host<'_>,
) -> Result<Finished, Error> {
    let mut cmd = Command::new(program);
    for (var, value) in env {
        match value {
            Some(v) => cmd.env(var, v),
            None => cmd.env_remove(var),
        };
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let mut child = cmd.spawn().map_err(|source| Error::Start {
        program: program.to_path_buf(),
        source,
    })?;
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let tail = std::sync::Mutex::new(std::collections::VecDeque::<String>::new());
    let push = |line: String| {
        let mut t = tail.lock().expect("tail lock");
        if t.len() == 20 {
            t.pop_front();
        }
        t.push_back(line);
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                host.warn(&line);
                push(line);
            }
        });
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            host.info(&line);
            push(line);
        }
    });
    let status = child.wait().map_err(|source| Error::Wait {
        program: program.to_path_buf(),
        source,
    })?;
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(Finished {
        code,
        tail: tail.into_inner().expect("tail").into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(uid: u32, dir: &Path) -> Identity {
        Identity {
            uid,
            user: "alice".into(),
            subuid: dir.join("subuid"),
            subgid: dir.join("subgid"),
        }
    }

    #[test]
    fn fakeroot_preflight_names_the_missing_files_and_the_fix() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("subuid"), "alice:100000:65536\n").unwrap();
        std::fs::write(t.path().join("subgid"), "bob:100000:65536\n").unwrap();
        let e = check_fakeroot(&id(1000, t.path())).unwrap_err().to_string();
        let only_subgid = format!("in {}, and", t.path().join("subgid").display());
        assert!(e.contains(&only_subgid), "{e}");
        assert!(e.contains("apptainer config fakeroot --add alice"), "{e}");
        assert!(e.contains("--native"), "{e}");
        std::fs::write(t.path().join("subgid"), "1000:100000:65536\n").unwrap();
        check_fakeroot(&id(1000, t.path())).unwrap();
        // root needs no entries at all
        std::fs::remove_file(t.path().join("subuid")).unwrap();
        check_fakeroot(&id(0, t.path())).unwrap();
    }

    #[test]
    fn command_lines() {
        let a = build_args(
            Path::new("/s/x.def"),
            Path::new("/o/x.sif.tmp"),
            true,
            false,
        );
        assert_eq!(
            a,
            ["build", "--fakeroot", "/o/x.sif.tmp", "/s/x.def"].map(OsString::from)
        );
        let a = build_args(Path::new("d"), Path::new("o"), false, true);
        assert_eq!(a, ["build", "--force", "o", "d"].map(OsString::from));
        assert!(bind_spec(Path::new("/a:b"), "/c", false).is_err());
        let binds = ["/d/in:/w/in:ro".to_string()];
        let image = Path::new("/d/x.sif");
        assert_eq!(
            run_args(image, &binds, true, true, &["-v".into()]),
            [
                "run",
                "--cleanenv",
                "--containall",
                "--no-privs",
                "--net",
                "--network",
                "none",
                "--bind",
                "/d/in:/w/in:ro",
                "/d/x.sif",
                "-v"
            ]
            .map(OsString::from)
        );
        assert_eq!(
            run_args(image, &binds, false, false, &[]),
            ["run", "--cleanenv", "--bind", "/d/in:/w/in:ro", "/d/x.sif"].map(OsString::from)
        );
        assert_eq!(
            bind_spec(Path::new("/a b"), "/c", true).unwrap(),
            "/a b:/c:ro"
        );
    }
}

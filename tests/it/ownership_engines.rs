//! Who owns what a container wrote, and what a replayed image may do, on real engines, run by an
//! unprivileged user the test creates (`kerblam-tester`, see testing/support/src/user.rs; CI runs as
//! root):
//!
//! - after `kerblam run` and `kerblam replay` on rootful docker (the user is in the `docker`
//!   group) and rootless podman, the outputs are the user's, who can delete them (`rm -r`,
//!   `kerblam data clean --yes`);
//! - under `sudo` on rootful podman, they are the calling user's;
//! - a pipe whose image needs root (`[execution] user = "root"`) runs as root, and what it created
//!   under the data dirs is given back to the user; a file that was there before stays as it was;
//! - a hostile archive, whose manifest asks for root and whose pipe tries to write outside its
//!   mounts and into its inputs, `chown` a mounted directory to root, make a device, gain
//!   capabilities through a set-user-ID program and reach a server on 127.0.0.1: every attempt
//!   fails and the replay reports the pipe's failure; with `--trust-image` the same attempts
//!   (but the network) succeed, so they were real.
//!
//! Without an engine (or root to create the user) the tests print why and return, unless
//! `KERBLAM_REQUIRE_ENGINES=1`.

use crate::support;

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use support::engines::{EngineHandle, engine, ensure_base_image};
use support::project::{TestProject, show, stripped_kerblam};
use support::user::{TestUser, test_user};

/// The workspace plugins these tests load (built by `support::plugin_dir`).
const PLUGINS: &[&str] = &["kerblam-backend-docker", "kerblam-backend-podman"];

const COUNT: &str = "set -eu\n\
    mkdir -p data/out/deep\n\
    wc -w < data/in/words.txt > data/out/count.txt\n\
    echo \"$HOME\" > data/out/deep/home.txt\n\
    echo state > \"$HOME/.tool-state\"\n";

/// A project whose pipe `count` (with its own recipe on `base`) writes `data/out/count.txt` and
/// `data/out/deep/home.txt`, and something in `HOME` as many tools do.
fn project(backend: &str, base: &str, manifest_extra: &str, pipe: &str) -> TestProject {
    let p = TestProject::new(&format!(
        "[execution]\nbackend = \"{backend}\"\n{manifest_extra}"
    ));
    p.write("data/in/words.txt", "one two three\n")
        .write("src/workflows/count.sh", pipe)
        .write(
            "src/dockerfiles/count.dockerfile",
            format!("FROM {base}\nWORKDIR /\nCOPY . .\n"),
        );
    std::fs::create_dir_all(p.path("data/out")).unwrap();
    p
}

/// How the test reaches an engine and who runs kerblam.
struct Runner {
    engine: EngineHandle,
    user: TestUser,
    plugins: PathBuf,
    /// Run kerblam (and the engine) as the test user; else as root, with `SUDO_UID`/`SUDO_GID`
    /// naming the test user.
    as_user: bool,
    tags: Vec<String>,
}

impl Runner {
    fn new(name: &str, as_user: bool) -> Option<Runner> {
        let engine = engine(name)?;
        let user = test_user()?;
        Some(Runner {
            engine,
            user,
            plugins: support::plugin_dir(PLUGINS),
            as_user,
            tags: Vec::new(),
        })
    }

    fn rootless(&self) -> bool {
        self.as_user && self.engine.name == "podman"
    }

    /// The base image, in the engine the user reaches: a rootless podman's storage is the
    /// user's own, loaded from root's.
    fn base(&self) -> String {
        let base = ensure_base_image(&self.engine, Path::new(env!("CARGO_BIN_EXE_kerblam")));
        if !self.rootless() {
            return base;
        }
        let dir = tempfile::tempdir().unwrap();
        let tar = dir.path().join("base.tar");
        let o = self
            .engine
            .output(&["save", "-o", tar.to_str().unwrap(), &base]);
        assert!(o.status.success(), "podman save: {}", show(&o));
        self.user.own(dir.path());
        let o = self.user.run(
            dir.path(),
            &self.engine.program,
            &["load", "-i", tar.to_str().unwrap()],
        );
        assert!(o.status.success(), "podman load as the user: {}", show(&o));
        base
    }

    fn tag(&mut self, what: &str) -> String {
        let t = format!(
            "kerblam-own-{}-{what}-{}",
            self.engine.name,
            std::process::id()
        );
        self.tags.push(t.clone());
        t
    }

    /// `kerblam ARGS` in `project` (or `dir`), as the user or under `sudo`.
    fn kerblam_in(&self, p: &TestProject, dir: Option<&Path>, args: &[&str]) -> Output {
        let mut c = p.command_of(&stripped_kerblam(), &[]);
        c.arg("--backend-path").arg(&self.plugins).args(args);
        c.current_dir(dir.unwrap_or(p.root()));
        let _building = support::engines::building();
        if self.as_user {
            self.user.command(&c).output().expect("run kerblam")
        } else {
            c.env("SUDO_UID", self.user.uid.to_string())
                .env("SUDO_GID", self.user.gid.to_string())
                .output()
                .expect("run kerblam")
        }
    }

    fn kerblam(&self, p: &TestProject, args: &[&str]) -> Output {
        self.kerblam_in(p, None, args)
    }

    fn ok(&self, p: &TestProject, args: &[&str]) -> Output {
        let o = self.kerblam(p, args);
        assert_eq!(o.status.code(), Some(0), "kerblam {args:?}:\n{}", show(&o));
        o
    }

    /// `kerblam replay ARCHIVE DEST EXTRA...` from `dest`'s parent.
    fn replay(&self, p: &TestProject, archive: &Path, dest: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["replay", archive.to_str().unwrap(), dest.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.kerblam_in(p, Some(dest.parent().unwrap()), &args)
    }

    /// `rm -r PATH` as the test user.
    fn user_removes(&self, path: &Path) {
        let o = self
            .user
            .run(Path::new("/"), "rm", &["-r", path.to_str().unwrap()]);
        assert!(o.status.success(), "the user cannot rm -r: {}", show(&o));
        assert!(!path.exists());
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        for t in &self.tags {
            if self.rootless() {
                let _ = self.user.run(
                    Path::new("/"),
                    &self.engine.program,
                    &["image", "rm", &self.engine.local_tag(t)],
                );
            } else {
                self.engine.remove_image(&self.engine.local_tag(t));
            }
        }
    }
}

/// `kerblam run`, `data clean`, `package` and `replay`, as `r` runs them: the outputs are the
/// test user's and the user can delete them.
fn outputs_belong_to_the_user(mut r: Runner) {
    let base = r.base();
    let p = project(&r.engine.name, &base, "", COUNT);
    r.user.own(p.root());
    let run_tag = r.tag("run");
    let o = r.ok(&p, &["run", "count", "--tag", &run_tag]);
    assert_eq!(p.read("data/out/count.txt").trim(), "3", "{}", show(&o));
    r.user
        .owns_all(&p.path("data/out"))
        .unwrap_or_else(|e| panic!("after kerblam run: {e}\n{}", show(&o)));
    r.user_removes(&p.path("data/out/deep"));

    // Kerblam! 1.x's way of cleaning up works on them too.
    r.ok(&p, &["run", "count", "--tag", &run_tag]);
    r.ok(&p, &["data", "clean", "--yes"]);
    assert!(!p.exists("data/out/count.txt") && !p.exists("data/out/deep"));

    let pkg_tag = r.tag("pkg");
    r.ok(&p, &["package", "count", "--tag", &pkg_tag]);
    let archive = p.path("count.kerblam.tar");
    let fresh = tempfile::tempdir().unwrap();
    let dest = fresh.path().join("replay");
    std::fs::create_dir(&dest).unwrap();
    r.user.own(fresh.path());
    let o = r.replay(&p, &archive, &dest, &[]);
    assert_eq!(o.status.code(), Some(0), "replay:\n{}", show(&o));
    assert_eq!(
        std::fs::read_to_string(dest.join("data/out/count.txt"))
            .unwrap()
            .trim(),
        "3"
    );
    r.user
        .owns_all(&dest)
        .unwrap_or_else(|e| panic!("after kerblam replay: {e}\n{}", show(&o)));
    r.user_removes(&dest.join("data/out"));
}

#[test]
fn docker_outputs_belong_to_the_user_after_run_and_replay() {
    let Some(r) = Runner::new("docker", true) else {
        return;
    };
    outputs_belong_to_the_user(r);
}

#[test]
fn rootless_podman_outputs_belong_to_the_user_after_run_and_replay() {
    let Some(r) = Runner::new("podman", true) else {
        return;
    };
    if !r.user.subids {
        let reason = format!(
            "{} has no subordinate ids in /etc/subuid and /etc/subgid (rootless podman needs them)",
            r.user.name
        );
        support::unavailable::<()>(reason);
        return;
    }
    outputs_belong_to_the_user(r);
}

#[test]
fn rootful_podman_under_sudo_outputs_belong_to_the_calling_user() {
    let Some(r) = Runner::new("podman", false) else {
        return;
    };
    outputs_belong_to_the_user(r);
}

/// Pipe for an image that must run as root: it writes into root's own directory of the image.
const NEEDS_ROOT: &str = "set -eu\n\
    test \"$(id -u)\" = 0 || { echo \"this pipe must run as root\" >&2; exit 9; }\n\
    echo state > /root/state\n\
    mkdir -p data/out/made/deeper\n\
    echo made > data/out/made/deeper/f.txt\n\
    echo top > data/out/top.txt\n\
    chmod 700 data/out/made\n";

#[test]
fn docker_pipe_that_needs_root_runs_as_root_and_its_outputs_are_given_back() {
    let Some(mut r) = Runner::new("docker", true) else {
        return;
    };
    let base = r.base();
    let tag = r.tag("root");
    // Without the key the pipe runs as the user, and fails.
    let p = project("docker", &base, "", NEEDS_ROOT);
    r.user.own(p.root());
    let o = r.kerblam(&p, &["run", "count", "--tag", &tag]);
    assert_eq!(o.status.code(), Some(9), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("this pipe must run as root"),
        "{}",
        show(&o)
    );

    let p = project("docker", &base, "user = \"root\"\n", NEEDS_ROOT);
    // A file of root's that was there before the run: not the run's, so never given away.
    p.write("data/out/old.txt", "old");
    r.user.own(p.root());
    std::os::unix::fs::lchown(p.path("data/out/old.txt"), Some(0), Some(0)).unwrap();
    let o = r.ok(&p, &["run", "count", "--tag", &tag]);
    assert_eq!(p.read("data/out/made/deeper/f.txt"), "made\n");
    let old = std::fs::metadata(p.path("data/out/old.txt")).unwrap();
    assert_eq!((old.uid(), old.gid()), (0, 0), "{}", show(&o));
    std::fs::remove_file(p.path("data/out/old.txt")).unwrap();
    r.user
        .owns_all(&p.path("data/out"))
        .unwrap_or_else(|e| panic!("after a root pipe: {e}\n{}", show(&o)));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("the pipe created as root back to"),
        "{}",
        show(&o)
    );
    r.user_removes(&p.path("data/out/made"));
}

/// A hostile pipe: each attempt writes `NAME: succeeded` or `NAME: refused` to the report, and
/// the pipe fails when one was refused. `/rootbash` is a set-user-ID root copy of bash the image
/// carries; `gain-capabilities` succeeds when a shell started through it holds capabilities
/// (beyond `DAC_OVERRIDE`, which a confined root pipe keeps).
const HOSTILE: &str = r#"set -u
r=data/out/report.txt
: > "$r"
try() { n=$1; shift; if "$@" 2>/dev/null; then echo "$n: succeeded" >> "$r"; else echo "$n: refused" >> "$r"; fi; }
try write-root-fs /rootbash -p -c 'echo x > /etc/kerblam-was-here'
try write-input bash -c 'echo x > data/in/new.txt'
try chown-mount-to-root chown 0:0 data/out
try make-device mknod data/out/null c 1 3
try gain-capabilities /rootbash -p -c 'while read -r k v; do if [ "$k" = CapEff: ]; then [ "$v" != 0000000000000000 ] && [ "$v" != 0000000000000002 ]; exit; fi; done < /proc/self/status; exit 1'
try reach-network bash -c "exec 3<>/dev/tcp/127.0.0.1/$(cat data/in/port.txt)"
grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status >> "$r"
echo "pids.max: $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)" >> "$r"
if grep -q refused "$r"; then exit 3; fi
"#;

const ATTEMPTS: [&str; 5] = [
    "write-root-fs",
    "write-input",
    "chown-mount-to-root",
    "make-device",
    "gain-capabilities",
];

#[test]
fn docker_replay_of_a_hostile_archive_gives_it_nothing_to_abuse() {
    let Some(r) = Runner::new("docker", true) else {
        return;
    };
    // A member of the docker group: the root pipe runs as the user (giving root's files back
    // would run the image's own chown), with no capability at all.
    hostile_replay(r, "0000000000000000", true, &ATTEMPTS);
}

#[test]
fn rootful_podman_replay_of_a_hostile_archive_under_sudo_gives_it_nothing_to_abuse() {
    let Some(r) = Runner::new("podman", false) else {
        return;
    };
    // kerblam is root: the root pipe runs as root, keeping only DAC_OVERRIDE, and kerblam gives
    // its files back itself. Podman's default capabilities have no MKNOD, even trusted.
    let trusted: Vec<&str> = ATTEMPTS
        .into_iter()
        .filter(|a| *a != "make-device")
        .collect();
    hostile_replay(r, "0000000000000002", false, &trusted);
}

/// Packages the hostile pipe (asking for root) and replays it as `r` runs kerblam: every attempt
/// is refused, its bounding set is `cap_bnd`, and the replay fails; trusted, the `trusted`
/// attempts succeed. `refused_root`: the replay says it runs the root pipe as the user.
fn hostile_replay(mut r: Runner, cap_bnd: &str, refused_root: bool, trusted: &[&str]) {
    let base = r.base();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // It asks to run as root, too.
    let p = project(&r.engine.name, &base, "user = \"root\"\n", HOSTILE);
    p.write("data/in/port.txt", port.to_string()).write(
        "src/dockerfiles/count.dockerfile",
        format!(
            "FROM {base}\nWORKDIR /\nCOPY . .\nRUN cp /usr/sbin/bash /rootbash && chmod 4755 /rootbash\n"
        ),
    );
    r.user.own(p.root());
    let tag = r.tag("hostile");
    r.ok(&p, &["package", "count", "--tag", &tag]);
    let archive = p.path("count.kerblam.tar");

    let fresh = tempfile::tempdir().unwrap();
    let dest = fresh.path().join("replay");
    std::fs::create_dir(&dest).unwrap();
    r.user.own(fresh.path());
    let o = r.replay(&p, &archive, &dest, &[]);
    let report = std::fs::read_to_string(dest.join("data/out/report.txt")).unwrap_or_default();
    assert_eq!(o.status.code(), Some(3), "{report}\n{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("the replayed pipe failed with exit code 3"),
        "{}",
        show(&o)
    );
    assert_eq!(
        err.contains("the pipe asks to run as root"),
        refused_root,
        "{}",
        show(&o)
    );
    for attempt in ATTEMPTS.iter().chain(&["reach-network"]) {
        assert!(
            report.contains(&format!("{attempt}: refused")),
            "{attempt} was not refused:\n{report}"
        );
    }
    assert!(report.contains(&format!("CapBnd:\t{cap_bnd}")), "{report}");
    assert!(report.contains("NoNewPrivs:\t1"), "{report}");
    assert!(report.contains("pids.max: 1024"), "{report}");
    assert!(!dest.join("data/in/new.txt").exists());
    r.user
        .owns_all(&dest)
        .unwrap_or_else(|e| panic!("{e}\n{}", show(&o)));

    // Trusted, it runs as root as it asked, and the same attempts but the network succeed: they
    // were real. What root made in the data dirs is the user's again afterwards.
    std::fs::remove_file(dest.join("data/out/report.txt")).unwrap();
    let o = r.replay(&p, &archive, &dest, &["--no-decompress", "--trust-image"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--trust-image:") && err.contains("default capabilities"),
        "{}",
        show(&o)
    );
    let report = std::fs::read_to_string(dest.join("data/out/report.txt")).unwrap();
    for attempt in trusted {
        assert!(
            report.contains(&format!("{attempt}: succeeded")),
            "{attempt} failed even trusted:\n{report}\n{}",
            show(&o)
        );
    }
    assert!(report.contains("reach-network: refused"), "{report}");
    r.user
        .owns_all(&dest.join("data/out/report.txt"))
        .unwrap_or_else(|e| panic!("{e}\n{}", show(&o)));
    drop(listener);
}

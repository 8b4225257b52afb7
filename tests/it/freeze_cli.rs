//! `kerblam freeze`, `kerblam plan --freeze` and `kerblam validate` on freeze specs, run as the real
//! binary against a synthetic EESSI tree and a fake loaded environment.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use kerblam_compiler::freeze::synthetic;

use crate::support;

use support::text;

fn kerblam(args: &[&str], env: &BTreeMap<String, String>, cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kerblam"))
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(env)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn plan_json(out: &Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("a JSON plan")
}

#[test]
fn from_env_writes_a_spec_that_validates_and_plans_with_the_seed_options() {
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(&t.path().join("eessi"), false);
    let spec = t.path().join("env.freeze.toml");
    let spec_s = spec.to_str().unwrap();
    let out = kerblam(
        &[
            "freeze",
            "--from-env",
            "-a",
            "Jane Doe",
            "-v",
            "paper1",
            "--write-spec",
            spec_s,
            "--no-build",
        ],
        &s.env,
        t.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&spec).unwrap();
    assert!(written.contains("author = \"Jane Doe\""), "{written}");
    assert!(written.contains("version = \"paper1\""), "{written}");
    assert!(
        !written.contains("do-not-capture"),
        "a secret was captured:\n{written}"
    );
    let out = kerblam(&["validate", spec_s], &s.env, t.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan = plan_json(&kerblam(&["plan", "--freeze", spec_s], &s.env, t.path()));
    assert_eq!(plan["source"]["kind"], "freeze");
    assert_eq!(plan["source"]["manifest"], "env.freeze.toml");
    assert_eq!(plan["name"], "EESSI_GROMACS_2020.4-foss-2020a");
    assert_eq!(plan["metadata"]["version"], "2023-11-14-paper1");
    assert_eq!(plan["metadata"]["author"], "Jane Doe");
    assert_eq!(plan["backend"]["name"], "apptainer");
    // The default destination is the system temp dir.
    let sif = plan["backend"]["artifacts"][0]["path"].as_str().unwrap();
    assert_eq!(
        Path::new(sif).parent().unwrap(),
        std::env::temp_dir().as_path(),
        "{sif}"
    );
    // The same plan from the environment directly, and printed twice: identical bytes.
    let a = kerblam(
        &["plan", "--freeze", spec_s, "--backend", "tarball"],
        &s.env,
        t.path(),
    );
    let b = kerblam(
        &["plan", "--freeze", spec_s, "--backend", "tarball"],
        &s.env,
        t.path(),
    );
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(plan_json(&a)["backend"]["name"], "tarball");
    // -n, -d, -g, --backend on the command line.
    let dest = t.path().join("dist");
    let plan = plan_json(&kerblam(
        &[
            "freeze",
            "--from-env",
            "-a",
            "J",
            "-n",
            "Stack",
            "-d",
            dest.to_str().unwrap(),
            "-g",
            "--backend",
            "tarball",
            "--plan",
        ],
        &s.env,
        t.path(),
    ));
    assert_eq!(plan["name"], "Stack");
    assert_eq!(plan["freeze"]["cpu_target"], "x86_64/generic");
    assert_eq!(
        plan["backend"]["artifacts"][0]["path"],
        format!("{}/Stack-2023-11-14.tar.zst", dest.display())
    );
}

/// Writing a spec from the environment builds nothing, so it needs no backend plugin: the spec's
/// backend need not be installed where the environment is read.
#[test]
fn from_env_write_spec_no_build_needs_no_backend_plugin() {
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(&t.path().join("eessi"), false);
    let out = kerblam(
        &[
            "freeze",
            "--from-env",
            "-a",
            "Jane Doe",
            "--write-spec",
            "s.toml",
            "--no-build",
            "--backend",
            "nonexistent",
        ],
        &s.env,
        t.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(t.path().join("s.toml")).unwrap();
    assert!(written.contains("backend = \"nonexistent\""), "{written}");
    assert!(written.contains("author = \"Jane Doe\""), "{written}");
    // Building it does need the plugin: the error names the backend.
    let out = kerblam(&["freeze", "s.toml", "--plan"], &s.env, t.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no backend named \"nonexistent\""),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_author_is_mandatory_and_nothing_is_written_without_one() {
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(&t.path().join("eessi"), false);
    let spec = t.path().join("freeze.toml");
    let out = kerblam(
        &[
            "freeze",
            "--from-env",
            "--write-spec",
            spec.to_str().unwrap(),
        ],
        &s.env,
        t.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("the author is mandatory: pass -a/--author"),
        "{}",
        text(&out.stderr)
    );
    assert!(!spec.exists());
}

#[test]
fn from_env_refuses_without_eessi_or_without_modules() {
    let t = tempfile::tempdir().unwrap();
    let out = kerblam(
        &["freeze", "--from-env", "-a", "J", "--plan"],
        &BTreeMap::new(),
        t.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "no EESSI environment is loaded: EESSI_PREFIX, EESSI_SOFTWARE_SUBDIR are not set"
        ),
        "{err}"
    );
    assert!(err.contains("source the EESSI init script first"), "{err}");
    let s = synthetic::create(&t.path().join("eessi"), false);
    let mut env = s.env.clone();
    env.remove("LOADEDMODULES");
    let out = kerblam(
        &["freeze", "--from-env", "-a", "J", "--plan"],
        &env,
        t.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no module is loaded"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn generic_without_generic_builds_fails_listing_the_modules_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(&t.path().join("eessi"), true);
    let spec = t.path().join("freeze.toml");
    let out = kerblam(
        &[
            "freeze",
            "--from-env",
            "-a",
            "J",
            "-g",
            "--write-spec",
            spec.to_str().unwrap(),
            "--no-build",
        ],
        &s.env,
        t.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("module `OnlyHaswell/2.0` has no generic build"),
        "{err}"
    );
    assert!(err.contains("1 module(s) have no generic build"), "{err}");
    assert!(!spec.exists(), "an invalid spec was written");
}

#[test]
fn validate_locates_errors_in_bad_freeze_specs() {
    let t = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/freeze/freeze.toml");
    let good = std::fs::read_to_string(&example).unwrap();
    let out = kerblam(
        &["validate", example.to_str().unwrap()],
        &BTreeMap::new(),
        t.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let bad = good
        .replace("cpu_family = ", "cpu_famly = ")
        .replace("prefix = \"/cvmfs", "prefix = \"cvmfs");
    assert_ne!(bad, good);
    let path = t.path().join("bad.freeze.toml");
    std::fs::write(&path, &bad).unwrap();
    let out = kerblam(
        &["validate", "--json", "bad.freeze.toml"],
        &BTreeMap::new(),
        t.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let line_of = |needle: &str| bad.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    let list = findings.as_array().unwrap();
    assert!(
        list.iter().any(|f| f["line"] == line_of("cpu_famly")
            && f["column"] == 1
            && f["help"] == "did you mean `cpu_family`?"),
        "{findings:#}"
    );
    assert!(
        list.iter().any(|f| f["line"] == line_of("prefix")
            && f["column"] == 10
            && f["message"].as_str().unwrap().contains("eessi.prefix")),
        "{findings:#}"
    );
    // A freeze spec with any name is checked as one with --kind freeze.
    std::fs::write(t.path().join("spec.toml"), &bad).unwrap();
    let out = kerblam(
        &["validate", "--kind", "freeze", "spec.toml"],
        &BTreeMap::new(),
        t.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("spec.toml:"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn preflight_fails_on_a_too_small_destination_before_any_work() {
    if support::require_root("mounting a small tmpfs").is_none() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(&t.path().join("eessi"), false);
    // 1 MiB of software, for a 256 KiB destination.
    let big = t.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 1 << 20]).unwrap();
    let small = t.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let Some(_tmpfs) = support::tmpfs::Tmpfs::mount(&small, "size=256k") else {
        return;
    };
    let spec = t.path().join("freeze.toml");
    let out = kerblam(
        &[
            "freeze",
            "--from-env",
            "-a",
            "J",
            "--write-spec",
            spec.to_str().unwrap(),
            "--no-build",
        ],
        &s.env,
        t.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let with_big = std::fs::read_to_string(&spec).unwrap().replace(
        "[eessi]",
        &format!("extra_paths = [\"{}\"]\n\n[eessi]", big.display()),
    );
    std::fs::write(&spec, with_big).unwrap();
    let out = kerblam(
        &[
            "freeze",
            "freeze.toml",
            "--backend",
            "tarball",
            "-d",
            small.to_str().unwrap(),
        ],
        &s.env,
        t.path(),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("not enough disk space at {}", small.display())),
        "{err}"
    );
    assert!(err.contains("needed") && err.contains("available"), "{err}");
    assert!(err.contains("bytes of the 6 trees after excludes"), "{err}");
    assert_eq!(
        std::fs::read_dir(&small).unwrap().count(),
        0,
        "something was written"
    );
}

/// `kerblam freeze --from-env -a J -n Stack --backend tarball -d DEST --backend-path <the tarball
/// plugin> EXTRA...` in `cwd`, with `env` as the loaded environment.
fn freeze_tarball(
    dest: &Path,
    extra: &[&str],
    env: &BTreeMap<String, String>,
    cwd: &Path,
) -> Output {
    let plugins = support::plugin_dir(&["kerblam-backend-tarball"]);
    let mut args = vec![
        "freeze",
        "--from-env",
        "-a",
        "J",
        "-n",
        "Stack",
        "--backend",
        "tarball",
        "-d",
        dest.to_str().unwrap(),
        "--backend-path",
        plugins.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    kerblam(&args, env, cwd)
}

/// `bash -c SCRIPT` from a clean environment (`env -i`: no PATH, no EESSI, no module), in `dir`.
fn clean_bash(script: &str, dir: &Path) -> Output {
    Command::new("/usr/bin/env")
        .args(["-i", "/bin/bash", "-c", script])
        .current_dir(dir)
        .output()
        .unwrap()
}

/// Whether this machine lets a user make a user and mount namespace (what `enter.sh` needs);
/// with `KERBLAM_REQUIRE_ENGINES=1` (CI) it must.
fn namespaces_work() -> bool {
    let ok = Command::new("unshare")
        .args(["--user", "--mount", "--map-root-user", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok || support::unavailable::<()>("unshare --user --mount --map-root-user does not work here")
        .is_some()
}

/// A tarball freeze on "another machine": unpacked elsewhere, with the original prefix gone.
/// `activate.sh` tells the truth (it fails, naming the prefix and `enter.sh`, whether sourced
/// from the unpacked tree or from beside the tarball); the printed instructions, pasted as
/// printed, unpack it and run a module's executable through `enter.sh` from a clean environment;
/// a generic freeze runs the generic build, which EESSI's init would not pick without the override
/// kerblam sets; `-d` to a directory that does not exist is created.
#[test]
fn a_tarball_freeze_runs_on_another_machine_through_enter_sh() {
    let tar_ok = Command::new("tar")
        .arg("--zstd")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(tar_ok, "GNU tar with --zstd is needed");
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(&t.path().join("eessi"), false);
    let prefix = s.prefix.display().to_string();
    let mut usage = Vec::new();
    for generic in [false, true] {
        let dest = t.path().join(format!("dist-{generic}/not/yet/there"));
        let extra: &[&str] = if generic { &["-g"] } else { &[] };
        let out = freeze_tarball(&dest, extra, &s.env, t.path());
        let said = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{said}");
        assert!(!said.contains(".tmp-"), "{said}");
        assert!(dest.join("Stack-2023-11-14.tar.zst").is_file(), "{said}");
        // The instructions, from the destination they are given for.
        let from = format!("to use it, from {}:\n", dest.display());
        let lines = said
            .split_once(&from)
            .unwrap_or_else(|| panic!("no usage in {said}"))
            .1;
        let commands: Vec<String> = lines
            .lines()
            .map_while(|l| l.strip_prefix("  "))
            .filter_map(|l| l.split_once(": ").map(|(_, c)| c.to_string()))
            .collect();
        assert_eq!(commands.len(), 4, "{said}");
        usage.push((dest, commands));
    }
    // The other machine: the original prefix is gone.
    std::fs::rename(t.path().join("eessi"), t.path().join("gone")).unwrap();
    for ((dest, commands), generic) in usage.iter().zip([false, true]) {
        let target = if generic {
            "x86_64/generic"
        } else {
            "x86_64/intel/haswell"
        };
        // Unpack as printed: `DIR` is a directory named DIR in the destination.
        let out = clean_bash(&format!("export PATH=/usr/bin:/bin; {}", commands[0]), dest);
        assert!(
            out.status.success(),
            "{}: {}",
            commands[0],
            text(&out.stderr)
        );
        let unpacked = dest.join("DIR");
        assert!(unpacked.join("kerblam-freeze/enter.sh").is_file());
        // activate.sh tells the truth: the prefix is missing, and how to get in.
        for script in [
            unpacked.join("kerblam-freeze/activate.sh"),
            dest.join("Stack-2023-11-14.activate.sh"),
        ] {
            let out = clean_bash(
                &format!("source {} && echo ACTIVATED", script.display()),
                dest,
            );
            let err = text(&out.stderr);
            assert!(!out.status.success(), "{}: {err}", script.display());
            assert!(!text(&out.stdout).contains("ACTIVATED"));
            assert!(err.contains(&format!("{prefix} is missing")), "{err}");
            assert!(err.contains("DIR/kerblam-freeze/enter.sh"), "{err}");
        }
        assert_eq!(
            std::fs::read(unpacked.join("kerblam-freeze/activate.sh")).unwrap(),
            std::fs::read(dest.join("Stack-2023-11-14.activate.sh")).unwrap(),
            "the activate script beside the tarball and the one inside it agree"
        );
        if !namespaces_work() {
            return;
        }
        // Through enter.sh, as printed, from a clean environment: the module's executable runs
        // from the unpacked copy.
        let run = commands[1].replace("COMMAND", "bash -c 'gmx; hello'");
        let out = clean_bash(&run, dest);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{run}: {stdout}{}", text(&out.stderr));
        assert!(
            stdout.contains(&format!(
                "gmx from GROMACS/2020.4-foss-2020a built for {target}"
            )),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("hello from hello/1.0 built for {target}")),
            "{stdout}"
        );
        // Inside, the frozen init would pick the CPU-specific tree without the override: the
        // generic freeze runs its generic builds only because kerblam sets it.
        let out = clean_bash(
            &format!(
                "DIR/kerblam-freeze/enter.sh bash -c 'echo override=$EESSI_SOFTWARE_SUBDIR_OVERRIDE; unset EESSI_SOFTWARE_SUBDIR_OVERRIDE; source {prefix}/init/bash; echo default=$EESSI_SOFTWARE_SUBDIR'"
            ),
            dest,
        );
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
        assert!(stdout.contains(&format!("override={target}")), "{stdout}");
        assert!(stdout.contains("default=x86_64/intel/haswell"), "{stdout}");
        // The environment inside is clean: the caller's module variables do not leak in.
        let out = clean_bash(
            "MODULEPATH=/leaked/modules EESSI_LEAK=leaked LMOD_LEAK=leaked DIR/kerblam-freeze/enter.sh env",
            dest,
        );
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
        assert!(
            !stdout.contains("leaked"),
            "host variables leaked in:\n{stdout}"
        );
        assert!(
            stdout.contains(&format!("EESSI_PREFIX={prefix}\n")),
            "{stdout}"
        );
        // Nothing was written outside the unpacked directory: the original prefix is still gone.
        assert!(!s.prefix.exists());
        assert!(!t.path().join("eessi").exists());
    }
}

/// Where user namespaces cannot be made, `enter.sh` says so and prints the other ways in.
#[test]
fn enter_sh_without_user_namespaces_says_what_else_works() {
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(&t.path().join("eessi"), false);
    let dest = t.path().join("dist");
    let out = freeze_tarball(&dest, &[], &s.env, t.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let unpacked = t.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let tar = Command::new("tar")
        .arg("-xf")
        .arg(dest.join("Stack-2023-11-14.tar.zst"))
        .arg("-C")
        .arg(&unpacked)
        .output()
        .unwrap();
    assert!(tar.status.success(), "{}", text(&tar.stderr));
    // An unshare that fails as a kernel without user namespaces makes it fail.
    let fake = t.path().join("bin");
    std::fs::create_dir(&fake).unwrap();
    std::fs::write(
        fake.join("unshare"),
        "#!/bin/sh\necho 'unshare: unshare failed: Operation not permitted' >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(fake.join("unshare"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = clean_bash(
        &format!(
            "export PATH={}:/usr/bin:/bin; {}/kerblam-freeze/enter.sh hello",
            fake.display(),
            unpacked.display()
        ),
        t.path(),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Operation not permitted"), "{err}");
    assert!(err.contains("kernel.unprivileged_userns_clone=1"), "{err}");
    assert!(err.contains("tar -xf NAME.tar.zst -C /"), "{err}");
    assert!(
        err.contains(&format!(
            "apptainer exec --bind {}/tmp:/tmp",
            unpacked.display()
        )),
        "{err}"
    );
}

/// A destination that cannot be made is refused before any work, naming it.
#[test]
fn a_destination_that_cannot_be_made_is_refused_before_any_work() {
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(&t.path().join("eessi"), false);
    let file = t.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let dest = file.join("dest");
    let out = freeze_tarball(&dest, &[], &s.env, t.path());
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("cannot create the destination {}", dest.display())),
        "{err}"
    );
    assert!(!err.contains("freezing"), "work started: {err}");
}

#[test]
fn bad_option_values_are_refused_like_bad_specs() {
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(&t.path().join("eessi"), false);
    let out = kerblam(
        &[
            "freeze",
            "--from-env",
            "-a",
            "J",
            "-v",
            "has space",
            "--plan",
        ],
        &s.env,
        t.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("`version` suffix \"has space\" contains ' '"),
        "{err}"
    );
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/freeze/freeze.toml");
    let out = kerblam(
        &[
            "freeze",
            example.to_str().unwrap(),
            "-n",
            "bad/name",
            "--plan",
        ],
        &s.env,
        t.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("`name` \"bad/name\" contains '/'"), "{err}");
    assert!(
        err.contains("command-line options applied to the spec"),
        "{err}"
    );
}

/// `kerblam plan --freeze SPEC --backend apptainer --show-def` prints the definition file of the
/// freeze: the trees in %files, the generic override in %environment, the smoke test in %test.
#[test]
fn plan_of_a_freeze_shows_its_apptainer_definition_file() {
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(&t.path().join("eessi"), false);
    let spec = t.path().join("env.freeze.toml");
    let out = kerblam(
        &[
            "freeze",
            "--from-env",
            "-a",
            "Jane Doe",
            "-g",
            "--write-spec",
            spec.to_str().unwrap(),
            "--no-build",
        ],
        &s.env,
        t.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A top-level key: before the spec's first table.
    let written = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, format!("test = \"gmx --version\"\n{written}")).unwrap();
    let out = kerblam(
        &[
            "plan",
            "--freeze",
            spec.to_str().unwrap(),
            "--backend",
            "apptainer",
            "--show-def",
        ],
        &BTreeMap::new(),
        t.path(),
    );
    let def = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}{def}", text(&out.stderr));
    let compat = s.prefix.join("compat/linux/x86_64");
    assert!(def.contains(&compat.display().to_string()), "{def}");
    assert!(
        def.contains("export EESSI_SOFTWARE_SUBDIR_OVERRIDE=x86_64/generic"),
        "{def}"
    );
    assert!(
        def.contains("\n%test\n") && def.contains("gmx --version"),
        "{def}"
    );
    assert!(
        def.contains("org.opencontainers.image.authors Jane Doe"),
        "{def}"
    );
}

/// `kerblam freeze --backend tarball --image-format oci`: besides the tarball, an OCI image archive
/// of the freeze, one layer per frozen tree; the plan names it and states the room it needs. With
/// skopeo installed (CI), `skopeo inspect` reads it and sees the freeze's labels.
#[test]
fn a_tarball_freeze_can_also_be_an_oci_image_archive() {
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(&t.path().join("eessi"), false);
    let dest = t.path().join("dist");
    std::fs::create_dir(&dest).unwrap();
    let out = freeze_tarball(
        &dest,
        &["--image-format", "oci+zstd", "--plan"],
        &s.env,
        t.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan = plan_json(&out);
    let oci = plan["backend"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "oci-archive")
        .unwrap_or_else(|| panic!("no OCI artifact in {}", plan["backend"]));
    assert_eq!(oci["format"], "oci-archive+zstd");
    assert!(
        plan["backend"]["preflight"]
            .to_string()
            .contains("OCI layer blobs"),
        "{}",
        plan["backend"]["preflight"]
    );

    let out = freeze_tarball(&dest, &["--image-format", "oci"], &s.env, t.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let archive = dest.join("Stack-2023-11-14.oci.tar");
    assert!(archive.is_file(), "{}", text(&out.stdout));
    assert!(dest.join("Stack-2023-11-14.tar.zst").is_file());
    let mut names = Vec::new();
    for e in tar::Archive::new(std::fs::File::open(&archive).unwrap())
        .entries()
        .unwrap()
    {
        names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
    }
    assert!(names.iter().any(|n| n == "index.json") && names.iter().any(|n| n == "oci-layout"));
    if support::require_tool(
        "skopeo",
        "the rest of this test reads the archive with it; bash scripts/engines.sh install",
    )
    .is_none()
    {
        return;
    }
    let out = Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(format!("oci-archive:{}", archive.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let labels = config["config"]["Labels"].to_string();
    assert!(labels.contains("dev.kerblam.freeze.modules"), "{labels}");
    // One layer per frozen tree (plus the generated files).
    let layers = config["rootfs"]["diff_ids"].as_array().unwrap().len();
    let trees = plan["freeze"]["trees"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    assert!(
        layers >= trees && trees > 0,
        "{layers} layers for {trees} trees"
    );
}

/// A second freeze to the same destination replaces what the first wrote (exit 0), as a second
/// `kerblam package` does; a file kerblam did not write at one of its output paths is refused
/// without --force and kept.
#[test]
fn freezing_again_replaces_the_earlier_freeze_but_not_a_foreign_file() {
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(&t.path().join("eessi"), false);
    let dest = t.path().join("dist");
    let tarball = dest.join("Stack-2023-11-14.tar.zst");
    let out = freeze_tarball(&dest, &[], &s.env, t.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let first = std::fs::metadata(&tarball).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = freeze_tarball(&dest, &[], &s.env, t.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("replacing"),
        "{}",
        text(&out.stderr)
    );
    assert!(std::fs::metadata(&tarball).unwrap().modified().unwrap() > first);

    std::fs::write(&tarball, "my notes, not a tarball").unwrap();
    let out = freeze_tarball(&dest, &[], &s.env, t.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(
        said.contains("Stack-2023-11-14.tar.zst") && said.contains("--force"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(&tarball).unwrap(),
        "my notes, not a tarball"
    );
    let out = freeze_tarball(&dest, &["--force"], &s.env, t.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

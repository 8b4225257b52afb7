//! `kerblam freeze` end to end on docker and podman: a freeze of the synthetic EESSI tree becomes an
//! engine image in which the entrypoint runs a module's executable in a clean environment, and in
//! which sourcing the init script and loading the module by hand works too (CPU-specific and
//! generic); its labels, environment, entrypoint and help come from the plan. A failing smoke test
//! fails the freeze and leaves no image; the disk check in the engine's storage enforces the plan's
//! figure. Skipped (with a reason) when the engine is missing, unless `KERBLAM_REQUIRE_ENGINES=1`.

use crate::support;

use support::text;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use kerblam_backend_api::host::{Plugin, StderrCallbacks, testing};
use kerblam_backend_api::plan::{ENGINE_STORAGE, PackagePlan, Preflight};
use kerblam_backend_api::{Action, ExecuteRequest, Hello, Paths};
use kerblam_compiler::freeze::synthetic;
use support::engines::{self, EngineHandle};

/// The workspace plugins these tests load (built by `support::plugin_dir`).
const PLUGINS: &[&str] = &["kerblam-backend-docker", "kerblam-backend-podman"];

fn kerblam(args: &[&str], env: &BTreeMap<String, String>, cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kerblam"))
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(env)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "HOME",
            std::env::var("HOME").unwrap_or_else(|_| "/root".into()),
        )
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// A synthetic EESSI tree and a freeze spec for it (`freeze.toml` in the returned dir), written by
/// `kerblam freeze --from-env --write-spec`, then pointed at the local base image with `test` as
/// its smoke test.
struct Spec {
    dir: tempfile::TempDir,
    eessi: synthetic::SyntheticEessi,
}

fn write_spec(engine: &EngineHandle, name: &str, generic: bool, test: &str) -> Spec {
    let base = engines::ensure_base_image(engine, Path::new(env!("CARGO_BIN_EXE_kerblam")));
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(&t.path().join("eessi"), false);
    let spec = t.path().join("freeze.toml");
    let mut args = vec![
        "freeze",
        "--from-env",
        "-a",
        "Jane Doe",
        "-n",
        name,
        "--backend",
        &engine.name,
        "--write-spec",
        spec.to_str().unwrap(),
        "--no-build",
    ];
    if generic {
        args.push("-g");
    }
    let out = kerblam(&args, &s.env, t.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let test = serde_json::to_string(test).unwrap();
    let with_base = std::fs::read_to_string(&spec).unwrap().replace(
        "base = \"debian:12\"",
        &format!("base = \"{base}\"\ntest = {test}"),
    );
    std::fs::write(&spec, with_base).unwrap();
    Spec { dir: t, eessi: s }
}

fn freeze_on(engine: &EngineHandle, generic: bool) {
    let plugins = support::plugin_dir(PLUGINS);
    let name = format!("freeze-test-{}-{generic}", engine.name);
    let Spec { dir: t, eessi: s } = write_spec(engine, &name, generic, "gmx");
    let tag = format!("{name}:2023-11-14");
    engine.remove_image(&engine.local_tag(&tag));
    // Leaked host variables must not reach the image.
    let mut env = s.env.clone();
    env.insert("MODULEPATH".into(), "/leaked".into());
    let out = kerblam(
        &[
            "freeze",
            "freeze.toml",
            "--backend-path",
            plugins.to_str().unwrap(),
        ],
        &env,
        t.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        engine.image_exists(&engine.local_tag(&tag)),
        "no image {tag}"
    );
    // kerblam says how to start this image: the backend's usage lines.
    let said = text(&out.stderr);
    assert!(
        said.contains(&format!("{} run --rm -it {tag}", engine.name)),
        "{said}"
    );
    let target = if generic {
        "x86_64/generic"
    } else {
        "x86_64/intel/haswell"
    };
    // The entrypoint: clean environment, modules loaded, the command run.
    let out = engine.output(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-e",
        "MODULEPATH=/leaked-at-run",
        &tag,
        "/bin/bash",
        "-c",
        "gmx; hello; env",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
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
    assert!(!stdout.contains("leaked"), "{stdout}");
    // By hand: source the init, load the module, run its executable.
    let init = format!("{}/init/bash", s.prefix.display());
    let out = engine.output(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/bin/bash",
        &tag,
        "-c",
        &format!("source {init} && module load GROMACS/2020.4-foss-2020a && gmx"),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains(&format!("built for {target}")), "{stdout}");
    // Excluded files are not in the image.
    let cache = format!(
        "{}/compat/linux/x86_64/var/cache/big.bin",
        s.prefix.display()
    );
    let out = engine.output(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/bin/sh",
        &tag,
        "-c",
        &format!("test ! -e {cache}"),
    ]);
    assert!(out.status.success(), "{cache} is in the image");
    // Labels.
    let out = engine.output(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &tag,
    ]);
    let labels: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(labels["org.opencontainers.image.authors"], "Jane Doe");
    assert_eq!(labels["dev.kerblam.freeze.cpu-target"], target);
    assert_eq!(labels["org.opencontainers.image.version"], "2023-11-14");
    assert_eq!(
        labels["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(
        labels["dev.kerblam.freeze.modules"],
        "hello/1.0,GROMACS/2020.4-foss-2020a"
    );
    // The plan's environment (init picks the frozen CPU target from it) and entrypoint.
    let out = engine.output(&["image", "inspect", "--format", "{{json .Config}}", &tag]);
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let env: Vec<&str> = config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        env.contains(&format!("EESSI_SOFTWARE_SUBDIR_OVERRIDE={target}").as_str()),
        "{env:?}"
    );
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/bin/bash", "/kerblam-freeze/start.sh"])
    );
    // The help text in the image says how to use the frozen environment.
    let out = engine.output(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/bin/cat",
        &tag,
        "/kerblam-freeze/help.txt",
    ]);
    let help = text(&out.stdout);
    assert!(
        help.contains("/kerblam-freeze/start.sh [COMMAND]"),
        "{help}"
    );
    engine.remove_image(&engine.local_tag(&tag));
}

#[test]
fn docker_freeze_image_runs_a_module_executable() {
    let Some(engine) = engines::engine("docker") else {
        return;
    };
    freeze_on(&engine, false);
    freeze_on(&engine, true);
}

#[test]
fn podman_freeze_image_runs_a_module_executable() {
    let Some(engine) = engines::engine("podman") else {
        return;
    };
    freeze_on(&engine, false);
    freeze_on(&engine, true);
}

/// A failing smoke test fails the freeze: exit 1, the engine's output and the command in the
/// error, no image under the tag and no build container left.
fn failing_smoke_test_on(engine: &EngineHandle) {
    let plugins = support::plugin_dir(PLUGINS);
    let name = format!("freeze-test-{}-failing", engine.name);
    let test = "echo kerblam-smoke-marker; exit 3";
    let spec = write_spec(engine, &name, false, test);
    let tag = format!("{name}:2023-11-14");
    engine.remove_image(&engine.local_tag(&tag));
    let out = kerblam(
        &[
            "freeze",
            "freeze.toml",
            "--backend-path",
            plugins.to_str().unwrap(),
        ],
        &spec.eessi.env,
        spec.dir.path(),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}{stderr}", text(&out.stdout));
    // The report is wrapped at 80 columns; compare without whitespace and margins.
    let squash = |s: &str| s.replace(|c: char| c.is_whitespace() || c == '|', "");
    let has = |needle: &str| squash(&stderr).contains(&squash(needle));
    assert!(has(&format!("building {tag} failed")), "{stderr}");
    assert!(
        has(&format!(
            "the build runs the smoke test `/bin/bash /kerblam-freeze/start.sh /bin/bash -c '{test}'` once the trees are in place; this build tagged nothing"
        )),
        "{stderr}"
    );
    // The engine's output: the smoke test ran (after the trees were copied) and printed.
    assert!(stderr.contains("\nkerblam-smoke-marker\n"), "{stderr}");
    assert!(
        !engine.image_exists(&engine.local_tag(&tag)),
        "{tag} exists after a failed smoke test"
    );
    let mut ps = vec!["ps", "-a", "--no-trunc", "--format", "{{.Command}}"];
    if engine.name == "podman" {
        ps.push("--external");
    }
    let left = text(&engine.output(&ps).stdout);
    assert!(
        !left.contains("kerblam-smoke-marker"),
        "the failed build left a container behind:\n{left}"
    );
}

#[test]
fn docker_failing_smoke_test_fails_the_freeze_and_leaves_no_image() {
    let Some(engine) = engines::engine("docker") else {
        return;
    };
    failing_smoke_test_on(&engine);
}

#[test]
fn podman_failing_smoke_test_fails_the_freeze_and_leaves_no_image() {
    let Some(engine) = engines::engine("podman") else {
        return;
    };
    failing_smoke_test_on(&engine);
}

/// The engine backend checks room in the engine's own storage with exactly the figure the plan
/// states: raised above what is free there, the freeze fails before any build, with the numbers.
fn preflight_on(engine: &EngineHandle) {
    let plugins = support::plugin_dir(PLUGINS);
    let name = format!("freeze-test-{}-preflight", engine.name);
    let spec = write_spec(engine, &name, false, "gmx");
    let out = kerblam(
        &["plan", "--freeze", "freeze.toml"],
        &spec.eessi.env,
        spec.dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut plan: PackagePlan = serde_json::from_slice(&out.stdout).unwrap();
    let field = if engine.name == "docker" {
        "{{.DockerRootDir}}"
    } else {
        "{{.Store.GraphRoot}}"
    };
    let storage = text(&engine.output(&["info", "--format", field]).stdout)
        .trim()
        .to_string();
    let free = kerblam_backend_api::preflight::available_bytes(Path::new(&storage)).unwrap();
    let want = free + (1 << 40);
    let mut raised = 0;
    for c in &mut plan.backend.preflight {
        if let Preflight::DiskSpace { path, bytes, why } = c
            && path == ENGINE_STORAGE
        {
            assert!(why.contains("copies of the trees"), "{why}");
            *bytes = want;
            raised += 1;
        }
    }
    assert_eq!(raised, 1, "{:?}", plan.backend.preflight);
    let tag = plan.image.tag.clone();
    engine.remove_image(&engine.local_tag(&tag));
    let lib = plugins.join(testing::cdylib_file(&format!(
        "kerblam_backend_{}",
        engine.name
    )));
    let plugin = Plugin::load(&lib, &Hello::new("kerblam-test", "0")).unwrap();
    let dir = spec.dir.path().to_string_lossy().into_owned();
    let paths = Paths {
        root: dir.clone(),
        kerblam: env!("CARGO_BIN_EXE_kerblam").into(),
        output_dir: dir,
        temp_dir: std::env::temp_dir().to_string_lossy().into_owned(),
    };
    let req = ExecuteRequest::new(Action::Package, plan, paths);
    let err = plugin
        .execute(&req, std::sync::Arc::new(StderrCallbacks), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("preflight failed"), "{err}");
    assert!(
        err.contains(&format!("not enough disk space at {storage}")),
        "{err}"
    );
    assert!(err.contains(&format!("({want} bytes)")), "{err}");
    assert!(err.contains(" available"), "{err}");
    if engine.name == "podman" {
        // With its temp dir on the same filesystem, both needs are added up.
        use std::os::unix::fs::MetadataExt;
        let temp = text(
            &engine
                .output(&["info", "--format", "{{.Store.ImageCopyTmpDir}}"])
                .stdout,
        );
        let dev = |p: &str| std::fs::metadata(p.trim()).map(|m| m.dev()).ok();
        if dev(&storage).is_some() && dev(&storage) == dev(&temp) {
            assert!(err.contains("(one filesystem)"), "{err}");
        }
    }
    assert!(
        !engine.image_exists(&engine.local_tag(&tag)),
        "{tag} was built"
    );
}

#[test]
fn docker_preflight_checks_the_plans_figure_in_the_engine_storage() {
    let Some(engine) = engines::engine("docker") else {
        return;
    };
    preflight_on(&engine);
}

#[test]
fn podman_preflight_checks_the_plans_figure_in_the_engine_storage() {
    let Some(engine) = engines::engine("podman") else {
        return;
    };
    preflight_on(&engine);
}

//! The conformance kit run against every first-party plugin and the out-of-tree example backend,
//! all built with cargo and loaded for real; plus the kit catching deliberately broken C plugins.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

use kerblam_backend_api::host::{Plugin, StderrCallbacks, testing};
use kerblam_backend_api::{Action, ExecuteRequest, Hello, Paths};
use kerblam_conformance::{Options, Outcome, Report, check_plugin, golden, golden_texts};

fn init() {
    static ONCE: Once = Once::new();
    // SAFETY: every test calls this first; Once blocks the others until the write is done.
    ONCE.call_once(|| unsafe { std::env::set_var("KERBLAM_CONFORMANCE", "1") });
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Build only the package of `lib` (so a plugin being rewritten does not break the others' tests).
fn first_party(lib: &str) -> PathBuf {
    let pkg = lib.replace('_', "-");
    let dir = testing::build_workspace_packages(&workspace().join("Cargo.toml"), &[&pkg])
        .expect("cargo build");
    dir.join(testing::cdylib_file(lib))
}

fn example() -> PathBuf {
    let dir = testing::build_standalone(&workspace().join("examples/backend-script/Cargo.toml"))
        .expect("cargo build");
    dir.join(testing::cdylib_file("kerblam_backend_script"))
}

/// A cdylib example of this crate (`examples/`), which `cargo test` builds.
fn sdk_example(name: &str) -> PathBuf {
    let dir = testing::profile_dir().join("examples");
    let lib = dir.join(testing::cdylib_file(name));
    assert!(
        lib.is_file(),
        "{} was not built (cargo test builds examples)",
        lib.display()
    );
    lib
}

fn outcome<'a>(r: &'a Report, name: &str) -> &'a Outcome {
    &r.get(name)
        .unwrap_or_else(|| panic!("no check {name} in\n{r}"))
        .outcome
}

fn assert_all_pass_except_skips(r: &Report, allowed_skips: &[&str]) {
    assert!(r.passed(), "{r}");
    for c in &r.checks {
        if let Outcome::Skip(why) = &c.outcome {
            assert!(
                allowed_skips.contains(&c.name.as_str()),
                "unexpected skip of {}: {why}\n{r}",
                c.name
            );
        }
    }
}

/// The kit on a first-party plugin: everything passes, except the golden plans of artifact kinds
/// it does not claim (`unclaimed`, skipped for that reason) and `concurrent` when it is not
/// reentrant. A golden plan the backend could not carry out for want of an engine or tool is a
/// skip too, allowed only when engine tests are not required (CI requires them).
fn first_party_conforms(lib: &str, name: &str, unclaimed: &[&str]) {
    init();
    let r = check_plugin(&first_party(lib), &Options::default());
    assert_eq!(r.backend.as_deref(), Some(name));
    assert!(r.passed(), "{r}");
    let required = kerblam_test_support::required();
    let plugin = Plugin::load(&first_party(lib), &Hello::new("test", "0")).unwrap();
    let caps = &plugin.describe().capabilities;
    assert_eq!(outcome(&r, "plan"), &Outcome::Pass, "{r}");
    for c in &r.checks {
        let Outcome::Skip(why) = &c.outcome else {
            continue;
        };
        let golden = c.name.strip_prefix("golden/");
        let ok = match golden {
            Some(g) if unclaimed.contains(&g) => why.contains("does not claim"),
            Some(_) => !required && why.contains("could not carry the plan out here"),
            None => c.name == "concurrent" && !caps.reentrant,
        };
        assert!(ok, "unexpected skip of {}: {why}\n{r}", c.name);
    }
    for g in unclaimed {
        assert!(
            matches!(outcome(&r, &format!("golden/{g}")), Outcome::Skip(_)),
            "{r}"
        );
    }
    if caps.reentrant {
        assert_eq!(outcome(&r, "concurrent"), &Outcome::Pass, "{r}");
    }
    assert_eq!(outcome(&r, "panic"), &Outcome::Pass);
    assert_eq!(outcome(&r, "cancellation"), &Outcome::Pass);
    assert_eq!(outcome(&r, "cancellation-mid-run"), &Outcome::Pass);
    assert_eq!(outcome(&r, "golden/preflight-fails"), &Outcome::Pass);
}

#[test]
fn docker_conforms() {
    first_party_conforms("kerblam_backend_docker", "docker", &["oci-image"]);
}

#[test]
fn podman_conforms() {
    first_party_conforms("kerblam_backend_podman", "podman", &["oci-image"]);
}

#[test]
fn apptainer_conforms() {
    first_party_conforms("kerblam_backend_apptainer", "apptainer", &["oci-image"]);
}

#[test]
fn tarball_conforms() {
    first_party_conforms("kerblam_backend_tarball", "tarball", &[]);
}

#[test]
fn the_out_of_tree_example_backend_conforms() {
    init();
    let r = check_plugin(&example(), &Options::default());
    assert_eq!(r.backend.as_deref(), Some("script"));
    assert_all_pass_except_skips(&r, &["golden/oci-image"]);
    assert_eq!(
        r.get("golden/minimal").unwrap().detail.as_deref(),
        Some("ok with 1 artifact(s)")
    );
    let pre = r
        .get("golden/preflight-fails")
        .unwrap()
        .detail
        .clone()
        .unwrap();
    assert!(
        pre.contains("preflight failed")
            && pre.contains("kerblam-conformance-missing-input.txt does not exist"),
        "{pre}"
    );
}

#[test]
fn the_example_backend_writes_a_build_script_that_parses() {
    init();
    let plugin = Plugin::load(&example(), &Hello::new("test", "0")).unwrap();
    let t = tempfile::tempdir().unwrap();
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let paths = Paths {
        root: s(t.path()),
        kerblam: "/bin/true".into(),
        output_dir: s(t.path()),
        temp_dir: s(t.path()),
    };
    let mut plan = golden("minimal").plan;
    plan.backend.name = "script".into();
    testing::complete(
        &plugin,
        &mut plan,
        Action::Package,
        t.path(),
        &Default::default(),
    );
    let names: Vec<&str> = plan
        .backend
        .artifacts
        .iter()
        .map(|a| a.path.as_str())
        .collect();
    assert_eq!(names, ["golden.build.sh"]);
    assert_eq!(
        plan.backend.usage,
        ["build the image with: sh golden.build.sh"]
    );
    let req = ExecuteRequest::new(Action::Package, plan.clone(), paths);
    let result = plugin
        .execute(&req, std::sync::Arc::new(StderrCallbacks), None)
        .unwrap();
    let script = t.path().join("golden.build.sh");
    assert_eq!(result.artifacts.len(), 1);
    assert_eq!(result.artifacts[0].path, script.display().to_string());
    let text = std::fs::read_to_string(&script).unwrap();
    let dockerfile = &plan.backend.rendered("Containerfile").unwrap().text;
    assert!(
        dockerfile.starts_with("FROM scratch\nCOPY l0 /kerblam-conformance.txt\n"),
        "{dockerfile}"
    );
    assert!(
        text.contains("build -t 'kerblam-conformance-golden:v1'"),
        "{text}"
    );
    assert!(text.contains(dockerfile.trim_end()), "{text}");
    let sh = Command::new("sh").arg("-n").arg(&script).output().unwrap();
    assert!(
        sh.status.success(),
        "{}",
        String::from_utf8_lossy(&sh.stderr)
    );
    // A second run refuses to overwrite without --force, and leaves no temporary files behind.
    let err = plugin
        .execute(&req, std::sync::Arc::new(StderrCallbacks), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("golden.build.sh exists"), "{err}");
    let mut names: Vec<String> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["golden.build.sh"]);
}

#[test]
fn the_example_backend_is_under_100_lines_at_rustfmts_default_width() {
    let dir = workspace().join("examples/backend-script");
    for cfg in ["rustfmt.toml", ".rustfmt.toml"] {
        assert!(
            !dir.join(cfg).exists(),
            "{cfg}: the count must be at rustfmt's defaults"
        );
    }
    let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    assert!(lib.lines().count() < 100, "{} lines", lib.lines().count());
    assert!(
        lib.lines().all(|l| l.len() <= 100),
        "a line over 100 columns"
    );
    // When rustfmt is here, the file is as its defaults format it.
    if let Ok(o) = std::process::Command::new("rustfmt")
        .args(["--check", "--edition", "2024"])
        .arg(dir.join("src/lib.rs"))
        .output()
    {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    }
}

#[test]
fn golden_plans_parse_and_are_canonical() {
    for (name, text) in golden_texts() {
        let plan: kerblam_backend_api::plan::PackagePlan =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("golden/{name}.json: {e}"));
        assert_eq!(
            serde_json::to_string_pretty(&plan).unwrap() + "\n",
            *text,
            "golden/{name}.json is not canonical"
        );
    }
    assert!(!golden("preflight-fails").plan.preflight.is_empty());
    for name in kerblam_conformance::GOLDEN_NAMES {
        let g = golden(name);
        assert!(g.plan.backend.artifacts.is_empty(), "{name}");
        assert_eq!(g.plan.backend.name, "any", "{name}");
    }
}

fn gcc_plugin(dir: &Path, defines: &[&str]) -> PathBuf {
    testing::c_fixture(dir, "p.so", defines)
}

#[test]
fn the_kit_fails_plugins_that_break_the_contract() {
    init();
    let quick = Options {
        timeout: std::time::Duration::from_millis(500),
        ..Options::default()
    };
    let t = tempfile::tempdir().unwrap();

    // A C plugin that answers everything with status ok: its golden preflight check must fail, and
    // since it has no SDK the panic check is skipped rather than failed.
    let r = check_plugin(&gcc_plugin(t.path(), &[]), &quick);
    assert!(
        matches!(outcome(&r, "golden/preflight-fails"), Outcome::Fail(m) if m.contains("execute returned ok")),
        "{r}"
    );
    assert!(
        matches!(outcome(&r, "cancellation"), Outcome::Fail(_)),
        "{r}"
    );
    assert!(
        matches!(outcome(&r, "panic"), Outcome::Skip(m) if m.contains("not built with the Rust SDK")),
        "{r}"
    );
    // It never asks is_cancelled: finishing "without polling again" is no pass when it never
    // polled at all.
    assert!(
        matches!(outcome(&r, "cancellation-mid-run"), Outcome::Fail(m) if m.contains("never asked is_cancelled")),
        "{r}"
    );
    assert!(!r.passed());

    let t = tempfile::tempdir().unwrap();
    let r = check_plugin(&gcc_plugin(t.path(), &["LEAKY_FREE"]), &quick);
    assert!(
        matches!(outcome(&r, "free-round-trip"), Outcome::Fail(m) if m.contains("does not seem to free")),
        "{r}"
    );

    let t = tempfile::tempdir().unwrap();
    let r = check_plugin(&gcc_plugin(t.path(), &["IGNORE_CANCEL"]), &quick);
    assert!(
        matches!(outcome(&r, "cancellation-mid-run"), Outcome::Fail(m) if m.contains("yet execute returned ok")),
        "{r}"
    );

    // Built with the Rust SDK, whose own polls come first: the backend's poll is the one that
    // must stop it.
    let r = check_plugin(&sdk_example("ignores_cancel"), &quick);
    assert!(
        matches!(outcome(&r, "cancellation-mid-run"), Outcome::Fail(m) if m.contains("yet execute returned ok")),
        "{r}"
    );

    let t = tempfile::tempdir().unwrap();
    let r = check_plugin(&gcc_plugin(t.path(), &["HANG_POLL"]), &quick);
    assert_eq!(outcome(&r, "cancellation-mid-run"), &Outcome::Pass, "{r}");

    let t = tempfile::tempdir().unwrap();
    let r = check_plugin(&gcc_plugin(t.path(), &["LATE_CALLBACK"]), &quick);
    assert!(
        matches!(outcome(&r, "no-late-callbacks"), Outcome::Fail(m) if m.contains("after execute returned")),
        "{r}"
    );

    let t = tempfile::tempdir().unwrap();
    let r = check_plugin(&gcc_plugin(t.path(), &["TRUNCATED"]), &quick);
    assert!(
        matches!(outcome(&r, "golden/minimal"), Outcome::Fail(m) if m.contains("truncated")),
        "{r}"
    );

    let t = tempfile::tempdir().unwrap();
    let r = check_plugin(&gcc_plugin(t.path(), &["HANG"]), &quick);
    assert!(
        matches!(outcome(&r, "golden/minimal"), Outcome::Fail(m) if m.contains("did not finish")),
        "{r}"
    );
    // A plan call that hangs gets the kit's timeout too.
    let t = tempfile::tempdir().unwrap();
    let r = check_plugin(&gcc_plugin(t.path(), &["HANG_PLAN"]), &quick);
    assert!(
        matches!(outcome(&r, "plan"), Outcome::Fail(m) if m.contains("did not answer the plan request within 0.5s")),
        "{r}"
    );

    // Liars: success without the artifact its plan names; an artifact no plan names; a status
    // and a kind that disagree.
    let t = tempfile::tempdir().unwrap();
    let r = check_plugin(&gcc_plugin(t.path(), &["PLAN_ARTIFACT"]), &quick);
    assert!(
        matches!(outcome(&r, "golden/minimal"), Outcome::Fail(m) if m.contains("the file artifact") && m.contains("cplugin.out does not exist")),
        "{r}"
    );
    let t = tempfile::tempdir().unwrap();
    let r = check_plugin(&gcc_plugin(t.path(), &["EXTRA_ARTIFACT"]), &quick);
    assert!(
        matches!(outcome(&r, "golden/minimal"), Outcome::Fail(m) if m.contains("a sif artifact at /etc/passwd, which its plan does not name")),
        "{r}"
    );
    let t = tempfile::tempdir().unwrap();
    let r = check_plugin(&gcc_plugin(t.path(), &["KIND_MISMATCH"]), &quick);
    assert!(
        matches!(outcome(&r, "golden/minimal"), Outcome::Fail(m) if m.contains("status 1 (backend) but the error's kind is Cancelled")),
        "{r}"
    );
    // A "cancelled" nobody asked for: a valid plan is not carried out, and a failed preflight is
    // a `backend` error, not any error.
    let t = tempfile::tempdir().unwrap();
    let r = check_plugin(&gcc_plugin(t.path(), &["STATUS_3"]), &quick);
    assert!(
        matches!(outcome(&r, "golden/minimal"), Outcome::Fail(m) if m.contains("got status cancelled: stopped on its own")),
        "{r}"
    );
    assert!(
        matches!(outcome(&r, "golden/preflight-fails"), Outcome::Fail(m) if m.contains("a failed preflight is a `backend` error (status 1), but it answered cancelled: stopped on its own")),
        "{r}"
    );
    assert!(
        matches!(outcome(&r, "cancellation-mid-run"), Outcome::Fail(m) if m.contains("no poll said so")),
        "{r}"
    );
    // ... and one that keeps its word passes the same check.
    let t = tempfile::tempdir().unwrap();
    let r = check_plugin(
        &gcc_plugin(t.path(), &["PLAN_ARTIFACT", "WRITE_ARTIFACT"]),
        &quick,
    );
    assert_eq!(outcome(&r, "golden/minimal"), &Outcome::Pass, "{r}");

    let t = tempfile::tempdir().unwrap();
    let r = check_plugin(&gcc_plugin(t.path(), &["ABI=(2u<<16)"]), &quick);
    assert!(
        matches!(outcome(&r, "load"), Outcome::Fail(m) if m.contains("ABI 2.0")),
        "{r}"
    );
    assert!(matches!(outcome(&r, "describe"), Outcome::Skip(_)), "{r}");
}

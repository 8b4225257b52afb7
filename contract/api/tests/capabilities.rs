//! `missing_capabilities`: what the host refuses before anything runs.

use kerblam_backend_api::plan::{
    Artifact, ArtifactKind, Base, Layer, LayerSource, Mount, PackagePlan, Preflight,
};
use kerblam_backend_api::{
    Action, BaseKind, Capabilities, ExecuteOptions, LayerSourceKind, missing_capabilities, sdk,
};

fn plan() -> PackagePlan {
    serde_json::from_str(include_str!("../../conformance/golden/minimal.json")).unwrap()
}

fn full() -> Capabilities {
    Capabilities {
        actions: vec![Action::Package, Action::Run],
        sources: vec![kerblam_backend_api::plan::SourceKind::Pipe],
        base_kinds: vec![BaseKind::Scratch],
        layer_sources: vec![LayerSourceKind::Generated],
        mounts: false,
        ..Capabilities::default()
    }
}

#[test]
fn a_plan_within_the_capabilities_needs_nothing() {
    let d = sdk::describe("x", "1", full());
    assert!(
        missing_capabilities(Action::Package, &plan(), &ExecuteOptions::default(), &d).is_empty()
    );
}

#[test]
fn every_missing_capability_is_named_once() {
    let d = sdk::describe(
        "x",
        "1",
        Capabilities {
            actions: vec![],
            ..full()
        },
    );
    let mut p = plan();
    p.base = Base::Image {
        reference: "debian:12".into(),
    };
    let host = |path: &str| Layer {
        from: LayerSource::Host {
            path: path.into(),
            exclude: vec![],
        },
        to: "/x".into(),
        mode: 0o644,
    };
    p.layers.push(host("/a"));
    p.layers.push(host("/b"));
    p.backend.artifacts.push(Artifact {
        kind: ArtifactKind::Sif,
        path: "x.sif".into(),
        format: None,
        contents: vec![],
    });
    p.preflight.push(Preflight::Tool {
        names: vec!["docker".into()],
    });
    let options = ExecuteOptions {
        embed_image: true,
        format: Some("oci".into()),
        ..ExecuteOptions::default()
    };
    let missing = missing_capabilities(Action::Package, &p, &options, &d);
    assert_eq!(
        missing,
        vec![
            "action \"package\" (not implemented)",
            "base kind \"image\"",
            "layer source \"host\"",
            "artifact kind \"sif\"",
            "preflight check \"tool\"",
            "format \"oci\"",
            "embed_image",
        ]
    );
}

#[test]
fn mounts_are_needed_to_run_but_not_to_package() {
    let d = sdk::describe("x", "1", full());
    let mut p = plan();
    p.mounts.push(Mount {
        host: "data/in".into(),
        container: "/data/in".into(),
        read_only: true,
    });
    assert!(missing_capabilities(Action::Package, &p, &ExecuteOptions::default(), &d).is_empty());
    assert_eq!(
        missing_capabilities(Action::Run, &p, &ExecuteOptions::default(), &d),
        vec!["mounts"]
    );
}

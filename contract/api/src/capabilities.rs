//! Checking a request against a backend's [`Capabilities`] before anything runs.

use kerblam_plan::{Base, LayerSource, PackagePlan, Preflight};

use crate::{
    Action, BaseKind, Capabilities, Describe, ExecuteOptions, LayerSourceKind, PreflightKind,
};

/// The base kind of a plan's base.
pub fn base_kind(base: &Base) -> BaseKind {
    match base {
        Base::Recipe { .. } => BaseKind::Recipe,
        Base::Image { .. } => BaseKind::Image,
        Base::Archive { .. } => BaseKind::Archive,
        Base::Scratch => BaseKind::Scratch,
    }
}

/// The kind of a layer's source.
pub fn layer_source_kind(source: &LayerSource) -> LayerSourceKind {
    match source {
        LayerSource::Kerblam => LayerSourceKind::Kerblam,
        LayerSource::Generated { .. } => LayerSourceKind::Generated,
        LayerSource::Context { .. } => LayerSourceKind::Context,
        LayerSource::Host { .. } => LayerSourceKind::Host,
    }
}

/// The kind of a preflight check.
pub fn preflight_kind(check: &Preflight) -> PreflightKind {
    match check {
        Preflight::DiskSpace { .. } => PreflightKind::DiskSpace,
        Preflight::Writable { .. } => PreflightKind::Writable,
        Preflight::Tool { .. } => PreflightKind::Tool,
        Preflight::FileExists { .. } => PreflightKind::FileExists,
    }
}

fn json_name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".to_string(),
    }
}

/// The capabilities a request needs that `describe` does not claim, each as a short phrase such as
/// `base kind "recipe"` or `action "package" (not implemented yet)`. Empty when the backend can
/// carry the request out. The host calls this before it asks the backend for its part of the plan
/// (the artifacts are then the backend's own, so claimed by construction) and again before it
/// executes anything.
pub fn missing_capabilities(
    action: Action,
    plan: &PackagePlan,
    options: &ExecuteOptions,
    describe: &Describe,
) -> Vec<String> {
    let caps: &Capabilities = &describe.capabilities;
    let mut missing = Vec::new();
    let mut need = |ok: bool, what: String| {
        if !ok && !missing.contains(&what) {
            missing.push(what);
        }
    };
    need(
        caps.actions.contains(&action),
        format!("action {:?} (not implemented)", action.name()),
    );
    need(
        caps.sources.contains(&plan.source.kind),
        format!("plan source {:?}", json_name(&plan.source.kind)),
    );
    let base = base_kind(&plan.base);
    need(
        caps.base_kinds.contains(&base),
        format!("base kind {:?}", json_name(&base)),
    );
    for layer in &plan.layers {
        let k = layer_source_kind(&layer.from);
        need(
            caps.layer_sources.contains(&k),
            format!("layer source {:?}", json_name(&k)),
        );
    }
    if action == Action::Run {
        need(plan.mounts.is_empty() || caps.mounts, "mounts".to_string());
    }
    if action == Action::Package {
        for artifact in &plan.backend.artifacts {
            need(
                caps.artifact_kinds.contains(&artifact.kind),
                format!("artifact kind {:?}", json_name(&artifact.kind)),
            );
        }
    }
    for check in plan.all_preflight() {
        let k = preflight_kind(check);
        need(
            caps.preflight_checks.contains(&k),
            format!("preflight check {:?}", json_name(&k)),
        );
    }
    if let Some(format) = &options.format {
        need(
            caps.formats.iter().any(|f| f == format),
            format!("format {format:?}"),
        );
    }
    need(
        !(options.embed_image || options.save_image.is_some()) || caps.embed_image,
        "embed_image".to_string(),
    );
    need(
        options.base_archive.is_none() || caps.base_archive,
        "base_archive".to_string(),
    );
    need(!options.native || caps.native, "native".to_string());
    missing
}

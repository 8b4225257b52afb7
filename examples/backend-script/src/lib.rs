//! An example third-party kerblam backend, on the SDK alone. Its part of a plan: the Dockerfile it
//! renders, and one file, `<stem>.build.sh`, which builds the image with `${ENGINE:-docker}`.
use kerblam_backend_api::plan::{BackendPlan, Base, LayerSource as S, PackagePlan};
use kerblam_backend_api::{Backend, Capabilities, Describe, ErrorMessage as E, ExecuteRequest};
use kerblam_backend_api::{ExecuteResult, Host, PlanRequest, serde_json as json};
use std::{fmt::Write, path::Path};

struct Script;

/// The Dockerfile of the image: the base, one `COPY` per layer, env, workdir, entrypoint.
fn dockerfile(p: &PackagePlan) -> String {
    let from = match &p.base {
        Base::Image { reference } => reference.clone(),
        Base::Recipe { .. } => format!("{}-base", p.image.tag),
        _ => "scratch".into(), // archive bases are refused by the capabilities
    };
    let mut file = format!("FROM {from}\n");
    for (i, layer) in p.layers.iter().enumerate() {
        let _ = writeln!(file, "COPY l{i} {}", layer.to);
    }
    for e in &p.env {
        let value = json::to_string(&e.value).unwrap_or_default();
        let _ = writeln!(file, "ENV {}={value}", e.name);
    }
    let entrypoint = json::to_string(&p.entrypoint).unwrap_or_default();
    let _ = writeln!(file, "WORKDIR {}\nENTRYPOINT {entrypoint}", p.workdir);
    file
}

/// Stage the recipe's build context files and each layer in a temporary dir, write the Dockerfile.
fn script(req: &ExecuteRequest) -> String {
    let q = |s: &str| format!("'{}'", s.replace('\'', r"'\''")); // quoted for POSIX sh
    let (p, root, ctx) = (&req.plan, &req.paths.root, "\"$ctx\"");
    let context = format!("{root}/{}", p.context.root);
    let mut s = "#!/bin/sh\nset -eu\nctx=$(mktemp -d)\ntrap 'rm -rf \"$ctx\"' EXIT\n".to_string();
    if let Base::Recipe { path, .. } = &p.base {
        let _ = writeln!(s, "b={ctx}/b c={} && mkdir \"$b\"", q(&context));
        s += "put() { mkdir -p \"$b/$(dirname \"$1\")\" && cp -P \"$c/$1\" \"$b/$1\"; }\n";
        for file in &p.context.files {
            let _ = writeln!(s, "put {}", q(&file.path)); // the recipe's context: these files only
        }
        let (t, f) = (q(&p.image.tag), q(&format!("{root}/{path}")));
        let _ = writeln!(s, "${{ENGINE:-docker}} build -t {t}-base -f {f} \"$b\"");
    }
    for (i, layer) in p.layers.iter().enumerate() {
        let src = match &layer.from {
            S::Generated { text } => format!("printf '%s' {} >", q(text)),
            S::Context { path } => format!("cp -R {}", q(&format!("{context}/{path}"))),
            _ => format!("cp {}", q(&req.paths.kerblam)), // kerblam; host trees are refused
        };
        let _ = writeln!(s, "{src} {ctx}/l{i} && chmod {:o} {ctx}/l{i}", layer.mode);
    }
    let _ = writeln!(s, "printf '%s' {} > {ctx}/Dockerfile", q(&dockerfile(p)));
    let _ = writeln!(s, "${{ENGINE:-docker}} build -t {} {ctx}", q(&p.image.tag));
    s
}

impl Backend for Script {
    fn describe(&self) -> Describe {
        let caps: Capabilities = json::from_value(json::json!({"actions": ["package"],
            "sources": ["pipe"], "base_kinds": ["scratch", "image", "recipe"],
            "layer_sources": ["generated", "context", "kerblam"], "artifact_kinds": ["file"],
            "preflight_checks": ["disk-space", "writable", "tool", "file-exists"],
            "rootless": true, "reentrant": true}))
        .expect("valid capabilities");
        let d = kerblam_backend_api::sdk::describe("script", env!("CARGO_PKG_VERSION"), caps);
        let description = Some("example: writes a script that would build the image".into());
        Describe { description, ..d }
    }

    /// Its part of the plan, as JSON (what a plugin in any language returns): the one file it
    /// writes, the Dockerfile it renders, and how to use the file.
    fn plan(&self, req: &PlanRequest) -> Result<BackendPlan, E> {
        let (path, text) = (req.plan.output.file(".build.sh"), dockerfile(&req.plan));
        json::from_value(json::json!({"name": "script",
            "artifacts": [{"kind": "file", "path": path, "format": "sh", "contents": []}],
            "rendered": [{"name": "Containerfile", "text": text}],
            "usage": [format!("build the image with: sh {path}")]}))
        .map_err(|e| E::backend(e.to_string()))
    }

    fn execute(&self, req: &ExecuteRequest, host: &Host<'_>) -> Result<ExecuteResult, E> {
        host.check_cancelled()?;
        let (a, text) = (&req.plan.backend.artifacts[0], script(req));
        let path = Path::new(&req.paths.output_dir).join(&a.path);
        if path.exists() && !req.options.force {
            return Err(E::backend(format!("{} exists", path.display())).with_help("--force"));
        }
        let tmp = path.with_extension("tmp");
        let io = |e: std::io::Error| E::backend(e.to_string());
        std::fs::write(&tmp, &text).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        let (path, bytes) = (path.display().to_string(), text.len());
        let result = json::json!({"artifacts": [{"kind": a.kind, "path": path, "bytes": bytes}]});
        json::from_value(result).map_err(|e| E::backend(e.to_string()))
    }
}

kerblam_backend_api::export_backend!(Script);

//! An example third-party kerblam backend, on the SDK alone. `package` writes `<name>.plan.json`,
//! `<name>.build.sh` (builds `plan.image.tag` with `${ENGINE:-docker}`) and the replay archive.
use kerblam_backend_api::plan::{ArtifactKind as A, Base, LayerSource as S, SourceKind};
use kerblam_backend_api::{Action, Backend, BaseKind, Capabilities, Describe, ErrorMessage as E};
use kerblam_backend_api::{ExecuteRequest, ExecuteResult, Host, LayerSourceKind as L};
use kerblam_backend_api::{PreflightKind as P, sdk::replay, serde_json as json};
use std::{fmt::Write, path::Path};

struct Script;

/// Quote for POSIX sh.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Write `<name>.<ext>` in the output dir under a temporary name, then rename it into place.
fn write(req: &ExecuteRequest, ext: &str, text: &str) -> Result<String, E> {
    let path = Path::new(&req.paths.output_dir).join(format!("{}.{ext}", req.plan.name));
    if path.exists() && !req.options.force {
        return Err(E::backend(format!("{} exists", path.display())).with_help("pass --force"));
    }
    let tmp = path.with_extension("tmp");
    let io = |e: std::io::Error| E::backend(format!("cannot write {}: {e}", path.display()));
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(path.display().to_string())
}

/// Stage each layer in a temporary dir, write the Dockerfile there, build it.
fn script(req: &ExecuteRequest) -> String {
    let (p, root, ctx) = (&req.plan, &req.paths.root, "\"$ctx\"");
    let context = format!("{root}/{}", p.context.root);
    let mut s = "#!/bin/sh\nset -eu\nctx=$(mktemp -d)\ntrap 'rm -rf \"$ctx\"' EXIT\n".to_string();
    let from = match &p.base {
        Base::Image { reference } => reference.clone(),
        Base::Recipe { path, .. } => {
            let (tag, file) = (format!("{}-base", p.image.tag), format!("{root}/{path}"));
            let (t, f, r) = (q(&tag), q(&file), q(root));
            let _ = writeln!(s, "${{ENGINE:-docker}} build -t {t} -f {f} {r}");
            tag
        }
        _ => "scratch".into(), // archive bases are refused by the capabilities
    };
    let mut file = format!("FROM {from}\n");
    for (i, layer) in p.layers.iter().enumerate() {
        let src = match &layer.from {
            S::Generated { text } => format!("printf '%s' {} >", q(text)),
            S::Context { path } => format!("cp -R {}", q(&format!("{context}/{path}"))),
            _ => format!("cp {}", q(&req.paths.kerblam)), // kerblam; host trees are refused
        };
        let _ = writeln!(s, "{src} {ctx}/l{i} && chmod {:o} {ctx}/l{i}", layer.mode);
        let _ = writeln!(file, "COPY l{i} {}", layer.to);
    }
    for e in &p.env {
        let value = json::to_string(&e.value).unwrap_or_default();
        let _ = writeln!(file, "ENV {}={value}", e.name);
    }
    let entrypoint = json::to_string(&p.entrypoint).unwrap_or_default();
    let _ = writeln!(file, "WORKDIR {}\nENTRYPOINT {entrypoint}", p.workdir);
    let _ = writeln!(s, "printf '%s' {} > {ctx}/Dockerfile", q(&file));
    let _ = writeln!(s, "${{ENGINE:-docker}} build -t {} {ctx}", q(&p.image.tag));
    s
}

impl Backend for Script {
    fn describe(&self) -> Describe {
        let caps = Capabilities {
            actions: vec![Action::Package],
            sources: vec![SourceKind::Pipe],
            base_kinds: vec![BaseKind::Scratch, BaseKind::Image, BaseKind::Recipe],
            layer_sources: vec![L::Generated, L::Context, L::Kerblam],
            artifact_kinds: vec![A::EngineImage, A::ReplayArchive],
            preflight_checks: vec![P::DiskSpace, P::Writable, P::Tool, P::FileExists],
            rootless: true,
            reentrant: true,
            ..Capabilities::default()
        };
        let mut d = kerblam_backend_api::sdk::describe("script", env!("CARGO_PKG_VERSION"), caps);
        d.description = Some("example: writes the plan and a script that would build it".into());
        d
    }

    fn execute(&self, req: &ExecuteRequest, host: &Host<'_>) -> Result<ExecuteResult, E> {
        let plan = json::to_string_pretty(&req.plan).map_err(|e| E::backend(e.to_string()))?;
        write(req, "plan.json", &(plan + "\n"))?;
        host.check_cancelled()?;
        let sh = write(req, "build.sh", &script(req))?;
        let mut result = ExecuteResult::default();
        result.notes.push(format!("build the image with: sh {sh}"));
        result.artifacts.extend(replay::write(req, host)?);
        Ok(result)
    }
}

kerblam_backend_api::export_backend!(Script);

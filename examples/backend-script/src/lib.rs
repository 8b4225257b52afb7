//! An example third-party kerblam backend. For `package` it writes `<name>.plan.json`, `<name>.build.sh`
//! (a script that builds the engine image `plan.image.tag` with `${ENGINE:-docker}`; it runs nothing itself)
//! and the replay archive (with the SDK's writer) into the output directory.
use kerblam_backend_api::plan::{ArtifactKind as A, Base, LayerSource, SourceKind};
use kerblam_backend_api::{Action, Backend, BaseKind, Capabilities, Describe, ErrorMessage};
use kerblam_backend_api::{ExecuteRequest, ExecuteResult, Host, LayerSourceKind as L, PreflightKind as P};
use kerblam_backend_api::{sdk::replay, serde_json};
use std::{fmt::Write, path::Path};

struct Script;

/// Quote for POSIX sh.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Write a file under a temporary name, then rename it into place.
fn write(path: &Path, text: &str, force: bool) -> Result<(), ErrorMessage> {
    if path.exists() && !force {
        return Err(ErrorMessage::backend(format!("{} exists", path.display())).with_help("pass --force"));
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let io = |e: std::io::Error| ErrorMessage::backend(format!("cannot write {}: {e}", path.display()));
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn script(req: &ExecuteRequest) -> String {
    let (p, root) = (&req.plan, &req.paths.root);
    let mut s = format!("#!/bin/sh\n# Builds {} from {}.plan.json.\nset -eu\n", p.image.tag, p.name);
    s += "ctx=$(mktemp -d)\ntrap 'rm -rf \"$ctx\"' EXIT\n";
    let from = match &p.base {
        Base::Scratch => "scratch".to_string(),
        Base::Image { reference } => reference.clone(),
        Base::Recipe { path, .. } => {
            let (base, recipe) = (format!("{}-base", p.image.tag), format!("{root}/{path}"));
            let _ = writeln!(s, "${{ENGINE:-docker}} build -t {} -f {} {}", q(&base), q(&recipe), q(root));
            base
        }
        Base::Archive { .. } => unreachable!("refused by capabilities"),
    };
    let mut file = format!("FROM {from}\n");
    for (i, layer) in p.layers.iter().enumerate() {
        let src = match &layer.from {
            LayerSource::Generated { text } => format!("printf '%s' {} >", q(text)),
            LayerSource::Context { path } => format!("cp -R {}", q(&format!("{root}/{}/{path}", p.context.root))),
            LayerSource::Kerblam => format!("cp {}", q(&req.paths.kerblam)),
            LayerSource::Host { .. } => unreachable!("refused by capabilities"),
        };
        let _ = writeln!(s, "{src} \"$ctx/l{i}\" && chmod {:o} \"$ctx/l{i}\"", layer.mode);
        let _ = writeln!(file, "COPY l{i} {}", layer.to);
    }
    for e in &p.env {
        let _ = writeln!(file, "ENV {}={}", e.name, serde_json::to_string(&e.value).unwrap_or_default());
    }
    let entrypoint = serde_json::to_string(&p.entrypoint).unwrap_or_default();
    let _ = writeln!(file, "WORKDIR {}\nENTRYPOINT {entrypoint}", p.workdir);
    let _ = writeln!(s, "printf '%s' {} > \"$ctx/Dockerfile\"", q(&file));
    let _ = writeln!(s, "${{ENGINE:-docker}} build -t {} \"$ctx\"", q(&p.image.tag));
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
        let description = Some("example: writes the plan and a shell script that would build it".into());
        Describe { description, ..kerblam_backend_api::sdk::describe("script", env!("CARGO_PKG_VERSION"), caps) }
    }

    fn execute(&self, req: &ExecuteRequest, host: &Host<'_>) -> Result<ExecuteResult, ErrorMessage> {
        let out = Path::new(&req.paths.output_dir);
        let name = &req.plan.name;
        let (plan_file, sh) = (out.join(format!("{name}.plan.json")), out.join(format!("{name}.build.sh")));
        let json = serde_json::to_string_pretty(&req.plan).map_err(|e| ErrorMessage::backend(e.to_string()))?;
        write(&plan_file, &(json + "\n"), req.options.force)?;
        host.check_cancelled()?;
        write(&sh, &script(req), req.options.force)?;
        host.info(&format!("wrote {}", sh.display()));
        let notes = vec![format!("build the image with: sh {}", sh.display())];
        Ok(ExecuteResult { artifacts: replay::write(req, host)?.into_iter().collect(), notes, exit_code: None })
    }
}

kerblam_backend_api::export_backend!(Script);

//! `<pipe>.context.tar`: a build context any engine can build the package image from.
//!
//! It holds the plan's context files (the project without its data, `.dockerignore` already
//! applied by the compiler), the generated Containerfile and the entries its `COPY` lines read
//! (`.kerblam/kerblam`, `.kerblam/kerblam-replay.sh`), rendered by `kerblam-render` exactly as the
//! docker and podman backends render it. The Containerfile sits at the root as `Dockerfile`, so
//! `docker build -t TAG - < <pipe>.context.tar` (or `podman build`) needs no `-f`; when the project
//! itself has a root `Dockerfile` or `Containerfile` in its context, it goes to
//! `.kerblam/Containerfile` instead and the printed command says `-f .kerblam/Containerfile`.

use std::path::Path;

use kerblam_archive::{ExtraEntry, ExtraSource, TarOptions, write_build_context};
use kerblam_backend_api::plan::{ArtifactKind, Base, PackagePlan};
use kerblam_backend_api::{ErrorMessage, ExecuteRequest, Host};
use kerblam_render::{EntrySource, Rendered};

use crate::errors;
use crate::pending::Pending;
use kerblam_backend_api::sdk::Reporter;

/// The Containerfile's path when the project context has its own root recipe.
pub const FALLBACK_RECIPE: &str = ".kerblam/Containerfile";

/// The rendered Containerfile of `plan`, reading the recipe file for a recipe base.
pub fn rendered(plan: &PackagePlan, root: &Path) -> Result<Rendered, ErrorMessage> {
    let recipe = match &plan.base {
        Base::Recipe { path, .. } => {
            let p = root.join(path);
            let text = std::fs::read_to_string(&p).map_err(|e| errors::io("reading", &p, e))?;
            Some(text)
        }
        Base::Archive { path } => {
            return Err(ErrorMessage::unsupported(format!(
                "a build context cannot start from the base archive {path}; load it into an engine and use an image base"
            )));
        }
        _ => None,
    };
    kerblam_render::render(plan, recipe.as_deref()).map_err(|e| {
        ErrorMessage::invalid_input(format!(
            "cannot write the Containerfile of {}: {e}",
            plan.name
        ))
    })
}

/// Where the Containerfile goes in the context of `plan`.
pub fn recipe_path(plan: &PackagePlan) -> &'static str {
    let taken = plan.context.files.iter().any(|f| {
        matches!(
            f.path.as_str(),
            "Dockerfile" | "Containerfile" | "dockerfile" | "containerfile"
        )
    });
    if taken { FALLBACK_RECIPE } else { "Dockerfile" }
}

/// The command that builds the image from the archive at `path` with `engine`.
pub fn build_command(engine: &str, plan: &PackagePlan, path: &Path) -> String {
    let f = match recipe_path(plan) {
        "Dockerfile" => String::new(),
        other => format!(" -f {other}"),
    };
    format!(
        "{engine} build -t {}{f} - < {}",
        plan.image.tag,
        shell_quote(&path.to_string_lossy())
    )
}

fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Writes the context archive to its temporary name next to `final_path`.
pub fn write(
    req: &ExecuteRequest,
    final_path: &Path,
    tar: TarOptions,
    host: &Host<'_>,
) -> Result<Pending, ErrorMessage> {
    let plan = &req.plan;
    let root = Path::new(&req.paths.root);
    let rendered = rendered(plan, root)?;
    let kerblam = Path::new(&req.paths.kerblam);
    let mut extras: Vec<ExtraEntry<'_>> = Vec::with_capacity(rendered.entries.len() + 1);
    extras.push(ExtraEntry {
        path: recipe_path(plan),
        source: ExtraSource::Bytes(rendered.containerfile.as_bytes()),
        mode: 0o644,
    });
    for e in &rendered.entries {
        let source = match &e.source {
            EntrySource::Kerblam => ExtraSource::File(kerblam),
            EntrySource::Generated(text) => ExtraSource::Bytes(text.as_bytes()),
            EntrySource::Host { path, .. } => {
                let p = Path::new(path);
                if !p.is_file() {
                    return Err(ErrorMessage::unsupported(format!(
                        "the host layer {path} is a directory; the tarball backend writes frozen trees as a tarball, not into a build context"
                    )));
                }
                ExtraSource::File(p)
            }
        };
        extras.push(ExtraEntry {
            path: &e.path,
            source,
            mode: e.mode,
        });
    }
    let total = plan.context.total_bytes + std::fs::metadata(kerblam).map(|m| m.len()).unwrap_or(0);
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let reporter = Reporter::new(host, format!("writing {name}"), total);
    let callback = reporter.callback();
    let (file, writer) = Pending::create(final_path, req.options.force)?;
    let (writer, summary) =
        write_build_context(writer, root, &plan.context, &extras, tar, Some(&callback))
            .map_err(errors::archive)?;
    reporter.done(summary.bytes, summary.files);
    Pending::finish(ArtifactKind::ContextArchive, file, writer)
}

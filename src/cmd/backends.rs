//! `kerblam backends`: list the backend plugins found (and the libraries skipped, and why), and
//! `kerblam backends check PATH`: run the conformance kit on a plugin file.
//!
//! Other commands load their backend through [`registry`] and [`find`].

use std::path::PathBuf;

use clap::{Args, Subcommand};
use kerblam_backend_api::Hello;
use kerblam_backend_api::host::{Plugin, Registry, SearchConfig};
use serde_json::json;

use crate::cli::GlobalArgs;
use crate::exit;
use crate::output;

#[derive(Debug, Args)]
pub struct BackendsArgs {
    #[command(subcommand)]
    pub action: Option<BackendsAction>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum BackendsAction {
    /// Run the conformance kit on a plugin library; exit 0 when it conforms, 1 when not.
    Check {
        /// The plugin library (a `.so` file).
        path: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The hello kerblam sends to every plugin.
pub fn hello() -> Hello {
    Hello::new("kerblam", env!("CARGO_PKG_VERSION"))
}

/// Discover the plugins on the standard search path (`--backend-path` / `KERBLAM_BACKEND_PATH`,
/// the executable's dir and `../lib/kerblam/backends`, the user's data dir).
pub fn registry(global: &GlobalArgs) -> Registry {
    Registry::discover(
        &SearchConfig::standard(global.backend_path.clone()),
        &hello(),
    )
}

/// The plugin named `name`, warning about shadowed and refused plugins; an unknown name is an
/// invalid-input error listing the installed backends. Its plan calls have the limit of every
/// backend call (`--backend-timeout`), which [`crate::execute::execute`] gives its execute calls.
pub fn find(global: &GlobalArgs, name: &str) -> miette::Result<Plugin> {
    let reg = registry(global);
    for w in reg.warnings() {
        output::warn(w);
    }
    match reg.get(name) {
        Ok(p) => Ok(p.clone().with_timeout(global.backend_timeout)),
        Err(e) => Err(exit::Exit::invalid(e.to_string()).into()),
    }
}

pub fn run(global: &GlobalArgs, args: BackendsArgs) -> miette::Result<u8> {
    match args.action {
        None => list(global, args.json),
        Some(BackendsAction::Check { path, json }) => check(path, json || args.json),
    }
}

/// `a, b, c` for a JSON array of strings (`none` when empty).
fn names(v: Result<serde_json::Value, serde_json::Error>) -> String {
    let items: Vec<String> = match v {
        Ok(serde_json::Value::Array(items)) => items
            .into_iter()
            .map(|i| match i {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
        _ => Vec::new(),
    };
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn list(global: &GlobalArgs, as_json: bool) -> miette::Result<u8> {
    let reg = registry(global);
    if as_json {
        return list_json(&reg);
    }
    for w in &reg.shadowed {
        output::warn(w);
    }
    if reg.plugins.is_empty() {
        outln!("no backend plugins found");
    }
    for p in &reg.plugins {
        show_plugin(p);
    }
    if !reg.skipped.is_empty() {
        outln!("skipped:");
        for s in &reg.skipped {
            outln!("  {}: {}", s.path.display(), s.reason);
        }
    }
    if output::verbose(1) {
        outln!("searched:");
        for d in &reg.searched {
            outln!(
                "  {} ({})",
                d.path.display(),
                names(serde_json::to_value([d.origin]))
            );
        }
    }
    Ok(exit::OK)
}

/// `kerblam backends --json`: every plugin found, what was skipped or shadowed, and where.
fn list_json(reg: &Registry) -> miette::Result<u8> {
    let plugins: Vec<_> = reg
        .plugins
        .iter()
        .map(|p| {
            let d = p.describe();
            let (major, minor) = kerblam_backend_api::split_abi_version(p.abi_version());
            json!({
                "name": d.name,
                "version": d.version,
                "description": d.description,
                "path": p.path(),
                "abi": format!("{major}.{minor}"),
                "plan_schema": d.plan_schema,
                "sdk": d.sdk,
                "plans": p.has_plan(),
                "engine": d.engine,
                "capabilities": p.describe_json().get("capabilities"),
            })
        })
        .collect();
    let out = json!({
        "plugins": plugins,
        "skipped": reg.skipped,
        "shadowed": reg.shadowed,
        "searched": reg.searched,
    });
    outln!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
    Ok(exit::OK)
}

/// One plugin as `kerblam backends` shows it: its file, its engine, its ABI and what it can do.
fn show_plugin(p: &Plugin) {
    let d = p.describe();
    let c = &d.capabilities;
    let (major, minor) = kerblam_backend_api::split_abi_version(p.abi_version());
    outln!("{} {}  {}", d.name, d.version, p.path().display());
    if let Some(desc) = &d.description {
        outln!("    {desc}");
    }
    outln!(
        "    engine:    {}",
        match &d.engine {
            Some(e) if e.remote => format!(
                "{} at {} (remote: package and freeze only)",
                e.name, e.address
            ),
            Some(e) => format!("{} at {}", e.name, e.address),
            None => "none needed".into(),
        }
    );
    outln!(
        "    ABI {major}.{minor}, plan schema {}{}",
        d.plan_schema,
        if p.has_plan() {
            ""
        } else {
            " (no part of its own in plans: ABI 1.0)"
        }
    );
    outln!(
        "    actions:   {}",
        if c.actions.is_empty() {
            "none implemented yet".into()
        } else {
            names(serde_json::to_value(&c.actions))
        }
    );
    outln!("    sources:   {}", names(serde_json::to_value(&c.sources)));
    outln!(
        "    bases:     {}",
        names(serde_json::to_value(&c.base_kinds))
    );
    outln!(
        "    layers:    {}",
        names(serde_json::to_value(&c.layer_sources))
    );
    outln!(
        "    artifacts: {}",
        names(serde_json::to_value(&c.artifact_kinds))
    );
    outln!(
        "    preflight: {}",
        names(serde_json::to_value(&c.preflight_checks))
    );
    let mut flags: Vec<String> = Vec::new();
    for (on, name) in [
        (c.mounts, "mounts"),
        (c.rootless, "rootless"),
        (c.push, "push"),
        (c.embed_image, "embed-image"),
        (c.base_archive, "base-archive"),
        (c.native, "native"),
        (c.reentrant, "reentrant"),
    ] {
        if on {
            flags.push(name.into());
        }
    }
    outln!(
        "    features:  {}",
        if flags.is_empty() {
            "none".into()
        } else {
            flags.join(", ")
        }
    );
    if !c.formats.is_empty() {
        outln!("    formats:   {}", c.formats.join(", "));
    }
}

fn check(path: PathBuf, as_json: bool) -> miette::Result<u8> {
    if !path.is_file() {
        return Err(exit::Exit::invalid(format!("{}: no such plugin file", path.display())).into());
    }
    // The SDK's panic hook for the conformance kit only fires with this set. Still single-threaded here.
    // SAFETY: no other thread exists yet in this process.
    unsafe { std::env::set_var(kerblam_backend_api::sdk::CONFORMANCE_ENV, "1") };
    let report = kerblam_conformance::check(&path);
    if as_json {
        outln!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
    } else {
        outln!("{report}");
    }
    Ok(if report.passed() {
        exit::OK
    } else {
        exit::FAILURE
    })
}

//! Lowering a freeze spec into a [`PackagePlan`].
//!
//! The plan carries everything a backend needs: the frozen trees as `host` layers (with the spec's
//! excludes), the generated `activate.sh` / `start.sh` / help text, the clean image environment,
//! the entrypoint, the smoke test, labels, the destination, and the figures measured from the
//! trees after excludes (bytes, files, entries). What the backend makes of them (its artifacts,
//! the room it needs) is the backend's to say.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kerblam_plan::{
    BackendPlan, Base, Context, EnvVar, Exclusion, ExclusionReason, FreezeInfo, Image, Layer,
    LayerSource, Metadata, Output, PLAN_SCHEMA, PackagePlan, Preflight, Purpose, Source,
    SourceKind,
};

use crate::Error;
use crate::diag::SourceFile;
use crate::digest::sha256_bytes;
use crate::freeze::scripts::{
    FREEZE_DIR, HelpInputs, ScriptInputs, activate_sh, captured_env, default_help, id_file,
    start_sh,
};
use crate::freeze::spec::FreezeSpec;
use crate::freeze::trees::{Collected, collect};
use crate::lower::{KERBLAM_VERSION, sh_quote};
use crate::tag::default_tag;
use crate::time::{iso_date, rfc3339};

/// How to compile a freeze spec.
#[derive(Debug, Clone)]
pub struct FreezeOptions {
    /// The Unix time of the freeze: `SOURCE_DATE_EPOCH` when set, else today (the CLI truncates it
    /// to the day so plans printed on the same day are identical). Gives the version's ISO date.
    pub epoch: i64,
    /// The directory a relative `destination` is relative to (the spec's directory).
    pub base_dir: PathBuf,
    /// The system temporary directory: the default destination.
    pub temp_dir: PathBuf,
    /// The spec's path relative to the plan root, recorded as `source.manifest`.
    pub manifest: String,
}

/// The dated version: `YYYY-MM-DD` of `epoch`, then `-<suffix>` when given.
pub fn dated_version(epoch: i64, suffix: Option<&str>) -> String {
    match suffix {
        Some(s) if !s.is_empty() => format!("{}-{s}", iso_date(epoch)),
        _ => iso_date(epoch),
    }
}

/// Compile a checked spec into a plan. `source` is the spec's text (used for its digest and to
/// locate errors found on disk, such as a module without a generic build).
// long: most of it is the one PackagePlan literal, a line per field; every decision is in a
// named helper below
pub fn compile_freeze(
    spec: &FreezeSpec,
    source: &SourceFile,
    opts: &FreezeOptions,
) -> Result<PackagePlan, Error> {
    let Collected {
        target,
        modules,
        module_dirs,
        trees,
        mut layers,
        total_bytes,
        total_files,
        mut entries,
    } = collect(spec, source)?;
    let e = &spec.eessi;
    let names = Names::of(spec, opts.epoch);
    let module_names: Vec<String> = modules.iter().map(|m| m.name.clone()).collect();
    let env = image_env(spec, &target, &names);
    let help = help_text(spec, &names, &target, &module_names);
    let inputs = ScriptInputs {
        name: &names.name,
        version: &names.version,
        prefix: e.prefix.trim_end_matches('/'),
        module_dirs: &module_dirs,
        modules: &module_names,
        env: &env,
    };
    let generated = generated_layers(spec, &inputs, &help);
    entries += generated.len() as u64 + 1;
    layers.extend(generated);
    let digest = sha256_bytes(source.text.as_bytes());
    let labels = freeze_labels(spec, &names, &help, &module_names, &target, &digest);
    let Names {
        name,
        version,
        created,
        ..
    } = names;
    Ok(PackagePlan {
        schema: PLAN_SCHEMA.into(),
        source: Source {
            kind: SourceKind::Freeze,
            manifest: opts.manifest.clone(),
            digest,
        },
        root: ".".into(),
        name: name.clone(),
        purpose: Purpose::Package,
        image: Image {
            tag: format!("{}:{version}", default_tag(&name, "")),
            labels,
        },
        base: base_image(spec),
        context: excluded_context(spec),
        layers,
        mounts: Vec::new(),
        workdir: "/".into(),
        env: env
            .iter()
            .map(|(k, v, _)| EnvVar {
                name: k.clone(),
                value: v.clone(),
            })
            .collect(),
        entrypoint: vec!["/bin/bash".to_string(), format!("{FREEZE_DIR}/start.sh")],
        output: Output {
            dir: destination(spec, opts),
            stem: format!("{name}-{version}"),
        },
        artifacts: Vec::new(),
        metadata: Metadata {
            author: Some(spec.author.clone()),
            version: Some(version),
            description: Some(help.clone()),
            kerblam_version: KERBLAM_VERSION.into(),
            created: Some(created),
        },
        preflight: trees
            .iter()
            .map(|t| Preflight::FileExists {
                path: t.path.clone(),
            })
            .collect(),
        pipe: None,
        freeze: Some(FreezeInfo {
            prefix: e.prefix.clone(),
            cpu_target: target,
            generic: spec.generic,
            modules,
            trees,
            total_bytes,
            total_files,
            entries,
            test: smoke_test(spec),
            help,
        }),
        backend: BackendPlan::named(spec.backend.clone()),
    })
}

/// The freeze's name and its dates.
struct Names {
    name: String,
    /// The ISO date of the freeze, then `-<suffix>` when the spec gives one.
    version: String,
    /// `YYYY-MM-DD`.
    date: String,
    /// RFC 3339.
    created: String,
}

impl Names {
    fn of(spec: &FreezeSpec, epoch: i64) -> Names {
        Names {
            name: spec.name_or_default(),
            version: dated_version(epoch, spec.version.as_deref()),
            date: iso_date(epoch),
            created: rfc3339(epoch),
        }
    }
}

/// Where the freeze is written: the spec's `destination` (relative to the spec's directory) or
/// the temporary directory, without a trailing `/`.
fn destination(spec: &FreezeSpec, opts: &FreezeOptions) -> String {
    let d = spec
        .destination
        .as_deref()
        .map(PathBuf::from)
        .unwrap_or_else(|| opts.temp_dir.clone());
    let d = if d.is_relative() {
        opts.base_dir.join(d)
    } else {
        d
    };
    let s = d.to_string_lossy().into_owned();
    let s = s.trim_end_matches('/').to_string();
    if s.is_empty() { "/".to_string() } else { s }
}

/// The image's environment, explicit so nothing of the host leaks in: `(name, value, exported
/// only when set)` as the scripts take it.
fn image_env(spec: &FreezeSpec, target: &str, names: &Names) -> Vec<(String, String, bool)> {
    let mut env: Vec<(String, String, bool)> = vec![(
        "EESSI_SOFTWARE_SUBDIR_OVERRIDE".into(),
        target.to_string(),
        false,
    )];
    if let Some(rc) = &spec.eessi.lmod_rc {
        env.push(("LMOD_RC".into(), rc.clone(), true));
    }
    env.push((
        "KERBLAM_FREEZE".into(),
        format!("{}:{}", names.name, names.version),
        false,
    ));
    for (k, v) in &spec.env.set {
        env.push((k.clone(), v.clone(), false));
    }
    env
}

/// The spec's help text, or the default one describing the freeze.
fn help_text(spec: &FreezeSpec, names: &Names, target: &str, module_names: &[String]) -> String {
    spec.help.clone().unwrap_or_else(|| {
        default_help(&HelpInputs {
            name: &names.name,
            version: &names.version,
            author: &spec.author,
            date: &names.date,
            cpu_target: target,
            prefix: &spec.eessi.prefix,
            modules: module_names,
        })
    })
}

/// The generated files of the freeze directory (`activate.sh`, `start.sh`, `help.txt`, `id`, and
/// `captured.env` when the spec captured variables), as layers.
fn generated_layers(spec: &FreezeSpec, inputs: &ScriptInputs, help: &str) -> Vec<Layer> {
    let mut generated: Vec<(String, String, u32)> = vec![
        (
            format!("{FREEZE_DIR}/activate.sh"),
            activate_sh(inputs),
            0o644,
        ),
        (format!("{FREEZE_DIR}/start.sh"), start_sh(inputs), 0o755),
        (format!("{FREEZE_DIR}/help.txt"), help.to_string(), 0o644),
        (format!("{FREEZE_DIR}/id"), id_file(inputs), 0o644),
    ];
    if !spec.env.captured.is_empty() {
        generated.push((
            format!("{FREEZE_DIR}/captured.env"),
            captured_env(&spec.env.captured),
            0o644,
        ));
    }
    generated
        .into_iter()
        .map(|(to, text, mode)| Layer {
            from: LayerSource::Generated { text },
            to,
            mode,
        })
        .collect()
}

/// The smoke test, run inside the activated environment.
fn smoke_test(spec: &FreezeSpec) -> Option<String> {
    spec.test.as_ref().map(|t| {
        format!(
            "/bin/bash {FREEZE_DIR}/start.sh /bin/bash -c {}",
            sh_quote(t)
        )
    })
}

/// The spec's labels, then kerblam's (OCI title, version, authors, creation, description, and the
/// freeze's modules, CPU target, prefix, date), which the spec may not set.
fn freeze_labels(
    spec: &FreezeSpec,
    names: &Names,
    help: &str,
    module_names: &[String],
    target: &str,
    digest: &str,
) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = spec.labels.clone();
    let mut set = |k: &str, v: String| {
        labels.insert(k.to_string(), v);
    };
    set("org.opencontainers.image.title", names.name.clone());
    set("org.opencontainers.image.version", names.version.clone());
    set("org.opencontainers.image.authors", spec.author.clone());
    set("org.opencontainers.image.created", names.created.clone());
    set(
        "org.opencontainers.image.description",
        help.lines().next().unwrap_or_default().to_string(),
    );
    set("dev.kerblam.freeze.modules", module_names.join(","));
    set("dev.kerblam.freeze.cpu-target", target.to_string());
    set("dev.kerblam.freeze.prefix", spec.eessi.prefix.clone());
    set("dev.kerblam.freeze.generic", spec.generic.to_string());
    set("dev.kerblam.freeze.date", names.date.clone());
    set("dev.kerblam.version", KERBLAM_VERSION.into());
    set("dev.kerblam.manifest-digest", digest.to_string());
    labels
}

/// `scratch`, or the base image the spec names.
fn base_image(spec: &FreezeSpec) -> Base {
    if spec.base == "scratch" {
        Base::Scratch
    } else {
        Base::Image {
            reference: spec.base.clone(),
        }
    }
}

/// A freeze has no build context; the plan records the spec's excludes there.
fn excluded_context(spec: &FreezeSpec) -> Context {
    Context {
        root: ".".into(),
        excluded: spec
            .exclude
            .iter()
            .map(|p| Exclusion {
                path: p.clone(),
                reason: ExclusionReason::FreezeExclude,
            })
            .collect(),
        files: Vec::new(),
        total_bytes: 0,
    }
}

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
pub fn compile_freeze(
    spec: &FreezeSpec,
    source: &SourceFile,
    opts: &FreezeOptions,
) -> Result<PackagePlan, Error> {
    let c = collect(spec, source)?;
    let Collected {
        target,
        modules,
        module_dirs,
        trees,
        mut layers,
        total_bytes,
        total_files,
        mut entries,
    } = c;
    let e = &spec.eessi;

    // Names, version, dates.
    let name = spec.name_or_default();
    let version = dated_version(opts.epoch, spec.version.as_deref());
    let date = iso_date(opts.epoch);
    let created = rfc3339(opts.epoch);
    let tag = format!("{}:{version}", default_tag(&name, ""));
    let stem = format!("{name}-{version}");
    let destination = {
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
    };
    let module_names: Vec<String> = modules.iter().map(|m| m.name.clone()).collect();
    let backend = spec.backend.clone();

    // Environment: explicit, so nothing of the host leaks in.
    let mut env: Vec<(String, String, bool)> = vec![(
        "EESSI_SOFTWARE_SUBDIR_OVERRIDE".into(),
        target.clone(),
        false,
    )];
    if let Some(rc) = &e.lmod_rc {
        env.push(("LMOD_RC".into(), rc.clone(), true));
    }
    env.push(("KERBLAM_FREEZE".into(), format!("{name}:{version}"), false));
    for (k, v) in &spec.env.set {
        env.push((k.clone(), v.clone(), false));
    }
    let inputs = ScriptInputs {
        name: &name,
        version: &version,
        prefix: e.prefix.trim_end_matches('/'),
        module_dirs: &module_dirs,
        modules: &module_names,
        env: &env,
    };
    let help = spec.help.clone().unwrap_or_else(|| {
        default_help(&HelpInputs {
            name: &name,
            version: &version,
            author: &spec.author,
            date: &date,
            cpu_target: &target,
            prefix: &e.prefix,
            modules: &module_names,
        })
    });
    let mut generated: Vec<(String, String, u32)> = vec![
        (
            format!("{FREEZE_DIR}/activate.sh"),
            activate_sh(&inputs),
            0o644,
        ),
        (format!("{FREEZE_DIR}/start.sh"), start_sh(&inputs), 0o755),
        (format!("{FREEZE_DIR}/help.txt"), help.clone(), 0o644),
        (format!("{FREEZE_DIR}/id"), id_file(&inputs), 0o644),
    ];
    if !spec.env.captured.is_empty() {
        generated.push((
            format!("{FREEZE_DIR}/captured.env"),
            captured_env(&spec.env.captured),
            0o644,
        ));
    }
    entries += generated.len() as u64 + 1;
    for (to, text, mode) in &generated {
        layers.push(Layer {
            from: LayerSource::Generated { text: text.clone() },
            to: to.clone(),
            mode: *mode,
        });
    }
    let entrypoint = vec!["/bin/bash".to_string(), format!("{FREEZE_DIR}/start.sh")];
    let test = spec.test.as_ref().map(|t| {
        format!(
            "/bin/bash {FREEZE_DIR}/start.sh /bin/bash -c {}",
            sh_quote(t)
        )
    });

    // Labels.
    let digest = sha256_bytes(source.text.as_bytes());
    let mut labels: BTreeMap<String, String> = spec.labels.clone();
    let mut set = |k: &str, v: String| {
        labels.insert(k.to_string(), v);
    };
    set("org.opencontainers.image.title", name.clone());
    set("org.opencontainers.image.version", version.clone());
    set("org.opencontainers.image.authors", spec.author.clone());
    set("org.opencontainers.image.created", created.clone());
    set(
        "org.opencontainers.image.description",
        help.lines().next().unwrap_or_default().to_string(),
    );
    set("dev.kerblam.freeze.modules", module_names.join(","));
    set("dev.kerblam.freeze.cpu-target", target.clone());
    set("dev.kerblam.freeze.prefix", e.prefix.clone());
    set("dev.kerblam.freeze.generic", spec.generic.to_string());
    set("dev.kerblam.freeze.date", date.clone());
    set("dev.kerblam.version", KERBLAM_VERSION.into());
    set("dev.kerblam.manifest-digest", digest.clone());

    let preflight = trees
        .iter()
        .map(|t| Preflight::FileExists {
            path: t.path.clone(),
        })
        .collect();

    let exclusions = spec
        .exclude
        .iter()
        .map(|p| Exclusion {
            path: p.clone(),
            reason: ExclusionReason::FreezeExclude,
        })
        .collect();

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
        image: Image { tag, labels },
        base: if spec.base == "scratch" {
            Base::Scratch
        } else {
            Base::Image {
                reference: spec.base.clone(),
            }
        },
        context: Context {
            root: ".".into(),
            excluded: exclusions,
            files: Vec::new(),
            total_bytes: 0,
        },
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
        entrypoint,
        output: Output {
            dir: destination,
            stem,
        },
        artifacts: Vec::new(),
        metadata: Metadata {
            author: Some(spec.author.clone()),
            version: Some(version),
            description: Some(help.clone()),
            kerblam_version: KERBLAM_VERSION.into(),
            created: Some(created),
        },
        preflight,
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
            test,
            help,
        }),
        backend: BackendPlan::named(backend),
    })
}

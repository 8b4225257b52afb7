//! Lowering a freeze spec into a [`PackagePlan`].
//!
//! The plan carries everything a backend needs: the frozen trees as `host` layers (with the spec's
//! excludes), the generated `activate.sh` / `start.sh` / help text, the clean image environment,
//! the entrypoint, the smoke test, labels, artifacts under the destination and preflight checks
//! whose numbers are measured from the trees after excludes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kerblam_plan::{
    Artifact, ArtifactKind, Base, Context, EnvVar, Exclusion, ExclusionReason, FreezeInfo,
    FrozenModule, FrozenTree, Image, Layer, LayerSource, Metadata, PLAN_SCHEMA, PackagePlan,
    Preflight, Purpose, Source, SourceKind,
};

use crate::Error;
use crate::diag::{Finding, SourceFile};
use crate::digest::sha256_bytes;
use crate::freeze::scripts::{
    FREEZE_DIR, HelpInputs, ScriptInputs, activate_sh, captured_env, default_help, start_sh,
};
use crate::freeze::spec::FreezeSpec;
use crate::freeze::walk::measure;
use crate::lower::{KERBLAM_VERSION, sh_quote};
use crate::tag::default_tag;
use crate::time::{iso_date, rfc3339};
use crate::toml_doc::{Seg, TomlDoc};

/// Tar header and padding per entry, at most (a 512-byte header, up to 511 bytes of padding and a
/// 512-byte PAX header for long names), rounded up.
pub const TAR_BYTES_PER_ENTRY: u64 = 1536;
/// Filesystem block rounding per entry when trees are staged as files.
pub const BLOCK_BYTES_PER_ENTRY: u64 = 4096;
/// Room for the files kerblam writes next to the trees (metadata JSON, SIF headers) and slack.
pub const SLACK_BYTES: u64 = 1024 * 1024;

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

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

/// Compile a checked spec into a plan. `source` is the spec's text (used for its digest and to
/// locate errors found on disk, such as a module without a generic build).
pub fn compile_freeze(
    spec: &FreezeSpec,
    source: &SourceFile,
    opts: &FreezeOptions,
) -> Result<PackagePlan, Error> {
    let doc = TomlDoc::parse(source.clone()).ok();
    let locate = |path: &[Seg]| doc.as_ref().and_then(|d| d.locate(path));
    let mut findings: Vec<Finding> = Vec::new();
    let e = &spec.eessi;
    let target = if spec.generic {
        e.generic_subdir()
    } else {
        e.software_subdir.clone()
    };
    let specific_dir = e.software_dir(&e.software_subdir);
    let target_dir = e.software_dir(&target);
    let remap = |p: &str| -> Option<String> {
        if p == specific_dir || p.starts_with(&format!("{specific_dir}/")) {
            Some(format!("{target_dir}{}", &p[specific_dir.len()..]))
        } else if p == target_dir || p.starts_with(&format!("{target_dir}/")) {
            Some(p.to_string())
        } else {
            None
        }
    };

    // Modules and their (possibly remapped) roots.
    let mut modules = Vec::new();
    let mut no_generic = Vec::new();
    for (i, m) in spec.modules.iter().enumerate() {
        let root = m.root_or_default(e);
        let at = [key("modules"), Seg::Index(i)];
        let root = if spec.generic {
            match remap(&root) {
                Some(r) if Path::new(&r).exists() => r,
                Some(r) => {
                    no_generic.push(format!("{} (no {r})", m.name));
                    findings.push(
                        Finding::error(
                            source,
                            "kerblam::no-generic-build",
                            format!(
                                "module `{}` has no generic build: {r} does not exist",
                                m.name
                            ),
                        )
                        .at(locate(&at), "no generic build"),
                    );
                    continue;
                }
                None => {
                    no_generic.push(format!(
                        "{} (root {root} is outside {specific_dir})",
                        m.name
                    ));
                    findings.push(
                        Finding::error(
                            source,
                            "kerblam::no-generic-build",
                            format!(
                                "module `{}` has no generic build: its root {root} is not under the CPU-specific {specific_dir}",
                                m.name
                            ),
                        )
                        .at(locate(&at), "no generic build"),
                    );
                    continue;
                }
            }
        } else {
            root
        };
        if !Path::new(&root).exists() {
            findings.push(
                Finding::error(
                    source,
                    "kerblam::freeze-missing",
                    format!("the software root of module `{}`, {root}, does not exist", m.name),
                )
                .at(locate(&at), "missing software root")
                .help("set `root` to the module's EBROOT directory, or load the module and run `kerblam freeze --from-env`"),
            );
            continue;
        }
        modules.push(FrozenModule {
            name: m.name.clone(),
            root,
        });
    }
    if let Some(first) = findings
        .iter_mut()
        .find(|f| f.code == "kerblam::no-generic-build")
    {
        first.help = Some(format!(
            "{} module(s) have no generic build under {target_dir}: {}; freeze the CPU-specific builds (drop --generic) or load modules that have generic builds",
            no_generic.len(),
            no_generic.join(", ")
        ));
    }

    let mut module_dirs = Vec::new();
    for (i, d) in e.module_dirs().iter().enumerate() {
        let d = if spec.generic {
            remap(d).unwrap_or_else(|| d.clone())
        } else {
            d.clone()
        };
        if !Path::new(&d).is_dir() {
            let at = if e.module_path.is_empty() {
                vec![key("eessi"), key("software_subdir")]
            } else {
                vec![key("eessi"), key("module_path"), Seg::Index(i)]
            };
            findings.push(
                Finding::error(
                    source,
                    "kerblam::freeze-missing",
                    format!("the module directory {d} does not exist"),
                )
                .at(locate(&at), "missing module directory"),
            );
        }
        module_dirs.push(d);
    }

    // The trees, before dropping the ones inside another.
    let mut candidates: Vec<(String, String, Vec<Seg>)> = vec![
        (
            e.compat_dir(),
            "compat layer".into(),
            vec![key("eessi"), key("prefix")],
        ),
        (
            e.init_dir(),
            "init scripts".into(),
            vec![key("eessi"), key("prefix")],
        ),
    ];
    for (i, d) in module_dirs.iter().enumerate() {
        candidates.push((
            d.clone(),
            "module files".into(),
            vec![key("eessi"), key("module_path"), Seg::Index(i)],
        ));
    }
    if let Some(rc) = &e.lmod_rc {
        candidates.push((
            rc.clone(),
            "Lmod config".into(),
            vec![key("eessi"), key("lmod_rc")],
        ));
    }
    for (i, m) in modules.iter().enumerate() {
        candidates.push((
            m.root.clone(),
            format!("software of {}", m.name),
            vec![key("modules"), Seg::Index(i)],
        ));
    }
    for (i, p) in spec.extra_paths.iter().enumerate() {
        candidates.push((
            p.trim_end_matches('/').to_string(),
            "extra path".into(),
            vec![key("extra_paths"), Seg::Index(i)],
        ));
    }
    let within = |p: &str, dir: &str| p.starts_with(&format!("{}/", dir.trim_end_matches('/')));
    let mut trees: Vec<FrozenTree> = Vec::new();
    let mut layers: Vec<Layer> = Vec::new();
    let (mut total_bytes, mut total_files, mut entries) = (0u64, 0u64, 0u64);
    for (i, (path, role, at)) in candidates.iter().enumerate() {
        let covered = candidates
            .iter()
            .enumerate()
            .any(|(j, (q, _, _))| within(path, q) || (q == path && j < i));
        if covered {
            continue;
        }
        let meta = match Path::new(path).symlink_metadata() {
            Ok(m) => m,
            Err(err) => {
                findings.push(
                    Finding::error(
                        source,
                        "kerblam::freeze-missing",
                        format!("the {role} tree {path} cannot be read: {err}"),
                    )
                    .at(locate(at), "missing tree"),
                );
                continue;
            }
        };
        let size = measure(Path::new(path), &spec.exclude)?;
        total_bytes += size.bytes;
        total_files += size.files;
        entries += size.files + size.dirs;
        trees.push(FrozenTree {
            path: path.clone(),
            role: role.clone(),
            files: size.files,
            bytes: size.bytes,
        });
        use std::os::unix::fs::PermissionsExt;
        layers.push(Layer {
            from: LayerSource::Host {
                path: path.clone(),
                exclude: if meta.is_dir() {
                    spec.exclude.clone()
                } else {
                    Vec::new()
                },
            },
            to: path.clone(),
            mode: if meta.is_dir() {
                0o755
            } else {
                meta.permissions().mode() & 0o777
            },
        });
    }
    if findings
        .iter()
        .any(|f| f.level == crate::diag::Level::Error)
    {
        return Err(Error::Invalid {
            file: source.name.clone(),
            findings,
        });
    }

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
    let start = match backend.as_str() {
        "apptainer" => format!(
            "  apptainer run {stem}.sif            # a shell with the modules loaded\n\
             \x20 apptainer run {stem}.sif COMMAND    # run COMMAND in the environment\n"
        ),
        "tarball" => format!(
            "  mkdir DIR && tar --zstd -xf {stem}.tar.zst -C DIR\n\
             \x20 source DIR{FREEZE_DIR}/activate.sh   # in bash\n"
        ),
        _ => format!(
            "  {backend} run --rm -it {tag}            # a shell with the modules loaded\n\
             \x20 {backend} run --rm {tag} COMMAND      # run COMMAND in the environment\n"
        ),
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
            start,
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
    ];
    if !spec.env.captured.is_empty() {
        generated.push((
            format!("{FREEZE_DIR}/captured.env"),
            captured_env(&spec.env.captured),
            0o644,
        ));
    }
    let generated_bytes: u64 = generated.iter().map(|g| g.1.len() as u64).sum();
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

    // Artifacts.
    let dest_file = |ext: &str| format!("{destination}/{stem}{ext}");
    let mut tree_contents: Vec<String> = trees.iter().map(|t| t.path.clone()).collect();
    tree_contents.extend(generated.iter().map(|g| g.0.clone()));
    let artifacts = match backend.as_str() {
        "apptainer" => vec![Artifact {
            kind: ArtifactKind::Sif,
            path: dest_file(".sif"),
            format: Some("sif".into()),
            contents: tree_contents,
        }],
        "tarball" => vec![
            Artifact {
                kind: ArtifactKind::Tarball,
                path: dest_file(".tar.zst"),
                format: Some("tar+zstd".into()),
                contents: tree_contents
                    .iter()
                    .map(|p| p.trim_start_matches('/').to_string())
                    .collect(),
            },
            Artifact {
                kind: ArtifactKind::ActivateScript,
                path: dest_file(".activate.sh"),
                format: None,
                contents: vec![format!(
                    "a copy of {FREEZE_DIR}/activate.sh; after unpacking the tarball into DIR, source DIR{FREEZE_DIR}/activate.sh"
                )],
            },
            Artifact {
                kind: ArtifactKind::MetadataJson,
                path: dest_file(".json"),
                format: Some("kerblam.freeze/v1".into()),
                contents: vec!["the plan's `freeze`, `image.labels` and `metadata`".into()],
            },
        ],
        _ => vec![Artifact {
            kind: ArtifactKind::EngineImage,
            path: tag.clone(),
            format: None,
            contents: vec![format!("{} + {} layers", spec.base, layers.len())],
        }],
    };

    // Preflight checks, with numbers.
    let mut preflight = Vec::new();
    match backend.as_str() {
        "docker" | "podman" => preflight.push(Preflight::Tool {
            names: vec![backend.clone()],
        }),
        "apptainer" => preflight.push(Preflight::Tool {
            names: vec![
                "apptainer".into(),
                "singularity".into(),
                "mksquashfs".into(),
            ],
        }),
        _ => {}
    }
    for t in &trees {
        preflight.push(Preflight::FileExists {
            path: t.path.clone(),
        });
    }
    let n_trees = trees.len();
    let overhead = entries * TAR_BYTES_PER_ENTRY;
    let streamed = total_bytes + overhead + generated_bytes * 2 + SLACK_BYTES;
    let streamed_why = |what: &str| {
        format!(
            "{what} is streamed through zstd straight into {destination}, so it needs at most the {total_bytes} bytes of the {n_trees} trees after excludes (uncompressed), plus {TAR_BYTES_PER_ENTRY} bytes of header per entry for {entries} entries ({overhead}), plus {} bytes of generated files and 1 MiB of slack; nothing is staged in the temporary directory",
            generated_bytes * 2
        )
    };
    match backend.as_str() {
        "tarball" => {
            preflight.push(Preflight::Writable {
                path: destination.clone(),
            });
            preflight.push(Preflight::DiskSpace {
                path: destination.clone(),
                bytes: streamed,
                why: streamed_why("the tarball"),
            });
        }
        "apptainer" => {
            preflight.push(Preflight::Writable {
                path: destination.clone(),
            });
            let staged = total_bytes + entries * BLOCK_BYTES_PER_ENTRY + generated_bytes;
            let staged_why = format!(
                "apptainer stages the trees as a root filesystem in the temporary directory before squashing: the {total_bytes} bytes of the {n_trees} trees after excludes plus up to {BLOCK_BYTES_PER_ENTRY} bytes of block rounding per entry for {entries} entries; the base image is added by the backend"
            );
            let sif_why = format!(
                "the SIF holds a squashfs of the trees, at most their {total_bytes} bytes after excludes plus {TAR_BYTES_PER_ENTRY} bytes per entry for {entries} entries, plus generated files and 1 MiB"
            );
            if Path::new(&destination) == opts.temp_dir.as_path() {
                preflight.push(Preflight::DiskSpace {
                    path: destination.clone(),
                    bytes: staged + streamed,
                    why: format!(
                        "the destination is the temporary directory, so it needs both: {staged_why} ({staged} bytes), and {sif_why} ({streamed} bytes)"
                    ),
                });
            } else {
                preflight.push(Preflight::DiskSpace {
                    path: "$TMPDIR".into(),
                    bytes: staged,
                    why: staged_why,
                });
                preflight.push(Preflight::DiskSpace {
                    path: destination.clone(),
                    bytes: streamed,
                    why: sif_why,
                });
            }
        }
        _ => {}
    }

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
        backend,
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
        artifacts,
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
            test,
            help,
        }),
    })
}

//! The frozen trees of a spec: the modules' software roots (remapped for a generic freeze), the
//! module files, the compat layer, the init scripts, the Lmod config and the extra paths, measured
//! after excludes. Trees inside another tree are dropped; every problem found on disk becomes a
//! finding located in the spec.

use std::path::Path;

use kerblam_plan::{FrozenModule, FrozenTree, Layer, LayerSource};

use crate::Error;
use crate::diag::{Finding, SourceFile};
use crate::freeze::spec::FreezeSpec;
use crate::freeze::walk::measure;
use crate::toml_doc::{Seg, TomlDoc};

/// What a spec freezes.
pub(crate) struct Collected {
    /// The CPU target: the software subdir, or `<cpu_family>/generic`.
    pub target: String,
    /// The modules with their (remapped) roots.
    pub modules: Vec<FrozenModule>,
    /// The module directories to `module use`.
    pub module_dirs: Vec<String>,
    /// The trees, after dropping nested ones.
    pub trees: Vec<FrozenTree>,
    /// One host layer per tree.
    pub layers: Vec<Layer>,
    /// Bytes of the trees after excludes.
    pub total_bytes: u64,
    /// Files (non-directories) of the trees after excludes.
    pub total_files: u64,
    /// Entries (files and directories) of the trees after excludes.
    pub entries: u64,
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

/// Find, remap and measure the trees of `spec`.
pub(crate) fn collect(spec: &FreezeSpec, source: &SourceFile) -> Result<Collected, Error> {
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
    for d in e.module_dirs() {
        let d = if spec.generic {
            remap(&d).unwrap_or(d)
        } else {
            d
        };
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
        let at = if e.module_path.is_empty() {
            vec![key("eessi"), key("software_subdir")]
        } else {
            vec![key("eessi"), key("module_path"), Seg::Index(i)]
        };
        candidates.push((d.clone(), "module files".into(), at));
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
    Ok(Collected {
        target,
        modules,
        module_dirs,
        trees,
        layers,
        total_bytes,
        total_files,
        entries,
    })
}

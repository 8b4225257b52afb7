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
    let mut found = Findings {
        source,
        doc: TomlDoc::parse(source.clone()).ok(),
        list: Vec::new(),
    };
    let e = &spec.eessi;
    let target = if spec.generic {
        e.generic_subdir()
    } else {
        e.software_subdir.clone()
    };
    let remap = Remap {
        specific_dir: e.software_dir(&e.software_subdir),
        target_dir: e.software_dir(&target),
    };
    let modules = module_roots(spec, &remap, &mut found);
    let module_dirs: Vec<String> = e
        .module_dirs()
        .into_iter()
        .map(|d| {
            if spec.generic {
                remap.apply(&d).unwrap_or(d)
            } else {
                d
            }
        })
        .collect();
    let candidates = candidate_trees(spec, &module_dirs, &modules);
    let mut collected = Collected {
        target,
        modules,
        module_dirs,
        trees: Vec::new(),
        layers: Vec::new(),
        total_bytes: 0,
        total_files: 0,
        entries: 0,
    };
    measure_trees(&candidates, spec, &mut found, &mut collected)?;
    if found
        .list
        .iter()
        .any(|f| f.level == crate::diag::Level::Error)
    {
        return Err(Error::Invalid {
            file: source.name.clone(),
            findings: found.list,
        });
    }
    Ok(collected)
}

/// The findings so far, and where to locate new ones.
struct Findings<'a> {
    source: &'a SourceFile,
    doc: Option<TomlDoc>,
    list: Vec<Finding>,
}

impl Findings<'_> {
    /// An error located at `at` in the spec (when the spec parses), its span labelled `label`.
    fn error(&self, code: &'static str, message: String, at: &[Seg], label: &str) -> Finding {
        let span = self.doc.as_ref().and_then(|d| d.locate(at));
        Finding::error(self.source, code, message).at(span, label)
    }
}

/// A generic freeze moves the CPU-specific software directory to the generic one.
struct Remap {
    specific_dir: String,
    target_dir: String,
}

impl Remap {
    /// `p` under the target directory: moved there from the CPU-specific one, or already there;
    /// `None` when it is under neither.
    fn apply(&self, p: &str) -> Option<String> {
        let (specific_dir, target_dir) = (&self.specific_dir, &self.target_dir);
        if p == specific_dir || p.starts_with(&format!("{specific_dir}/")) {
            Some(format!("{target_dir}{}", &p[specific_dir.len()..]))
        } else if p == target_dir || p.starts_with(&format!("{target_dir}/")) {
            Some(p.to_string())
        } else {
            None
        }
    }
}

/// The modules with their software roots, remapped for a generic freeze. A module with no generic
/// build, or whose root is missing, is a finding; the first no-generic finding lists them all.
fn module_roots(spec: &FreezeSpec, remap: &Remap, found: &mut Findings) -> Vec<FrozenModule> {
    let e = &spec.eessi;
    let specific_dir = &remap.specific_dir;
    let mut modules = Vec::new();
    let mut no_generic = Vec::new();
    for (i, m) in spec.modules.iter().enumerate() {
        let root = m.root_or_default(e);
        let at = [key("modules"), Seg::Index(i)];
        let root = if spec.generic {
            match remap.apply(&root) {
                Some(r) if Path::new(&r).exists() => r,
                Some(r) => {
                    no_generic.push(format!("{} (no {r})", m.name));
                    let f = found.error(
                        "kerblam::no-generic-build",
                        format!(
                            "module `{}` has no generic build: {r} does not exist",
                            m.name
                        ),
                        &at,
                        "no generic build",
                    );
                    found.list.push(f);
                    continue;
                }
                None => {
                    no_generic.push(format!(
                        "{} (root {root} is outside {specific_dir})",
                        m.name
                    ));
                    let f = found.error(
                        "kerblam::no-generic-build",
                        format!(
                            "module `{}` has no generic build: its root {root} is not under the CPU-specific {specific_dir}",
                            m.name
                        ),
                        &at,
                        "no generic build",
                    );
                    found.list.push(f);
                    continue;
                }
            }
        } else {
            root
        };
        if !Path::new(&root).exists() {
            let f = found.error(
                "kerblam::freeze-missing",
                format!("the software root of module `{}`, {root}, does not exist", m.name),
                &at,
                "missing software root",
            )
            .help("set `root` to the module's EBROOT directory, or load the module and run `kerblam freeze --from-env`");
            found.list.push(f);
            continue;
        }
        modules.push(FrozenModule {
            name: m.name.clone(),
            root,
        });
    }
    if let Some(first) = found
        .list
        .iter_mut()
        .find(|f| f.code == "kerblam::no-generic-build")
    {
        first.help = Some(format!(
            "{} module(s) have no generic build under {}: {}; freeze the CPU-specific builds (drop --generic) or load modules that have generic builds",
            no_generic.len(),
            remap.target_dir,
            no_generic.join(", ")
        ));
    }
    modules
}

/// A tree to freeze: its path, its role (for messages) and where the spec names it.
type Candidate = (String, String, Vec<Seg>);

/// Every tree the spec names, in order, before dropping the ones inside another: the compat
/// layer, the init scripts, the module files, the Lmod config, the modules' software and the
/// extra paths.
fn candidate_trees(
    spec: &FreezeSpec,
    module_dirs: &[String],
    modules: &[FrozenModule],
) -> Vec<Candidate> {
    let e = &spec.eessi;
    let mut candidates: Vec<Candidate> = vec![
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
    candidates
}

/// Measures each candidate not inside another (nor named again) after excludes, and gives it a
/// host layer; a tree that cannot be read is a finding.
fn measure_trees(
    candidates: &[Candidate],
    spec: &FreezeSpec,
    found: &mut Findings,
    collected: &mut Collected,
) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let within = |p: &str, dir: &str| p.starts_with(&format!("{}/", dir.trim_end_matches('/')));
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
                let f = found.error(
                    "kerblam::freeze-missing",
                    format!("the {role} tree {path} cannot be read: {err}"),
                    at,
                    "missing tree",
                );
                found.list.push(f);
                continue;
            }
        };
        let size = measure(Path::new(path), &spec.exclude)?;
        collected.total_bytes += size.bytes;
        collected.total_files += size.files;
        collected.entries += size.files + size.dirs;
        collected.trees.push(FrozenTree {
            path: path.clone(),
            role: role.clone(),
            files: size.files,
            bytes: size.bytes,
        });
        collected.layers.push(Layer {
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
    Ok(())
}

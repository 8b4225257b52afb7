//! What the image holds, decided from the plan: the [`Model`] both the definition file and the
//! native SIF assembly are made from, so the two paths cannot drift apart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kerblam_plan::{Base, LayerSource, PackagePlan};

use crate::error::Error;
use crate::image::{ArchiveFormat, detect_format};
use crate::recipe::{self, Step};

/// Where the image starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseSpec {
    /// A registry image (`Bootstrap: docker`).
    Docker(String),
    /// A `docker save` archive (`Bootstrap: docker-archive`).
    DockerArchive(PathBuf),
    /// An OCI image layout archive (`Bootstrap: oci-archive`).
    OciArchive(PathBuf),
    /// A local SIF image (`Bootstrap: localimage`).
    LocalImage(PathBuf),
    /// Nothing (`Bootstrap: scratch`).
    Scratch,
}

/// Where one copied item comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A host file.
    File(PathBuf),
    /// A symlink with this target.
    Link(String),
    /// Generated text.
    Text(String),
    /// A host directory tree, minus gitignore-style `exclude` patterns.
    Tree {
        /// The tree's root on the host.
        path: PathBuf,
        /// Patterns relative to `path`.
        exclude: Vec<String>,
    },
}

/// One item put into the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// Its content.
    pub source: Source,
    /// Its absolute path in the image.
    pub dest: String,
    /// Its permission bits (files), when the plan says.
    pub mode: Option<u32>,
}

/// Everything the image is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// The plan's name.
    pub name: String,
    /// What the plan was compiled from (for the header comment).
    pub source: String,
    /// The base.
    pub base: BaseSpec,
    /// Items copied in, in order (recipe `COPY`s first, then the plan's layers).
    pub copies: Vec<Copy>,
    /// Directories to create (recipe `WORKDIR`s, the plan's workdir and its mount targets).
    pub dirs: Vec<String>,
    /// Recipe `RUN` commands with their working directory.
    pub run: Vec<(String, String)>,
    /// Environment variables, in order.
    pub env: Vec<(String, String)>,
    /// The runscript's working directory.
    pub workdir: String,
    /// The runscript's command.
    pub entrypoint: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// `%help` text.
    pub help: Option<String>,
    /// `%test` command.
    pub test: Option<String>,
    /// Recipe instructions that were ignored.
    pub ignored: Vec<String>,
}

/// The inputs the model needs besides the plan.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The absolute project root (plan paths are relative to it).
    pub root: &'a Path,
    /// The kerblam executable to bake in.
    pub kerblam: &'a Path,
    /// `--base FILE`, overriding the plan's base image.
    pub base_archive: Option<&'a Path>,
}

fn archive_base(path: &Path) -> Result<BaseSpec, Error> {
    Ok(match detect_format(path)? {
        ArchiveFormat::Docker => BaseSpec::DockerArchive(path.to_path_buf()),
        ArchiveFormat::Oci => BaseSpec::OciArchive(path.to_path_buf()),
    })
}

fn image_base(reference: &str) -> BaseSpec {
    if reference == "scratch" {
        BaseSpec::Scratch
    } else if reference.ends_with(".sif") {
        BaseSpec::LocalImage(PathBuf::from(reference))
    } else {
        BaseSpec::Docker(reference.to_string())
    }
}

/// What a recipe adds to the model, in the recipe's order; its `FROM` is the base.
#[derive(Debug, Default)]
struct FromRecipe {
    copies: Vec<Copy>,
    dirs: Vec<String>,
    run: Vec<(String, String)>,
    env: Vec<(String, String)>,
    labels: BTreeMap<String, String>,
    ignored: Vec<String>,
}

/// Read the recipe at `path` (relative to `root`) and translate its steps; returns its base too.
fn from_recipe(
    plan: &PackagePlan,
    root: &Path,
    ctx_root: &Path,
    path: &str,
) -> Result<(BaseSpec, FromRecipe), Error> {
    let p = root.join(path);
    let text = std::fs::read_to_string(&p)
        .map_err(|source| Error::RecipeUnreadable { path: p, source })?;
    let r = recipe::parse(&text, Path::new(path))?;
    let mut out = FromRecipe::default();
    for step in &r.steps {
        match step {
            Step::Workdir(w) => out.dirs.push(w.clone()),
            Step::Run { workdir, command } => out.run.push((workdir.clone(), command.clone())),
            Step::Copy {
                sources,
                dest,
                dest_is_dir,
            } => {
                for s in sources {
                    out.copies
                        .extend(expand_copy(plan, ctx_root, s, dest, *dest_is_dir, path)?);
                }
            }
        }
    }
    out.env.extend(r.env.iter().cloned());
    out.labels.extend(r.labels.iter().cloned());
    out.ignored = r.ignored.clone();
    Ok((image_base(&r.from), out))
}

/// The copies the plan's layers make, after the recipe's.
fn layer_copies(
    plan: &PackagePlan,
    inputs: Inputs<'_>,
    ctx_root: &Path,
    copies: &mut Vec<Copy>,
) -> Result<(), Error> {
    for layer in &plan.layers {
        let source = match &layer.from {
            LayerSource::Kerblam => Source::File(inputs.kerblam.to_path_buf()),
            LayerSource::Generated { text } => Source::Text(text.clone()),
            LayerSource::Context { path } => {
                let p = ctx_root.join(path);
                if p.is_dir() {
                    let expanded = expand_copy(plan, ctx_root, path, &layer.to, true, "the plan")?;
                    copies.extend(expanded);
                    continue;
                }
                Source::File(p)
            }
            LayerSource::Host { path, exclude } => {
                let p = PathBuf::from(path);
                if p.is_dir() {
                    Source::Tree {
                        path: p,
                        exclude: exclude.clone(),
                    }
                } else {
                    Source::File(p)
                }
            }
        };
        copies.push(Copy {
            source,
            dest: layer.to.clone(),
            mode: Some(layer.mode),
        });
    }
    Ok(())
}

/// Decide the model for `plan`.
pub fn build(plan: &PackagePlan, inputs: Inputs<'_>) -> Result<Model, Error> {
    let root = inputs.root;
    let ctx_root = root.join(&plan.context.root);
    let (mut base, mut r) = match &plan.base {
        Base::Recipe { path, .. } => from_recipe(plan, root, &ctx_root, path)?,
        Base::Image { reference } => (image_base(reference), FromRecipe::default()),
        Base::Archive { path } => (
            archive_base(&crate::abs(root, path))?,
            FromRecipe::default(),
        ),
        Base::Scratch => (BaseSpec::Scratch, FromRecipe::default()),
    };
    if let Some(a) = inputs.base_archive {
        base = archive_base(a)?;
    }
    layer_copies(plan, inputs, &ctx_root, &mut r.copies)?;
    // The workdir, and the bind targets of the data dirs: a SIF's squashfs is read-only, so
    // they exist in the image instead of relying on apptainer's underlay.
    for d in std::iter::once(&plan.workdir).chain(plan.mounts.iter().map(|m| &m.container)) {
        if !r.dirs.contains(d) {
            r.dirs.push(d.clone());
        }
    }
    r.env
        .extend(plan.env.iter().map(|e| (e.name.clone(), e.value.clone())));
    r.labels.extend(plan.image.labels.clone());
    let help = match &plan.freeze {
        Some(f) => Some(f.help.clone()),
        None => plan.metadata.description.clone(),
    };
    Ok(Model {
        name: plan.name.clone(),
        source: plan.source.manifest.clone(),
        base,
        copies: r.copies,
        dirs: r.dirs,
        run: r.run,
        env: r.env,
        workdir: plan.workdir.clone(),
        entrypoint: plan.entrypoint.clone(),
        labels: r.labels,
        help,
        test: plan.freeze.as_ref().and_then(|f| f.test.clone()),
        ignored: r.ignored,
    })
}

/// The copies a `COPY source dest` means, over the files of the plan's build context.
fn expand_copy(
    plan: &PackagePlan,
    ctx_root: &Path,
    source: &str,
    dest: &str,
    dest_is_dir: bool,
    recipe: &str,
) -> Result<Vec<Copy>, Error> {
    let src = source.trim_start_matches("./").trim_end_matches('/');
    let src = if src.is_empty() { "." } else { src };
    let mut out = Vec::new();
    for f in &plan.context.files {
        let rel = if src == "." {
            Some(f.path.as_str())
        } else if f.path == src {
            None
        } else {
            f.path.strip_prefix(src).and_then(|r| r.strip_prefix('/'))
        };
        let target = match rel {
            Some(rel) => format!("{}/{rel}", dest.trim_end_matches('/')),
            None if dest_is_dir => {
                let base = src.rsplit('/').next().unwrap_or(src);
                format!("{}/{base}", dest.trim_end_matches('/'))
            }
            None => dest.to_string(),
        };
        if rel.is_none() && f.path != src {
            continue;
        }
        let source = match &f.link {
            Some(t) => Source::Link(t.clone()),
            None => Source::File(ctx_root.join(&f.path)),
        };
        out.push(Copy {
            source,
            dest: target,
            mode: Some(f.mode),
        });
    }
    if out.is_empty() && src != "." {
        return Err(Error::CopyMatchesNothing {
            recipe: recipe.to_string(),
            copied: source.to_string(),
            excluded: plan
                .context
                .excluded
                .iter()
                .map(|e| e.path.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(out)
}

//! [`Work`]: one package or freeze as kerblam describes it for citation, with the identifiers of
//! what it made.

use kerblam_plan::PackagePlan;

use super::person::Person;

/// A file with its checksum: an input, or an artifact a backend (or kerblam) wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digested {
    /// For an input, its path relative to the project (or spec) directory; for an artifact, its
    /// path as written (absolute).
    pub path: String,
    /// Its size in bytes, when known (a spec inferred from the environment is no file).
    pub bytes: Option<u64>,
    /// `sha256:<64 hex digits>`.
    pub sha256: String,
    /// A media type, when known (`application/zstd`).
    pub media_type: Option<&'static str>,
}

/// An engine image and the ID its engine reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageId {
    /// The tag it was built under.
    pub tag: String,
    /// `sha256:<hex>`: the digest of the image's configuration, which names its layers.
    pub id: String,
}

/// What a package or a freeze made, and from what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    /// `package/<pipe>` or `freeze/<name>-<version>`: the local identifier of the action in an
    /// RO-Crate, and the prefix of every entity kerblam writes for it there.
    pub id: String,
    /// `package` or `freeze`.
    pub action: &'static str,
    /// The name to cite: the pipe's, or the freeze's.
    pub title: String,
    /// The version, when there is one (a freeze's always starts with its date).
    pub version: Option<String>,
    /// A sentence or two for readers.
    pub description: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Who made it.
    pub author: Option<Person>,
    /// The modules a freeze holds, in load order.
    pub modules: Vec<String>,
    /// The inputs with their checksums: the manifest or spec first, then a pipe's precious data.
    pub inputs: Vec<Digested>,
    /// The files made, in plan order.
    pub artifacts: Vec<Digested>,
    /// The engine image made, if any.
    pub image: Option<ImageId>,
    /// Where it was published, as (digest-pinned registry reference, what it names): the image
    /// and the package of a `--push`.
    pub published: Vec<(String, String)>,
    /// The kerblam version that made it.
    pub kerblam_version: String,
}

impl Work {
    /// The work a plan describes (`package/<pipe>` or `freeze/<stem>`), dated `date`
    /// (`YYYY-MM-DD`), before anything is identified: inputs and artifacts are added as they are
    /// hashed.
    pub fn of_plan(plan: &PackagePlan, date: String, author: Option<Person>) -> Work {
        // A pipe plan's `metadata.version` is the Kerblam! version its manifest targets
        // (`meta.version`), not a version of the work: only a freeze's is cited.
        let version = plan
            .freeze
            .as_ref()
            .and_then(|_| plan.metadata.version.clone());
        let (id, action, description, modules) = match &plan.freeze {
            Some(f) => (
                format!("freeze/{}", plan.output.stem),
                "freeze",
                format!(
                    "A frozen software environment: {} module(s) of {} ({}), frozen by kerblam {}.",
                    f.modules.len(),
                    f.prefix,
                    f.cpu_target,
                    plan.metadata.kerblam_version
                ),
                f.modules.iter().map(|m| m.name.clone()).collect(),
            ),
            None => (
                format!("package/{}", plan.name),
                "package",
                format!(
                    "The pipe {} packaged by kerblam {}: an image that re-runs it, and a replay archive with its manifest and precious input data.",
                    plan.name, plan.metadata.kerblam_version
                ),
                Vec::new(),
            ),
        };
        let description = match &plan.metadata.description {
            Some(d) if !d.trim().is_empty() => format!("{}\n\n{description}", d.trim()),
            _ => description,
        };
        Work {
            id,
            action,
            title: plan.name.clone(),
            version,
            description,
            date,
            author,
            modules,
            inputs: Vec::new(),
            artifacts: Vec::new(),
            image: None,
            published: Vec::new(),
            kerblam_version: plan.metadata.kerblam_version.clone(),
        }
    }
}

/// The last component of a path.
pub fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A media type for an artifact path, by its name.
pub fn media_type(path: &str) -> Option<&'static str> {
    let name = file_name(path);
    let types = [
        (".tar.zst", "application/zstd"),
        (".tar.gz", "application/gzip"),
        (".tgz", "application/gzip"),
        (".tar", "application/x-tar"),
        (".sif", "application/vnd.sylabs.sif"),
        (".sh", "application/x-sh"),
        (".json", "application/json"),
        (".def", "text/plain"),
    ];
    types
        .iter()
        .find(|(suffix, _)| name.ends_with(suffix))
        .map(|(_, t)| *t)
}

//! The typed freeze spec (`freeze.toml`): which EESSI environment to freeze and how.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema_patterns::{
    DOT_DOT_COMPONENT, FREEZE_NAME, FREEZE_VERSION, KERBLAM_LABEL, NOT_BLANK,
};

/// The tree excludes used when a spec names none.
pub const DEFAULT_EXCLUDES: [&str; 5] =
    ["var/cache", "var/db", "var/tmp", "*.log", ".cvmfscatalog"];

/// The environment variables `kerblam freeze --from-env` records by default.
pub const DEFAULT_ENV_INCLUDE: [&str; 8] = [
    "EESSI_*",
    "EBROOT*",
    "EBVERSION*",
    "EBDEVEL*",
    "LMOD_RC",
    "LOADEDMODULES",
    "MODULEPATH",
    "_LMFILES_",
];

/// Variables never recorded by default, whatever `include` says.
pub const DEFAULT_ENV_EXCLUDE: [&str; 5] = [
    "*TOKEN*",
    "*SECRET*",
    "*PASSWORD*",
    "*PASSWD*",
    "*CREDENTIAL*",
];

/// A freeze spec: an EESSI-style software environment (compatibility layer, init scripts, module
/// files and the software of the loaded modules) to pack into an image or a tarball so that it can
/// be used again later, offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "freeze.toml",
    description = "A kerblam freeze spec: an EESSI software environment to freeze into an image or a tarball.",
    extend("$id" = "https://kerblam.dev/schemas/freeze.json")
)]
pub struct FreezeSpec {
    /// Who made the freeze (you). Mandatory: there is no decent way to fill it in automatically.
    #[schemars(length(min = 1), regex(pattern = NOT_BLANK))]
    pub author: String,
    /// The image name [default: `EESSI_<last loaded module, with / replaced by _>`]. Letters,
    /// digits, `.`, `_`, `+` and `-`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = FREEZE_NAME))]
    pub name: Option<String>,
    /// A suffix appended to the version, which is always the ISO date (from `SOURCE_DATE_EPOCH`
    /// when set): version `2024-01-31-<suffix>`. Letters, digits, `.`, `_` and `-`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = FREEZE_VERSION))]
    pub version: Option<String>,
    /// The backend that carries out the freeze: `apptainer` (a SIF), `docker` or `podman` (an engine
    /// image), `tarball` (a zstd tarball with an `activate.sh`), or another installed plugin.
    #[serde(default = "default_backend")]
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]{0,63}$"), example = &"apptainer")]
    pub backend: String,
    /// Freeze the generic (portable) builds instead of the CPU-specific ones: every module's software
    /// root is remapped from the CPU-specific subdir to `<cpu_family>/generic`.
    #[serde(default)]
    pub generic: bool,
    /// The directory the backend writes its files to [default: the system temporary directory].
    /// Relative paths are relative to the directory holding the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = NOT_BLANK))]
    pub destination: Option<String>,
    /// The base image reference (ignored by backends that build no image), or `scratch`.
    #[serde(default = "default_base")]
    pub base: String,
    /// The help / welcome text shown when the image starts a shell [default: generated from the
    /// modules, the author and the version].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Extra image labels. Keys kerblam sets itself (`dev.kerblam.*`, the OCI keys it fills) are
    /// refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("propertyNames" = {
        "not": { "anyOf": [{ "pattern": KERBLAM_LABEL }, { "enum": crate::freeze::rules::RESERVED_LABELS }] }
    }))]
    pub labels: BTreeMap<String, String>,
    /// A smoke-test command (a shell command line) run at build time inside the frozen environment,
    /// with the modules loaded; each backend runs it its own way (a build step, a `%test`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<String>,
    /// Where the EESSI stack lives and which CPU build is in use.
    pub eessi: Eessi,
    /// The loaded modules, in load order.
    pub modules: Vec<Module>,
    /// Extra absolute paths (files or directories) to freeze as they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_paths: Vec<String>,
    /// Patterns (gitignore syntax, relative to each tree) left out of every frozen tree.
    #[serde(default = "default_excludes")]
    pub exclude: Vec<String>,
    /// Which environment variables are recorded, and which are set in the image.
    #[serde(default)]
    pub env: EnvSpec,
}

/// The `[eessi]` table: the stack and the CPU build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Eessi {
    /// The EESSI prefix (`EESSI_PREFIX`), e.g. `/cvmfs/pilot.eessi-hpc.org/versions/2021.12`.
    #[schemars(regex(pattern = r"^/"), extend("not" = { "pattern": DOT_DOT_COMPONENT }))]
    pub prefix: String,
    /// The OS type (`EESSI_OS_TYPE`).
    #[serde(default = "default_os_type")]
    pub os_type: String,
    /// The CPU family (`EESSI_CPU_FAMILY`), e.g. `x86_64` or `aarch64`.
    pub cpu_family: String,
    /// The CPU-specific software subdir in use (`EESSI_SOFTWARE_SUBDIR`), e.g.
    /// `x86_64/intel/haswell`. It starts with the CPU family.
    pub software_subdir: String,
    /// The module directories (`EESSI_MODULEPATH`, absolute) [default:
    /// `<prefix>/software/<os_type>/<software_subdir>/modules/all`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub module_path: Vec<String>,
    /// The Lmod configuration file (`LMOD_RC`), frozen too and set in the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lmod_rc: Option<String>,
}

/// One loaded module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Module {
    /// The module's full name, e.g. `GROMACS/2020.4-foss-2020a-Python-3.8.2`.
    pub name: String,
    /// The module's software root (`EBROOT<NAME>`), absolute [default:
    /// `<prefix>/software/<os_type>/<software_subdir>/software/<name>`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
}

/// The `[env]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvSpec {
    /// Name patterns (`*` and `?` wildcards) of the variables `--from-env` records.
    #[serde(default = "default_env_include")]
    pub include: Vec<String>,
    /// Name patterns never recorded, even when `include` matches.
    #[serde(default = "default_env_exclude")]
    pub exclude: Vec<String>,
    /// The variables recorded when the spec was made (name → value). They are written to
    /// `/kerblam-freeze/captured.env` in the image as a record, not set: Lmod recreates the module
    /// environment from the frozen modules, so host values never leak in.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub captured: BTreeMap<String, String>,
    /// Variables set in the image (name → value), in addition to the ones kerblam sets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, String>,
}

impl Default for EnvSpec {
    fn default() -> Self {
        EnvSpec {
            include: default_env_include(),
            exclude: default_env_exclude(),
            captured: BTreeMap::new(),
            set: BTreeMap::new(),
        }
    }
}

/// The backend of a freeze spec that names none.
pub(crate) fn default_backend() -> String {
    "apptainer".into()
}
fn default_base() -> String {
    "debian:12".into()
}
fn default_os_type() -> String {
    "linux".into()
}
fn default_excludes() -> Vec<String> {
    DEFAULT_EXCLUDES.iter().map(|s| s.to_string()).collect()
}
fn default_env_include() -> Vec<String> {
    DEFAULT_ENV_INCLUDE.iter().map(|s| s.to_string()).collect()
}
fn default_env_exclude() -> Vec<String> {
    DEFAULT_ENV_EXCLUDE.iter().map(|s| s.to_string()).collect()
}

impl Eessi {
    /// `<prefix>/software/<os_type>/<subdir>`.
    pub fn software_dir(&self, subdir: &str) -> String {
        format!(
            "{}/software/{}/{}",
            self.prefix.trim_end_matches('/'),
            self.os_type,
            subdir
        )
    }

    /// The generic subdir of this CPU family: `<cpu_family>/generic`.
    pub fn generic_subdir(&self) -> String {
        format!("{}/generic", self.cpu_family)
    }

    /// The module directories, with the default filled in.
    pub fn module_dirs(&self) -> Vec<String> {
        if self.module_path.is_empty() {
            vec![format!(
                "{}/modules/all",
                self.software_dir(&self.software_subdir)
            )]
        } else {
            self.module_path.clone()
        }
    }

    /// The compatibility layer: `<prefix>/compat/<os_type>/<cpu_family>`.
    pub fn compat_dir(&self) -> String {
        format!(
            "{}/compat/{}/{}",
            self.prefix.trim_end_matches('/'),
            self.os_type,
            self.cpu_family
        )
    }

    /// The init scripts: `<prefix>/init`.
    pub fn init_dir(&self) -> String {
        format!("{}/init", self.prefix.trim_end_matches('/'))
    }
}

impl Module {
    /// The software root, with the EESSI default filled in.
    pub fn root_or_default(&self, eessi: &Eessi) -> String {
        self.root.clone().unwrap_or_else(|| {
            format!(
                "{}/software/{}",
                eessi.software_dir(&eessi.software_subdir),
                self.name
            )
        })
    }
}

impl FreezeSpec {
    /// The image name: `name`, or `EESSI_<last module with / replaced by _>`.
    pub fn name_or_default(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => default_name(self.modules.last().map(|m| m.name.as_str())),
        }
    }

    /// The spec as TOML, as `kerblam freeze --write-spec` writes it.
    pub fn to_toml(&self) -> String {
        let body = toml_edit::ser::to_string_pretty(self).expect("freeze specs are TOML");
        format!(
            "# A kerblam freeze spec: rebuild with `kerblam freeze <this file>`, check with\n\
             # `kerblam validate <this file>`; schema: `kerblam schema freeze-spec`.\n\n{body}"
        )
    }
}

/// `EESSI_<module with / replaced by _>` (or `EESSI` without a module).
pub fn default_name(last_module: Option<&str>) -> String {
    match last_module {
        Some(m) => format!("EESSI_{}", m.replace('/', "_")),
        None => "EESSI".into(),
    }
}

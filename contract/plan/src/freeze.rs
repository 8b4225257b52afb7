use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A frozen software environment (EESSI-style) that a plan packages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeInfo {
    /// The software prefix, e.g. `/cvmfs/pilot.eessi-hpc.org/versions/2021.12`.
    pub prefix: String,
    /// The CPU target the software was built for (`x86_64/intel/haswell`, or `x86_64/generic`).
    pub cpu_target: String,
    /// Whether the generic (portable) builds are frozen.
    pub generic: bool,
    /// The modules in load order.
    pub modules: Vec<FrozenModule>,
    /// The trees copied into the image, in order.
    pub trees: Vec<FrozenTree>,
    /// The total bytes of the trees after excludes.
    pub total_bytes: u64,
    /// The files in the trees after excludes.
    pub total_files: u64,
    /// The entries an archive of the trees holds: files, directories and links of the trees after
    /// excludes, the generated files and the root. Backends size headers and block rounding by it.
    pub entries: u64,
    /// A smoke-test command run at build time, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<String>,
    /// The welcome / help text shown to the user.
    pub help: String,
}

/// A loaded module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FrozenModule {
    /// The module name, e.g. `GROMACS/2020.4-foss-2020a-Python-3.8.2`.
    pub name: String,
    /// The software root the module points at.
    pub root: String,
}

/// A directory tree copied verbatim into the image or tarball.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FrozenTree {
    /// The absolute path on the host, which is also its path inside the image.
    pub path: String,
    /// What the tree is (compat layer, init scripts, module files, software of a module, extra path).
    pub role: String,
    /// Files in the tree after excludes.
    pub files: u64,
    /// Bytes in the tree after excludes.
    pub bytes: u64,
}

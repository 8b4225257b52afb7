//! Inferring a freeze spec from a live EESSI environment, the way EESSI's freeze script reads it
//! (`EESSI_PREFIX`, `EESSI_OS_TYPE`, `EESSI_CPU_FAMILY`, `EESSI_SOFTWARE_SUBDIR`,
//! `EESSI_MODULEPATH`, `LOADEDMODULES`, `LMOD_RC`, `EBROOT*`).
//!
//! The environment is passed in as a map, so callers (and tests) never mutate the process
//! environment.

use std::collections::BTreeMap;
use std::fmt;

use crate::freeze::spec::{self, Eessi, EnvSpec, FreezeSpec, Module};

/// Why no spec could be inferred from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromEnvError {
    /// No EESSI environment is loaded (`EESSI_PREFIX` or a companion variable is missing).
    NoEessi {
        /// The variables that are missing.
        missing: Vec<&'static str>,
    },
    /// EESSI is loaded, but no module is (`LOADEDMODULES` is empty).
    NoModules,
}

impl fmt::Display for FromEnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FromEnvError::NoEessi { missing } => write!(
                f,
                "no EESSI environment is loaded: {} {} not set",
                missing.join(", "),
                if missing.len() == 1 { "is" } else { "are" }
            ),
            FromEnvError::NoModules => {
                write!(f, "no module is loaded: LOADEDMODULES is empty or not set")
            }
        }
    }
}

impl std::error::Error for FromEnvError {}

impl FromEnvError {
    /// How to fix it.
    pub fn help(&self) -> &'static str {
        match self {
            FromEnvError::NoEessi { .. } => {
                "source the EESSI init script first (e.g. `source /cvmfs/pilot.eessi-hpc.org/latest/init/bash`), or write a freeze.toml and run `kerblam freeze freeze.toml`"
            }
            FromEnvError::NoModules => {
                "load the modules to freeze first (`module load GROMACS`), then run `kerblam freeze --from-env` again"
            }
        }
    }
}

/// EasyBuild's `EBROOT<NAME>` variable name for a software name: upper case, `-` → `MINUS`,
/// `+` → `PLUS`, `.` and spaces → `_`.
pub fn ebroot_var(software: &str) -> String {
    let mut out = String::from("EBROOT");
    for c in software.chars() {
        match c {
            '-' => out.push_str("MINUS"),
            '+' => out.push_str("PLUS"),
            '.' | ' ' => out.push('_'),
            c => out.extend(c.to_uppercase()),
        }
    }
    out
}

/// Whether `name` matches a pattern with `*` (any run) and `?` (one character) wildcards.
pub fn env_pattern_matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some((b'?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// The variables of `env` that `spec` records: matching an include pattern and no exclude pattern.
pub fn capture(env: &BTreeMap<String, String>, spec: &EnvSpec) -> BTreeMap<String, String> {
    env.iter()
        .filter(|(k, _)| spec.include.iter().any(|p| env_pattern_matches(p, k)))
        .filter(|(k, _)| !spec.exclude.iter().any(|p| env_pattern_matches(p, k)))
        .filter(|(k, _)| crate::freeze::rules::is_var_name(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn get<'a>(env: &'a BTreeMap<String, String>, k: &str) -> Option<&'a str> {
    env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// Infer a freeze spec from an environment. `author` is left as given (it may be empty here; the
/// spec's rules then refuse it with a clear message).
pub fn spec_from_env(
    env: &BTreeMap<String, String>,
    author: &str,
) -> Result<FreezeSpec, FromEnvError> {
    let prefix = get(env, "EESSI_PREFIX");
    let subdir = get(env, "EESSI_SOFTWARE_SUBDIR");
    let mut missing = Vec::new();
    if prefix.is_none() {
        missing.push("EESSI_PREFIX");
    }
    if subdir.is_none() {
        missing.push("EESSI_SOFTWARE_SUBDIR");
    }
    let (Some(prefix), Some(subdir)) = (prefix, subdir) else {
        return Err(FromEnvError::NoEessi { missing });
    };
    let modules: Vec<&str> = get(env, "LOADEDMODULES")
        .map(|v| v.split(':').filter(|m| !m.is_empty()).collect())
        .unwrap_or_default();
    if modules.is_empty() {
        return Err(FromEnvError::NoModules);
    }
    let cpu_family = get(env, "EESSI_CPU_FAMILY")
        .map(str::to_string)
        .unwrap_or_else(|| subdir.split('/').next().unwrap_or(subdir).to_string());
    let module_path = get(env, "EESSI_MODULEPATH")
        .map(|v| {
            v.split(':')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let eessi = Eessi {
        prefix: prefix.trim_end_matches('/').to_string(),
        os_type: get(env, "EESSI_OS_TYPE").unwrap_or("linux").to_string(),
        cpu_family,
        software_subdir: subdir.to_string(),
        module_path,
        lmod_rc: get(env, "LMOD_RC").map(str::to_string),
    };
    let modules = modules
        .iter()
        .map(|m| {
            let software = m.split('/').next().unwrap_or(m);
            Module {
                name: m.to_string(),
                root: get(env, &ebroot_var(software)).map(str::to_string),
            }
        })
        .collect();
    let mut env_spec = EnvSpec::default();
    env_spec.captured = capture(env, &env_spec);
    Ok(FreezeSpec {
        author: author.to_string(),
        name: None,
        version: None,
        backend: spec::default_backend(),
        generic: false,
        destination: None,
        base: "debian:12".into(),
        help: None,
        labels: BTreeMap::new(),
        test: None,
        eessi,
        modules,
        extra_paths: Vec::new(),
        exclude: crate::freeze::spec::DEFAULT_EXCLUDES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        env: env_spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ebroot_names_follow_easybuild() {
        assert_eq!(ebroot_var("GROMACS"), "EBROOTGROMACS");
        assert_eq!(ebroot_var("SciPy-bundle"), "EBROOTSCIPYMINUSBUNDLE");
        assert_eq!(ebroot_var("libsigc++"), "EBROOTLIBSIGCPLUSPLUS");
        assert_eq!(ebroot_var("Python.x"), "EBROOTPYTHON_X");
    }

    #[test]
    fn patterns_match_wildcards() {
        assert!(env_pattern_matches("EBROOT*", "EBROOTGROMACS"));
        assert!(env_pattern_matches("*TOKEN*", "GITHUB_TOKEN"));
        assert!(env_pattern_matches("LMOD_R?", "LMOD_RC"));
        assert!(!env_pattern_matches("EBROOT*", "XEBROOT"));
        assert!(!env_pattern_matches("LMOD_RC", "LMOD_RCX"));
    }
}

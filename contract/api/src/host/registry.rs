//! Where plugins are searched for, and the set of plugins found.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::{LoadError, LoadErrorKind, Plugin, UnknownBackend};
use crate::Hello;

/// Why a directory (or file) is on the search path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SearchOrigin {
    /// `--backend-path` or `KERBLAM_BACKEND_PATH`.
    BackendPath,
    /// The directory holding the kerblam executable (only `*kerblam_backend*` libraries there).
    ExeDir,
    /// `<exe dir>/../lib/kerblam/backends`.
    ExeLib,
    /// The user's data dir, `$XDG_DATA_HOME/kerblam/backends` or `~/.local/share/kerblam/backends`.
    DataDir,
}

/// One entry of the search path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SearchDir {
    /// A directory, or (for `--backend-path`) a plugin file.
    pub path: PathBuf,
    /// Why it is searched.
    pub origin: SearchOrigin,
}

/// What to search. [`SearchConfig::standard`] fills it from the process; tests set fields directly.
#[derive(Debug, Clone, Default)]
pub struct SearchConfig {
    /// `--backend-path` / `KERBLAM_BACKEND_PATH` entries (directories or files), searched first.
    pub backend_path: Vec<PathBuf>,
    /// The executable's directory; `None` to skip it and its `../lib/kerblam/backends`.
    pub exe_dir: Option<PathBuf>,
    /// The user's plugin directory; `None` to skip it.
    pub data_dir: Option<PathBuf>,
}

/// The user's plugin directory: `$XDG_DATA_HOME/kerblam/backends`, else
/// `$HOME/.local/share/kerblam/backends`.
pub fn user_data_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let base =
        xdg.or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(base.join("kerblam").join("backends"))
}

/// Split a `KERBLAM_BACKEND_PATH`-style value (`:`-separated).
pub fn split_backend_path(value: &std::ffi::OsStr) -> Vec<PathBuf> {
    std::env::split_paths(value)
        .filter(|p| !p.as_os_str().is_empty())
        .collect()
}

impl SearchConfig {
    /// The standard search: `backend_path` (from `--backend-path`, which the CLI also fills from
    /// `KERBLAM_BACKEND_PATH`), the current executable's directory, and the user's data dir.
    /// Relative `backend_path` entries are taken as given (relative to where the user typed them);
    /// the working directory itself is never added.
    pub fn standard(backend_path: Vec<PathBuf>) -> SearchConfig {
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf));
        SearchConfig {
            backend_path,
            exe_dir,
            data_dir: user_data_dir(),
        }
    }

    /// The search path, in order.
    pub fn dirs(&self) -> Vec<SearchDir> {
        let mut out: Vec<SearchDir> = self
            .backend_path
            .iter()
            .map(|p| SearchDir {
                path: p.clone(),
                origin: SearchOrigin::BackendPath,
            })
            .collect();
        if let Some(exe) = &self.exe_dir {
            out.push(SearchDir {
                path: exe.clone(),
                origin: SearchOrigin::ExeDir,
            });
            let lib = exe
                .parent()
                .unwrap_or(exe)
                .join("lib")
                .join("kerblam")
                .join("backends");
            out.push(SearchDir {
                path: lib,
                origin: SearchOrigin::ExeLib,
            });
        }
        if let Some(data) = &self.data_dir {
            out.push(SearchDir {
                path: data.clone(),
                origin: SearchOrigin::DataDir,
            });
        }
        out
    }
}

/// A plugin hidden by an earlier one with the same name.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Shadowed {
    /// The backend name.
    pub name: String,
    /// The hidden library.
    pub path: PathBuf,
    /// The library that wins.
    pub by: PathBuf,
}

impl std::fmt::Display for Shadowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "backend {:?} at {} is shadowed by {}",
            self.name,
            self.path.display(),
            self.by.display()
        )
    }
}

/// The plugins found on a search path.
#[derive(Debug, Default)]
pub struct Registry {
    /// Usable plugins, first-found first; names are unique.
    pub plugins: Vec<Plugin>,
    /// Libraries skipped (not plugins) or refused (bad plugins), with reasons.
    pub skipped: Vec<LoadError>,
    /// Plugins hidden by an earlier one with the same name.
    pub shadowed: Vec<Shadowed>,
    /// The search path used.
    pub searched: Vec<SearchDir>,
}

fn is_library(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(std::env::consts::DLL_SUFFIX))
}

fn candidates(dir: &SearchDir) -> Vec<PathBuf> {
    if dir.path.is_file() {
        return if dir.origin == SearchOrigin::BackendPath {
            vec![dir.path.clone()]
        } else {
            Vec::new()
        };
    }
    let Ok(entries) = std::fs::read_dir(&dir.path) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_library(p))
        .filter(|p| {
            dir.origin != SearchOrigin::ExeDir
                || p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.contains("kerblam_backend") || n.contains("kerblam-backend"))
        })
        .collect();
    files.sort();
    files
}

impl Registry {
    /// Load every plugin on `config`'s search path, telling them `hello`.
    pub fn discover(config: &SearchConfig, hello: &Hello) -> Registry {
        let mut reg = Registry {
            searched: config.dirs(),
            ..Registry::default()
        };
        let mut seen = HashSet::new();
        for dir in reg.searched.clone() {
            if dir.origin == SearchOrigin::BackendPath && !dir.path.exists() {
                reg.skipped.push(LoadError {
                    path: dir.path.clone(),
                    kind: LoadErrorKind::Skipped,
                    reason: "no such file or directory (given with --backend-path or KERBLAM_BACKEND_PATH)".into(),
                });
                continue;
            }
            for file in candidates(&dir) {
                let canonical = file.canonicalize().unwrap_or_else(|_| file.clone());
                if !seen.insert(canonical) {
                    continue;
                }
                match Plugin::load(&file, hello) {
                    Ok(plugin) => {
                        if let Some(first) = reg.plugins.iter().find(|p| p.name() == plugin.name())
                        {
                            reg.shadowed.push(Shadowed {
                                name: plugin.name().to_string(),
                                path: file.clone(),
                                by: first.path().to_path_buf(),
                            });
                        } else {
                            reg.plugins.push(plugin);
                        }
                    }
                    Err(e) => reg.skipped.push(e),
                }
            }
        }
        reg
    }

    /// The plugin named `name`, or an error listing the installed ones.
    pub fn get(&self, name: &str) -> Result<&Plugin, UnknownBackend> {
        self.plugins
            .iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| UnknownBackend {
                name: name.to_string(),
                installed: self.names(),
                searched: self.searched.iter().map(|d| d.path.clone()).collect(),
                skipped: self.skipped.len(),
            })
    }

    /// The names of the usable plugins, in search order.
    pub fn names(&self) -> Vec<String> {
        self.plugins.iter().map(|p| p.name().to_string()).collect()
    }

    /// Warnings to show the user: shadowed plugins and refused plugins.
    pub fn warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = self.shadowed.iter().map(|s| s.to_string()).collect();
        out.extend(
            self.skipped
                .iter()
                .filter(|s| s.kind == LoadErrorKind::Refused)
                .map(|s| s.to_string()),
        );
        out
    }
}

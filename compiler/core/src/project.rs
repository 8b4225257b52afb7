//! A Kerblam! project on disk: its root, its manifest file and the parsed manifest.

use std::path::{Path, PathBuf};

use crate::Error;
use crate::diag::{Finding, SourceFile};
use crate::manifest::{self, Manifest};
use crate::schema_check::CheckOptions;

/// The name of the manifest file.
pub const MANIFEST_FILE: &str = "kerblam.toml";

/// A loaded project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The absolute project root (the directory holding `kerblam.toml`).
    pub root: PathBuf,
    /// The manifest's text, as read.
    pub source: SourceFile,
    /// The typed manifest.
    pub manifest: Manifest,
    /// Warnings found while loading (e.g. unknown keys with `--allow-unknown`).
    pub warnings: Vec<Finding>,
}

impl Project {
    /// Walk up from `start` to the first directory holding a `kerblam.toml`, as Kerblam! 1.x does.
    pub fn find_root(start: &Path) -> Result<PathBuf, Error> {
        let start = std::path::absolute(start).map_err(|e| Error::io(start, e))?;
        let mut dir: Option<&Path> = Some(&start);
        while let Some(d) = dir {
            if d.join(MANIFEST_FILE).is_file() {
                return Ok(d.to_path_buf());
            }
            dir = d.parent();
        }
        Err(Error::ManifestNotFound { start })
    }

    /// Load the project whose root is `root`.
    pub fn load(root: &Path, opts: CheckOptions) -> Result<Project, Error> {
        let root = std::path::absolute(root).map_err(|e| Error::io(root, e))?;
        let path = root.join(MANIFEST_FILE);
        let text = read_text(&path)?;
        let source = SourceFile::new(display_path(&path), text);
        let loaded = manifest::parse(source.clone(), opts)?;
        Ok(Project {
            root,
            source,
            manifest: loaded.manifest,
            warnings: loaded.warnings,
        })
    }

    /// Find the project containing `start` and load it.
    pub fn discover(start: &Path, opts: CheckOptions) -> Result<Project, Error> {
        Project::load(&Project::find_root(start)?, opts)
    }

    /// Whether the manifest sets `execution.backend` itself, rather than taking the default.
    pub fn sets_backend(&self) -> bool {
        self.source
            .text
            .parse::<toml_edit::DocumentMut>()
            .ok()
            .and_then(|doc| doc.get("execution")?.get("backend").map(|_| ()))
            .is_some()
    }

    /// An absolute path for a root-relative path.
    pub fn abs(&self, rel: &str) -> PathBuf {
        if rel == "." {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }
}

/// Read a UTF-8 text file, naming the path in the error.
pub fn read_text(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    String::from_utf8(bytes).map_err(|e| {
        Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not UTF-8 text: {e}"),
            ),
        )
    })
}

/// How a path is shown to the user: relative to the working directory when it is under it.
pub fn display_path(path: &Path) -> String {
    if let Ok(cwd) = std::env::current_dir() {
        if let Ok(rel) = path.strip_prefix(&cwd) {
            return rel.display().to_string();
        }
    }
    path.display().to_string()
}

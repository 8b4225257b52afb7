//! Project discovery: pipes, their container recipes, and the data files (precious and remote), found
//! exactly as Kerblam! 1.x finds them.

use std::fmt;
use std::path::Path;

use kerblam_plan::{DataFile, PipeKind, RemoteFile};

use crate::Error;
use crate::paths::{is_within, join, normalize, rel_to};
use crate::project::Project;

/// A pipe of the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipe {
    /// The pipe's name (file name without extension).
    pub name: String,
    /// make or bash.
    pub kind: PipeKind,
    /// The pipe file, relative to the root.
    pub path: String,
    /// Its container recipe, if any.
    pub recipe: Option<Recipe>,
    /// The `#?` doc lines: a header line, then an optional body.
    pub description: Option<Description>,
}

/// A container recipe found for a pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// Relative to the root.
    pub path: String,
    /// True when it is the project's `default.dockerfile` rather than `<pipe>.dockerfile`.
    pub default: bool,
}

/// A pipe's description from its `#?` lines (Kerblam! 1.x's format: the first paragraph is the
/// header, the rest is the body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// The first paragraph on one line.
    pub header: String,
    /// The other paragraphs.
    pub body: Option<String>,
}

impl Description {
    /// Header and body as one text.
    pub fn full(&self) -> String {
        match &self.body {
            Some(b) => format!("{}\n\n{b}", self.header),
            None => self.header.clone(),
        }
    }
}

/// A pipe as listed in an error or by `kerblam run` without a pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeSummary {
    /// The pipe's name.
    pub name: String,
    /// Whether it has a recipe, and whether its own.
    pub recipe: Option<Recipe>,
    /// Its description header.
    pub header: Option<String>,
}

impl fmt::Display for PipeSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = match &self.recipe {
            Some(r) if r.default => "🐟",
            Some(_) => "🐋",
            None => "  ",
        };
        write!(f, "{mark} {}", self.name)?;
        match &self.recipe {
            Some(r) if r.default => write!(f, " (recipe: default {})", r.path)?,
            Some(r) => write!(f, " (recipe: {})", r.path)?,
            None => write!(f, " (no recipe: runs locally only)")?,
        }
        if let Some(h) = &self.header {
            write!(f, " :: {h}")?;
        }
        Ok(())
    }
}

impl From<&Pipe> for PipeSummary {
    fn from(p: &Pipe) -> Self {
        PipeSummary {
            name: p.name.clone(),
            recipe: p.recipe.clone(),
            header: p.description.as_ref().map(|d| d.header.clone()),
        }
    }
}

/// Every pipe in the pipes dir, sorted by name.
pub fn pipes(project: &Project) -> Result<Vec<Pipe>, Error> {
    let code = &project.manifest.code;
    let pipes_dir = normalize(&code.pipes_dir);
    let env_dir = normalize(&code.env_dir);
    let mut out = Vec::new();
    for (name, file) in list_files(&project.abs(&pipes_dir))? {
        let kind = if let Some(stem) = name.strip_suffix(".makefile") {
            (stem.to_string(), PipeKind::Make)
        } else if let Some(stem) = name.strip_suffix(".sh") {
            (stem.to_string(), PipeKind::Shell)
        } else {
            continue;
        };
        let (pname, kind) = kind;
        if pname.is_empty() || pname.starts_with('.') {
            continue;
        }
        let recipe = find_recipe(project, &env_dir, &pname);
        let description = read_description(&file)?;
        out.push(Pipe {
            path: join(&pipes_dir, &name),
            name: pname,
            kind,
            recipe,
            description,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name).then(a.path.cmp(&b.path)));
    Ok(out)
}

/// The recipe paths tried for a pipe, in order.
pub fn recipe_candidates(env_dir: &str, pipe: &str) -> [String; 2] {
    [
        join(env_dir, &format!("{pipe}.dockerfile")),
        join(env_dir, "default.dockerfile"),
    ]
}

fn find_recipe(project: &Project, env_dir: &str, pipe: &str) -> Option<Recipe> {
    let [own, default] = recipe_candidates(env_dir, pipe);
    if project.abs(&own).is_file() {
        Some(Recipe {
            path: own,
            default: false,
        })
    } else if project.abs(&default).is_file() {
        Some(Recipe {
            path: default,
            default: true,
        })
    } else {
        None
    }
}

/// The pipe named `name`, or an error listing the available ones.
pub fn find_pipe(project: &Project, name: &str) -> Result<Pipe, Error> {
    let all = pipes(project)?;
    let mut matching: Vec<&Pipe> = all.iter().filter(|p| p.name == name).collect();
    match matching.len() {
        1 => Ok(matching.remove(0).clone()),
        0 => Err(Error::PipeNotFound {
            name: name.to_string(),
            available: all.iter().map(PipeSummary::from).collect(),
            pipes_dir: normalize(&project.manifest.code.pipes_dir),
        }),
        _ => Err(Error::InvalidOption {
            option: "pipe".into(),
            message: format!(
                "`{name}` is ambiguous: {}",
                matching
                    .iter()
                    .map(|p| p.path.as_str())
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
            help: Some("rename one of the two pipe files".into()),
        }),
    }
}

fn list_files(dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>, Error> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        if path.is_file() {
            if let Some(name) = entry.file_name().to_str() {
                out.push((name.to_string(), path));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn read_description(path: &Path) -> Result<Option<Description>, Error> {
    let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = String::from_utf8_lossy(&text);
    let mut doc = String::new();
    for line in text.lines() {
        if let Some(rest) = line.trim().strip_prefix("#?") {
            doc.push_str(rest.trim());
            doc.push('\n');
        }
    }
    if doc.trim().is_empty() {
        return Ok(None);
    }
    let pieces: Vec<&str> = doc
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let header = pieces[0].replace('\n', " ");
    let body = (pieces.len() > 1).then(|| pieces[1..].join("\n"));
    Ok(Some(Description { header, body }))
}

/// The data of a project: every input file, the precious ones and the remote ones.
#[derive(Debug, Clone, Default)]
pub struct DataInventory {
    /// Files present under the input dir (hidden files excluded), sorted by path.
    pub input: Vec<DataFile>,
    /// Input files that cannot be fetched again, sorted by path.
    pub precious: Vec<DataFile>,
    /// Remote files (URL `_` excluded), sorted by path.
    pub remote: Vec<RemoteFile>,
}

/// Inventory the project's data as Kerblam! 1.x does: precious files are the files under the input dir
/// that are not the target of a fetchable remote URL; hidden files and the output/intermediate dirs
/// nested in the input dir are skipped.
pub fn data(project: &Project) -> Result<DataInventory, Error> {
    let paths = &project.manifest.data.paths;
    let input = normalize(&paths.input);
    let skip: Vec<String> = [normalize(&paths.output), normalize(&paths.intermediate)]
        .into_iter()
        .filter(|d| d != &input && is_within(d, &input))
        .collect();
    let mut files = Vec::new();
    let root_input = project.abs(&input);
    if root_input.is_dir() {
        let walker = ignore::WalkBuilder::new(&root_input)
            .standard_filters(false)
            .hidden(true)
            .follow_links(false)
            .sort_by_file_name(|a, b| a.cmp(b))
            .build();
        for entry in walker {
            let entry = entry.map_err(|e| walk_error(&root_input, e))?;
            let ft = match entry.file_type() {
                Some(ft) => ft,
                None => continue,
            };
            let Some(rel) = rel_to(&project.root, entry.path()) else {
                continue;
            };
            if skip.iter().any(|d| is_within(&rel, d)) {
                continue;
            }
            if ft.is_file() || (ft.is_symlink() && entry.path().is_file()) {
                let size = std::fs::metadata(entry.path())
                    .map_err(|e| Error::io(entry.path(), e))?
                    .len();
                files.push(DataFile {
                    path: rel,
                    size,
                    sha256: None,
                });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut remote: Vec<RemoteFile> = project
        .manifest
        .data
        .remote
        .iter()
        .filter(|(url, _)| url.as_str() != "_")
        .map(|(url, target)| RemoteFile {
            url: url.clone(),
            path: join(&input, target),
        })
        .collect();
    remote.sort_by(|a, b| a.path.cmp(&b.path));
    let precious = files
        .iter()
        .filter(|f| !remote.iter().any(|r| r.path == f.path))
        .cloned()
        .collect();
    Ok(DataInventory {
        input: files,
        precious,
        remote,
    })
}

pub(crate) fn walk_error(root: &Path, e: ignore::Error) -> Error {
    let path = match &e {
        ignore::Error::WithPath { path, .. } => path.clone(),
        _ => root.to_path_buf(),
    };
    let io = e
        .into_io_error()
        .unwrap_or_else(|| std::io::Error::other("walk failed"));
    Error::io(path, io)
}

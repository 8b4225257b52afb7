//! `kerblam new PATH`: a new, empty project laid out as Kerblam! 1.x lays it out.
//!
//! ```text
//! PATH/kerblam.toml            [meta] version = "1.2.1" (the Kerblam! format kerblam reads)
//! PATH/.gitignore              .kerblam (and env, the virtual environment, for Python)
//! PATH/.kerblam/               Kerblam! 1.x's scratch dir (ignored)
//! PATH/data/.gitignore         everything in data/ is ignored but in/ and out/ ...
//! PATH/data/in/.gitignore      ... whose contents are ignored too
//! PATH/data/out/.gitignore
//! PATH/src/workflows/          the pipes
//! PATH/src/dockerfiles/        their container recipes
//! ```
//!
//! then `git init`. On a terminal it asks 1.x's questions: Python (a virtual environment `env`
//! and GitHub's Python gitignore), R (GitHub's R gitignore), pre-commit (its config and hooks), a
//! remote origin on GitHub (user name, ssh or https). Off a terminal it takes the defaults (no to
//! each) and says so. It works offline: GitHub's gitignore templates for Python and R, which 1.x
//! downloads, are left to `kerblam ignore Python` (kerblam says so); `env` is ignored for Python.
//!
//! Unlike 1.x, an existing file is never overwritten (kerblam says it kept it), so `kerblam new`
//! on an existing project only adds what is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;

use crate::cli::GlobalArgs;
use crate::cmd::plan::start_dir;
use crate::exit::{self, Exit};
use crate::prompt::{self, Answer};
use crate::{gitignore, output};

/// The Kerblam! manifest format kerblam reads and writes.
pub const KERBLAM1_VERSION: &str = "1.2.1";

/// 1.x's `.gitignore` of a data dir: ignore everything but itself.
const DATA_GITIGNORE: &str =
    "# Ignore everything in this directory\n*\n# Except this file\n!.gitignore\n";

#[derive(Debug, Args)]
pub struct NewArgs {
    /// Where to make the project (created if missing).
    pub path: PathBuf,
}

/// The answers to 1.x's questions.
#[derive(Debug, Default)]
struct Choices {
    python: bool,
    r: bool,
    pre_commit: bool,
    /// The origin URL.
    remote: Option<String>,
}

pub fn run(global: &GlobalArgs, args: NewArgs) -> miette::Result<u8> {
    let dir = start_dir(global).join(&args.path);
    errln!("Creating a new project in {}!", dir.display());
    if let Ok(m) = std::fs::symlink_metadata(&dir) {
        if !m.is_dir() {
            return Err(
                Exit::invalid(format!("{} exists and is not a directory", dir.display())).into(),
            );
        }
    }
    let choices = ask(&dir)?;
    make_dirs(&dir)?;
    write_files(&dir, &choices)?;
    set_up_tools(&dir, &choices);
    Ok(exit::OK)
}

/// The directories of a Kerblam! 1.x project; those already there are kept.
fn make_dirs(dir: &Path) -> miette::Result<()> {
    let mut failures = Vec::new();
    for d in [
        "",
        ".kerblam",
        "data/in",
        "data/out",
        "src/workflows",
        "src/dockerfiles",
    ] {
        let p = dir.join(d);
        let existed = p.is_dir();
        match std::fs::create_dir_all(&p) {
            Ok(()) if existed => outln!("🔷 {} was already there", p.display()),
            Ok(()) => outln!("✅ {} created", p.display()),
            Err(e) => failures.push(format!("cannot create {}: {e}", p.display())),
        }
    }
    if !failures.is_empty() {
        return Err(failed(failures));
    }
    Ok(())
}

/// The manifest and the `.gitignore`s (and pre-commit's config when asked for): never
/// overwritten; a `.gitignore` already there gets the lines it lacks.
fn write_files(dir: &Path, choices: &Choices) -> miette::Result<()> {
    let mut files: Vec<(&str, String)> = vec![
        (
            "kerblam.toml",
            format!("[meta]\nversion = \"{KERBLAM1_VERSION}\"\n"),
        ),
        ("data/in/.gitignore", DATA_GITIGNORE.into()),
        ("data/out/.gitignore", DATA_GITIGNORE.into()),
        ("data/.gitignore", format!("{DATA_GITIGNORE}\n!in/\n!out/")),
    ];
    if choices.pre_commit {
        // 1.x names it pre-commit-config.yaml, which pre-commit does not read.
        files.push((".pre-commit-config.yaml", "repos: []\n".into()));
    }
    files.push((".gitignore", root_gitignore(choices)));
    let mut failures = Vec::new();
    for (name, content) in files {
        let p = dir.join(name);
        if name == ".gitignore" && p.exists() {
            match add_missing_lines(&p, &content) {
                Ok(()) => outln!("✅ {} updated", p.display()),
                Err(e) => failures.push(e),
            }
            continue;
        }
        if std::fs::symlink_metadata(&p).is_ok() {
            outln!("🔷 {} was already there (kept)", p.display());
            continue;
        }
        match std::fs::write(&p, content) {
            Ok(()) => outln!("✅ {} created", p.display()),
            Err(e) => failures.push(format!("cannot write {}: {e}", p.display())),
        }
    }
    if !failures.is_empty() {
        return Err(failed(failures));
    }
    Ok(())
}

/// `git init`, and what the answers asked for: a Python venv, pre-commit's hooks, the origin.
fn set_up_tools(dir: &Path, choices: &Choices) {
    command(dir, "git", &["init"]);
    if choices.python {
        let python = ["python3", "python"]
            .into_iter()
            .find(|p| kerblam_backend_api::preflight::find_tool(p).is_some())
            .unwrap_or("python3");
        command(dir, python, &["-m", "venv", "env"]);
    }
    if choices.pre_commit {
        command(
            dir,
            "pre-commit",
            &[
                "install",
                "--hook-type",
                "pre-commit",
                "--hook-type",
                "commit-msg",
            ],
        );
    }
    if let Some(url) = &choices.remote {
        command(dir, "git", &["remote", "add", "origin", url]);
    }
}

fn failed(failures: Vec<String>) -> miette::Report {
    Exit::failure(failures.join("\n")).into()
}

/// Ask 1.x's questions on a terminal; take the defaults off one.
fn ask(dir: &Path) -> miette::Result<Choices> {
    if !prompt::interactive() {
        output::info(
            "standard input is not a terminal: taking the defaults (no Python, no R, no pre-commit, no remote origin)",
        );
        return Ok(Choices::default());
    }
    let yes = |q: &str| match prompt::yes_no(q) {
        Answer::Chosen(b) => Ok(b),
        Answer::NoAnswer => Err(Exit::failure("no answer: nothing was created")),
    };
    let mut c = Choices {
        python: yes("Do you need Python?")?,
        r: yes("Do you need R?")?,
        pre_commit: yes("Do you want to use pre-commit?")?,
        remote: None,
    };
    if yes("Do you want to setup the remote origin of the project?")? {
        let user = prompt::text("Enter your username: ").unwrap_or_default();
        let repo = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "project".into());
        let method = prompt::choose(
            "What cloning method would you like?",
            "ssh/https",
            &[('s', true), ('h', false)],
        );
        c.remote = match method {
            Answer::Chosen(true) => Some(format!("git@github.com:{user}/{repo}.git")),
            Answer::Chosen(false) => Some(format!("https://github.com/{user}/{repo}.git")),
            Answer::NoAnswer => None,
        };
    }
    Ok(c)
}

/// `.kerblam`, and for Python its virtual environment `env`. GitHub's language templates, which
/// 1.x downloads here, are not: `kerblam new` works offline; `kerblam ignore NAME` adds them.
fn root_gitignore(c: &Choices) -> String {
    let mut lines = vec![".kerblam"];
    if c.python {
        lines.push("env");
    }
    for (wanted, name) in [(c.python, "Python"), (c.r, "R")] {
        if wanted {
            output::info(format!(
                "GitHub's {name} gitignore template is not added: it needs a network, and kerblam new works offline; add it with `kerblam ignore {name}`"
            ));
        }
    }
    lines.join("\n")
}

/// Append to an existing .gitignore the lines of `content` it lacks.
fn add_missing_lines(path: &Path, content: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let have: std::collections::HashSet<&str> = text.lines().collect();
    let missing: Vec<&str> = content
        .lines()
        .filter(|l| !l.is_empty() && !have.contains(l))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let new = gitignore::append(&text, &format!("{}\n", missing.join("\n")));
    std::fs::write(path, new).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Run a setup command in the new project; a failure is said and skipped, as in 1.x.
fn command(dir: &Path, program: &str, args: &[&str]) {
    let shown = format!("{program} {}", args.join(" "));
    match Command::new(program).args(args).current_dir(dir).output() {
        Ok(o) if o.status.success() => outln!("🏃 {shown}: done"),
        Ok(o) => output::warn(format!(
            "`{shown}` failed ({}): {}; going on without it",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => output::warn(format!("cannot run `{shown}`: {e}; going on without it")),
    }
}

//! `kerblam new` (a project laid out as Kerblam! 1.x lays it out, 1.x's questions on a terminal,
//! the defaults off one, offline) and `kerblam ignore` (paths, language templates, `--compress`).

use crate::support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::project::{TestProject, show};

const DATA_GITIGNORE: &str =
    "# Ignore everything in this directory\n*\n# Except this file\n!.gitignore\n";

fn kerblam_in(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kerblam"));
    c.arg("-C")
        .arg(dir)
        .args(args)
        .env("NO_COLOR", "1")
        // Tests never reach GitHub: templates come from a directory, or from nowhere.
        .env(
            "KERBLAM_GITIGNORE_URL",
            "file:///nonexistent/kerblam-templates",
        )
        .stdin(Stdio::null());
    c
}

/// Every path under `dir` but .git's contents (dirs end with `/`).
fn layout(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let rel = e
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if e.file_type().unwrap().is_dir() {
                out.push(format!("{rel}/"));
                if rel != ".git" {
                    stack.push(e.path());
                }
            } else {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

fn git_available() -> bool {
    Command::new("git").arg("--version").output().is_ok()
}

#[test]
fn new_off_a_terminal_takes_the_defaults_and_lays_out_a_kerblam_1_project() {
    let parent = tempfile::tempdir().unwrap();
    let o = kerblam_in(parent.path(), &["new", "my_project"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("taking the defaults"),
        "{}",
        show(&o)
    );
    let p = parent.path().join("my_project");
    let mut expected = vec![
        ".gitignore",
        ".kerblam/",
        "data/",
        "data/.gitignore",
        "data/in/",
        "data/in/.gitignore",
        "data/out/",
        "data/out/.gitignore",
        "kerblam.toml",
        "src/",
        "src/dockerfiles/",
        "src/workflows/",
    ];
    if git_available() {
        expected.insert(0, ".git/");
    }
    assert_eq!(layout(&p), expected, "{}", show(&o));
    let read = |f: &str| std::fs::read_to_string(p.join(f)).unwrap();
    assert_eq!(read("kerblam.toml"), "[meta]\nversion = \"1.2.1\"\n");
    assert_eq!(read(".gitignore"), ".kerblam");
    assert_eq!(read("data/in/.gitignore"), DATA_GITIGNORE);
    assert_eq!(read("data/out/.gitignore"), DATA_GITIGNORE);
    assert_eq!(
        read("data/.gitignore"),
        format!("{DATA_GITIGNORE}\n!in/\n!out/")
    );

    // The new project is a project kerblam reads, with nothing to run yet.
    let o = kerblam_in(&p, &["validate"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));

    // Again on the same directory: nothing the user wrote is overwritten.
    std::fs::write(
        p.join("kerblam.toml"),
        "[meta]\nversion = \"1.2.1\"\n# mine\n",
    )
    .unwrap();
    let o = kerblam_in(parent.path(), &["new", "my_project"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(read("kerblam.toml").ends_with("# mine\n"));
    assert!(String::from_utf8_lossy(&o.stdout).contains("was already there"));
}

/// Run kerblam on a pseudo-terminal (`script`, util-linux), typing `input`, with `path` as PATH.
fn on_a_terminal(dir: &Path, args: &str, input: &str, path: &str) -> Option<Output> {
    support::terminal::kerblam(dir, args, input, Some(path))
}

#[test]
fn new_on_a_terminal_asks_kerblam_1_questions_and_works_offline() {
    let parent = tempfile::tempdir().unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    // Python: no; R: yes; pre-commit: no; remote: yes, as `me`, over https.
    let Some(o) = on_a_terminal(parent.path(), "new analysis", "n\ny\nn\ny\nme\nh\n", &path) else {
        return;
    };
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let screen = String::from_utf8_lossy(&o.stdout);
    for q in [
        "Do you need Python? [yes/no]",
        "Do you need R? [yes/no]",
        "Do you want to use pre-commit? [yes/no]",
        "Do you want to setup the remote origin of the project? [yes/no]",
        "Enter your username:",
        "What cloning method would you like? [ssh/https]",
    ] {
        assert!(screen.contains(q), "{q:?} not asked:\n{screen}");
    }
    // No template download: said, and left to `kerblam ignore R`.
    assert!(
        screen.contains("needs a network") && screen.contains("kerblam ignore R"),
        "{screen}"
    );
    let p = parent.path().join("analysis");
    assert_eq!(
        std::fs::read_to_string(p.join(".gitignore")).unwrap(),
        ".kerblam"
    );
    if git_available() {
        let url = Command::new("git")
            .args(["-C", p.to_str().unwrap(), "remote", "get-url", "origin"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&url.stdout).trim(),
            "https://github.com/me/analysis.git"
        );
    }
}

#[test]
fn new_with_python_ignores_its_env_and_goes_on_without_python() {
    let parent = tempfile::tempdir().unwrap();
    // A PATH without python: the virtual environment cannot be made; said, and skipped.
    let Some(o) = on_a_terminal(parent.path(), "new py", "y\nn\nn\nn\n", "/nonexistent") else {
        return;
    };
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let screen = String::from_utf8_lossy(&o.stdout);
    assert!(screen.contains("-m venv env"), "{screen}");
    assert!(screen.contains("kerblam ignore Python"), "{screen}");
    let p = parent.path().join("py");
    assert_eq!(
        std::fs::read_to_string(p.join(".gitignore")).unwrap(),
        ".kerblam\nenv"
    );
    assert!(p.join("kerblam.toml").is_file() && p.join("data/out/.gitignore").is_file());
}

#[test]
fn ignore_adds_paths_as_kerblam_1_does() {
    let p = TestProject::new("[data.paths]\noutput = \"results\"\n");
    std::fs::create_dir_all(p.path("data/out")).unwrap();
    // No .gitignore yet: it is made. A path that exists, one of the project's own dirs that does
    // not exist yet, and a path by its form.
    let o = kerblam_in(p.root(), &["ignore", "./data/out/", "results", "scratch/"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Creating new .gitignore"));
    assert_eq!(p.read(".gitignore"), "\ndata/out\n\nresults\n\nscratch\n");

    // --compress: the repeated lines and the extra blank lines go.
    let o = kerblam_in(p.root(), &["ignore", "results", "--compress"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(p.read(".gitignore"), "data/out\n\nresults\n\nscratch");
}

#[test]
fn ignore_language_templates_need_a_network_and_the_paths_are_still_added() {
    let p = TestProject::new("");
    std::fs::create_dir_all(p.path("env")).unwrap();
    p.write(".gitignore", "env\n");
    let o = kerblam_in(p.root(), &["ignore", "Python", "env", "--compress"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr).replace('\n', " ");
    assert!(
        err.contains("cannot download the gitignore template `Python`")
            && err.contains("file:///nonexistent/kerblam-templates/Python.gitignore")
            && err.contains("need a network"),
        "{}",
        show(&o)
    );
    assert_eq!(p.read(".gitignore"), "env");

    // With the template at hand (here a directory standing in for GitHub's collection).
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(
        templates.path().join("Python.gitignore"),
        "__pycache__/\nenv\n",
    )
    .unwrap();
    let o = kerblam_in(p.root(), &["ignore", "Python", "--compress"])
        .env(
            "KERBLAM_GITIGNORE_URL",
            format!("file://{}", templates.path().display()),
        )
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(p.read(".gitignore"), "env\n__pycache__/");
}

#[test]
fn ignore_outside_a_project_edits_the_gitignore_where_kerblam_starts() {
    // As Kerblam! 1.x: no kerblam.toml above, so the directory kerblam starts in.
    let dir = tempfile::tempdir().unwrap();
    let o = kerblam_in(dir.path(), &["ignore", "build/"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".gitignore")).unwrap(),
        "\nbuild\n"
    );
    // Inside a project, the project's, from any of its sub-directories.
    let p = TestProject::new("");
    std::fs::create_dir_all(p.path("src/workflows")).unwrap();
    let o = kerblam_in(&p.path("src/workflows"), &["ignore", "data/"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(p.read(".gitignore"), "\ndata\n");
    assert!(!p.exists("src/workflows/.gitignore"));
}

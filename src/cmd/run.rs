//! `kerblam run`: run a pipe locally (make or bash, from the project root) or in its container, with
//! an optional data profile swapped in for the duration of the run.
//!
//! Order of work: install the signal handler, load the project, restore any profile left swapped by a
//! killed run (see `profile.rs`), find the pipe, compile the run plan when the pipe runs in a container,
//! swap the profile in, run, swap it back. The pipe's exit code becomes kerblam's (`128 + signo` when
//! it died of a signal).

use std::process::Command;

use clap::Args;
use kerblam_compiler::discover::{self, Pipe};
use kerblam_compiler::{PipeOptions, Project};
use kerblam_plan::{PackagePlan, PipeKind};

use crate::cli::GlobalArgs;
use crate::cmd::plan::{PipeArgs, compile, load_project};
use crate::exit::{self, Exit};
use crate::{output, profile, signals};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipe to run (without it: list the pipes).
    pub pipe: Option<String>,
    /// Run locally even if the pipe has a container recipe.
    #[arg(short, long)]
    pub local: bool,
    /// Run with the input files of this data profile swapped in (`test` is inferred from test_* files).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Show the pipe's description and exit.
    #[arg(short, long)]
    pub desc: bool,
    /// Build the container image without the engine's build cache.
    #[arg(long = "no-build-cache")]
    pub no_build_cache: bool,
    #[command(flatten)]
    pub pipe_opts: PipeArgs,
    /// Arguments appended to `make -f PIPE` / `bash PIPE` (or to the container's command).
    #[arg(last = true, allow_hyphen_values = true, value_name = "ARGS")]
    pub extra: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: RunArgs) -> miette::Result<u8> {
    signals::install()?;
    let project = load_project(global, args.pipe_opts.allow_unknown)?;
    profile::recover(&project)?;

    let Some(name) = args.pipe.as_deref() else {
        return list_pipes(&project, "run");
    };
    let pipe = discover::find_pipe(&project, name)?;
    if args.desc {
        // As Kerblam! 1.x prints it: the pipe's line of the list, then the rest of its
        // description (markdown, printed as written).
        match &pipe.description {
            Some(d) => {
                outln!("{}", list_line(&pipe).trim());
                if let Some(body) = &d.body {
                    outln!("{body}");
                }
            }
            None => outln!("No description found."),
        }
        return Ok(exit::OK);
    }

    let local = args.local || pipe.recipe.is_none();
    let plan = if local {
        None
    } else {
        let opts = PipeOptions {
            run: true,
            ..Default::default()
        };
        Some(compile(&project, &pipe.name, &args.pipe_opts, opts)?)
    };

    let active = match &args.profile {
        Some(p) => Some(profile::apply(&project, p)?),
        None => {
            profile::note_plain_run(&project);
            None
        }
    };

    let result = signals::check().and_then(|_| match &plan {
        None => run_local(&project, &pipe, args.profile.as_deref(), &args.extra),
        Some(plan) => run_container(global, &project, plan, &args.extra, args.no_build_cache),
    });
    let restored = match active {
        Some(a) => a.restore(),
        None => Ok(()),
    };
    let code = result?;
    restored?;

    if let Some(sig) = signals::interrupted() {
        let e = signals::interrupted_error(sig);
        errln!("kerblam: {}", e.message);
        return Ok(if code == exit::OK { e.code } else { code });
    }
    if code != exit::OK {
        errln!("kerblam: pipe `{}` failed with exit code {code}", pipe.name);
    }
    Ok(code)
}

/// `kerblam run` (or `package`) without a pipe: list the pipes and the profiles as Kerblam! 1.x
/// does, and exit 2.
/// `command` is the one the user ran (`run`, `package`), for the hint.
pub fn list_pipes(project: &Project, command: &str) -> miette::Result<u8> {
    let pipes = discover::pipes(project)?;
    let dir = kerblam_compiler::paths::normalize(&project.manifest.code.pipes_dir);
    if pipes.is_empty() {
        return Err(Exit::invalid(format!(
            "no pipe to run: {dir}/ holds no *.makefile or *.sh pipes"
        ))
        .into());
    }
    // 1.x sorts the lines and reverses them: pipes with a recipe first.
    let mut lines: Vec<String> = pipes.iter().map(list_line).collect();
    lines.sort();
    lines.reverse();
    outln!("Available pipes in {dir}/:");
    for l in &lines {
        outln!("{l}");
    }
    outln!("Available profiles: {}.", profile_list(project)?);
    output::info(
        "🐋 has its own recipe, 🐟 runs in default.dockerfile, ◾ runs locally; 📜 has a long description (kerblam run NAME --desc)",
    );
    Err(Exit::invalid(format!("no pipe given; name one: `kerblam {command} NAME`")).into())
}

/// A pipe's line in the list, with Kerblam! 1.x's marks: its container (🐋 its own recipe, 🐟 the
/// default recipe, ◾ none), then its description (📜 a long one, ◾ none or a title only), then
/// its name and the title of its description.
fn list_line(pipe: &Pipe) -> String {
    let container = match &pipe.recipe {
        Some(r) if r.default => "🐟",
        Some(_) => "🐋",
        None => "◾",
    };
    let desc = match &pipe.description {
        Some(d) if d.body.is_some() => "📜",
        _ => "◾",
    };
    match &pipe.description {
        Some(d) => format!("    {container}{desc} {} :: {}", pipe.name, d.header),
        None => format!("    {container}{desc} {}", pipe.name),
    }
}

/// The profiles, as 1.x lists them: the declared ones by name, or "No profiles defined"; kerblam
/// adds the `test` profile it infers from test_* input files, which 1.x also runs but does not list.
fn profile_list(project: &Project) -> miette::Result<String> {
    let declared = &project.manifest.data.profiles;
    let mut names: Vec<String> = declared.keys().cloned().collect();
    if !declared.contains_key("test") && profile::available(project)?.contains_key("test") {
        names.push("test (inferred from test_* files)".into());
    }
    Ok(if names.is_empty() {
        "No profiles defined".into()
    } else {
        names.join(", ")
    })
}

/// Run the pipe on the host, from the project root.
fn run_local(
    project: &Project,
    pipe: &Pipe,
    profile: Option<&str>,
    extra: &[String],
) -> miette::Result<u8> {
    let (program, mut cmd) = match pipe.kind {
        PipeKind::Make => {
            let mut c = Command::new("make");
            c.arg("-f").arg(&pipe.path);
            ("make", c)
        }
        PipeKind::Shell => {
            let mut c = Command::new("bash");
            c.arg(&pipe.path);
            ("bash", c)
        }
    };
    cmd.args(extra).current_dir(&project.root);
    if let Some(p) = profile {
        cmd.env("KERBLAM_PROFILE", p);
    }
    output::info(format!("running {} locally ({program})", pipe.path));
    let status = signals::run_child(&mut cmd).map_err(|e| {
        miette::miette!(
            help = format!("install {program}, or run the pipe in its container"),
            "cannot run `{program} {}`: {e}",
            pipe.path
        )
    })?;
    Ok(signals::status_code(status))
}

/// Build the recipe and run the pipe in its container through the backend plugin.
fn run_container(
    global: &GlobalArgs,
    project: &Project,
    plan: &PackagePlan,
    extra: &[String],
    no_cache: bool,
) -> miette::Result<u8> {
    crate::execute::run_in_container(global, project, plan, extra, no_cache)
}

//! Rendering the Apptainer definition file (and the runscript and environment script it embeds)
//! from a [`Model`], with minijinja templates kept in `templates/`.
//!
//! Each template has its own context struct ([`DefContext`], [`RunscriptContext`],
//! [`EnvironmentContext`]) whose fields are already escaped by [`crate::escape`]; a value that
//! cannot be represented is an error naming it, never a broken file.
//!
//! `%files` sources are staged copies under `<stage>/files/NNNN` (so host paths never need
//! quoting); a destination that is not made of plain characters is copied to
//! `/.kerblam-files/NNNN` and moved into place by `%post` with shell quoting.

use minijinja::{Environment, UndefinedBehavior, syntax::SyntaxConfig, value::Value};
use serde::Serialize;

use crate::escape::{self, is_plain, sh_word};
use crate::model::{BaseSpec, Model, Source};

const DEF_TEMPLATE: &str = include_str!("../templates/definition.def.j2");
const RUNSCRIPT_TEMPLATE: &str = include_str!("../templates/runscript.sh.j2");
const ENVIRONMENT_TEMPLATE: &str = include_str!("../templates/environment.sh.j2");

/// Where staged `%files` sources go inside the image when their destination needs quoting.
pub const IN_IMAGE_STAGE: &str = "/.kerblam-files";

/// The context of `templates/definition.def.j2`. Every field is escaped for its place.
#[derive(Debug, Serialize)]
pub struct DefContext {
    /// The first comment line.
    pub comment: String,
    /// The `Bootstrap:` agent.
    pub bootstrap: String,
    /// The `From:` value, if the agent takes one.
    pub from: Option<String>,
    /// Recipe instructions that were ignored, for comments.
    pub ignored: Vec<String>,
    /// `%files` lines (`source destination`).
    pub files: Vec<String>,
    /// `%post` lines.
    pub post: Vec<String>,
    /// The `%environment` body (from [`EnvironmentContext`]).
    pub environment: String,
    /// The `%runscript` body (from [`RunscriptContext`]).
    pub runscript: String,
    /// `%labels` lines (`key value`).
    pub labels: Vec<String>,
    /// The `%help` text.
    pub help: Option<String>,
    /// The `%test` body.
    pub test: Option<String>,
}

/// The context of `templates/runscript.sh.j2`.
#[derive(Debug, Serialize)]
pub struct RunscriptContext {
    /// The quoted working directory.
    pub workdir: String,
    /// The quoted command words.
    pub argv: String,
}

/// The context of `templates/environment.sh.j2`.
#[derive(Debug, Serialize)]
pub struct EnvironmentContext {
    /// `NAME=quoted-value` items.
    pub exports: Vec<String>,
}

/// A `%files` entry as staged: the host file to prepare and where the definition file says it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    /// The index of the model copy.
    pub index: usize,
    /// The `%files` source path (under the stage dir, or a plain host tree path used directly).
    pub source: String,
    /// Whether `source` must be prepared by copying the model source there.
    pub prepare: bool,
}

/// The rendered definition file and the staging it needs.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The definition file text.
    pub text: String,
    /// The `%files` sources to prepare.
    pub staged: Vec<Staged>,
}

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .expect("static syntax config"),
    );
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.add_template("definition.def.j2", DEF_TEMPLATE)
        .expect("valid template");
    env.add_template("runscript.sh.j2", RUNSCRIPT_TEMPLATE)
        .expect("valid template");
    env.add_template("environment.sh.j2", ENVIRONMENT_TEMPLATE)
        .expect("valid template");
    env
}

fn render<T: Serialize>(name: &str, ctx: &T) -> Result<String, String> {
    env()
        .get_template(name)
        .and_then(|t| t.render(Value::from(minijinja::value::Serde(ctx))))
        .map_err(|e| format!("cannot render {name}: {e}"))
}

fn bad(what: &str, value: &str, why: String) -> String {
    format!("{what} {value:?} cannot be written into an Apptainer definition file: {why}")
}

/// The runscript body for `model` (4-space indented shell, no `#!` line).
pub fn runscript(model: &Model) -> Result<String, String> {
    if model.entrypoint.is_empty() {
        return Err("the plan has no entrypoint for the runscript".into());
    }
    let ctx = RunscriptContext {
        workdir: sh_word(&model.workdir).map_err(|e| bad("the workdir", &model.workdir, e))?,
        argv: escape::sh_words(&model.entrypoint)
            .map_err(|e| bad("the entrypoint", &model.entrypoint.join(" "), e))?,
    };
    render("runscript.sh.j2", &ctx)
}

/// The `%test` body for `model` (4-space indented shell), when it has a smoke test.
pub fn test_script(model: &Model) -> Result<Option<String>, String> {
    match &model.test {
        Some(t) => Ok(Some(format!(
            "    {}",
            escape::section_text(t.trim_end()).map_err(|e| bad("the test command", t, e))?
        ))),
        None => Ok(None),
    }
}

/// The environment script body for `model` (`export` lines), empty when there are none.
pub fn environment(model: &Model) -> Result<String, String> {
    let exports = model
        .env
        .iter()
        .map(|(k, v)| {
            let k = escape::env_name(k).map_err(|e| bad("the environment variable", k, e))?;
            let v = sh_word(v).map_err(|e| bad(&format!("the value of {k}"), v, e))?;
            Ok(format!("{k}={v}"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    if exports.is_empty() {
        return Ok(String::new());
    }
    render("environment.sh.j2", &EnvironmentContext { exports })
}

/// The `%labels` lines, checked.
pub fn label_lines(model: &Model) -> Result<Vec<String>, String> {
    model
        .labels
        .iter()
        .map(|(k, v)| {
            let k = escape::label_key(k).map_err(|e| bad("the label key", k, e))?;
            let v = escape::label_value(v).map_err(|e| bad(&format!("the label {k}"), v, e))?;
            Ok(if v.is_empty() { k } else { format!("{k} {v}") })
        })
        .collect()
}

fn base_header(base: &BaseSpec) -> Result<(String, Option<String>), String> {
    let path = |p: &std::path::Path| {
        let s = p.to_string_lossy().into_owned();
        escape::header_value(&s).map_err(|e| bad("the base image path", &s, e))
    };
    Ok(match base {
        BaseSpec::Docker(r) => (
            "docker".into(),
            Some(escape::header_value(r).map_err(|e| bad("the base image", r, e))?),
        ),
        BaseSpec::DockerArchive(p) => ("docker-archive".into(), Some(path(p)?)),
        BaseSpec::OciArchive(p) => ("oci-archive".into(), Some(path(p)?)),
        BaseSpec::LocalImage(p) => ("localimage".into(), Some(path(p)?)),
        BaseSpec::Scratch => ("scratch".into(), None),
    })
}

/// Render the definition file of `model`, with `%files` sources staged under `stage` (an absolute
/// directory made of plain characters).
pub fn definition(model: &Model, stage: &str) -> Result<Rendered, String> {
    if !is_plain(stage) || !stage.starts_with('/') {
        return Err(format!(
            "the staging directory {stage:?} must be an absolute path of letters, digits and /._-+=:,@ (the %files section cannot quote); set TMPDIR to such a directory"
        ));
    }
    let (bootstrap, from) = base_header(&model.base)?;
    let scratch = model.base == BaseSpec::Scratch;
    let mut files = Vec::new();
    let mut post = Vec::new();
    let mut staged = Vec::new();
    if !scratch {
        for d in model
            .dirs
            .iter()
            .filter(|d| !d.trim_end_matches('/').is_empty())
        {
            post.push(format!(
                "mkdir -p {}",
                sh_word(d).map_err(|e| bad("the directory", d, e))?
            ));
        }
    }
    for (i, c) in model.copies.iter().enumerate() {
        if let Source::Link(target) = &c.source {
            // `%files` copies follow symlinks; a link is recreated by `%post` instead.
            if scratch {
                return Err(bad(
                    "the symlink",
                    &c.dest,
                    "a scratch image has no shell for %post to create it".into(),
                ));
            }
            let dest = sh_word(&c.dest).map_err(|e| bad("the destination", &c.dest, e))?;
            let target = sh_word(target).map_err(|e| bad("the symlink target", target, e))?;
            post.push(format!(
                "mkdir -p \"$(dirname {dest})\" && ln -sfn {target} {dest}"
            ));
            continue;
        }
        let direct = match &c.source {
            Source::Tree { path, exclude } if exclude.is_empty() => {
                Some(path.to_string_lossy().into_owned()).filter(|p| is_plain(p))
            }
            _ => None,
        };
        let source = match &direct {
            Some(p) => p.clone(),
            None => format!("{stage}/files/{i:04}"),
        };
        staged.push(Staged {
            index: i,
            source: source.clone(),
            prepare: direct.is_none(),
        });
        if is_plain(&c.dest) && c.dest.starts_with('/') {
            files.push(format!("{source} {}", c.dest));
        } else {
            if scratch {
                return Err(bad(
                    "the destination",
                    &c.dest,
                    "it needs quoting, which a scratch image (no shell for %post) cannot do".into(),
                ));
            }
            let tmp = format!("{IN_IMAGE_STAGE}/{i:04}");
            let dest = sh_word(&c.dest).map_err(|e| bad("the destination", &c.dest, e))?;
            files.push(format!("{source} {tmp}"));
            post.push(format!("mkdir -p \"$(dirname {dest})\" && mv {tmp} {dest}"));
        }
    }
    if post.iter().any(|l| l.contains(IN_IMAGE_STAGE)) {
        post.push(format!("rmdir {IN_IMAGE_STAGE}"));
    }
    if !model.run.is_empty() && scratch {
        return Err("the recipe has RUN instructions but the image starts from scratch (no shell to run them)".into());
    }
    for (wd, cmd) in &model.run {
        let cmd = escape::section_text(cmd).map_err(|e| bad("the RUN command", cmd, e))?;
        if cmd.contains('\n') {
            return Err(bad(
                "the RUN command",
                &cmd,
                "it spans several lines".into(),
            ));
        }
        post.push(format!(
            "cd {} && {cmd}",
            sh_word(wd).map_err(|e| bad("the directory", wd, e))?
        ));
    }
    let help = match &model.help {
        Some(h) => {
            Some(escape::section_text(h.trim_end()).map_err(|e| bad("the help text", h, e))?)
        }
        None => None,
    };
    let test = test_script(model)?;
    let ctx = DefContext {
        comment: escape::comment(&format!(
            "Generated by kerblam {} from {} ({}); do not edit.",
            env!("CARGO_PKG_VERSION"),
            model.source,
            model.name
        )),
        bootstrap,
        from,
        ignored: model.ignored.iter().map(|l| escape::comment(l)).collect(),
        files,
        post,
        environment: environment(model)?.trim_end().to_string(),
        runscript: runscript(model)?.trim_end().to_string(),
        labels: label_lines(model)?,
        help,
        test,
    };
    Ok(Rendered {
        text: render("definition.def.j2", &ctx)?,
        staged,
    })
}

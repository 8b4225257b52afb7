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

use crate::error::{Error, Unwritable};
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

fn render<T: Serialize>(name: &str, ctx: &T) -> Result<String, Error> {
    env()
        .get_template(name)
        .and_then(|t| t.render(Value::from(minijinja::value::Serde(ctx))))
        .map_err(|source| Error::Template {
            name: name.to_string(),
            source,
        })
}

/// `what value` cannot be written, because of `why`.
fn bad(what: &str, value: &str) -> impl FnOnce(Unwritable) -> Error {
    move |why| Error::unwritable(what, value, why)
}

/// The runscript body for `model` (4-space indented shell, no `#!` line).
pub fn runscript(model: &Model) -> Result<String, Error> {
    if model.entrypoint.is_empty() {
        return Err(Error::NoEntrypoint);
    }
    let ctx = RunscriptContext {
        workdir: sh_word(&model.workdir).map_err(bad("the workdir", &model.workdir))?,
        argv: escape::sh_words(&model.entrypoint)
            .map_err(bad("the entrypoint", &model.entrypoint.join(" ")))?,
    };
    render("runscript.sh.j2", &ctx)
}

/// The `%test` body for `model` (4-space indented shell), when it has a smoke test.
pub fn test_script(model: &Model) -> Result<Option<String>, Error> {
    match &model.test {
        Some(t) => Ok(Some(format!(
            "    {}",
            escape::section_text(t.trim_end()).map_err(bad("the test command", t))?
        ))),
        None => Ok(None),
    }
}

/// The environment script body for `model` (`export` lines), empty when there are none.
pub fn environment(model: &Model) -> Result<String, Error> {
    let exports = model
        .env
        .iter()
        .map(|(k, v)| {
            let k = escape::env_name(k).map_err(bad("the environment variable", k))?;
            let v = sh_word(v).map_err(bad(&format!("the value of {k}"), v))?;
            Ok(format!("{k}={v}"))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    if exports.is_empty() {
        return Ok(String::new());
    }
    render("environment.sh.j2", &EnvironmentContext { exports })
}

/// The `%labels` lines, checked.
pub fn label_lines(model: &Model) -> Result<Vec<String>, Error> {
    model
        .labels
        .iter()
        .map(|(k, v)| {
            let k = escape::label_key(k).map_err(bad("the label key", k))?;
            let v = escape::label_value(v).map_err(bad(&format!("the label {k}"), v))?;
            Ok(if v.is_empty() { k } else { format!("{k} {v}") })
        })
        .collect()
}

fn base_header(base: &BaseSpec) -> Result<(String, Option<String>), Error> {
    let path = |p: &std::path::Path| {
        let s = p.to_string_lossy().into_owned();
        escape::header_value(&s).map_err(bad("the base image path", &s))
    };
    Ok(match base {
        BaseSpec::Docker(r) => (
            "docker".into(),
            Some(escape::header_value(r).map_err(bad("the base image", r))?),
        ),
        BaseSpec::DockerArchive(p) => ("docker-archive".into(), Some(path(p)?)),
        BaseSpec::OciArchive(p) => ("oci-archive".into(), Some(path(p)?)),
        BaseSpec::LocalImage(p) => ("localimage".into(), Some(path(p)?)),
        BaseSpec::Scratch => ("scratch".into(), None),
    })
}

/// The `%files` and `%post` lines that put the model's directories and copies in place, and the
/// `%files` sources to stage under `stage`.
#[derive(Debug, Default)]
struct Placement {
    files: Vec<String>,
    post: Vec<String>,
    staged: Vec<Staged>,
}

impl Placement {
    /// `mkdir -p` lines for the model's directories (a scratch image has no shell to run them;
    /// `%files` creates the parents it needs).
    fn dirs(&mut self, model: &Model, scratch: bool) -> Result<(), Error> {
        if scratch {
            return Ok(());
        }
        for d in model
            .dirs
            .iter()
            .filter(|d| !d.trim_end_matches('/').is_empty())
        {
            let d = sh_word(d).map_err(bad("the directory", d))?;
            self.post.push(format!("mkdir -p {d}"));
        }
        Ok(())
    }

    /// A symlink: `%files` copies follow symlinks, so `%post` recreates it instead.
    fn link(&mut self, dest: &str, target: &str, scratch: bool) -> Result<(), Error> {
        if scratch {
            return Err(Error::unwritable(
                "the symlink",
                dest,
                Unwritable::ScratchLink,
            ));
        }
        let dest = sh_word(dest).map_err(bad("the destination", dest))?;
        let target = sh_word(target).map_err(bad("the symlink target", target))?;
        self.post.push(format!(
            "mkdir -p \"$(dirname {dest})\" && ln -sfn {target} {dest}"
        ));
        Ok(())
    }

    /// Copy `i`: its source (a plain host tree used where it is, else staged under `stage`), and
    /// its destination, moved into place by `%post` when it needs quoting.
    fn copy(
        &mut self,
        i: usize,
        c: &crate::model::Copy,
        stage: &str,
        scratch: bool,
    ) -> Result<(), Error> {
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
        self.staged.push(Staged {
            index: i,
            source: source.clone(),
            prepare: direct.is_none(),
        });
        if is_plain(&c.dest) && c.dest.starts_with('/') {
            self.files.push(format!("{source} {}", c.dest));
            return Ok(());
        }
        if scratch {
            return Err(Error::unwritable(
                "the destination",
                &c.dest,
                Unwritable::ScratchQuoting,
            ));
        }
        let tmp = format!("{IN_IMAGE_STAGE}/{i:04}");
        let dest = sh_word(&c.dest).map_err(bad("the destination", &c.dest))?;
        self.files.push(format!("{source} {tmp}"));
        self.post
            .push(format!("mkdir -p \"$(dirname {dest})\" && mv {tmp} {dest}"));
        Ok(())
    }

    /// The recipe's `RUN` commands, each in its working directory.
    fn run(&mut self, model: &Model, scratch: bool) -> Result<(), Error> {
        if !model.run.is_empty() && scratch {
            return Err(Error::RunOnScratch);
        }
        for (wd, cmd) in &model.run {
            let cmd = escape::section_text(cmd).map_err(bad("the RUN command", cmd))?;
            if cmd.contains('\n') {
                return Err(Error::unwritable(
                    "the RUN command",
                    &cmd,
                    Unwritable::MultiLine,
                ));
            }
            let wd = sh_word(wd).map_err(bad("the directory", wd))?;
            self.post.push(format!("cd {wd} && {cmd}"));
        }
        Ok(())
    }
}

/// Render the definition file of `model`, with `%files` sources staged under `stage` (an absolute
/// directory made of plain characters).
pub fn definition(model: &Model, stage: &str) -> Result<Rendered, Error> {
    if !is_plain(stage) || !stage.starts_with('/') {
        return Err(Error::StagingDir(stage.to_string()));
    }
    let (bootstrap, from) = base_header(&model.base)?;
    let scratch = model.base == BaseSpec::Scratch;
    let mut place = Placement::default();
    place.dirs(model, scratch)?;
    for (i, c) in model.copies.iter().enumerate() {
        match &c.source {
            Source::Link(target) => place.link(&c.dest, target, scratch)?,
            _ => place.copy(i, c, stage, scratch)?,
        }
    }
    if place.post.iter().any(|l| l.contains(IN_IMAGE_STAGE)) {
        place.post.push(format!("rmdir {IN_IMAGE_STAGE}"));
    }
    place.run(model, scratch)?;
    let help = match &model.help {
        Some(h) => Some(escape::section_text(h.trim_end()).map_err(bad("the help text", h))?),
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
        files: place.files,
        post: place.post,
        environment: environment(model)?.trim_end().to_string(),
        runscript: runscript(model)?.trim_end().to_string(),
        labels: label_lines(model)?,
        help,
        test,
    };
    Ok(Rendered {
        text: render("definition.def.j2", &ctx)?,
        staged: place.staged,
    })
}

//! Reading a pipe's container recipe (a Dockerfile) into the steps a definition file can express.
//!
//! Apptainer does not read Dockerfiles, so the backend translates the subset Kerblam! projects use:
//! one `FROM`, `WORKDIR`, `COPY`/`ADD` of context paths, `RUN`, `ENV` and `LABEL`. Instructions
//! that only matter to Docker (`CMD`, `ENTRYPOINT`, `EXPOSE`, `USER`, `ARG`, ...) are listed as
//! ignored; anything that cannot be translated (multi-stage builds, `COPY --from`, remote `ADD`)
//! is an error naming the recipe line.

use std::path::Path;

use crate::error::Error;

/// One translated instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Copy context paths `sources` (relative to the context root) to `dest` (absolute).
    Copy {
        /// Context-relative sources (`.` is the whole context).
        sources: Vec<String>,
        /// The absolute destination inside the image.
        dest: String,
        /// Whether the destination is a directory (ends with `/`, or several sources).
        dest_is_dir: bool,
    },
    /// Run a shell command in `workdir`.
    Run {
        /// The working directory at that point.
        workdir: String,
        /// The command, continuation lines joined.
        command: String,
    },
    /// Create the working directory.
    Workdir(String),
}

/// A translated recipe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipe {
    /// The `FROM` image reference (`scratch` for an empty base).
    pub from: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// `ENV` variables, in order.
    pub env: Vec<(String, String)>,
    /// `LABEL`s, in order.
    pub labels: Vec<(String, String)>,
    /// The last `WORKDIR` (`/` when none).
    pub workdir: String,
    /// Instructions ignored, as `line N: INSTRUCTION`.
    pub ignored: Vec<String>,
}

/// Join `p` to `base` the way Docker resolves a relative `WORKDIR` or `COPY` destination.
fn join(base: &str, p: &str) -> String {
    let joined = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{}/{}", base.trim_end_matches('/'), p)
    };
    let mut out: Vec<&str> = Vec::new();
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

/// Split a shell-form argument list on whitespace, honouring simple quotes, or parse exec form.
fn words(rest: &str) -> Vec<String> {
    let t = rest.trim();
    if t.starts_with('[')
        && let Ok(v) = serde_json::from_str::<Vec<String>>(t)
    {
        return v;
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in t.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                any = true;
            }
            None if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            None => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `key=value` pairs (or the legacy `key value` form) of `ENV` and `LABEL`.
fn pairs(rest: &str) -> Vec<(String, String)> {
    let w = words(rest);
    if w.first().is_some_and(|f| !f.contains('=')) {
        let key = w[0].clone();
        let value = rest.trim()[key.len()..].trim().to_string();
        return vec![(key, value)];
    }
    w.into_iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// The logical lines of `text` with their first line numbers: continuation lines (ending in `\`)
/// joined, comments and blank lines dropped.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut logical: Vec<(usize, String)> = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        if cur.is_none() && (line.trim_start().starts_with('#') || line.trim().is_empty()) {
            continue;
        }
        if cur.is_some() && line.trim_start().starts_with('#') {
            continue;
        }
        let (start, mut acc) = cur.take().unwrap_or((i + 1, String::new()));
        if let Some(body) = line.strip_suffix('\\') {
            acc.push_str(body);
            acc.push(' ');
            cur = Some((start, acc));
        } else {
            acc.push_str(line);
            logical.push((start, acc));
        }
    }
    if let Some(c) = cur {
        logical.push(c);
    }
    logical
}

/// The `COPY`/`ADD` step of `rest` (`at` is `recipe:line`), relative to `workdir`.
fn copy_step(at: &str, instr: &str, rest: &str, workdir: &str) -> Result<Step, Error> {
    let w = words(rest);
    if let Some(flag) = w.iter().find(|x| x.starts_with("--from")) {
        return Err(Error::CopyFromImage {
            at: at.to_string(),
            instr: instr.to_string(),
            flag: flag.clone(),
        });
    }
    let w: Vec<String> = w.into_iter().filter(|x| !x.starts_with("--")).collect();
    if w.len() < 2 {
        return Err(Error::CopyArguments {
            at: at.to_string(),
            instr: instr.to_string(),
        });
    }
    let (dest, sources) = w.split_last().expect("len >= 2");
    if let Some(s) = sources.iter().find(|s| s.contains("://")) {
        return Err(Error::CopyUrl {
            at: at.to_string(),
            instr: instr.to_string(),
            url: s.clone(),
        });
    }
    Ok(Step::Copy {
        sources: sources.to_vec(),
        dest: join(workdir, dest),
        dest_is_dir: dest.ends_with('/') || sources.len() > 1 || dest == ".",
    })
}

/// The image a `FROM` names (`at` is `recipe:line`), its flags left out.
fn from_image(at: &str, rest: &str) -> Result<String, Error> {
    let w = words(rest);
    w.iter()
        .find(|x| !x.starts_with("--"))
        .cloned()
        .ok_or_else(|| Error::FromWithoutImage { at: at.to_string() })
}

/// The command of a `RUN`: exec form quoted as one shell line, shell form as written.
fn run_command(at: &str, rest: &str) -> Result<String, Error> {
    let w = rest.trim();
    if !w.starts_with('[') {
        return Ok(w.to_string());
    }
    crate::escape::sh_words(&words(w)).map_err(|why| Error::RunWords {
        at: at.to_string(),
        why,
    })
}

/// Parse the recipe text; `path` is used in error messages.
pub fn parse(text: &str, path: &Path) -> Result<Recipe, Error> {
    let mut r = Recipe {
        workdir: "/".into(),
        ..Default::default()
    };
    let mut froms = 0;
    for (n, line) in logical_lines(text) {
        let at = format!("{}:{n}", path.display());
        let line = line.trim();
        let (instr, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        match instr.to_ascii_uppercase().as_str() {
            "FROM" => {
                froms += 1;
                if froms > 1 {
                    return Err(Error::MultiStage { at });
                }
                r.from = from_image(&at, rest)?;
            }
            "WORKDIR" => {
                r.workdir = join(&r.workdir, rest.trim_matches('"'));
                r.steps.push(Step::Workdir(r.workdir.clone()));
            }
            "COPY" | "ADD" => r.steps.push(copy_step(&at, instr, rest, &r.workdir)?),
            "RUN" => r.steps.push(Step::Run {
                workdir: r.workdir.clone(),
                command: run_command(&at, rest)?,
            }),
            "ENV" => r.env.extend(pairs(rest)),
            "LABEL" => r.labels.extend(pairs(rest)),
            "CMD" | "ENTRYPOINT" | "EXPOSE" | "USER" | "ARG" | "VOLUME" | "SHELL"
            | "HEALTHCHECK" | "STOPSIGNAL" | "ONBUILD" | "MAINTAINER" => {
                r.ignored
                    .push(format!("line {n}: {}", instr.to_ascii_uppercase()));
            }
            other => {
                return Err(Error::UnknownInstruction {
                    at,
                    instr: other.to_string(),
                });
            }
        }
    }
    if froms == 0 {
        return Err(Error::NoFrom {
            recipe: path.display().to_string(),
        });
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_the_kerblam_subset() {
        let r = parse(
            "# c\nFROM docker.io/library/debian:12 AS b\nWORKDIR /project\nCOPY . .\nRUN apt-get update && \\\n    apt-get install -y make\nENV A=1 B=\"two words\"\nLABEL x=y\nCMD [\"bash\"]\n",
            Path::new("r.dockerfile"),
        )
        .unwrap();
        assert_eq!(r.from, "docker.io/library/debian:12");
        assert_eq!(r.workdir, "/project");
        assert_eq!(
            r.steps[1],
            Step::Copy {
                sources: vec![".".into()],
                dest: "/project".into(),
                dest_is_dir: true
            }
        );
        assert!(
            matches!(&r.steps[2], Step::Run { command, .. } if command.contains("apt-get install -y make"))
        );
        assert_eq!(
            r.env,
            vec![("A".into(), "1".into()), ("B".into(), "two words".into())]
        );
        assert_eq!(r.ignored, vec!["line 9: CMD".to_string()]);
    }

    #[test]
    fn refuses_what_cannot_be_translated_with_the_line() {
        let e = parse("FROM a\nFROM b\n", Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("x:2"), "{e}");
        let e = parse("FROM a\nCOPY --from=b /x /y\n", Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("x:2"), "{e}");
        assert!(parse("RUN true\n", Path::new("x")).is_err());
    }
}

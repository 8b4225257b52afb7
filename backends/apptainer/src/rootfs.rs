//! Assembling the image's root filesystem in a directory, for the native SIF path: the base
//! (scratch or a local image archive), the model's copies, and Apptainer's `/.singularity.d/`
//! layout, so that `apptainer run` behaves as it would on an image built from the definition file.
//!
//! Every path inside the root is resolved with [`inside`], which follows symlinks as if the root
//! were `/`: a base image's absolute symlink (`/lib64 -> /usr/lib64`) never leads a write out of
//! the root.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use crate::error::Error;
use crate::image::BaseConfig;
use crate::model::{Copy, Model, Source};

fn comps(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// The host path of `path` (absolute or relative, as seen inside the image) under `root`, with
/// every symlink but the last component resolved inside `root`.
pub fn inside(root: &Path, path: &Path) -> Result<PathBuf, Error> {
    let mut parts: Vec<OsString> = Vec::new();
    let mut todo: VecDeque<OsString> = comps(path).into();
    let mut hops = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            parts.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&parts);
        candidate.push(&c);
        if !todo.is_empty()
            && let Ok(target) = std::fs::read_link(&candidate)
        {
            hops += 1;
            if hops > 40 {
                return Err(Error::SymlinkLoop(path.to_path_buf()));
            }
            if target.is_absolute() {
                parts.clear();
            }
            for t in comps(&target).into_iter().rev() {
                todo.push_front(t);
            }
            continue;
        }
        parts.push(c);
    }
    let mut out = root.to_path_buf();
    out.extend(parts);
    Ok(out)
}

/// A failed file system operation on `p`, for `map_err`.
fn io<'a>(what: &'static str, p: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::io(what, p, e)
}

/// A failed copy from `from` to `to`, for `map_err`.
fn copy_failed<'a>(from: &'a Path, to: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Copy {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        source,
    }
}

fn mkdirs(root: &Path, dir: &str) -> Result<PathBuf, Error> {
    let d = inside(root, Path::new(dir))?;
    std::fs::create_dir_all(&d).map_err(io("cannot create", &d))?;
    Ok(d)
}

fn write_file(root: &Path, dest: &str, bytes: &[u8], mode: u32) -> Result<(), Error> {
    let p = inside(root, Path::new(dest))?;
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).map_err(io("cannot create", parent))?;
    }
    if p.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
        let _ = std::fs::remove_file(&p);
    }
    std::fs::write(&p, bytes).map_err(io("cannot write", &p))?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
        .map_err(io("cannot set the mode of", &p))
}

/// Copy one model item to `dest_host`, a host path (already resolved). Used both for the rootfs
/// and for staging `%files` sources.
pub fn materialize(c: &Copy, dest_host: &Path) -> Result<(), Error> {
    if let Some(parent) = dest_host.parent() {
        std::fs::create_dir_all(parent).map_err(io("cannot create", parent))?;
    }
    if dest_host.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
        let _ = std::fs::remove_file(dest_host);
    }
    match &c.source {
        Source::File(src) => {
            std::fs::copy(src, dest_host).map_err(copy_failed(src, dest_host))?;
            if let Some(mode) = c.mode {
                std::fs::set_permissions(dest_host, std::fs::Permissions::from_mode(mode & 0o7777))
                    .map_err(io("cannot set the mode of", dest_host))?;
            }
        }
        Source::Link(target) => {
            std::os::unix::fs::symlink(target, dest_host)
                .map_err(io("cannot create the symlink", dest_host))?;
        }
        Source::Text(text) => {
            std::fs::write(dest_host, text).map_err(io("cannot write", dest_host))?;
            std::fs::set_permissions(
                dest_host,
                std::fs::Permissions::from_mode(c.mode.unwrap_or(0o644) & 0o7777),
            )
            .map_err(io("cannot set the mode of", dest_host))?;
        }
        Source::Tree { path, exclude } => copy_tree(path, exclude, dest_host)?,
    }
    Ok(())
}

/// Copy the tree at `src` to `dest`, leaving out gitignore-style `exclude` patterns; symlinks are
/// copied as symlinks. Entries are visited in sorted order.
pub fn copy_tree(src: &Path, exclude: &[String], dest: &Path) -> Result<(), Error> {
    let mut b = ignore::gitignore::GitignoreBuilder::new(src);
    for pat in exclude {
        b.add_line(None, pat)
            .map_err(|source| Error::ExcludePattern {
                pattern: pat.clone(),
                tree: src.to_path_buf(),
                source,
            })?;
    }
    let matcher = b.build().map_err(|source| Error::ExcludePatterns {
        tree: src.to_path_buf(),
        source,
    })?;
    let mut stack = vec![(src.to_path_buf(), dest.to_path_buf())];
    while let Some((s, d)) = stack.pop() {
        std::fs::create_dir_all(&d).map_err(io("cannot create", &d))?;
        let mode = s
            .metadata()
            .map_err(io("cannot read", &s))?
            .permissions()
            .mode();
        let mut entries: Vec<_> = std::fs::read_dir(&s)
            .map_err(io("cannot read", &s))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let m = p.symlink_metadata().map_err(io("cannot read", &p))?;
            if matcher.matched(&p, m.is_dir()).is_ignore() {
                continue;
            }
            let to = d.join(e.file_name());
            if m.file_type().is_symlink() {
                let t = std::fs::read_link(&p).map_err(io("cannot read", &p))?;
                let _ = std::fs::remove_file(&to);
                std::os::unix::fs::symlink(t, &to).map_err(io("cannot create", &to))?;
            } else if m.is_dir() {
                stack.push((p, to));
            } else if m.is_file() {
                // A hard link costs no space for multi-gigabyte trees; nothing ever writes through
                // it (every later write first removes the path). Across filesystems, copy.
                let _ = std::fs::remove_file(&to);
                if std::fs::hard_link(&p, &to).is_err() {
                    std::fs::copy(&p, &to).map_err(copy_failed(&p, &to))?;
                }
            }
        }
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(io("cannot set the mode of", &d))?;
    }
    Ok(())
}

/// The action script that `apptainer run` uses: source the env scripts, then the runscript.
const RUN_ACTION: &str = "#!/bin/sh\n\
for script in /.singularity.d/env/*.sh; do\n    if [ -f \"$script\" ]; then\n        . \"$script\"\n    fi\ndone\n\
exec /.singularity.d/runscript \"$@\"\n";

const EXEC_ACTION: &str = "#!/bin/sh\n\
for script in /.singularity.d/env/*.sh; do\n    if [ -f \"$script\" ]; then\n        . \"$script\"\n    fi\ndone\n\
exec \"$@\"\n";

/// Fill `rootfs` (already holding the base, if any) with the model's content and the
/// `/.singularity.d/` layout. `def_text` is stored as `/.singularity.d/Singularity`.
pub fn assemble(
    model: &Model,
    rootfs: &Path,
    base: &BaseConfig,
    def_text: &str,
) -> Result<(), Error> {
    if !model.run.is_empty() {
        return Err(Error::RunNeedsRuntime(model.run.len()));
    }
    for d in [
        "proc", "sys", "dev", "tmp", "home", "root", "etc", "var/tmp", "mnt",
    ] {
        mkdirs(rootfs, d)?;
    }
    for d in &model.dirs {
        mkdirs(rootfs, d)?;
    }
    for c in &model.copies {
        let dest = inside(rootfs, Path::new(&c.dest))?;
        materialize(c, &dest)?;
    }
    for d in ["env", "actions", "libs"] {
        mkdirs(rootfs, &format!("{SD}/{d}"))?;
    }
    write_scripts(model, rootfs, base)?;
    write_metadata(model, rootfs, def_text)?;
    for (link, target) in [
        ("singularity", ".singularity.d/runscript"),
        ("environment", ".singularity.d/env/90-environment.sh"),
    ] {
        let p = rootfs.join(link);
        if p.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(target, &p).map_err(io("cannot create", &p))?;
        }
    }
    Ok(())
}

/// Apptainer's directory in the image.
const SD: &str = "/.singularity.d";

/// The scripts `apptainer run` and `exec` run: the runscript, the environment scripts (the
/// model's, the base image's and an empty base one) and the two actions.
fn write_scripts(model: &Model, rootfs: &Path, base: &BaseConfig) -> Result<(), Error> {
    let runscript = crate::def::runscript(model)?;
    let runscript = format!("#!/bin/sh\n\n{runscript}");
    write_file(
        rootfs,
        &format!("{SD}/runscript"),
        runscript.as_bytes(),
        0o755,
    )?;
    let env = crate::def::environment(model)?;
    let env = format!("#!/bin/sh\n# Custom environment shell code should follow\n\n{env}");
    write_file(
        rootfs,
        &format!("{SD}/env/90-environment.sh"),
        env.as_bytes(),
        0o755,
    )?;
    let mut base_env = String::from("#!/bin/sh\n");
    for kv in &base.env {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if crate::escape::env_name(k).is_err() {
            continue;
        }
        let v = crate::escape::sh_word(v).map_err(|why| Error::BaseVariable {
            name: k.to_string(),
            why,
        })?;
        base_env.push_str(&format!("export {k}={v}\n"));
    }
    for (file, text, mode) in [
        ("env/10-docker2singularity.sh", base_env.as_bytes(), 0o755),
        (
            "env/01-base.sh",
            b"#!/bin/sh\n# Written by kerblam: the native SIF path has no base environment of its own.\n",
            0o755,
        ),
        ("actions/run", RUN_ACTION.as_bytes(), 0o755),
        ("actions/exec", EXEC_ACTION.as_bytes(), 0o755),
    ] {
        write_file(rootfs, &format!("{SD}/{file}"), text, mode)?;
    }
    Ok(())
}

/// What `apptainer build` writes from `%help` and `%test` (for `apptainer run-help` and
/// `apptainer test`), the labels and the definition file.
fn write_metadata(model: &Model, rootfs: &Path, def_text: &str) -> Result<(), Error> {
    if let Some(help) = &model.help {
        let help = format!("{}\n", help.trim_end());
        write_file(
            rootfs,
            &format!("{SD}/runscript.help"),
            help.as_bytes(),
            0o644,
        )?;
    }
    if let Some(test) = crate::def::test_script(model)? {
        let test = format!("#!/bin/sh\n\n{test}\n");
        write_file(rootfs, &format!("{SD}/test"), test.as_bytes(), 0o755)?;
    }
    let labels = serde_json::to_string_pretty(&model.labels).expect("labels serialize");
    write_file(
        rootfs,
        &format!("{SD}/labels.json"),
        labels.as_bytes(),
        0o644,
    )?;
    write_file(
        rootfs,
        &format!("{SD}/Singularity"),
        def_text.as_bytes(),
        0o644,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_keeps_absolute_symlinks_in_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::os::unix::fs::symlink("/usr/lib", root.join("lib")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
        assert_eq!(
            inside(root, Path::new("/lib/x")).unwrap(),
            root.join("usr/lib/x")
        );
        assert_eq!(
            inside(root, Path::new("/escape/passwd")).unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(inside(root, Path::new("/../../x")).unwrap(), root.join("x"));
    }
}

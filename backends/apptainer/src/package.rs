//! The `package` action: the SIF, through apptainer or natively. The replay archive is kerblam's.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use kerblam_archive::{AtomicFile, hex};
use kerblam_backend_api::plan::{Artifact, ArtifactKind, LayerSource, Preflight};
use kerblam_backend_api::{ErrorMessage, ExecuteRequest, ExecuteResult, Host, ProducedArtifact};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::model::{self, BaseSpec, Model};
use crate::tool::{self, Identity};
use crate::{def, image, rootfs, sif, squash};

/// How the backend runs, beyond the request: which apptainer (if any), as whom, at what time.
/// [`Settings::detect`] is what the plugin uses; tests build their own.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The apptainer executable, `None` when not installed.
    pub apptainer: Option<PathBuf>,
    /// Who builds.
    pub identity: Identity,
    /// The timestamp written into the SIF, squashfs and replay archive.
    pub time: u64,
}

impl Settings {
    /// The real environment: `apptainer`/`singularity` from `PATH`, this process's uid,
    /// `SOURCE_DATE_EPOCH` (0 when unset, as for every kerblam archive).
    pub fn detect() -> Result<Settings, ErrorMessage> {
        Ok(Settings {
            apptainer: tool::find(),
            identity: Identity::current(),
            time: kerblam_archive::source_date_epoch()
                .map_err(Error::SourceDateEpoch)?
                .unwrap_or(0),
        })
    }
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(parent: &Path, name: &str) -> Result<TempDir, Error> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = parent.join(format!(
            "kerblam-apptainer-{name}-{}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p).map_err(|e| Error::io("cannot create", &p, e))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A file path that is removed when dropped unless disarmed.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Resolve an artifact path against the output dir.
fn out_path(req: &ExecuteRequest, p: &str) -> PathBuf {
    crate::abs(Path::new(&req.paths.output_dir), p)
}

fn file_digest(p: &Path) -> Result<(u64, String), Error> {
    let unreadable = |e| Error::io("cannot read back", p, e);
    let mut f = File::open(p).map_err(unreadable)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(unreadable)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, format!("sha256:{}", hex(&h.finalize()))))
}

/// The model of the request's plan; invalid input when it cannot be represented.
pub fn model_of(req: &ExecuteRequest) -> Result<Model, Error> {
    let base_archive = req.options.base_archive.as_deref().map(Path::new);
    model::build(
        &req.plan,
        model::Inputs {
            root: Path::new(&req.paths.root),
            kerblam: Path::new(&req.paths.kerblam),
            base_archive,
        },
    )
}

fn bytes_of(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// What the build needs in the temp dir and at the destination beyond the plan's own disk checks,
/// with how it was computed: the plan counts a freeze's trees; the backend adds what only it knows,
/// the base image it was given, and for a pipe plan the context and the kerblam executable it
/// stages (a freeze carries no kerblam). Staged, then squashed: two copies in the temp dir.
fn estimate(req: &ExecuteRequest, model: &Model) -> (u64, u64, String) {
    let plan = &req.plan;
    let kerblam = if plan
        .layers
        .iter()
        .any(|l| matches!(l.from, LayerSource::Kerblam))
    {
        bytes_of(Path::new(&req.paths.kerblam))
    } else {
        0
    };
    let content = plan.context.total_bytes.saturating_add(kerblam);
    let base = match &model.base {
        BaseSpec::DockerArchive(p) | BaseSpec::OciArchive(p) | BaseSpec::LocalImage(p) => {
            bytes_of(p)
        }
        _ => 0,
    };
    let margin = 16 << 20;
    let one = content.saturating_add(base);
    let temp = one.saturating_mul(2).saturating_add(margin);
    let dest = one.saturating_add(margin);
    let why = format!(
        "{} bytes of build context, {kerblam} bytes of kerblam and {base} bytes of base image, \
         staged and squashed in the temporary directory (2 copies) and stored in the SIF (1), \
         plus 16 MiB; the plan's own figures are added on the same filesystem",
        plan.context.total_bytes
    );
    (temp, dest, why)
}

/// The variables that name where `apptainer build` (or `singularity build`) makes its sandbox.
const TOOL_TMPDIR_VARS: [&str; 2] = ["APPTAINER_TMPDIR", "SINGULARITY_TMPDIR"];

/// Where `apptainer build` makes its sandbox: the user's `APPTAINER_TMPDIR` (or
/// `SINGULARITY_TMPDIR`) when set, else kerblam's temp dir.
fn tool_temp_dir(req: &ExecuteRequest) -> String {
    TOOL_TMPDIR_VARS
        .into_iter()
        .find_map(|v| std::env::var(v).ok().filter(|d| !d.is_empty()))
        .unwrap_or_else(|| req.paths.temp_dir.clone())
}

fn preflight(
    req: &ExecuteRequest,
    model: &Model,
    sif_path: &Path,
    native: bool,
    settings: &Settings,
) -> Result<(), ErrorMessage> {
    let (temp, dest, why) = estimate(req, model);
    let dest_dir = sif_path
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into());
    let mut checks = vec![
        Preflight::DiskSpace {
            path: if native {
                req.paths.temp_dir.clone()
            } else {
                tool_temp_dir(req)
            },
            bytes: temp,
            why: why.clone(),
        },
        Preflight::DiskSpace {
            path: dest_dir.clone(),
            bytes: dest,
            why,
        },
        Preflight::Writable { path: dest_dir },
    ];
    if native {
        checks.push(Preflight::Tool {
            names: vec!["mksquashfs".into()],
        });
    }
    // With the plan's disk figures (already checked alone), so that needs on one filesystem
    // are added up.
    checks.extend(
        req.plan
            .all_preflight()
            .filter(|c| matches!(c, Preflight::DiskSpace { .. }))
            .cloned(),
    );
    let failed = kerblam_backend_api::preflight::failures(&checks, &req.paths);
    let mut extra = Vec::new();
    if native && failed.iter().any(|(_, f)| f.contains("mksquashfs")) {
        extra.push("install squashfs-tools (e.g. `apt-get install squashfs-tools`)".to_string());
    }
    if !native && let Err(e) = tool::check_fakeroot(&settings.identity) {
        extra.push(e.to_string());
    }
    if failed.is_empty() && extra.is_empty() {
        Ok(())
    } else {
        Err(kerblam_backend_api::preflight::refusal(&failed, &extra))
    }
}

/// The SIF artifact the plan asks for (`None`: it asks for no image); an error when it asks for
/// another kind of artifact too, which this backend does not write.
fn sif_artifact(req: &ExecuteRequest) -> Result<Option<&Artifact>, Error> {
    let artifacts = &req.plan.backend.artifacts;
    let Some(sif) = artifacts.iter().find(|a| a.kind == ArtifactKind::Sif) else {
        return Ok(None);
    };
    if let Some(a) = artifacts.iter().find(|a| a.kind != ArtifactKind::Sif) {
        return Err(Error::ArtifactKind {
            kind: a.kind,
            path: a.path.clone(),
        });
    }
    Ok(Some(sif))
}

/// The plan's name with every character but `[A-Za-z0-9._-]` made `_`, for file names.
fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Carry out a `package` request.
pub fn package(
    req: &ExecuteRequest,
    host: &Host<'_>,
    settings: &Settings,
) -> Result<ExecuteResult, ErrorMessage> {
    let model = model_of(req)?;
    let Some(sif_artifact) = sif_artifact(req)? else {
        // Carry out what the plan asks for, which is no image.
        return Ok(ExecuteResult {
            artifacts: Vec::new(),
            exit_code: None,
            notes: vec!["the plan asks for no SIF".into()],
            pushed: None,
        });
    };
    let sif_path = out_path(req, &sif_artifact.path);
    if !req.options.force && sif_path.symlink_metadata().is_ok() {
        return Err(Error::Exists(sif_path).into());
    }
    let native = req.options.native || settings.apptainer.is_none();
    let mut notes = Vec::new();
    if !req.options.native && settings.apptainer.is_none() {
        notes.push(
            "apptainer and singularity are not on PATH: the SIF was assembled natively (no root, no fakeroot)"
                .to_string(),
        );
        host.info(&notes[0]);
    }
    preflight(req, &model, &sif_path, native, settings)?;
    host.check_cancelled()?;

    let safe_name = safe_name(&req.plan.name);
    let stage = TempDir::new(Path::new(&req.paths.temp_dir), &safe_name)?;
    if native {
        build_native(req, &model, &stage.0, &sif_path, settings, host)?;
        if let Some(test) = &model.test {
            // `%test` needs a container runtime; the native path has none. Say so rather than
            // let a smoke test that would fail pass unseen.
            let note = format!(
                "the smoke test ({test}) was NOT run: the native SIF path has no container runtime; \
                 run `apptainer test {}` where apptainer is installed",
                crate::escape::sh_word(&sif_path.to_string_lossy()).unwrap_or_default()
            );
            host.warn(&note);
            notes.push(note);
        }
    } else {
        let apptainer = settings.apptainer.as_deref().expect("not native");
        let tool = Tool {
            apptainer,
            def_name: &safe_name,
        };
        let stage = stage.0.to_string_lossy();
        build_with_tool(req, &model, &stage, &sif_path, tool, settings, host)?;
    }
    let (bytes, sha256) = file_digest(&sif_path)?;
    let artifacts = vec![ProducedArtifact {
        kind: ArtifactKind::Sif,
        path: sif_path.to_string_lossy().into_owned(),
        bytes: Some(bytes),
        sha256: Some(sha256),
    }];
    Ok(ExecuteResult {
        artifacts,
        exit_code: None,
        notes,
        pushed: None,
    })
}

/// The apptainer executable and the definition file's name (without `.def`).
struct Tool<'a> {
    apptainer: &'a Path,
    def_name: &'a str,
}

/// Build through `apptainer build`, into a temporary name next to the SIF, renamed on success.
fn build_with_tool(
    req: &ExecuteRequest,
    model: &Model,
    stage: &str,
    sif_path: &Path,
    tool: Tool<'_>,
    settings: &Settings,
    host: &Host<'_>,
) -> Result<(), ErrorMessage> {
    let Tool {
        apptainer,
        def_name,
    } = tool;
    let rendered = def::definition(model, stage)?;
    let to_stage: Vec<_> = rendered.staged.iter().filter(|s| s.prepare).collect();
    for (i, s) in to_stage.iter().enumerate() {
        host.check_cancelled()?;
        host.progress(i as u64, to_stage.len() as u64, "files staged for %files");
        rootfs::materialize(&model.copies[s.index], Path::new(&s.source))?;
    }
    let def_path = Path::new(stage).join(format!("{def_name}.def"));
    std::fs::write(&def_path, &rendered.text)
        .map_err(|e| Error::io("cannot write", &def_path, e))?;
    let temp = kerblam_archive::temp_name(sif_path);
    let guard = RemoveOnDrop(Some(temp.clone()));
    let args = tool::build_args(
        &def_path,
        &temp,
        settings.identity.needs_fakeroot(),
        req.options.force,
    );
    host.info(&format!(
        "{} {}",
        apptainer.display(),
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    ));
    // Apptainer builds its sandbox in APPTAINER_TMPDIR (default /tmp): the dir the preflight
    // measured.
    let temp_dir = tool_temp_dir(req);
    let env: Vec<(&str, Option<&std::ffi::OsStr>)> = TOOL_TMPDIR_VARS
        .into_iter()
        .map(|v| (v, Some(temp_dir.as_ref())))
        .collect();
    let done = tool::stream_env(apptainer, &args, Some(stage.as_ref()), &env, host)?;
    if done.code != 0 {
        return Err(Error::BuildFailed {
            apptainer: apptainer.to_path_buf(),
            code: done.code,
            sif: sif_path.to_path_buf(),
            tail: done.tail,
        }
        .into());
    }
    if !temp.is_file() {
        return Err(Error::BuildWroteNothing {
            apptainer: apptainer.to_path_buf(),
            temp,
        }
        .into());
    }
    std::fs::rename(&temp, sif_path)
        .map_err(|e| Error::io("cannot rename the SIF into place at", sif_path, e))?;
    std::mem::forget(guard);
    Ok(())
}

/// Assemble the SIF without apptainer: root filesystem → squashfs → SIF.
fn build_native(
    req: &ExecuteRequest,
    model: &Model,
    stage: &Path,
    sif_path: &Path,
    settings: &Settings,
    host: &Host<'_>,
) -> Result<(), ErrorMessage> {
    // The definition file is stored in the SIF as a record of what the image means; its staged
    // paths are nominal.
    let rendered = def::definition(model, crate::plan::SHOWN_STAGE)?;
    let root = stage.join("rootfs");
    std::fs::create_dir_all(&root).map_err(|e| Error::io("cannot create", &root, e))?;
    let base_cfg = unpack_base(&model.base, stage, &root, host)?;
    host.check_cancelled()?;
    host.info(&format!(
        "assembling the root filesystem ({} items) in {}",
        model.copies.len(),
        root.display()
    ));
    rootfs::assemble(model, &root, &base_cfg, &rendered.text)?;
    host.check_cancelled()?;
    let squashfs = stage.join("rootfs.squashfs");
    host.info("making the squashfs system partition with mksquashfs");
    squash::mksquashfs(&root, &squashfs, settings.time, host)?;
    let sif = NativeSif {
        def_text: &rendered.text,
        labels: serde_json::to_vec_pretty(&model.labels).expect("labels serialize"),
        squashfs: &squashfs,
    };
    Ok(sif.write(sif_path, req.options.force, settings.time)?)
}

/// Unpack the base image into `root`: nothing for scratch, an archive as it is, a registry
/// reference saved from a local engine that has it (into `stage`); a SIF base cannot be used.
fn unpack_base(
    base: &BaseSpec,
    stage: &Path,
    root: &Path,
    host: &Host<'_>,
) -> Result<image::BaseConfig, Error> {
    match base {
        BaseSpec::Scratch => Ok(image::BaseConfig::default()),
        BaseSpec::DockerArchive(p) | BaseSpec::OciArchive(p) => {
            host.info(&format!("unpacking the base image {}", p.display()));
            image::unpack(p, root)
        }
        BaseSpec::Docker(r) => {
            let saved = stage.join("base.tar");
            let engine =
                save_from_engine(r, &saved, host).ok_or_else(|| Error::CannotPull(r.clone()))?;
            host.info(&format!("unpacking the base image {r} saved from {engine}"));
            image::unpack(&saved, root)
        }
        BaseSpec::LocalImage(p) => Err(Error::SifBase(p.clone())),
    }
}

/// What a natively assembled SIF holds: the definition file, the labels and the squashfs.
struct NativeSif<'a> {
    def_text: &'a str,
    labels: Vec<u8>,
    squashfs: &'a Path,
}

impl NativeSif<'_> {
    /// Write the SIF at `sif_path` (atomically, executable), its times `time`.
    fn write(&self, sif_path: &Path, force: bool, time: u64) -> Result<(), Error> {
        let arch = sif::host_arch()?;
        let objects = [
            sif::Object {
                kind: sif::DataType::Deffile,
                name: String::new(),
                data: sif::Data::Bytes(self.def_text.as_bytes()),
                partition: None,
            },
            sif::Object {
                kind: sif::DataType::Labels,
                name: String::new(),
                data: sif::Data::Bytes(&self.labels),
                partition: None,
            },
            sif::Object {
                kind: sif::DataType::Partition,
                name: String::new(),
                data: sif::Data::File(self.squashfs),
                partition: Some(sif::Partition {
                    fs_type: 1,
                    part_type: 2,
                    arch,
                }),
            },
        ];
        let mut out = AtomicFile::create(sif_path, force).map_err(Error::Archive)?;
        sif::write(out.file(), &objects, time as i64)
            .map_err(|e| Error::io("cannot write", sif_path, e))?;
        std::fs::set_permissions(
            out.temp_path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .map_err(|e| Error::io("cannot set the mode of", sif_path, e))?;
        out.commit().map_err(Error::Archive)?;
        Ok(())
    }
}

/// Save `reference` from a local engine (docker, then podman) that already has it; never pulls.
/// Returns the engine used.
fn save_from_engine(reference: &str, out: &Path, host: &Host<'_>) -> Option<&'static str> {
    for engine in ["docker", "podman"] {
        let Some(program) = kerblam_backend_api::preflight::find_tool(engine) else {
            continue;
        };
        let quiet = |args: &[&std::ffi::OsStr]| {
            std::process::Command::new(&program)
                .args(args)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if quiet(&["image".as_ref(), "inspect".as_ref(), reference.as_ref()]) {
            host.info(&format!("saving the base image {reference} from {engine}"));
            if quiet(&[
                "save".as_ref(),
                "-o".as_ref(),
                out.as_os_str(),
                reference.as_ref(),
            ]) {
                return Some(engine);
            }
            let _ = std::fs::remove_file(out);
        }
    }
    None
}

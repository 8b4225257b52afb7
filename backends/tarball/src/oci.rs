//! `<pipe>.oci.tar`: an OCI image layout archive (`oci-layout`, `index.json`, `blobs/sha256/<hex>`)
//! that `podman load`, `skopeo` and `umoci` read, written without any engine.
//!
//! Its layers are the plan's own, one OCI layer each, on top of the base:
//!
//! 1. the build context (the plan's context files) under the plan's workdir, as a recipe's
//!    `COPY . .` would place them;
//! 2. then one layer per plan layer, in order (the kerblam executable, the replay script, the
//!    manifest and the pipe, or frozen trees).
//!
//! The base is `scratch`, or the image in the base archive (`--base FILE`, or a plan whose base is
//! an archive), whose blobs are copied unchanged below the plan's and checked against their digests.
//! A pipe's recipe (`RUN` steps) cannot be carried out without an engine, so it is not part of this
//! image; use the context archive for that.
//!
//! Config: the base's, with the plan's env (replacing same-named variables), workdir, entrypoint (and
//! no `Cmd`), labels, `rootfs.diff_ids` and one history entry per layer. Annotations on the manifest:
//! the plan's `org.opencontainers.image.*` labels, plus `created`/`authors` from the plan metadata
//! and `base.name`/`base.digest` from the base; the index names the image with
//! `org.opencontainers.image.ref.name` = the plan's tag. JSON documents are written with sorted
//! keys and layers with fixed headers, so the same tree and `SOURCE_DATE_EPOCH` give the same
//! manifest digest.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use kerblam_archive::{DetTar, TarOptions};
use kerblam_backend_api::plan::{ArtifactKind, Base, Layer, LayerSource, PackagePlan};
use kerblam_backend_api::{ErrorMessage, ExecuteRequest, Host};
use oci_spec::image::{
    Arch, Config, Descriptor, Digest, HistoryBuilder, ImageConfiguration, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, Os, RootFs, SCHEMA_VERSION,
};

use crate::base_archive::{self, BaseImage};
use crate::errors;
use crate::layer::{self, Blob, Compression, Item};
use crate::pending::Pending;
use kerblam_backend_api::sdk::Reporter;

/// The annotation naming the image inside an OCI layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The layer compression the plan's OCI artifact names (`oci-archive+zstd` → zstd, else gzip);
/// for a plan that names none, `options.format` (`oci`/`oci+gzip` → gzip, `oci+zstd` → zstd).
pub fn compression(artifact_format: Option<&str>, option: Option<&str>) -> Compression {
    match (artifact_format, option) {
        (Some("oci-archive+zstd"), _) => Compression::Zstd,
        (Some(_), _) => Compression::Gzip,
        (None, Some("oci+zstd")) => Compression::Zstd,
        (None, _) => Compression::Gzip,
    }
}

/// The base archive to start from: `--base FILE`, else a plan base of kind archive, else none.
pub fn base_path(req: &ExecuteRequest) -> Option<PathBuf> {
    if let Some(p) = &req.options.base_archive {
        return Some(PathBuf::from(p));
    }
    match &req.plan.base {
        Base::Archive { path } => Some(kerblam_backend_api::preflight::resolve(&req.paths, path)),
        _ => None,
    }
}

fn strip_root(p: &str) -> String {
    p.trim_start_matches('/').to_string()
}

fn join(dir: &str, rel: &str) -> String {
    let d = dir.trim_matches('/');
    if d.is_empty() {
        rel.to_string()
    } else {
        format!("{d}/{rel}")
    }
}

/// The layers of `plan` as lists of items, with a description for the history.
fn layer_items<'a>(req: &'a ExecuteRequest) -> Result<Vec<(String, Vec<Item<'a>>)>, ErrorMessage> {
    let plan = &req.plan;
    let root = Path::new(&req.paths.root);
    let ctx_root = match plan.context.root.as_str() {
        "" | "." => root.to_path_buf(),
        r => root.join(r),
    };
    let mut out = Vec::new();
    if !plan.context.files.is_empty() {
        out.push((
            format!("kerblam: COPY the build context to {}", plan.workdir),
            context_items(plan, &ctx_root),
        ));
    }
    for l in &plan.layers {
        let (what, items) = plan_layer_items(req, l, &ctx_root)?;
        out.push((format!("kerblam: COPY {what} to {}", l.to), items));
    }
    Ok(out)
}

/// The build context's files (and symlinks) under the plan's workdir, as `COPY . .` places them;
/// `ctx_root` is the context's directory on the host.
fn context_items<'a>(plan: &PackagePlan, ctx_root: &Path) -> Vec<Item<'a>> {
    plan.context
        .files
        .iter()
        .map(|f| {
            let name = join(&plan.workdir, &f.path);
            match &f.link {
                Some(target) => Item::Symlink {
                    name,
                    target: target.clone(),
                },
                None => Item::File {
                    name,
                    path: ctx_root.join(&f.path),
                    mode: f.mode,
                    expect: Some(f.size),
                },
            }
        })
        .collect()
}

/// The items of the plan layer `l`, and what it copies, for its history entry.
fn plan_layer_items<'a>(
    req: &'a ExecuteRequest,
    l: &'a Layer,
    ctx_root: &Path,
) -> Result<(String, Vec<Item<'a>>), ErrorMessage> {
    let name = strip_root(&l.to);
    Ok(match &l.from {
        LayerSource::Kerblam => (
            "the kerblam executable".to_string(),
            vec![Item::File {
                name,
                path: PathBuf::from(&req.paths.kerblam),
                mode: l.mode,
                expect: None,
            }],
        ),
        LayerSource::Generated { text } => (
            "generated text".to_string(),
            vec![Item::Bytes {
                name,
                data: text.as_bytes(),
                mode: l.mode,
            }],
        ),
        LayerSource::Context { path } => (
            format!("context {path}"),
            context_path_items(&req.plan, path, name, l.mode, ctx_root),
        ),
        LayerSource::Host { path, exclude } => {
            let excludes = layer::Excludes::new(Path::new(path), exclude)?;
            (
                format!("host {path}"),
                vec![Item::Tree {
                    name,
                    path: PathBuf::from(path),
                    excludes,
                }],
            )
        }
    })
}

/// The items of a layer copying the context's `path` to `name`: the context files under it when
/// it is a directory, with their own modes, else the one file with `mode`.
fn context_path_items<'a>(
    plan: &PackagePlan,
    path: &str,
    name: String,
    mode: u32,
    ctx_root: &Path,
) -> Vec<Item<'a>> {
    let prefix = format!("{}/", path.trim_end_matches('/'));
    let under: Vec<_> = plan
        .context
        .files
        .iter()
        .filter(|f| f.path.starts_with(&prefix))
        .collect();
    if under.is_empty() {
        let size = plan
            .context
            .files
            .iter()
            .find(|f| f.path == path)
            .map(|f| f.size);
        vec![Item::File {
            name,
            path: ctx_root.join(path),
            mode,
            expect: size,
        }]
    } else {
        under
            .iter()
            .map(|f| Item::File {
                name: join(&name, &f.path[prefix.len()..]),
                path: ctx_root.join(&f.path),
                mode: f.mode,
                expect: Some(f.size),
            })
            .collect()
    }
}

fn digest(hex: &str) -> Result<Digest, ErrorMessage> {
    Digest::from_str(&format!("sha256:{hex}"))
        .map_err(|e| ErrorMessage::backend(format!("invalid digest {hex}: {e}")))
}

fn oci_err(e: oci_spec::OciSpecError) -> ErrorMessage {
    ErrorMessage::backend(format!("cannot build the OCI document: {e}"))
}

/// Canonical JSON bytes: every object's keys sorted, no spaces.
fn canonical<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let value = kerblam_render::sorted(serde_json::to_value(v).expect("OCI documents serialize"));
    serde_json::to_vec(&value).expect("JSON values serialize")
}

/// The image configuration: the base's (or an empty one) with the plan's settings and layers.
fn config(
    plan: &PackagePlan,
    base: Option<&BaseImage>,
    blobs: &[(String, Blob)],
) -> ImageConfiguration {
    let mut cfg = base.map(|b| b.config.clone()).unwrap_or_else(|| {
        let mut c = ImageConfiguration::default();
        c.set_architecture(Arch::from(base_archive::host_arch().as_str()));
        c.set_os(Os::Linux);
        c
    });
    let mut inner: Config = cfg.config().clone().unwrap_or_default();
    let mut env: Vec<String> = inner.env().clone().unwrap_or_default();
    for v in &plan.env {
        let prefix = format!("{}=", v.name);
        env.retain(|e| !e.starts_with(&prefix));
        env.push(format!("{}={}", v.name, v.value));
    }
    if base.is_none() && !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    inner.set_env(Some(env));
    inner.set_working_dir(Some(plan.workdir.clone()));
    inner.set_entrypoint(Some(plan.entrypoint.clone()));
    inner.set_cmd(None);
    let mut labels: HashMap<String, String> = inner.labels().clone().unwrap_or_default();
    labels.extend(
        plan.image
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    inner.set_labels(Some(labels));
    cfg.set_config(Some(inner));
    cfg.set_created(plan.metadata.created.clone());
    if plan.metadata.author.is_some() {
        cfg.set_author(plan.metadata.author.clone());
    }
    let mut rootfs: RootFs = cfg.rootfs().clone();
    let mut diff_ids = rootfs.diff_ids().clone();
    diff_ids.extend(blobs.iter().map(|(_, b)| format!("sha256:{}", b.diff_id)));
    rootfs.set_diff_ids(diff_ids);
    cfg.set_rootfs(rootfs);
    let mut history = cfg.history().clone().unwrap_or_default();
    for (what, _) in blobs {
        let mut h = HistoryBuilder::default()
            .created_by(what.clone())
            .comment(format!(
                "added by kerblam {} without an engine",
                plan.metadata.kerblam_version
            ));
        if let Some(c) = &plan.metadata.created {
            h = h.created(c.clone());
        }
        history.push(h.build().expect("history builds"));
    }
    cfg.set_history(Some(history));
    cfg
}

fn annotations(plan: &PackagePlan, base: Option<&BaseImage>) -> HashMap<String, String> {
    let mut a: BTreeMap<String, String> = plan
        .image
        .labels
        .iter()
        .filter(|(k, _)| k.starts_with("org.opencontainers.image."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(c) = &plan.metadata.created {
        a.entry("org.opencontainers.image.created".into())
            .or_insert_with(|| c.clone());
    }
    if let Some(author) = &plan.metadata.author {
        a.entry("org.opencontainers.image.authors".into())
            .or_insert_with(|| author.clone());
    }
    if let Some(v) = &plan.metadata.version {
        a.entry("org.opencontainers.image.version".into())
            .or_insert_with(|| v.clone());
    }
    if let Some(b) = base {
        a.insert(
            "org.opencontainers.image.base.digest".into(),
            b.digest.clone(),
        );
        if let Some(n) = &b.name {
            a.insert("org.opencontainers.image.base.name".into(), n.clone());
        }
    }
    a.into_iter().collect()
}

/// What [`write`] produced, besides the file.
pub struct Written {
    /// The archive, not yet renamed into place.
    pub pending: Pending,
    /// `sha256:<hex>` of the image manifest.
    pub manifest_digest: String,
    /// The base, described for the user (`docker archive /x.tar, 3 layers`), when not scratch.
    pub base: Option<String>,
}

/// Writes the OCI archive to its temporary name next to `final_path`.
pub fn write(
    req: &ExecuteRequest,
    final_path: &Path,
    tar: TarOptions,
    host: &Host<'_>,
) -> Result<Written, ErrorMessage> {
    let plan = &req.plan;
    let compression = compression(
        plan.artifact(ArtifactKind::OciArchive)
            .and_then(|a| a.format.as_deref()),
        req.options.format.as_deref(),
    );
    let base = base_path(req).map(|p| base_archive::open(&p)).transpose()?;
    let blobs = build_layers(req, compression, tar, host)?;
    let docs = documents(plan, base.as_ref(), &blobs, compression)?;
    let pending = write_archive(req, final_path, tar, host, base.as_ref(), &blobs, &docs)?;
    let base = base.as_ref().map(|b| {
        format!(
            "{} archive {}, {} layers",
            b.kind,
            b.path.display(),
            b.layers.len()
        )
    });
    Ok(Written {
        pending,
        manifest_digest: format!("sha256:{}", docs.manifest_hex),
        base,
    })
}

/// Builds the plan's layers, one blob each in the temporary directory, each with what it copies
/// (for the history).
fn build_layers(
    req: &ExecuteRequest,
    compression: Compression,
    tar: TarOptions,
    host: &Host<'_>,
) -> Result<Vec<(String, Blob)>, ErrorMessage> {
    let temp_dir = Path::new(&req.paths.temp_dir);
    let cancel = || host.is_cancelled();
    let mut blobs: Vec<(String, Blob)> = Vec::new();
    for (what, items) in layer_items(req)? {
        host.check_cancelled()?;
        let reporter = Reporter::new(host, format!("OCI layer {}", blobs.len() + 1), 0);
        let blob = layer::build(&items, temp_dir, compression, tar, &reporter, &cancel)?;
        reporter.done(blob.size, blob.files);
        blobs.push((what, blob));
    }
    Ok(blobs)
}

/// The JSON documents of the image, as canonical bytes, and the hex digests naming their blobs.
struct Documents {
    config: Vec<u8>,
    config_hex: String,
    manifest: Vec<u8>,
    manifest_hex: String,
    index: Vec<u8>,
}

/// The image's config, its manifest (the base's layers, then the plan's) and the index naming it
/// by the plan's tag.
fn documents(
    plan: &PackagePlan,
    base: Option<&BaseImage>,
    blobs: &[(String, Blob)],
    compression: Compression,
) -> Result<Documents, ErrorMessage> {
    let cfg = config(plan, base, blobs);
    let cfg_bytes = canonical(&cfg);
    let cfg_hex = kerblam_archive::hex(&sha2_digest(&cfg_bytes));
    let layer_descs = layer_descriptors(base, blobs, compression)?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .config(Descriptor::new(
            MediaType::ImageConfig,
            cfg_bytes.len() as u64,
            digest(&cfg_hex)?,
        ))
        .layers(layer_descs)
        .annotations(annotations(plan, base))
        .build()
        .map_err(oci_err)?;
    let manifest_bytes = canonical(&manifest);
    let manifest_hex = kerblam_archive::hex(&sha2_digest(&manifest_bytes));
    let mut mdesc = Descriptor::new(
        MediaType::ImageManifest,
        manifest_bytes.len() as u64,
        digest(&manifest_hex)?,
    );
    mdesc.set_annotations(Some(HashMap::from([(
        REF_NAME.to_string(),
        plan.image.tag.clone(),
    )])));
    let index = ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![mdesc])
        .build()
        .map_err(oci_err)?;
    Ok(Documents {
        config: cfg_bytes,
        config_hex: cfg_hex,
        manifest: manifest_bytes,
        manifest_hex,
        index: canonical(&index),
    })
}

/// The manifest's layer descriptors: the base's layers as they are, then the plan's.
fn layer_descriptors(
    base: Option<&BaseImage>,
    blobs: &[(String, Blob)],
    compression: Compression,
) -> Result<Vec<Descriptor>, ErrorMessage> {
    let layer_type = match compression {
        Compression::Gzip => MediaType::ImageLayerGzip,
        Compression::Zstd => MediaType::ImageLayerZstd,
    };
    let mut layer_descs = Vec::new();
    if let Some(b) = base {
        for l in &b.layers {
            layer_descs.push(Descriptor::new(
                l.media_type.clone(),
                l.size,
                digest(&l.digest)?,
            ));
        }
    }
    for (_, b) in blobs {
        layer_descs.push(Descriptor::new(
            layer_type.clone(),
            b.size,
            digest(&b.digest)?,
        ));
    }
    Ok(layer_descs)
}

/// Where the bytes of a blob of the archive come from.
enum Src<'a> {
    /// A JSON document.
    Bytes(&'a [u8]),
    /// A layer built here.
    Ours(&'a Blob),
    /// A layer of the base archive: its offset and size there.
    Base(u64, u64),
}

/// The blobs of the archive by hex digest: the config and the manifest, the plan's layers, and the
/// base's layers (a layer both have is copied from ours).
fn members<'a>(
    docs: &'a Documents,
    blobs: &'a [(String, Blob)],
    base: Option<&BaseImage>,
) -> BTreeMap<String, Src<'a>> {
    let mut members: BTreeMap<String, Src<'_>> = BTreeMap::new();
    members.insert(docs.config_hex.clone(), Src::Bytes(&docs.config));
    members.insert(docs.manifest_hex.clone(), Src::Bytes(&docs.manifest));
    for (_, b) in blobs {
        members.insert(b.digest.clone(), Src::Ours(b));
    }
    if let Some(b) = base {
        for l in &b.layers {
            members
                .entry(l.digest.clone())
                .or_insert(Src::Base(l.offset, l.size));
        }
    }
    members
}

/// Writes the archive to its temporary name next to `final_path`: directories, blobs sorted by
/// digest, index.json, oci-layout. Each layer's digest is checked as it is copied.
fn write_archive(
    req: &ExecuteRequest,
    final_path: &Path,
    tar: TarOptions,
    host: &Host<'_>,
    base: Option<&BaseImage>,
    blobs: &[(String, Blob)],
    docs: &Documents,
) -> Result<Pending, ErrorMessage> {
    let members = members(docs, blobs, base);
    let total: u64 = blobs.iter().map(|(_, b)| b.size).sum::<u64>()
        + base.map_or(0, |b| b.layers.iter().map(|l| l.size).sum());
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let reporter = Reporter::new(host, format!("writing {name}"), total);
    let callback = reporter.callback();
    let cancel = || host.is_cancelled();
    let (file, writer) = Pending::create(final_path, req.options.force)?;
    let mut t = DetTar::new(writer, tar)
        .with_progress(Some(&callback))
        .with_cancel(Some(&cancel));
    let mut base_file = match base {
        Some(b) => {
            Some(std::fs::File::open(&b.path).map_err(|e| errors::io("opening", &b.path, e))?)
        }
        None => None,
    };
    t.append_dir("blobs").map_err(errors::archive)?;
    t.append_dir("blobs/sha256").map_err(errors::archive)?;
    for (hex, src) in &members {
        host.check_cancelled()?;
        let member = format!("blobs/sha256/{hex}");
        match src {
            Src::Bytes(b) => {
                t.append_bytes(&member, b, 0o644).map_err(errors::archive)?;
            }
            Src::Ours(b) => {
                let got = t
                    .append_file_with_mode(&member, &b.path, 0o644)
                    .map_err(errors::archive)?;
                check_digest(&got.sha256, hex, &b.path)?;
            }
            Src::Base(offset, size) => {
                let base = base.expect("base blobs come from a base");
                let f = base_file.as_mut().expect("base file is open");
                f.seek(SeekFrom::Start(*offset))
                    .map_err(|e| errors::io("reading", &base.path, e))?;
                let got = t
                    .append_reader(&member, *size, 0o644, &mut f.take(*size))
                    .map_err(errors::archive)?;
                check_base_digest(&got.sha256, hex, &base.path)?;
            }
        }
    }
    t.append_bytes("index.json", &docs.index, 0o644)
        .map_err(errors::archive)?;
    t.append_bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#, 0o644)
        .map_err(errors::archive)?;
    let (bytes, files) = t.counts();
    let writer = t.finish().map_err(errors::archive)?;
    reporter.done(bytes, files);
    Pending::finish(ArtifactKind::OciArchive, file, writer)
}

fn check_digest(got: &[u8; 32], want: &str, path: &Path) -> Result<(), ErrorMessage> {
    let got = kerblam_archive::hex(got);
    if got != want {
        return Err(ErrorMessage::backend(format!(
            "the layer blob {} changed while it was copied (sha256:{got}, expected sha256:{want})",
            path.display()
        )));
    }
    Ok(())
}

/// Refuses a blob of the base archive `path` whose bytes do not hash to the digest `want` it is
/// named by.
fn check_base_digest(got: &[u8; 32], want: &str, path: &Path) -> Result<(), ErrorMessage> {
    let got = kerblam_archive::hex(got);
    if got != want {
        return Err(ErrorMessage::invalid_input(format!(
            "the base archive {} is corrupt: blob sha256:{want} has the digest sha256:{got}",
            path.display()
        )));
    }
    Ok(())
}

fn sha2_digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest as _, Sha256};
    Sha256::digest(bytes).into()
}

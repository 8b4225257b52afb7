//! The replay archive (`<pipe>.kerblam.tar`), which kerblam writes itself whatever the backend: a
//! backend in any language gets it right without writing a line of it.
//!
//! Its layout, checksums and what `kerblam replay` verifies are specified in
//! `libs/archive/FORMAT.md`; `kerblam-archive` is the implementation. Here the host uses it:
//!
//! - [`Pending::start`] opens the archive under a temporary name next to its final path (refusing
//!   an existing archive before minutes of building) and writes the manifest (checked again as
//!   it is archived: Kerblam! 1.x must be able to read it), the image name and the plan, the
//!   backend's part included;
//! - [`Pending::add_data`] archives the precious data, on a thread of its own while the backend
//!   builds the image;
//! - [`Pending::finish`] adds the image the backend saved (`--embed-image`), the signature
//!   (`--sign`) and the checksums, and renames the archive into place. It is called only once the
//!   backend has done all its plan says, so a failure anywhere leaves no replay archive under its
//!   final name.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use kerblam_archive::{
    Error, ErrorKind, ReplayContents, ReplayFormat, ReplayOptions, ReplayWriter, Signature, Sums,
    TarOptions, WrittenArchive, member,
};
use kerblam_plan::{Artifact, PackagePlan};

use crate::citation::Digested;
use crate::exit::{self, Exit};

/// An archive error as an exit: bad input and conflicts exit 2, the rest 1.
pub fn error(e: Error) -> Exit {
    let code = match e.kind() {
        ErrorKind::InvalidInput | ErrorKind::InvalidArchive | ErrorKind::Conflict => exit::INVALID,
        ErrorKind::Io | ErrorKind::ChangedWhileReading => exit::FAILURE,
    };
    let mut message = e.message().to_string();
    let help = match e.kind() {
        ErrorKind::Conflict => {
            Some("pass --force to overwrite it, or choose another output with -o")
        }
        ErrorKind::ChangedWhileReading => {
            Some("something is writing to the project while it is packaged; wait for it and retry")
        }
        ErrorKind::Io if e.is_no_space() => Some(
            "the filesystem is full: free some space, or write elsewhere (`-o PATH` for the replay archive, TMPDIR for temporary files)",
        ),
        _ => None,
    };
    if let Some(h) = help {
        message.push_str(&format!("\nhelp: {h}"));
    }
    Exit { code, message }
}

/// A replay archive being written.
pub struct Pending {
    writer: ReplayWriter,
    signature: Option<Vec<u8>>,
    format: ReplayFormat,
}

impl Pending {
    /// Opens the archive `artifact` of `plan` (a path relative to `root` unless absolute) under its
    /// temporary name and writes the manifest, the image name and the plan. With `sign`, the
    /// signature is made now (it needs git's user name and email: fail before building).
    pub fn start(
        plan: &PackagePlan,
        artifact: &Artifact,
        root: &Path,
        force: bool,
        sign: bool,
        push: bool,
    ) -> miette::Result<Pending> {
        let tar = TarOptions::from_env().map_err(error)?;
        let pipe = plan.pipe.as_ref().ok_or_else(|| {
            Exit::invalid(format!(
                "the plan of {} asks for a replay archive but describes no pipe",
                plan.name
            ))
        })?;
        let format = ReplayFormat::from_option(artifact.format.as_deref()).map_err(error)?;
        let manifest_path = root.join(&plan.source.manifest);
        let manifest = std::fs::read(&manifest_path)
            .map_err(|e| error(Error::io("reading", &manifest_path, e)))?;
        check_archived_manifest(&manifest_path, &manifest)?;
        // `kerblam plan`'s JSON, byte for byte: pretty, every object's keys sorted, a final newline.
        let plan_json =
            kerblam_compiler::render::render(plan, kerblam_compiler::render::Format::Json);
        let contents = ReplayContents {
            manifest: &manifest,
            // A pushed image is named by the digest the registry gives it, known at the end.
            image_name: if push { "" } else { &plan.image.tag },
            plan_json: Some(plan_json.as_bytes()),
            input_dir: &pipe.data.input,
        };
        let opts = ReplayOptions {
            format,
            tar,
            force,
            ..ReplayOptions::default()
        };
        let path = {
            let p = Path::new(&artifact.path);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                root.join(p)
            }
        };
        let signature = if sign { Some(signature(tar)?) } else { None };
        let writer = ReplayWriter::create(&path, contents, opts).map_err(error)?;
        Ok(Pending {
            writer,
            signature,
            format,
        })
    }

    /// Archives the plan's precious data; stops when `stop` is raised (Ctrl-C, or the backend
    /// failed). `Err(None)`: it stopped because it was asked to; `Err(Some(why))`: it failed.
    pub fn add_data(
        &mut self,
        plan: &PackagePlan,
        root: &Path,
        stop: &AtomicBool,
    ) -> Result<(), Option<Exit>> {
        let files: Vec<&str> = plan
            .pipe
            .as_ref()
            .map(|p| p.precious.iter().map(|f| f.path.as_str()).collect())
            .unwrap_or_default();
        let total: u64 = plan
            .pipe
            .as_ref()
            .map(|p| p.precious.iter().map(|f| f.size).sum())
            .unwrap_or(0);
        let bars = crate::progress::bars();
        let report = |bytes: u64, n: u64| {
            bars.update(
                bytes,
                total,
                &format!("archiving precious data ({n} files)"),
            )
        };
        let cancel = || stop.load(Ordering::SeqCst) || crate::signals::interrupted().is_some();
        self.writer
            .add_data_cancellable(root, &files, Some(&report), Some(&cancel))
            .map_err(|e| (!e.is_cancelled()).then(|| error(e)))
    }

    /// Names the image by the digest-pinned reference it was pushed to (`--push`).
    pub fn set_image_name(&mut self, pinned: &str) -> Result<(), Exit> {
        self.writer.set_image_name(pinned).map_err(error)
    }

    /// Adds the image the backend saved into `image` (when given), the RO-Crate `describe` makes
    /// from the checksums so far (v2 archives: Kerblam! 1.x's layout has no place for it), the
    /// signature and the checksums, and renames the archive into place.
    pub fn finish(
        mut self,
        image: Option<&Path>,
        describe: impl FnOnce(&Sums) -> Vec<u8>,
    ) -> Result<WrittenArchive, Exit> {
        if let Some(image) = image {
            let mut file = std::fs::File::open(image)
                .map_err(|e| error(Error::io("reading the saved image", image, e)))?;
            self.writer.add_image(&mut file, None).map_err(error)?;
        }
        if self.format == ReplayFormat::V2 {
            let json = describe(self.writer.sums());
            self.writer.add_crate(&json).map_err(error)?;
        }
        let finished = self
            .writer
            .finish_uncommitted(self.signature.as_deref())
            .map_err(error)?;
        finished.commit().map_err(error)
    }
}

/// The time every member of a replay archive carries: `SOURCE_DATE_EPOCH`, else 0.
pub fn mtime() -> u64 {
    TarOptions::from_env().map(|t| t.mtime).unwrap_or(0)
}

/// The inputs a replay archive holds, with the checksums its writer computed: the manifest, then
/// each precious file by its path in the project (`data/in/x.csv`), sized as the plan says.
pub fn inputs(sums: &Sums, plan: &PackagePlan) -> Vec<Digested> {
    let precious = plan
        .pipe
        .as_ref()
        .map(|p| p.precious.as_slice())
        .unwrap_or_default();
    let input_dir = plan
        .pipe
        .as_ref()
        .map(|p| p.data.input.as_str())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (name, sha) in &sums.lines {
        let sha256 = format!("sha256:{}", kerblam_archive::hex(sha));
        let path = if name == member::MANIFEST {
            name.clone()
        } else if let Some(p) = name.strip_prefix("data.tar.zst:") {
            p.to_string()
        } else if let Some(p) = name.strip_prefix("data.tar.gz:") {
            // Kerblam! 1.x's layout stores data relative to the input directory.
            format!("{}/{p}", input_dir.trim_end_matches('/'))
        } else {
            continue;
        };
        let bytes = precious.iter().find(|f| f.path == path).map(|f| f.size);
        out.push(Digested {
            path,
            bytes,
            sha256,
            media_type: None,
        });
    }
    out
}

/// The members written so far, by name with their checksums: the data entities of the crate
/// inside the archive.
pub fn members(sums: &Sums) -> Vec<Digested> {
    sums.lines
        .iter()
        .filter(|(name, _)| !name.contains(':'))
        .map(|(name, sha)| Digested {
            path: name.clone(),
            bytes: None,
            sha256: format!("sha256:{}", kerblam_archive::hex(sha)),
            media_type: crate::citation::work::media_type(name),
        })
        .collect()
}

/// The manifest goes into the archive byte for byte, and Kerblam! 1.x replays a `kerblam-v1`
/// archive from it: the bytes archived are checked as `kerblam validate` checks a manifest, TOML
/// 1.0 syntax included (the project was checked when it was loaded, but the file can have changed
/// since). Unknown keys are fine: Kerblam! 1.x ignores them.
fn check_archived_manifest(path: &Path, bytes: &[u8]) -> Result<(), kerblam_compiler::Error> {
    use kerblam_compiler::{CheckOptions, Error as Invalid, SourceFile, display_path, manifest};
    let file = display_path(path);
    let invalid = |findings| Invalid::Invalid {
        file: file.clone(),
        findings,
    };
    let source =
        SourceFile::from_bytes(file.clone(), bytes.to_vec()).map_err(|f| invalid(vec![f]))?;
    let opts = CheckOptions {
        allow_unknown: true,
    };
    match manifest::check(source, opts) {
        (Some(_), _) => Ok(()),
        (None, findings) => Err(invalid(findings)),
    }
}

/// `signature.json` (`--sign`): git's user name and email, dated `SOURCE_DATE_EPOCH` when set
/// (`tar.mtime`), else now.
fn signature(tar: TarOptions) -> Result<Vec<u8>, Exit> {
    let when = if tar.mtime != 0 {
        tar.mtime
    } else {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    };
    Ok(Signature::from_git(when).map_err(error)?.to_json())
}

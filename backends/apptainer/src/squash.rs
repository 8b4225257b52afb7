//! Making the squashfs system partition with `mksquashfs` (squashfs-tools), reproducibly.

use std::ffi::OsString;
use std::path::Path;

use kerblam_backend_api::Host;

use crate::error::Error;

/// The arguments for `mksquashfs`: everything owned by root, every timestamp `time`, no xattrs,
/// and no progress bar, so the same tree gives the same bytes.
///
/// Compression is gzip at level 1. Every squashfs reader an Apptainer or Singularity runs on reads
/// gzip (the kernel's, and squashfuse however it was built; Apptainer warns about any other
/// compression, and lz4 and zstd images fail where its squashfuse lacks them), and level 1 is
/// where the time goes: on a 512 MB EESSI-like tree, 5.7 s against 68.7 s for mksquashfs's
/// default level 9, for an image 1.48x the size (zstd level 3 would take 3.4 s for 1.21x, but a
/// freeze must open years later, wherever it is taken).
///
/// `-mem 128M` bounds mksquashfs's caches: by default it takes a quarter of the machine's memory
/// (470 MB for that tree here), and with the bound it is no slower (2.6 s, 42 MB).
pub fn args(rootfs: &Path, out: &Path, time: u64) -> Vec<OsString> {
    let t = time.to_string();
    let mut a: Vec<OsString> = vec![rootfs.into(), out.into()];
    for x in [
        "-noappend",
        "-all-root",
        "-no-xattrs",
        "-no-progress",
        "-comp",
        "gzip",
        "-Xcompression-level",
        "1",
        "-mem",
        "128M",
        "-mkfs-time",
        &t,
        "-all-time",
        &t,
    ] {
        a.push(x.into());
    }
    a
}

/// Squash `rootfs` into `out`.
pub fn mksquashfs(rootfs: &Path, out: &Path, time: u64, host: &Host<'_>) -> Result<(), Error> {
    let program =
        kerblam_backend_api::preflight::find_tool("mksquashfs").ok_or(Error::NoMksquashfs)?;
    // mksquashfs refuses SOURCE_DATE_EPOCH together with -mkfs-time/-all-time ("can't be used at
    // the same time"); the plan's time is already in the arguments.
    let done = crate::tool::stream_env(
        &program,
        &args(rootfs, out, time),
        None,
        &[("SOURCE_DATE_EPOCH", None)],
        host,
    )?;
    if done.code != 0 {
        return Err(Error::MksquashfsFailed {
            code: done.code,
            tail: done.tail,
        });
    }
    Ok(())
}

//! Making the squashfs system partition with `mksquashfs` (squashfs-tools), reproducibly.

use std::ffi::OsString;
use std::path::Path;

use kerblam_backend_api::Host;

/// The arguments for `mksquashfs`: everything owned by root, every timestamp `time`, no xattrs,
/// and no progress bar, so the same tree gives the same bytes.
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
pub fn mksquashfs(rootfs: &Path, out: &Path, time: u64, host: &Host<'_>) -> Result<(), String> {
    let program = kerblam_backend_api::preflight::find_tool("mksquashfs").ok_or_else(|| {
        "mksquashfs is not on PATH; install squashfs-tools (e.g. `apt-get install squashfs-tools`)"
            .to_string()
    })?;
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
        return Err(format!(
            "mksquashfs failed with exit code {}:\n{}",
            done.code,
            done.tail.join("\n")
        ));
    }
    Ok(())
}

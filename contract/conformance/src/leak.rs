//! Whether `kerblam_backend_free` frees: memory measured around many describe buffers.

use kerblam_backend_api::host::Plugin;

/// The resident set size of this process, in bytes (Linux: `/proc/self/statm`).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// Hands back enough describe buffers (three rounds of up to 32 MiB of them) that a
/// `kerblam_backend_free` which does not free shows in this process's memory: allocation and
/// release in a loop reuse the same memory, while a leak grows the resident size by about what went
/// through, every round. Only growth in every round counts, so that other threads of this process
/// (the kit may run beside other work) do not look like a leak.
pub(crate) fn check(plugin: &Plugin, hello: &[u8], len: usize) -> Result<String, String> {
    const ROUND: u64 = 32 << 20;
    let Some(mut last) = rss_bytes() else {
        return Ok("memory not measured (no /proc/self/statm)".into());
    };
    let calls = (ROUND / len.max(1) as u64).clamp(1_000, 40_000);
    let through = calls * len as u64;
    let mut growth = Vec::new();
    for _ in 0..3 {
        for _ in 0..calls {
            let r = plugin.raw_describe(hello);
            if r.code != 0 {
                return Err(format!("describe returned status {}", r.code));
            }
        }
        let now = rss_bytes().unwrap_or(last);
        growth.push(now.saturating_sub(last));
        last = now;
    }
    let least = growth.iter().copied().min().unwrap_or(0);
    if least > through / 2 {
        return Err(format!(
            "memory grew by {} KiB in each of 3 rounds of {calls} describe calls ({} KiB of buffers each): \
             kerblam_backend_free does not seem to free what the plugin allocated",
            least >> 10,
            through >> 10
        ));
    }
    Ok(format!(
        "3 x {calls} more buffers ({} KiB each round) freed, memory grew {:?} KiB",
        through >> 10,
        growth.iter().map(|g| g >> 10).collect::<Vec<_>>()
    ))
}

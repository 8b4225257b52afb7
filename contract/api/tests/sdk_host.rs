//! The SDK's view of the host table: fields beyond `struct_size` are never read, so a plugin built
//! against a newer SDK works with an older host's shorter table.

use std::ffi::c_void;
use std::mem::offset_of;
use std::sync::atomic::{AtomicU32, Ordering};

use kerblam_backend_api::{Host, HostV1};

static LOGS: AtomicU32 = AtomicU32::new(0);
static PROGRESS: AtomicU32 = AtomicU32::new(0);

unsafe extern "C" fn log(_: *mut c_void, _: i32, _: *const u8, _: usize) {
    LOGS.fetch_add(1, Ordering::SeqCst);
}
unsafe extern "C" fn progress(_: *mut c_void, _: u64, _: u64, _: *const u8, _: usize) {
    PROGRESS.fetch_add(1, Ordering::SeqCst);
}
unsafe extern "C" fn cancelled(_: *mut c_void) -> i32 {
    1
}

#[test]
fn fields_past_struct_size_are_treated_as_absent() {
    let mut table = HostV1 {
        struct_size: std::mem::size_of::<HostV1>(),
        ctx: std::ptr::null_mut(),
        log: Some(log),
        progress: Some(progress),
        is_cancelled: Some(cancelled),
    };
    // SAFETY: the table lives for the whole test.
    let host = unsafe { Host::from_raw(&table) };
    host.info("x");
    host.progress(1, 2, "files");
    assert!(host.is_cancelled());
    assert_eq!(
        (LOGS.load(Ordering::SeqCst), PROGRESS.load(Ordering::SeqCst)),
        (1, 1)
    );

    // An "older host" whose table ends after `log`.
    table.struct_size = offset_of!(HostV1, progress);
    let host = unsafe { Host::from_raw(&table) };
    host.info("y");
    host.progress(1, 2, "files");
    assert!(
        !host.is_cancelled(),
        "is_cancelled is past struct_size and must not be called"
    );
    assert_eq!(
        (LOGS.load(Ordering::SeqCst), PROGRESS.load(Ordering::SeqCst)),
        (2, 1)
    );

    // No table at all.
    let none = unsafe { Host::from_raw(std::ptr::null()) };
    none.info("z");
    assert!(!none.is_cancelled());
    assert!(none.check_cancelled().is_ok());
}

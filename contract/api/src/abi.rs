//! The raw C ABI: symbol names, function signatures, the [`Buf`] type, status codes and the host
//! callback table [`HostV1`]. Nothing in here is Rust-specific; `README.md` describes the same thing
//! for authors in other languages.

use std::ffi::c_void;

/// The ABI major version. A host refuses a plugin whose major differs from its own.
pub const ABI_MAJOR: u32 = 1;
/// The ABI minor version: bumped for additions (new [`HostV1`] fields, new optional JSON fields,
/// new optional symbols). 1.1 added `kerblam_backend_plan`.
pub const ABI_MINOR: u32 = 1;
/// What `kerblam_backend_abi_version` returns: `major << 16 | minor`.
pub const ABI_VERSION: u32 = (ABI_MAJOR << 16) | ABI_MINOR;

/// Split an encoded ABI version into `(major, minor)`.
pub fn split_abi_version(v: u32) -> (u32, u32) {
    (v >> 16, v & 0xffff)
}

/// `u32 kerblam_backend_abi_version(void)`.
pub const SYM_ABI_VERSION: &str = "kerblam_backend_abi_version";
/// `int32_t kerblam_backend_describe(const uint8_t *hello, size_t hello_len, KerblamBuf *out)`.
pub const SYM_DESCRIBE: &str = "kerblam_backend_describe";
/// `int32_t kerblam_backend_execute(const uint8_t *req, size_t req_len, const KerblamHostV1 *host, KerblamBuf *out)`.
pub const SYM_EXECUTE: &str = "kerblam_backend_execute";
/// `void kerblam_backend_free(KerblamBuf buf)`.
pub const SYM_FREE: &str = "kerblam_backend_free";
/// `int32_t kerblam_backend_plan(const uint8_t *req, size_t req_len, KerblamBuf *out)`: optional
/// (ABI 1.1); a plugin without it has no artifacts, checks or rendered files of its own.
pub const SYM_PLAN: &str = "kerblam_backend_plan";

/// Signature of `kerblam_backend_abi_version`.
pub type AbiVersionFn = unsafe extern "C" fn() -> u32;
/// Signature of `kerblam_backend_describe`.
pub type DescribeFn = unsafe extern "C" fn(*const u8, usize, *mut Buf) -> i32;
/// Signature of `kerblam_backend_execute`.
pub type ExecuteFn = unsafe extern "C" fn(*const u8, usize, *const HostV1, *mut Buf) -> i32;
/// Signature of `kerblam_backend_free`.
pub type FreeFn = unsafe extern "C" fn(Buf);
/// Signature of `kerblam_backend_plan`.
pub type PlanFn = unsafe extern "C" fn(*const u8, usize, *mut Buf) -> i32;

/// A byte buffer allocated by the plugin and handed to the host, which gives it back, unchanged, to
/// the plugin's `kerblam_backend_free`. `cap` is the plugin's own bookkeeping (the Rust SDK stores the
/// `Vec` capacity there; a C plugin may store anything). A null `ptr` means "no bytes"; freeing it is
/// a no-op.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Buf {
    /// The first byte, or null.
    pub ptr: *mut u8,
    /// The number of bytes the host may read.
    pub len: usize,
    /// Opaque to the host: whatever the plugin needs to free the allocation.
    pub cap: usize,
}

impl Buf {
    /// The empty buffer (null pointer, zero length).
    pub const EMPTY: Buf = Buf {
        ptr: std::ptr::null_mut(),
        len: 0,
        cap: 0,
    };

    /// Hand a `Vec` over the boundary. Only [`Buf::into_vec`] (in the same library) may free it.
    pub fn from_vec(v: Vec<u8>) -> Buf {
        let mut v = std::mem::ManuallyDrop::new(v);
        Buf {
            ptr: v.as_mut_ptr(),
            len: v.len(),
            cap: v.capacity(),
        }
    }

    /// Take back a buffer made by [`Buf::from_vec`].
    ///
    /// # Safety
    /// `self` must come from [`Buf::from_vec`] in this same library and not have been freed.
    pub unsafe fn into_vec(self) -> Option<Vec<u8>> {
        if self.ptr.is_null() {
            return None;
        }
        // SAFETY: guaranteed by the caller: ptr/len/cap are a leaked Vec<u8> of this allocator.
        Some(unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) })
    }
}

/// Status codes returned by `kerblam_backend_describe` and `kerblam_backend_execute`.
///
/// On [`Status::Ok`] the `out` buffer holds the reply (a Describe or an ExecuteResult); on any other
/// status it holds an ErrorMessage whose `kind` matches the status (it may be empty when even that
/// could not be produced).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// The backend tried and failed (engine error, I/O error, failed preflight).
    BackendError = 1,
    /// The input bytes were not a valid message (bad UTF-8, bad JSON, wrong plan schema).
    InvalidInput = 2,
    /// The host asked to cancel (`is_cancelled` returned non-zero) and the backend stopped.
    Cancelled = 3,
    /// The backend panicked (or threw); the panic was caught at the boundary.
    Panic = 4,
    /// The request needs something this backend does not do (yet).
    Unsupported = 5,
}

impl Status {
    /// The status for a raw code, if it is one of the known ones.
    pub fn from_code(code: i32) -> Option<Status> {
        Some(match code {
            0 => Status::Ok,
            1 => Status::BackendError,
            2 => Status::InvalidInput,
            3 => Status::Cancelled,
            4 => Status::Panic,
            5 => Status::Unsupported,
            _ => return None,
        })
    }

    /// The raw code.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// A short name, e.g. `invalid-input`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::BackendError => "backend",
            Status::InvalidInput => "invalid-input",
            Status::Cancelled => "cancelled",
            Status::Panic => "panic",
            Status::Unsupported => "unsupported",
        }
    }
}

/// Log levels passed to [`HostV1::log`].
pub mod log_level {
    /// An error.
    pub const ERROR: i32 = 0;
    /// A warning.
    pub const WARN: i32 = 1;
    /// Normal progress information.
    pub const INFO: i32 = 2;
    /// Detail shown with `-v`.
    pub const DEBUG: i32 = 3;
    /// Detail shown with `-vv`.
    pub const TRACE: i32 = 4;
}

/// `void log(void *ctx, int32_t level, const uint8_t *msg, size_t len)`: one UTF-8 line, no newline.
pub type LogFn = unsafe extern "C" fn(*mut c_void, i32, *const u8, usize);
/// `void progress(void *ctx, uint64_t done, uint64_t total, const uint8_t *msg, size_t len)`:
/// `total == 0` means unknown; `msg` (UTF-8, may be empty) says what is being counted.
pub type ProgressFn = unsafe extern "C" fn(*mut c_void, u64, u64, *const u8, usize);
/// `int32_t is_cancelled(void *ctx)`: non-zero when the backend should stop as soon as it can.
pub type IsCancelledFn = unsafe extern "C" fn(*mut c_void) -> i32;

/// The host callback table, version 1. Fields are only ever appended; a plugin reads a field only
/// when `struct_size` covers it (see [`HostV1::has_field`]). Every callback may be called from any
/// thread, but only while `kerblam_backend_execute` has not returned; `ctx` is passed back verbatim.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HostV1 {
    /// `sizeof` the table as the host built it.
    pub struct_size: usize,
    /// Opaque host context, the first argument of every callback.
    pub ctx: *mut c_void,
    /// Log a line.
    pub log: Option<LogFn>,
    /// Report progress.
    pub progress: Option<ProgressFn>,
    /// Ask whether the host wants the backend to stop.
    pub is_cancelled: Option<IsCancelledFn>,
}

impl HostV1 {
    /// Whether a table of `struct_size` bytes contains the field that starts at `offset` and is
    /// `size` bytes long.
    pub fn has_field(struct_size: usize, offset: usize, size: usize) -> bool {
        struct_size >= offset + size
    }
}

//! The runtime behind [`export_backend!`](crate::export_backend): request parsing, the checks the
//! SDK does for every backend, and panic containment. Not for direct use.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::{Backend, CONFORMANCE_ENV, Host};
use crate::{
    AbiVersion, Buf, DESCRIBE_TAG, ErrorKind, ErrorMessage, ExecuteRequest, HELLO_TAG, Hello,
    HostV1, PLAN_REQUEST_TAG, PlanRequest, REQUEST_TAG, SDK_ID, Status,
};

type Instance = fn() -> &'static dyn Backend;

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

/// Write `bytes` into `out` (when not null).
unsafe fn write_out(out: *mut Buf, bytes: Vec<u8>) {
    if !out.is_null() {
        // SAFETY: out is a valid pointer per the ABI.
        unsafe { out.write(Buf::from_vec(bytes)) }
    }
}

fn error_bytes(e: &ErrorMessage) -> Vec<u8> {
    serde_json::to_vec(e).unwrap_or_default()
}

/// Reply: serialize and write `reply`, returning the status.
unsafe fn reply<T: serde::Serialize>(out: *mut Buf, reply: Result<T, ErrorMessage>) -> i32 {
    let (status, bytes) = match reply {
        Ok(v) => match serde_json::to_vec(&v) {
            Ok(b) => (Status::Ok, b),
            Err(e) => {
                let e = ErrorMessage::backend(format!("cannot serialize the reply: {e}"));
                (Status::BackendError, error_bytes(&e))
            }
        },
        Err(e) => (e.kind.status(), error_bytes(&e)),
    };
    // SAFETY: forwarded.
    unsafe { write_out(out, bytes) };
    status.code()
}

/// Run `body` with panics contained: a panic becomes status `Panic` with an error message.
unsafe fn guarded(out: *mut Buf, body: impl FnOnce() -> i32) -> i32 {
    if out.is_null() {
        return Status::InvalidInput.code();
    }
    // SAFETY: out is non-null; start from an empty buffer so a panic never leaves garbage.
    unsafe { out.write(Buf::EMPTY) };
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(code) => code,
        Err(payload) => {
            let msg = panic_message(&*payload);
            // Dropping a payload can itself panic; leak it instead.
            std::mem::forget(payload);
            let e = ErrorMessage::new(ErrorKind::Panic, format!("the backend panicked: {msg}"))
                .with_help("this is a bug in the backend plugin; report it to its author");
            let _ = catch_unwind(AssertUnwindSafe(|| {
                // SAFETY: out is valid; an earlier partial write is impossible (write_out is last).
                unsafe { write_out(out, error_bytes(&e)) }
            }));
            Status::Panic.code()
        }
    }
}

/// The input bytes as a UTF-8 string.
unsafe fn input<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a str, ErrorMessage> {
    if len == 0 {
        return Ok("");
    }
    if ptr.is_null() {
        return Err(ErrorMessage::invalid_input(format!(
            "{what}: null pointer with length {len}"
        )));
    }
    // SAFETY: per the ABI, ptr points to len readable bytes for the duration of the call.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    std::str::from_utf8(bytes)
        .map_err(|e| ErrorMessage::invalid_input(format!("{what} is not UTF-8: {e}")))
}

fn full_describe(backend: &dyn Backend) -> crate::Describe {
    let mut d = backend.describe();
    d.describe = DESCRIBE_TAG.to_string();
    d.abi = AbiVersion::CURRENT;
    d.sdk = Some(SDK_ID.to_string());
    d
}

/// `kerblam_backend_describe`.
///
/// # Safety
/// ABI contract: `hello` points to `len` bytes, `out` to a writable [`Buf`].
pub unsafe fn describe(instance: Instance, hello: *const u8, len: usize, out: *mut Buf) -> i32 {
    // SAFETY: forwarded ABI contract.
    unsafe {
        guarded(out, || {
            let result = (|| {
                let text = input(hello, len, "hello")?;
                if !text.is_empty() {
                    let h: Hello = serde_json::from_str(text).map_err(|e| {
                        ErrorMessage::invalid_input(format!(
                            "hello is not a valid {HELLO_TAG} message: {e}"
                        ))
                    })?;
                    if h.hello != HELLO_TAG {
                        return Err(ErrorMessage::invalid_input(format!(
                            "hello tag {:?}, expected {HELLO_TAG:?}",
                            h.hello
                        )));
                    }
                }
                Ok(full_describe(instance()))
            })();
            reply(out, result)
        })
    }
}

/// Parse a request whose `request` tag must be `expected` and whose plan schema must be in the
/// backend's range.
fn parse_request<T: serde::de::DeserializeOwned>(
    text: &str,
    expected: &str,
    d: &crate::Describe,
) -> Result<T, ErrorMessage> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ErrorMessage::invalid_input(format!("the request is not valid JSON: {e}")))?;
    let tag = value.get("request").and_then(|v| v.as_str()).unwrap_or("");
    if tag != expected {
        return Err(ErrorMessage::invalid_input(format!(
            "the request tag is {tag:?}, expected {expected:?}"
        )));
    }
    let schema = value
        .pointer("/plan/schema")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let major = schema
        .strip_prefix("kerblam.plan/v")
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        None => {
            return Err(ErrorMessage::invalid_input(format!(
                "plan.schema is {schema:?}, not kerblam.plan/vN"
            )));
        }
        Some(m) if !d.plan_schema.contains(m) => {
            return Err(ErrorMessage::unsupported(format!(
                "backend {} accepts {}, the plan is {schema}",
                d.name, d.plan_schema
            )));
        }
        Some(_) => {}
    }
    serde_json::from_value(value).map_err(|e| {
        ErrorMessage::invalid_input(format!(
            "the request is not a valid {expected} message: {e}"
        ))
    })
}

fn refuse_missing(
    d: &crate::Describe,
    action: crate::Action,
    plan: &kerblam_plan::PackagePlan,
    options: &crate::ExecuteOptions,
) -> Result<(), ErrorMessage> {
    let missing = crate::missing_capabilities(action, plan, options, d);
    if missing.is_empty() {
        return Ok(());
    }
    Err(ErrorMessage::unsupported(format!(
        "backend {} {} cannot carry out this request: it does not support {}",
        d.name,
        d.version,
        missing.join(", ")
    )))
}

/// `kerblam_backend_plan`.
///
/// # Safety
/// ABI contract: `request` points to `len` bytes, `out` to a writable [`Buf`].
pub unsafe fn plan(instance: Instance, request: *const u8, len: usize, out: *mut Buf) -> i32 {
    // SAFETY: forwarded ABI contract.
    unsafe {
        guarded(out, || {
            let result = (|| {
                let backend = instance();
                let d = full_describe(backend);
                let text = input(request, len, "the request")?;
                let req: PlanRequest = parse_request(text, PLAN_REQUEST_TAG, &d)?;
                refuse_missing(&d, req.action, &req.plan, &req.options)?;
                let mut part = backend.plan(&req)?;
                part.name = d.name;
                Ok(part)
            })();
            reply(out, result)
        })
    }
}

/// `kerblam_backend_execute`.
///
/// # Safety
/// ABI contract: `request` points to `len` bytes, `host` is null or a valid table, `out` a
/// writable [`Buf`].
pub unsafe fn execute(
    instance: Instance,
    request: *const u8,
    len: usize,
    host: *const HostV1,
    out: *mut Buf,
) -> i32 {
    // SAFETY: forwarded ABI contract.
    unsafe {
        guarded(out, || {
            let host = Host::from_raw(host);
            let result = (|| {
                let backend = instance();
                let d = full_describe(backend);
                let text = input(request, len, "the request")?;
                let req: ExecuteRequest = parse_request(text, REQUEST_TAG, &d)?;
                host.check_cancelled()?;
                if req.options.conformance_panic
                    && std::env::var(CONFORMANCE_ENV).as_deref() == Ok("1")
                {
                    // A real unwind through the backend's frames, caught by `guarded` like any
                    // panic; `resume_unwind` skips the panic hook, so the kit's run stays quiet.
                    std::panic::resume_unwind(Box::new(format!(
                        "conformance: injected panic (options.conformance_panic with {CONFORMANCE_ENV}=1)"
                    )));
                }
                refuse_missing(&d, req.action, &req.plan, &req.options)?;
                backend.preflight(&req, &host)?;
                host.check_cancelled()?;
                backend.execute(&req, &host)
            })();
            reply(out, result)
        })
    }
}

/// `kerblam_backend_free`.
///
/// # Safety
/// `buf` must come from this library's describe/execute and be freed once.
pub unsafe fn free(buf: Buf) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: per the caller.
        drop(unsafe { buf.into_vec() });
    }));
}

//! The C header of the ABI, generated from the Rust definitions of [`crate::abi`] so the two cannot
//! drift: `include/kerblam_backend.h` next to this crate is [`text`] as committed, and a test fails
//! when they differ (`KERBLAM_UPDATE_SCHEMAS=1 cargo test -p kerblam-backend-api --test schemas`
//! rewrites it). Another test compiles a C file against it that checks the struct layouts against
//! Rust's.

use crate::abi::{SYM_ABI_VERSION, SYM_DESCRIBE, SYM_EXECUTE, SYM_FREE, SYM_PLAN};
use crate::{ABI_MAJOR, ABI_MINOR, Status, log_level};

/// Where the header is committed, relative to this crate's directory.
pub const PATH: &str = "include/kerblam_backend.h";

/// The header's full text.
// long: most of it is the header itself, one C text in file order; cut into pieces it would no
// longer read as the file it produces
pub fn text() -> String {
    let statuses = [
        Status::Ok,
        Status::BackendError,
        Status::InvalidInput,
        Status::Cancelled,
        Status::Panic,
        Status::Unsupported,
    ];
    let mut status_lines = String::new();
    for s in statuses {
        let name = s.name().replace('-', "_").to_ascii_uppercase();
        let name = if name == "BACKEND" {
            "BACKEND_ERROR".into()
        } else {
            name
        };
        status_lines.push_str(&format!(
            "#define KERBLAM_STATUS_{name:<14} {code:>2} /* {what} */\n",
            code = s.code(),
            what = status_doc(s),
        ));
    }
    let levels = [
        ("ERROR", log_level::ERROR),
        ("WARN", log_level::WARN),
        ("INFO", log_level::INFO),
        ("DEBUG", log_level::DEBUG),
        ("TRACE", log_level::TRACE),
    ];
    let mut level_lines = String::new();
    for (name, v) in levels {
        level_lines.push_str(&format!("#define KERBLAM_LOG_{name:<6} {v}\n"));
    }
    format!(
        r#"/* kerblam_backend.h: the kerblam backend plugin ABI {ABI_MAJOR}.{ABI_MINOR}, for plugins written in C (or
 * anything that can export C symbols).
 *
 * Generated from the Rust definitions in kerblam-backend-api (src/abi.rs) by src/c_header.rs; a
 * test fails when this file and those definitions differ. Do not edit by hand.
 *
 * A plugin is a shared library exporting the functions below. They exchange UTF-8 JSON messages
 * whose JSON Schemas are in kerblam's schemas/ directory (backend-*.json, plan.json); the
 * specification is contract/api/README.md, the replay archive kerblam writes is specified in
 * libs/archive/FORMAT.md, and examples/backend-c is a complete plugin in C.
 */
#ifndef KERBLAM_BACKEND_H
#define KERBLAM_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {{
#endif

/* What kerblam_backend_abi_version returns: major << 16 | minor. The host refuses a plugin whose
 * major differs from its own; within a major, additions only. */
#define KERBLAM_BACKEND_ABI_MAJOR {ABI_MAJOR}
#define KERBLAM_BACKEND_ABI_MINOR {ABI_MINOR}
#define KERBLAM_BACKEND_ABI_VERSION ((uint32_t)((KERBLAM_BACKEND_ABI_MAJOR << 16) | KERBLAM_BACKEND_ABI_MINOR))

/* Status codes. With KERBLAM_STATUS_OK, `out` holds the reply; with any other, an ErrorMessage
 * (backend-error.json) whose "kind" is the status's name: "backend", "invalid-input",
 * "cancelled", "panic", "unsupported". A status and a kind that disagree make the reply invalid. */
{status_lines}
/* Log levels of KerblamHostV1.log. */
{level_lines}
/* A buffer the plugin allocates and hands to the host. The host copies `len` bytes from `ptr`,
 * then gives the same buffer, unchanged, to the plugin's kerblam_backend_free, exactly once.
 * `cap` is the plugin's own bookkeeping. A NULL `ptr` means "no bytes". */
typedef struct {{
    uint8_t *ptr;
    size_t len;
    size_t cap;
}} KerblamBuf;

/* The host's callbacks, valid only while kerblam_backend_execute runs; callable from any thread
 * the plugin starts. Fields are only ever appended: read a field only when struct_size covers
 * it, e.g. KERBLAM_HOST_HAS(host, is_cancelled). A NULL table or callback means "not provided". */
typedef struct {{
    size_t struct_size;
    void *ctx;
    /* One UTF-8 line without a newline, at a KERBLAM_LOG_* level. */
    void (*log)(void *ctx, int32_t level, const uint8_t *msg, size_t len);
    /* `done` of `total` units (total 0: unknown); `what` names them (UTF-8, may be empty). */
    void (*progress)(void *ctx, uint64_t done, uint64_t total, const uint8_t *what, size_t len);
    /* Non-zero: stop as soon as possible and return KERBLAM_STATUS_CANCELLED. */
    int32_t (*is_cancelled)(void *ctx);
}} KerblamHostV1;

/* Whether `host` is non-NULL and its table holds `field` and that field is set. */
#define KERBLAM_HOST_HAS(host, field) \
    ((host) != NULL && (host)->struct_size >= offsetof(KerblamHostV1, field) + sizeof((host)->field) && \
     (host)->field != NULL)

/* Returns KERBLAM_BACKEND_ABI_VERSION. A library without this symbol is not a plugin. */
uint32_t {SYM_ABI_VERSION}(void);

/* Receives a Hello (backend-hello.json), writes a Describe (backend-describe.json) into *out.
 * Cheap, pure, callable from any thread. */
int32_t {SYM_DESCRIBE}(const uint8_t *hello, size_t hello_len, KerblamBuf *out);

/* Optional (ABI 1.1). Receives a PlanRequest (backend-plan-request.json): the plan as kerblam's
 * compiler made it, for this backend. Writes the backend's part of the plan (backend-plan.json):
 * the artifacts it will write (kind, path), its own preflight checks, the files it renders and
 * how to use what it makes. Deterministic, quick, writes nothing. A plugin without it writes no
 * artifacts of its own. */
int32_t {SYM_PLAN}(const uint8_t *request, size_t request_len, KerblamBuf *out);

/* Receives an ExecuteRequest (backend-execute-request.json) whose plan holds the part the plugin
 * returned from kerblam_backend_plan. Runs every preflight check of the plan first, then carries
 * it out: after "package", every artifact of the plan's "backend" part must exist with its kind,
 * and the ExecuteResult (backend-execute-result.json) names exactly those. The replay archive is
 * kerblam's to write, never the plugin's. */
int32_t {SYM_EXECUTE}(const uint8_t *request, size_t request_len, const KerblamHostV1 *host,
                               KerblamBuf *out);

/* Frees a buffer this plugin wrote into an `out`. Freeing {{NULL, 0, 0}} does nothing. */
void {SYM_FREE}(KerblamBuf buf);

#ifdef __cplusplus
}}
#endif

#endif /* KERBLAM_BACKEND_H */
"#
    )
}

fn status_doc(s: Status) -> &'static str {
    match s {
        Status::Ok => "the reply",
        Status::BackendError => "the backend tried and failed",
        Status::InvalidInput => "the input was not a valid message",
        Status::Cancelled => "is_cancelled said yes and the backend stopped",
        Status::Panic => "the plugin crashed or threw; caught at the boundary",
        Status::Unsupported => "the request needs something the backend does not do",
    }
}

/* kerblam_backend_cbuild.c: a kerblam backend plugin in C, "cbuild".
 *
 * For a pipe plan, `kerblam package PIPE --backend cbuild` makes it write one file,
 * <stem>.build.sh: a POSIX sh script that builds the plan's image with ${ENGINE:-docker} (kerblam
 * itself writes the replay archive). It shows everything a plugin owes the host:
 *
 *   kerblam_backend_abi_version  the ABI it was built for (from kerblam_backend.h)
 *   kerblam_backend_describe     its name and what it can do, the same bytes every time
 *   kerblam_backend_plan         its part of the plan: the file it will write, its preflight
 *                                checks, the Containerfile it renders, how to use the result;
 *                                deterministic, and it writes nothing
 *   kerblam_backend_execute      refuse what is not a valid request, poll for cancellation, run
 *                                every preflight check, write each planned file atomically, report
 *                                exactly the planned files
 *   kerblam_backend_free         free what the other calls handed out
 *
 * Every reply is JSON in a malloc'd buffer; an error reply is {"kind","message","help"} with the
 * status that matches its kind. Nothing here can unwind or longjmp across the boundary (this is
 * C), there is no global mutable state but an atomic counter (so "reentrant": true holds), and
 * the host's callbacks are only used while execute runs. */
#define _POSIX_C_SOURCE 200809L
#include "cbuild.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HELLO_TAG "kerblam.hello/v1"
#define PLAN_REQUEST_TAG "kerblam.plan-request/v1"
#define EXECUTE_TAG "kerblam.execute/v1"

/* ---- Errors and replies. ---------------------------------------------------------------------- */

int fail(Err *e, int32_t status, const char *fmt, ...) {
    if (e->status != KERBLAM_STATUS_OK) return -1; /* the first failure is the one reported */
    e->status = status;
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&e->message, fmt, ap);
    va_end(ap);
    return -1;
}

int fail_help(Err *e, const char *fmt, ...) {
    e->help.len = 0;
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&e->help, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *kind_of(int32_t status) {
    switch (status) {
    case KERBLAM_STATUS_INVALID_INPUT: return "invalid-input";
    case KERBLAM_STATUS_CANCELLED: return "cancelled";
    case KERBLAM_STATUS_PANIC: return "panic";
    case KERBLAM_STATUS_UNSUPPORTED: return "unsupported";
    default: return "backend";
    }
}

/* Hands `sb` to the host as the reply. The host copies it and gives it back to
 * kerblam_backend_free, so `cap` only has to be what free needs: nothing, with malloc. */
static void hand_over(StrBuf *sb, KerblamBuf *out) {
    out->ptr = (uint8_t *)sb->data;
    out->len = sb->len;
    out->cap = sb->cap;
    sb->data = NULL;
    sb->len = sb->cap = 0;
}

/* Writes the reply of a finished call: `ok` with status 0, else the error `e`. Returns the status.
 * Out of memory is answered with a short static message when even that can be allocated. */
static int32_t reply(KerblamBuf *out, StrBuf *ok, Err *e) {
    StrBuf r = STRBUF_INIT;
    int32_t status = e->status;
    if (status == KERBLAM_STATUS_OK && ok->oom) {
        fail(e, KERBLAM_STATUS_BACKEND_ERROR, "out of memory");
        status = e->status;
    }
    if (status == KERBLAM_STATUS_OK) {
        hand_over(ok, out);
    } else {
        sb_printf(&r, "{\"kind\":\"%s\",\"message\":", kind_of(status));
        sb_json_cstr(&r, e->message.len > 0 && !e->message.oom ? e->message.data : "out of memory");
        sb_puts(&r, ",\"help\":");
        sb_json_cstr(&r, e->help.len > 0 && !e->help.oom ? e->help.data : NULL);
        sb_puts(&r, "}");
        if (r.oom) status = KERBLAM_STATUS_BACKEND_ERROR; /* nothing left to say it with */
        else hand_over(&r, out);
    }
    sb_free(&r);
    sb_free(ok);
    sb_free(&e->message);
    sb_free(&e->help);
    return status;
}

/* ---- abi_version, describe, free. ------------------------------------------------------------- */

uint32_t kerblam_backend_abi_version(void) { return KERBLAM_BACKEND_ABI_VERSION; }

/* The same bytes on every call (the conformance kit compares them). */
static const char DESCRIBE[] =
    "{\"describe\":\"kerblam.describe/v1\",\"name\":\"" CBUILD_NAME "\",\"version\":\"" CBUILD_VERSION "\","
    "\"description\":\"writes <pipe>.build.sh, a POSIX sh script that builds the image with ${ENGINE:-docker}\","
    "\"abi\":{\"major\":1,\"minor\":1},\"plan_schema\":{\"min\":2,\"max\":2},"
    "\"capabilities\":{\"actions\":[\"package\"],\"sources\":[\"pipe\"],"
    "\"base_kinds\":[\"scratch\",\"image\",\"recipe\"],\"layer_sources\":[\"generated\",\"context\",\"kerblam\"],"
    "\"mounts\":false,\"artifact_kinds\":[\"file\"],"
    "\"preflight_checks\":[\"disk-space\",\"writable\",\"tool\",\"file-exists\"],\"formats\":[],"
    "\"rootless\":true,\"push\":false,\"embed_image\":false,\"base_archive\":false,\"native\":false,"
    "\"reentrant\":true}}";

int32_t kerblam_backend_describe(const uint8_t *hello, size_t hello_len, KerblamBuf *out) {
    StrBuf ok = STRBUF_INIT;
    Err e = {KERBLAM_STATUS_OK, STRBUF_INIT, STRBUF_INIT};
    /* An empty hello is accepted; anything else must be a Hello. Unknown fields are ignored. */
    if (hello_len > 0) {
        char why[160];
        int oom;
        JsonDoc *doc = hello ? json_parse(hello, hello_len, why, sizeof why, &oom) : NULL;
        if (doc == NULL)
            fail(&e, KERBLAM_STATUS_INVALID_INPUT, "the hello is not valid JSON: %s", hello ? why : "null pointer");
        else if (!json_str_eq(json_get(json_root(doc), "hello"), HELLO_TAG))
            fail(&e, KERBLAM_STATUS_INVALID_INPUT, "the hello is not a " HELLO_TAG " message");
        json_free(doc);
    }
    if (e.status == KERBLAM_STATUS_OK) sb_add(&ok, DESCRIBE, sizeof DESCRIBE - 1);
    return reply(out, &ok, &e);
}

void kerblam_backend_free(KerblamBuf buf) { free(buf.ptr); /* free(NULL) does nothing */ }

/* ---- plan. ------------------------------------------------------------------------------------ */

int32_t kerblam_backend_plan(const uint8_t *request, size_t request_len, KerblamBuf *out) {
    StrBuf ok = STRBUF_INIT;
    Err e = {KERBLAM_STATUS_OK, STRBUF_INIT, STRBUF_INIT};
    Request req;
    if (request_read(request, request_len, PLAN_REQUEST_TAG, &req, &e) == 0) render_backend_part(&req, &ok, &e);
    request_free(&req);
    return reply(out, &ok, &e);
}

/* ---- execute. --------------------------------------------------------------------------------- */

/* Whether the host asked us to stop; records the "cancelled" error if so. */
static int cancelled(const KerblamHostV1 *host, Err *e) {
    if (!KERBLAM_HOST_HAS(host, is_cancelled) || host->is_cancelled(host->ctx) == 0) return 0;
    fail(e, KERBLAM_STATUS_CANCELLED, "cancelled by the host; nothing more was written");
    return 1;
}

static void say(const KerblamHostV1 *host, int32_t level, const char *line) {
    if (KERBLAM_HOST_HAS(host, log) && line != NULL) host->log(host->ctx, level, (const uint8_t *)line, strlen(line));
}

/* The plan's backend part must be ours: what kerblam_backend_plan returned. Each artifact must be
 * a file we know how to write (capabilities already refused other kinds). */
static int check_backend_part(const Request *req, Err *e) {
    const Json *backend = json_get(req->plan, "backend");
    const char *name = json_get_str(backend, "name");
    if (strcmp(name, CBUILD_NAME) != 0)
        return fail(e, KERBLAM_STATUS_INVALID_INPUT, "the plan's backend part is for backend \"%s\", not " CBUILD_NAME, name);
    const Json *artifacts = json_get(backend, "artifacts");
    for (const Json *a = artifacts ? artifacts->first : NULL; a != NULL; a = a->next)
        if (!json_str_eq(json_get(a, "format"), CBUILD_FORMAT))
            return fail(e, KERBLAM_STATUS_UNSUPPORTED, "the plan asks " CBUILD_NAME " for the file %s, which is not "
                        "its build script (format \"" CBUILD_FORMAT "\"); ask kerblam_backend_plan for the plan's backend part",
                        json_get_str(a, "path"));
    return 0;
}

/* The text of errno value `err`, into `buf` (strerror_r: strerror may share one buffer between
 * threads). */
static const char *errno_text(int err, char *buf, size_t size) {
    if (strerror_r(err, buf, size) != 0) snprintf(buf, size, "error %d", err);
    return buf;
}

/* Creates the missing directories above `path` (mkdir -p of its parent). */
static int make_parents(char *path, Err *e) {
    for (char *p = path + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST) { /* 0777: the umask decides the mode */
            char buf[128];
            fail(e, KERBLAM_STATUS_BACKEND_ERROR, "cannot create the directory %s: %s", path, errno_text(errno, buf, sizeof buf));
            *p = '/';
            return -1;
        }
        *p = '/';
    }
    return 0;
}

/* Writes `len` bytes to `path` atomically: a temporary file in the same directory, flushed, then
 * renamed (or, without --force, hard-linked: link() refuses to replace a file that appeared since
 * the preflight, where rename() would silently overwrite it). Readers never see half a file. */
static int write_atomically(const char *path, const char *data, size_t len, int force, Err *e) {
    static atomic_ulong counter; /* distinct temporary names for concurrent calls; the name
                                 * <path>.tmp-<pid>-<n> is the one kerblam uses for its own */
    StrBuf tmp = STRBUF_INIT;
    int fd = -1;
    for (int attempt = 0; fd < 0 && attempt < 100; attempt++) {
        tmp.len = 0;
        sb_printf(&tmp, "%s.tmp-%ld-%lu", path, (long)getpid(), atomic_fetch_add(&counter, 1));
        if (tmp.oom) {
            sb_free(&tmp);
            return fail(e, KERBLAM_STATUS_BACKEND_ERROR, "out of memory");
        }
        fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755); /* less the umask */
        if (fd < 0 && errno != EEXIST) break;
    }
    const char *what = NULL; /* the step that failed, with errno in `err` */
    int err = errno;
    if (fd < 0) what = "create a temporary file for";
    for (size_t done = 0; what == NULL && done < len;) {
        ssize_t n = write(fd, data + done, len - done);
        if (n > 0) done += (size_t)n;
        else if (n < 0 && errno != EINTR) what = "write", err = errno;
    }
    if (what == NULL && fsync(fd) != 0) what = "flush", err = errno;
    if (fd >= 0 && close(fd) != 0 && what == NULL) what = "close", err = errno;
    if (what == NULL && force && rename(tmp.data, path) != 0) what = "rename a temporary file to", err = errno;
    if (what == NULL && !force && link(tmp.data, path) != 0) {
        struct stat st;
        err = errno;
        if (err == EEXIST) what = "write over"; /* it appeared since the preflight */
        else if (lstat(path, &st) == 0) what = "write over", err = EEXIST; /* no hard links here */
        else if (rename(tmp.data, path) != 0) what = "rename a temporary file to", err = errno;
    }
    if (fd >= 0) unlink(tmp.data); /* after link(), the temporary name goes; after rename(), it is gone */
    sb_free(&tmp);
    if (what == NULL) return 0;
    char buf[128];
    fail(e, KERBLAM_STATUS_BACKEND_ERROR, "cannot %s %s: %s", what, path, errno_text(err, buf, sizeof buf));
    if (err == EEXIST) fail_help(e, "pass --force to overwrite it");
    return -1;
}

int32_t kerblam_backend_execute(const uint8_t *request, size_t request_len, const KerblamHostV1 *host,
                                KerblamBuf *out) {
    StrBuf ok = STRBUF_INIT, script = STRBUF_INIT, line = STRBUF_INIT;
    Err e = {KERBLAM_STATUS_OK, STRBUF_INIT, STRBUF_INIT};
    Request req;
    char **created = NULL; /* files this call created, removed again if a later step fails */
    size_t ncreated = 0;
    /* Each step runs only when all before it succeeded; `e` holds the first failure. Nothing is
     * written before the last preflight check has passed. */
    if (request_read(request, request_len, EXECUTE_TAG, &req, &e) == 0 && check_backend_part(&req, &e) == 0 &&
        !cancelled(host, &e) && render_script(&req, &script, &e) == 0 && preflight_run(&req, &e) == 0) {
        say(host, KERBLAM_LOG_DEBUG, CBUILD_NAME ": every preflight check passed");
        const Json *artifacts = json_get(json_get(req.plan, "backend"), "artifacts");
        created = calloc(artifacts && artifacts->count ? artifacts->count : 1, sizeof *created);
        if (created == NULL) fail(&e, KERBLAM_STATUS_BACKEND_ERROR, "out of memory");
        sb_puts(&ok, "{\"artifacts\":[");
        for (const Json *a = artifacts ? artifacts->first : NULL; a != NULL && e.status == 0; a = a->next) {
            if (cancelled(host, &e)) break; /* between steps: before each file */
            StrBuf path = STRBUF_INIT; /* absolute: relative artifact paths are under output_dir */
            struct stat st;
            resolve_path(&req, req.output_dir, json_get_str(a, "path"), &path);
            if (path.oom) {
                fail(&e, KERBLAM_STATUS_BACKEND_ERROR, "out of memory");
                break;
            }
            int existed = lstat(path.data, &st) == 0;
            if (make_parents(path.data, &e) == 0 &&
                write_atomically(path.data, script.data, script.len, req.force, &e) == 0) {
                sb_puts(&ok, a == artifacts->first ? "{\"kind\":\"file\",\"path\":" : ",{\"kind\":\"file\",\"path\":");
                sb_json_cstr(&ok, path.data);
                sb_printf(&ok, ",\"bytes\":%zu,\"sha256\":null}", script.len);
                line.len = 0;
                sb_printf(&line, CBUILD_NAME ": wrote %s (%zu bytes)", path.data, script.len);
                say(host, KERBLAM_LOG_DEBUG, line.data);
                if (!existed) { /* keep its name, to remove it if a later step fails */
                    created[ncreated++] = path.data;
                    path.data = NULL;
                }
            }
            sb_free(&path);
        }
        sb_puts(&ok, "],\"exit_code\":null,\"notes\":[");
        if (artifacts != NULL && artifacts->count > 0) {
            line.len = 0;
            sb_printf(&line, "the script builds %s from the project at %s, with docker (or podman: ENGINE=podman)",
                      json_get_str(json_get(req.plan, "image"), "tag"), req.root);
            sb_json_cstr(&ok, line.data);
        }
        sb_puts(&ok, "]}");
    }
    for (size_t i = 0; i < ncreated; i++) {
        if (e.status != KERBLAM_STATUS_OK) unlink(created[i]); /* leave nothing half done */
        free(created[i]);
    }
    free(created);
    request_free(&req);
    sb_free(&script);
    sb_free(&line);
    return reply(out, &ok, &e);
}

/* cbuild.h: what the parts of the cbuild backend share. Not part of the plugin's interface: the
 * host sees only the five exports of kerblam_backend_cbuild.c, declared in kerblam_backend.h.
 *
 *   request.c    reads a PlanRequest or an ExecuteRequest: checks it is the message the schemas
 *                describe (status 2 if not), a plan schema we accept (status 5) and within what
 *                describe claims (status 5)
 *   render.c     what the backend makes of a plan: the Containerfile, the build script, and its
 *                part of the plan (the reply of kerblam_backend_plan)
 *   preflight.c  the plan's preflight checks, run before anything is written
 *   kerblam_backend_cbuild.c  the ABI exports, and execute's steps
 *
 * Nothing here keeps global mutable state, so concurrent calls are safe ("reentrant": true). */
#ifndef CBUILD_H
#define CBUILD_H

#include <kerblam_backend.h>

#include "json.h"

#define CBUILD_NAME "cbuild"
#define CBUILD_VERSION "0.1.0"
#define CBUILD_SUFFIX ".build.sh" /* the one file it writes: <output.dir>/<output.stem>.build.sh */
#define CBUILD_FORMAT "sh"        /* that file's `format` in the plan */

#define PLAN_SCHEMA_MIN 2 /* the plan schemas accepted: kerblam.plan/v2 ... */
#define PLAN_SCHEMA_MAX 2 /* ... to kerblam.plan/v2 */

/* Why a call failed: a KERBLAM_STATUS_* and the message and help of the ErrorMessage reply. */
typedef struct {
    int32_t status; /* KERBLAM_STATUS_OK while nothing failed */
    StrBuf message;
    StrBuf help; /* empty: no help */
} Err;

/* Records a failure (the first one wins) and returns -1, so that `return fail(...)` reads well. */
int fail(Err *e, int32_t status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sets the help line of the recorded failure. Returns -1. */
int fail_help(Err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A request, checked. The strings point into `doc`, which request_free releases. */
typedef struct {
    JsonDoc *doc;
    const char *action; /* "package" or "run" */
    const Json *plan;   /* the plan object, every required field present and well typed */
    const char *root, *kerblam, *output_dir, *temp_dir; /* paths.*: absolute */
    int force;          /* options.force */
} Request;

/* Reads `len` bytes as a request tagged `tag` ("kerblam.plan-request/v1" or "kerblam.execute/v1")
 * and checks it as described above. Returns 0, or -1 with `e` set. */
int request_read(const uint8_t *bytes, size_t len, const char *tag, Request *req, Err *e);
void request_free(Request *req);

/* The Containerfile the build script writes (and `kerblam plan --show Containerfile` prints). */
int render_containerfile(const Json *plan, StrBuf *out, Err *e);
/* The build script: stages the layers and builds the image with ${ENGINE:-docker}. */
int render_script(const Request *req, StrBuf *out, Err *e);
/* The backend's part of the plan, as JSON: the reply of kerblam_backend_plan. */
int render_backend_part(const Request *req, StrBuf *out, Err *e);

/* A plan path as a host path: `$TMPDIR` (or `$TMPDIR/...`) is paths.temp_dir, an absolute path
 * stays, anything else is under `base` (paths.root for plan paths, paths.output_dir for
 * artifacts). Appends it to `out`. */
void resolve_path(const Request *req, const char *base, const char *path, StrBuf *out);
/* Runs every check of plan.preflight and plan.backend.preflight, then checks that each planned
 * file can be written (its directory is writable, nothing is there unless options.force).
 * Returns 0, or -1 with one status-1 error naming every failure. Writes nothing. */
int preflight_run(const Request *req, Err *e);

#endif /* CBUILD_H */

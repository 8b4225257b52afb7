/* request.c: reading a request and refusing what is not one.
 *
 * Three outcomes, each with its status:
 *   - invalid-input (2): not UTF-8, not JSON, the wrong tag, or a field the schemas require that is
 *     missing or of the wrong type. We check every field the schemas require, not only those we
 *     read, so that a truncated plan (the conformance kit sends `"plan":{"schema":...}` alone) is
 *     refused as a whole rather than half-used. Fields we do not know are ignored.
 *   - unsupported (5): a plan schema outside PLAN_SCHEMA_MIN..MAX, or anything describe does not
 *     claim (an action, a base kind, a layer source, an artifact kind, an option).
 *   - ok: the Request, whose pointers all point into the parsed document. */
#include "cbuild.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Checking fields. ----------------------------------------------------------------------- */

enum { OPTIONAL = 0, REQUIRED = 1, NULLABLE = 2 };

static const char *type_name(JsonType t) {
    static const char *const names[] = {"null", "a boolean", "a number", "a string", "an array",
                                        "an object"};
    return names[t];
}

/* Fails with invalid-input, naming the field: "plan.layers[2].to is missing". */
static int bad(Err *e, const char *tag, const char *where, const char *key, const char *problem) {
    return fail(e, KERBLAM_STATUS_INVALID_INPUT, "the request is not a valid %s message: %s%s%s %s",
                tag, where, *where ? "." : "", key, problem);
}

/* Member `key` of `obj` (described by `where`) must be of type `t`. REQUIRED: it must be there;
 * NULLABLE: null is allowed too. On success *out is the member, or NULL when absent or null. */
static int want(Err *e, const char *tag, const Json *obj, const char *where, const char *key,
                JsonType t, int flags, const Json **out) {
    const Json *m = json_get(obj, key);
    *out = NULL;
    if (m == NULL) {
        if (!(flags & REQUIRED)) return 0;
        bad(e, tag, where, key, "is missing");
        return -1;
    }
    if (m->type == JSON_NULL && (flags & NULLABLE)) return 0;
    if (m->type != t) {
        char problem[64];
        snprintf(problem, sizeof problem, "must be %s%s", type_name(t),
                 (flags & NULLABLE) ? " or null" : "");
        bad(e, tag, where, key, problem);
        return -1;
    }
    *out = m;
    return 0;
}

/* A string member that must be one of `values` (NULL-terminated). */
static int want_enum(Err *e, const char *tag, const Json *obj, const char *where, const char *key,
                     const char *const *values) {
    const Json *m;
    if (want(e, tag, obj, where, key, JSON_STRING, REQUIRED, &m) < 0) return -1;
    for (const char *const *v = values; *v != NULL; v++)
        if (json_str_eq(m, *v)) return 0;
    return fail(e, KERBLAM_STATUS_INVALID_INPUT,
                "the request is not a valid %s message: %s%s%s is \"%s\", which is not a known value",
                tag, where, *where ? "." : "", key, m->str);
}

/* An array member whose items are all of type `t` (nothing more is checked about them). */
static int want_array_of(Err *e, const char *tag, const Json *obj, const char *where,
                         const char *key, JsonType t, int flags) {
    const Json *a;
    if (want(e, tag, obj, where, key, JSON_ARRAY, flags, &a) < 0) return -1;
    size_t i = 0;
    for (const Json *x = a ? a->first : NULL; x != NULL; x = x->next, i++) {
        if (x->type != t) {
            char item[160];
            snprintf(item, sizeof item, "%s[%zu]", key, i);
            char problem[64];
            snprintf(problem, sizeof problem, "must be %s", type_name(t));
            return bad(e, tag, where, item, problem);
        }
    }
    return 0;
}

/* A number member that is an integer in 0..max. */
static int want_uint(Err *e, const char *tag, const Json *obj, const char *where, const char *key,
                     uint64_t max) {
    const Json *m;
    uint64_t n;
    if (want(e, tag, obj, where, key, JSON_NUMBER, REQUIRED, &m) < 0) return -1;
    if (!json_uint(m, max, &n)) return bad(e, tag, where, key, "must be a non-negative integer in range");
    return 0;
}

/* Calls `check(item, where_of_item)` for every item of array member `key`, each an object. */
typedef int (*ItemCheck)(Err *e, const char *tag, const Json *item, const char *where);

static int want_objects(Err *e, const char *tag, const Json *obj, const char *where,
                        const char *key, int flags, ItemCheck check) {
    const Json *a;
    if (want(e, tag, obj, where, key, JSON_ARRAY, flags, &a) < 0) return -1;
    size_t i = 0;
    for (const Json *x = a ? a->first : NULL; x != NULL; x = x->next, i++) {
        char item[200];
        snprintf(item, sizeof item, "%s%s%s[%zu]", where, *where ? "." : "", key, i);
        if (x->type != JSON_OBJECT) return bad(e, tag, "", item, "must be an object");
        if (check(e, tag, x, item) < 0) return -1;
    }
    return 0;
}

/* ---- The plan's parts, as schemas/backend-execute-request.json describes them. -------------- */

static const char *const ARTIFACT_KINDS[] = {
    "engine-image", "replay-archive", "context-archive", "oci-archive", "image-archive", "sif",
    "tarball", "activate-script", "metadata-json", "file", NULL};

static int check_artifact(Err *e, const char *tag, const Json *a, const char *where) {
    const Json *m;
    if (want_enum(e, tag, a, where, "kind", ARTIFACT_KINDS) < 0) return -1;
    if (want(e, tag, a, where, "path", JSON_STRING, REQUIRED, &m) < 0) return -1;
    if (want(e, tag, a, where, "format", JSON_STRING, NULLABLE, &m) < 0) return -1;
    return want_array_of(e, tag, a, where, "contents", JSON_STRING, REQUIRED);
}

static int check_preflight(Err *e, const char *tag, const Json *c, const char *where) {
    static const char *const CHECKS[] = {"disk-space", "writable", "tool", "file-exists", NULL};
    const Json *m;
    if (want_enum(e, tag, c, where, "check", CHECKS) < 0) return -1;
    if (json_str_eq(json_get(c, "check"), "tool"))
        return want_array_of(e, tag, c, where, "names", JSON_STRING, REQUIRED);
    if (want(e, tag, c, where, "path", JSON_STRING, REQUIRED, &m) < 0) return -1;
    if (!json_str_eq(json_get(c, "check"), "disk-space")) return 0;
    if (want(e, tag, c, where, "why", JSON_STRING, REQUIRED, &m) < 0) return -1;
    return want_uint(e, tag, c, where, "bytes", UINT64_MAX);
}

static int check_layer(Err *e, const char *tag, const Json *l, const char *where) {
    static const char *const SOURCES[] = {"kerblam", "generated", "context", "host", NULL};
    const Json *from, *m;
    char at[240];
    if (want(e, tag, l, where, "from", JSON_OBJECT, REQUIRED, &from) < 0) return -1;
    if (want(e, tag, l, where, "to", JSON_STRING, REQUIRED, &m) < 0) return -1;
    if (want_uint(e, tag, l, where, "mode", UINT32_MAX) < 0) return -1;
    snprintf(at, sizeof at, "%s.from", where);
    if (want_enum(e, tag, from, at, "kind", SOURCES) < 0) return -1;
    const char *kind = json_get_str(from, "kind");
    if (strcmp(kind, "generated") == 0) return want(e, tag, from, at, "text", JSON_STRING, REQUIRED, &m);
    if (strcmp(kind, "kerblam") != 0) return want(e, tag, from, at, "path", JSON_STRING, REQUIRED, &m);
    return 0;
}

static int check_context_file(Err *e, const char *tag, const Json *f, const char *where) {
    const Json *m;
    if (want(e, tag, f, where, "path", JSON_STRING, REQUIRED, &m) < 0) return -1;
    if (want(e, tag, f, where, "link", JSON_STRING, NULLABLE, &m) < 0) return -1;
    if (want_uint(e, tag, f, where, "size", UINT64_MAX) < 0) return -1;
    return want_uint(e, tag, f, where, "mode", UINT32_MAX);
}

static int check_env(Err *e, const char *tag, const Json *v, const char *where) {
    const Json *m;
    if (want(e, tag, v, where, "name", JSON_STRING, REQUIRED, &m) < 0) return -1;
    return want(e, tag, v, where, "value", JSON_STRING, REQUIRED, &m);
}

static int check_mount(Err *e, const char *tag, const Json *v, const char *where) {
    const Json *m;
    if (want(e, tag, v, where, "host", JSON_STRING, REQUIRED, &m) < 0) return -1;
    if (want(e, tag, v, where, "container", JSON_STRING, REQUIRED, &m) < 0) return -1;
    return want(e, tag, v, where, "read_only", JSON_BOOL, REQUIRED, &m);
}

static int check_rendered(Err *e, const char *tag, const Json *v, const char *where) {
    const Json *m;
    if (want(e, tag, v, where, "name", JSON_STRING, REQUIRED, &m) < 0) return -1;
    return want(e, tag, v, where, "text", JSON_STRING, REQUIRED, &m);
}

/* Every field plan.json requires, with its type; enums where we act on the value. */
static int check_plan(Err *e, const char *tag, const Json *plan) {
    static const char *const SOURCE_KINDS[] = {"pipe", "freeze", NULL};
    static const char *const PURPOSES[] = {"package", "run", NULL};
    static const char *const BASE_KINDS[] = {"recipe", "image", "archive", "scratch", NULL};
    const Json *m, *o;
    const char *w = "plan";

    static const char *const STRINGS[] = {"root", "name", "workdir", NULL};
    for (const char *const *k = STRINGS; *k; k++)
        if (want(e, tag, plan, w, *k, JSON_STRING, REQUIRED, &m) < 0) return -1;
    if (want_enum(e, tag, plan, w, "purpose", PURPOSES) < 0) return -1;

    if (want(e, tag, plan, w, "source", JSON_OBJECT, REQUIRED, &o) < 0 ||
        want_enum(e, tag, o, "plan.source", "kind", SOURCE_KINDS) < 0 ||
        want(e, tag, o, "plan.source", "manifest", JSON_STRING, REQUIRED, &m) < 0 ||
        want(e, tag, o, "plan.source", "digest", JSON_STRING, REQUIRED, &m) < 0)
        return -1;

    if (want(e, tag, plan, w, "image", JSON_OBJECT, REQUIRED, &o) < 0 ||
        want(e, tag, o, "plan.image", "tag", JSON_STRING, REQUIRED, &m) < 0 ||
        want(e, tag, o, "plan.image", "labels", JSON_OBJECT, REQUIRED, &m) < 0)
        return -1;
    for (const Json *label = m->first; label != NULL; label = label->next)
        if (label->type != JSON_STRING) return bad(e, tag, "plan.image.labels", label->key, "must be a string");

    if (want(e, tag, plan, w, "base", JSON_OBJECT, REQUIRED, &o) < 0 ||
        want_enum(e, tag, o, "plan.base", "kind", BASE_KINDS) < 0)
        return -1;
    const char *base = json_get_str(o, "kind");
    if (strcmp(base, "image") == 0 && want(e, tag, o, "plan.base", "reference", JSON_STRING, REQUIRED, &m) < 0)
        return -1;
    if ((strcmp(base, "recipe") == 0 || strcmp(base, "archive") == 0) &&
        want(e, tag, o, "plan.base", "path", JSON_STRING, REQUIRED, &m) < 0)
        return -1;
    if (strcmp(base, "recipe") == 0 && want(e, tag, o, "plan.base", "default", JSON_BOOL, REQUIRED, &m) < 0)
        return -1;

    if (want(e, tag, plan, w, "context", JSON_OBJECT, REQUIRED, &o) < 0 ||
        want(e, tag, o, "plan.context", "root", JSON_STRING, REQUIRED, &m) < 0 ||
        want(e, tag, o, "plan.context", "excluded", JSON_ARRAY, REQUIRED, &m) < 0 ||
        want_objects(e, tag, o, "plan.context", "files", REQUIRED, check_context_file) < 0 ||
        want_uint(e, tag, o, "plan.context", "total_bytes", UINT64_MAX) < 0)
        return -1;

    if (want_objects(e, tag, plan, w, "layers", REQUIRED, check_layer) < 0 ||
        want_objects(e, tag, plan, w, "mounts", REQUIRED, check_mount) < 0 ||
        want_objects(e, tag, plan, w, "env", REQUIRED, check_env) < 0 ||
        want_array_of(e, tag, plan, w, "entrypoint", JSON_STRING, REQUIRED) < 0 ||
        want_objects(e, tag, plan, w, "artifacts", REQUIRED, check_artifact) < 0 ||
        want_objects(e, tag, plan, w, "preflight", REQUIRED, check_preflight) < 0)
        return -1;

    if (want(e, tag, plan, w, "output", JSON_OBJECT, REQUIRED, &o) < 0 ||
        want(e, tag, o, "plan.output", "dir", JSON_STRING, REQUIRED, &m) < 0 ||
        want(e, tag, o, "plan.output", "stem", JSON_STRING, REQUIRED, &m) < 0)
        return -1;
    if (want(e, tag, plan, w, "metadata", JSON_OBJECT, REQUIRED, &o) < 0 ||
        want(e, tag, o, "plan.metadata", "kerblam_version", JSON_STRING, REQUIRED, &m) < 0)
        return -1;
    if (want(e, tag, plan, w, "pipe", JSON_OBJECT, NULLABLE, &m) < 0 ||
        want(e, tag, plan, w, "freeze", JSON_OBJECT, NULLABLE, &m) < 0)
        return -1;

    /* The backend's part: only its name is required (the compiler fills in nothing else). */
    if (want(e, tag, plan, w, "backend", JSON_OBJECT, REQUIRED, &o) < 0 ||
        want(e, tag, o, "plan.backend", "name", JSON_STRING, REQUIRED, &m) < 0 ||
        want_objects(e, tag, o, "plan.backend", "artifacts", OPTIONAL, check_artifact) < 0 ||
        want_objects(e, tag, o, "plan.backend", "preflight", OPTIONAL, check_preflight) < 0 ||
        want_objects(e, tag, o, "plan.backend", "rendered", OPTIONAL, check_rendered) < 0 ||
        want_array_of(e, tag, o, "plan.backend", "usage", JSON_STRING, OPTIONAL) < 0)
        return -1;
    return 0;
}

/* ---- What describe claims, checked before anything runs. ----------------------------------- */

static int in(const char *s, const char *const *values) {
    for (; *values != NULL; values++)
        if (s != NULL && strcmp(s, *values) == 0) return 1;
    return 0;
}

/* Adds the phrase `what` (printf-style) to the comma-separated list, once. */
__attribute__((format(printf, 2, 3))) static void missing(StrBuf *list, const char *fmt, ...) {
    StrBuf what = STRBUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(&what, fmt, ap);
    va_end(ap);
    if (what.data != NULL && (list->data == NULL || strstr(list->data, what.data) == NULL)) {
        if (list->len > 0) sb_puts(list, ", ");
        sb_add(list, what.data, what.len);
    }
    list->oom |= what.oom;
    sb_free(&what);
}

static int check_supported(const Request *req, const Json *options, Err *e) {
    static const char *const BASES[] = {"scratch", "image", "recipe", NULL};
    static const char *const LAYERS[] = {"generated", "context", "kerblam", NULL};
    StrBuf list = STRBUF_INIT;
    const Json *plan = req->plan;

    if (strcmp(req->action, "package") != 0) missing(&list, "action \"%s\" (not implemented)", req->action);
    const char *source = json_get_str(json_get(plan, "source"), "kind");
    if (strcmp(source, "pipe") != 0) missing(&list, "plan source \"%s\"", source);
    const char *base = json_get_str(json_get(plan, "base"), "kind");
    if (!in(base, BASES)) missing(&list, "base kind \"%s\"", base);
    for (const Json *l = json_get(plan, "layers")->first; l != NULL; l = l->next) {
        const char *kind = json_get_str(json_get(l, "from"), "kind");
        if (!in(kind, LAYERS)) missing(&list, "layer source \"%s\"", kind);
    }
    const Json *artifacts = json_get(json_get(plan, "backend"), "artifacts");
    for (const Json *a = artifacts ? artifacts->first : NULL; a != NULL; a = a->next) {
        const char *kind = json_get_str(a, "kind");
        if (strcmp(kind, "file") != 0) missing(&list, "artifact kind \"%s\"", kind);
    }
    /* All four preflight kinds are claimed, and check_preflight refused any other. The options: */
    const char *format = json_get_str(options, "format");
    if (format != NULL) missing(&list, "format \"%s\"", format);
    const Json *embed = json_get(options, "embed_image"), *native = json_get(options, "native");
    if ((json_is(embed, JSON_BOOL) && embed->boolean) || json_get_str(options, "save_image") != NULL)
        missing(&list, "%s", "embed_image");
    if (json_get_str(options, "base_archive") != NULL) missing(&list, "%s", "base_archive");
    if (json_is(native, JSON_BOOL) && native->boolean) missing(&list, "%s", "native");

    int rc = 0;
    if (list.oom) rc = fail(e, KERBLAM_STATUS_BACKEND_ERROR, "out of memory");
    else if (list.len > 0)
        rc = fail(e, KERBLAM_STATUS_UNSUPPORTED,
                  "backend " CBUILD_NAME " " CBUILD_VERSION
                  " cannot carry out this request: it does not support %s", list.data);
    sb_free(&list);
    return rc;
}

/* ---- The request. -------------------------------------------------------------------------- */

int request_read(const uint8_t *bytes, size_t len, const char *tag, Request *req, Err *e) {
    char why[160];
    int oom;
    memset(req, 0, sizeof *req);
    if (bytes == NULL && len > 0)
        return fail(e, KERBLAM_STATUS_INVALID_INPUT, "the request is a null pointer with length %zu", len);
    req->doc = json_parse(bytes, len, why, sizeof why, &oom);
    if (req->doc == NULL)
        return fail(e, oom ? KERBLAM_STATUS_BACKEND_ERROR : KERBLAM_STATUS_INVALID_INPUT,
                    "the request is not valid JSON: %s", why);
    const Json *root = json_root(req->doc);

    /* The tag, then the plan schema (a schema we do not accept is "unsupported" even when the
     * rest is a plan of another shape), then everything else. */
    if (!json_str_eq(json_get(root, "request"), tag))
        return fail(e, KERBLAM_STATUS_INVALID_INPUT, "the request is not a %s message (its \"request\" tag is %s)",
                    tag, json_is(json_get(root, "request"), JSON_STRING) ? json_get_str(root, "request") : "missing");
    const Json *plan = json_get(root, "plan");
    const char *schema = json_get_str(plan, "schema");
    unsigned long major = 0;
    char *end = NULL;
    if (schema != NULL && strncmp(schema, "kerblam.plan/v", 14) == 0 && schema[14] >= '0' && schema[14] <= '9')
        major = strtoul(schema + 14, &end, 10);
    if (end == NULL || *end != '\0')
        return fail(e, KERBLAM_STATUS_INVALID_INPUT, "plan.schema is %s%s%s, not kerblam.plan/vN",
                    schema ? "\"" : "", schema ? schema : "missing", schema ? "\"" : "");
    if (major < PLAN_SCHEMA_MIN || major > PLAN_SCHEMA_MAX)
        return fail(e, KERBLAM_STATUS_UNSUPPORTED, "backend " CBUILD_NAME " accepts kerblam.plan/v%d to v%d, the plan is %s",
                    PLAN_SCHEMA_MIN, PLAN_SCHEMA_MAX, schema);

    static const char *const ACTIONS[] = {"package", "run", NULL};
    const Json *paths, *options, *m;
    if (want_enum(e, tag, root, "", "action", ACTIONS) < 0 || check_plan(e, tag, plan) < 0 ||
        want(e, tag, root, "", "paths", JSON_OBJECT, REQUIRED, &paths) < 0 ||
        want(e, tag, root, "", "options", JSON_OBJECT, OPTIONAL, &options) < 0)
        return -1;
    static const char *const PATHS[] = {"root", "kerblam", "output_dir", "temp_dir", NULL};
    for (const char *const *k = PATHS; *k; k++) {
        if (want(e, tag, paths, "paths", *k, JSON_STRING, REQUIRED, &m) < 0) return -1;
        if (m->str[0] != '/' || strlen(m->str) != m->len) /* a \u0000 would cut a C string short */
            return bad(e, tag, "paths", *k, "must be an absolute path (and hold no NUL)");
    }
    static const char *const FLAGS[] = {"force", "embed_image", "native", "no_cache", "conformance_panic", NULL};
    for (const char *const *k = FLAGS; *k; k++)
        if (want(e, tag, options, "options", *k, JSON_BOOL, OPTIONAL, &m) < 0) return -1;
    static const char *const NULLABLE_STRINGS[] = {"format", "save_image", "base_archive", "image_archive", "network", NULL};
    for (const char *const *k = NULLABLE_STRINGS; *k; k++)
        if (want(e, tag, options, "options", *k, JSON_STRING, NULLABLE, &m) < 0) return -1;
    if (want_array_of(e, tag, options, "options", "args", JSON_STRING, OPTIONAL) < 0) return -1;

    req->action = json_get_str(root, "action");
    req->plan = plan;
    req->root = json_get_str(paths, "root");
    req->kerblam = json_get_str(paths, "kerblam");
    req->output_dir = json_get_str(paths, "output_dir");
    req->temp_dir = json_get_str(paths, "temp_dir");
    const Json *force = json_get(options, "force");
    req->force = json_is(force, JSON_BOOL) && force->boolean;
    return check_supported(req, options, e);
}

void request_free(Request *req) {
    json_free(req->doc);
    req->doc = NULL;
}

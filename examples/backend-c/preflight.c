/* preflight.c: the plan's checks, run before anything is written.
 *
 * Four kinds (schemas/plan.json, "Preflight"):
 *   disk-space   the filesystem holding `path` has `bytes` free (statvfs: f_bavail * f_frsize, what
 *                an unprivileged user may use). Checks on one filesystem need their bytes together.
 *   writable     the nearest existing ancestor of `path` is a directory we may write (access W_OK).
 *   tool         one of `names` is an executable file on PATH (or at that path, if it has a '/').
 *   file-exists  `path` exists.
 * Paths are relative to paths.root unless absolute; `$TMPDIR` means paths.temp_dir.
 * `$ENGINE_STORAGE` and `$ENGINE_TMPDIR` name a container engine's own directories, which only a
 * backend driving that engine can resolve; cbuild drives none at package time, so it refuses them.
 *
 * Every check runs, and all failures are reported together in one status-1 error whose help says
 * how to fix each kind, so the user fixes everything in one go. */
#define _POSIX_C_SOURCE 200809L
#include "cbuild.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

void resolve_path(const Request *req, const char *base, const char *path, StrBuf *out) {
    if (strcmp(path, "$TMPDIR") == 0) {
        sb_puts(out, req->temp_dir);
    } else if (strncmp(path, "$TMPDIR/", 8) == 0) {
        sb_printf(out, "%s/%s", req->temp_dir, path + 8);
    } else if (path[0] == '/') {
        sb_puts(out, path);
    } else if (strcmp(path, ".") == 0 || *path == '\0') {
        sb_puts(out, base);
    } else {
        sb_printf(out, "%s/%s", base, path);
    }
}

/* The nearest existing ancestor of `path` (itself included) into `out`; 0 if there is one. */
static int existing_ancestor(const char *path, StrBuf *out, struct stat *st) {
    out->len = 0;
    sb_puts(out, path);
    while (out->data != NULL && !out->oom) {
        if (stat(out->data, st) == 0) return 0;
        char *slash = strrchr(out->data, '/');
        if (slash == NULL) return -1;
        if (slash == out->data) { /* up to the root directory itself */
            if (out->len == 1) return -1;
            out->len = 1;
        } else {
            out->len = (size_t)(slash - out->data);
        }
        out->data[out->len] = '\0';
    }
    return -1;
}

/* "1.5 GiB (1610612736 bytes)", or "512 B". */
static void human(StrBuf *out, uint64_t bytes) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0) sb_printf(out, "%llu B", (unsigned long long)bytes);
    else sb_printf(out, "%.1f %s (%llu bytes)", v, units[u], (unsigned long long)bytes);
}

static int is_executable_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0;
}

/* Whether `name` is on PATH (an empty PATH entry is the current directory, as for sh). */
static int find_tool(const char *name) {
    if (strchr(name, '/') != NULL) return is_executable_file(name);
    const char *path = getenv("PATH");
    if (path == NULL || *name == '\0') return 0;
    StrBuf candidate = STRBUF_INIT;
    int found = 0;
    for (const char *p = path; !found; p++) {
        const char *end = strchr(p, ':');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        candidate.len = 0;
        if (n == 0) sb_puts(&candidate, ".");
        else sb_add(&candidate, p, n);
        sb_printf(&candidate, "/%s", name);
        found = candidate.data != NULL && is_executable_file(candidate.data);
        if (end == NULL) break;
        p = end;
    }
    sb_free(&candidate);
    return found;
}

/* Disk-space needs, grouped by filesystem (st_dev of the nearest existing ancestor). */
typedef struct {
    dev_t dev;
    char *at;       /* the existing directory statvfs looks at */
    uint64_t bytes; /* needed there in all */
    StrBuf needs;   /* "P: H needed (why)" for each check, "; "-separated */
    const char *first_path, *first_why; /* the first check, for the message of a lone check */
    uint64_t first_bytes;
    size_t count;
} Disk;

/* What failed, and the hints saying how to fix it. */
typedef struct {
    StrBuf reasons;
    unsigned hints; /* HINT_* bits */
} Failures;

enum { HINT_DISK = 1, HINT_WRITABLE = 2, HINT_TOOL = 4, HINT_FILE = 8, HINT_FORCE = 16, HINT_ENGINE = 32 };

static StrBuf *failed(Failures *f, unsigned hint) {
    if (f->reasons.len > 0) sb_puts(&f->reasons, "; ");
    f->hints |= hint;
    return &f->reasons;
}

static int names_engine_dir(const char *path) {
    static const char *const dirs[] = {"$ENGINE_STORAGE", "$ENGINE_TMPDIR"};
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(dirs[i]);
        if (strncmp(path, dirs[i], n) == 0 && (path[n] == '\0' || path[n] == '/')) return 1;
    }
    return 0;
}

/* Runs one check of a plan's preflight list; disk-space checks only join their group. */
static void run_check(const Request *req, const Json *c, Disk *disks, size_t *ndisks, Failures *f) {
    const char *check = json_get_str(c, "check"), *path = json_get_str(c, "path");
    StrBuf p = STRBUF_INIT, at = STRBUF_INIT;
    struct stat st;

    if (path != NULL && names_engine_dir(path)) {
        sb_printf(failed(f, HINT_ENGINE), "the %s check at %s names a directory of a container engine, "
                  "which only a backend driving that engine can resolve", check, path);
        return;
    }
    if (strcmp(check, "tool") == 0) {
        const Json *names = json_get(c, "names");
        int found = 0;
        for (const Json *n = names->first; n != NULL && !found; n = n->next) found = find_tool(n->str);
        if (!found) {
            StrBuf *r = failed(f, HINT_TOOL);
            sb_puts(r, names->count ? "none of " : "no tool named, ");
            for (const Json *n = names->first; n != NULL; n = n->next)
                sb_printf(r, "%s%s", n->str, n->next ? ", " : "");
            sb_puts(r, " found on PATH");
        }
        return;
    }
    resolve_path(req, req->root, path, &p);
    const char *where = p.data ? p.data : path;
    if (strcmp(check, "file-exists") == 0) {
        if (stat(where, &st) != 0) sb_printf(failed(f, HINT_FILE), "%s does not exist", where);
    } else if (existing_ancestor(where, &at, &st) < 0) {
        sb_printf(failed(f, strcmp(check, "writable") == 0 ? HINT_WRITABLE : HINT_DISK),
                  "no existing directory above %s", where);
    } else if (strcmp(check, "writable") == 0) {
        if (!S_ISDIR(st.st_mode)) sb_printf(failed(f, HINT_WRITABLE), "%s is not a directory", at.data);
        else if (access(at.data, W_OK) != 0) sb_printf(failed(f, HINT_WRITABLE), "%s is not writable", at.data);
    } else { /* disk-space: join the group of its filesystem */
        uint64_t bytes = 0;
        json_uint(json_get(c, "bytes"), UINT64_MAX, &bytes);
        size_t i = 0;
        while (i < *ndisks && disks[i].dev != st.st_dev) i++;
        Disk *d = &disks[i];
        if (i == *ndisks) {
            (*ndisks)++;
            memset(d, 0, sizeof *d);
            d->dev = st.st_dev;
            d->at = at.data; /* keep it: freed with the group */
            at.data = NULL;
            d->first_path = json_get_str(c, "path");
            d->first_why = json_get_str(c, "why");
            d->first_bytes = bytes;
        }
        d->bytes = bytes > UINT64_MAX - d->bytes ? UINT64_MAX : d->bytes + bytes;
        if (d->count++ > 0) sb_puts(&d->needs, "; ");
        sb_printf(&d->needs, "%s: ", where);
        human(&d->needs, bytes);
        sb_printf(&d->needs, " needed (%s)", json_get_str(c, "why"));
    }
    f->reasons.oom |= p.oom | at.oom;
    sb_free(&p);
    sb_free(&at);
}

/* Checks each disk group against what its filesystem has free. */
static void check_disk(const Request *req, Disk *d, Failures *f) {
    struct statvfs vfs;
    if (d->at == NULL || statvfs(d->at, &vfs) != 0) {
        sb_printf(failed(f, HINT_DISK), "cannot read the free space at %s", d->at ? d->at : "?");
        return;
    }
    uint64_t avail = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
    if (avail >= d->bytes) return;
    StrBuf *r = failed(f, HINT_DISK);
    if (d->count == 1) {
        StrBuf p = STRBUF_INIT;
        resolve_path(req, req->root, d->first_path, &p);
        sb_printf(r, "not enough disk space at %s: ", p.data ? p.data : d->first_path);
        human(r, d->first_bytes);
        sb_printf(r, " needed (%s), ", d->first_why);
        sb_free(&p);
    } else {
        sb_printf(r, "not enough disk space on the filesystem of %s: ", d->at);
        human(r, d->bytes);
        sb_puts(r, " needed in all, ");
    }
    human(r, avail);
    sb_puts(r, " available");
    if (d->count > 1) sb_printf(r, "; %s", d->needs.data);
}

/* The files execute will write: each must be new (unless --force) in a writable directory. */
static void check_artifacts(const Request *req, Failures *f) {
    const Json *artifacts = json_get(json_get(req->plan, "backend"), "artifacts");
    for (const Json *a = artifacts ? artifacts->first : NULL; a != NULL; a = a->next) {
        StrBuf p = STRBUF_INIT, at = STRBUF_INIT;
        struct stat st;
        resolve_path(req, req->output_dir, json_get_str(a, "path"), &p);
        if (p.data == NULL) {
            f->reasons.oom = 1;
            continue;
        }
        if (lstat(p.data, &st) == 0) {
            if (S_ISDIR(st.st_mode)) sb_printf(failed(f, HINT_WRITABLE), "%s is a directory", p.data);
            else if (!req->force) sb_printf(failed(f, HINT_FORCE), "%s already exists", p.data);
        }
        char *slash = strrchr(p.data, '/');
        if (slash != NULL) *slash = '\0';
        if (existing_ancestor(slash == p.data ? "/" : p.data, &at, &st) < 0 || !S_ISDIR(st.st_mode))
            sb_printf(failed(f, HINT_WRITABLE), "no directory to write %s in", json_get_str(a, "path"));
        else if (access(at.data, W_OK) != 0)
            sb_printf(failed(f, HINT_WRITABLE), "%s is not writable", at.data);
        sb_free(&p);
        sb_free(&at);
    }
}

int preflight_run(const Request *req, Err *e) {
    const Json *lists[2] = {json_get(req->plan, "preflight"),
                            json_get(json_get(req->plan, "backend"), "preflight")};
    size_t total = 0;
    for (int i = 0; i < 2; i++) total += lists[i] ? lists[i]->count : 0;
    Disk *disks = calloc(total ? total : 1, sizeof *disks);
    if (disks == NULL) return fail(e, KERBLAM_STATUS_BACKEND_ERROR, "out of memory");
    size_t ndisks = 0;
    Failures f = {STRBUF_INIT, 0};

    for (int i = 0; i < 2; i++)
        for (const Json *c = lists[i] ? lists[i]->first : NULL; c != NULL; c = c->next)
            run_check(req, c, disks, &ndisks, &f);
    for (size_t i = 0; i < ndisks; i++) {
        check_disk(req, &disks[i], &f);
        free(disks[i].at);
        sb_free(&disks[i].needs);
    }
    free(disks);
    check_artifacts(req, &f);

    int rc = 0;
    if (f.reasons.oom) {
        rc = fail(e, KERBLAM_STATUS_BACKEND_ERROR, "out of memory");
    } else if (f.reasons.len > 0) {
        rc = fail(e, KERBLAM_STATUS_BACKEND_ERROR, "preflight failed: %s", f.reasons.data);
        static const struct { unsigned bit; const char *text; } HINTS[] = {
            {HINT_DISK, "free some space there, or write elsewhere (TMPDIR for temporary files)"},
            {HINT_WRITABLE, "choose a destination you can write to, or fix its permissions"},
            {HINT_TOOL, "install the tool, or choose another --backend"},
            {HINT_FILE, "the plan names a file that is not there: recompile it (`kerblam plan`) from the tree as it is now"},
            {HINT_FORCE, "pass --force to overwrite it"},
            {HINT_ENGINE, "use a backend that drives a container engine (docker, podman) for this plan"},
        };
        StrBuf help = STRBUF_INIT;
        sb_puts(&help, "nothing was written");
        for (size_t i = 0; i < sizeof HINTS / sizeof HINTS[0]; i++)
            if (f.hints & HINTS[i].bit) sb_printf(&help, "; %s", HINTS[i].text);
        fail_help(e, "%s", help.data ? help.data : "nothing was written");
        sb_free(&help);
    }
    sb_free(&f.reasons);
    return rc;
}

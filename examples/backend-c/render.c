/* render.c: what cbuild makes of a plan.
 *
 * The Containerfile (also the plan's `rendered` Containerfile, so `kerblam plan --show
 * Containerfile` prints exactly what gets built):
 *
 *     # The image process_exec for process, rendered by kerblam's cbuild backend.
 *     FROM process_exec-base                      (a recipe base: built first as <tag>-base)
 *     COPY ["l0", "/kerblam"]                     (one COPY per layer, staged as l0, l1, ...)
 *     COPY ["l1", "/kerblam-replay.sh"]
 *     ENV NAME="value"                            (plan.env, if any)
 *     LABEL "dev.kerblam.pipe"="process" \        (plan.image.labels)
 *           "org.opencontainers.image.title"="process"
 *     WORKDIR /
 *     ENTRYPOINT ["/bin/sh","/kerblam-replay.sh"]
 *     CMD []
 *
 * The rules come from engine behaviour (kerblam's own renderer, libs/render, follows the same):
 * COPY in JSON form with one source works with Docker's legacy builder, BuildKit and podman;
 * `COPY --chmod` needs BuildKit, so modes are set on the staged files instead; values are
 * double-quoted with `\`, `"` and `$` escaped so no variable is expanded; COPY's JSON form cannot
 * escape `$`, so paths holding `$`, `"`, `\` or a line break are refused (status 5); `CMD []`
 * keeps a CMD of the base image from being appended to the entrypoint.
 *
 * The build script (<stem>.build.sh, the artifact) is POSIX sh. Every word that comes from the
 * plan or the paths is single-quoted (see sh_quote), so no file name or generated text can run as
 * a command; comments carry plan text only with line breaks flattened. */
#include "cbuild.h"

#include <string.h>

/* ---- Quoting. -------------------------------------------------------------------------------- */

/* A JSON string that holds a NUL (from \u0000) cannot go into a file name, a shell word or a
 * Containerfile; such a plan is refused. */
static int has_nul(const Json *s) { return strlen(s->str) != s->len; }

/* Appends `s` as one single-quoted sh word: 'it'\''s' for it's. */
static void sh_quote(StrBuf *out, const char *s) {
    sb_puts(out, "'");
    for (const char *q; (q = strchr(s, '\'')) != NULL; s = q + 1) {
        sb_add(out, s, (size_t)(q - s));
        sb_puts(out, "'\\''");
    }
    sb_puts(out, s);
    sb_puts(out, "'");
}

/* Appends `s` as an sh word: as it is when it is plainly safe (for readable usage lines), else
 * single-quoted. */
static void sh_word(StrBuf *out, const char *s) {
    static const char SAFE[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./-+:,@%=";
    if (*s != '\0' && strspn(s, SAFE) == strlen(s)) sb_puts(out, s);
    else sh_quote(out, s);
}

/* Appends `s` with every control character (line breaks above all) as a space: for comments. */
static void one_line(StrBuf *out, const char *s) {
    for (; *s; s++) sb_add(out, (unsigned char)*s < 0x20 ? " " : s, 1);
}

/* Appends `s` as a double-quoted Containerfile word, `\`, `"` and `$` escaped. */
static void cf_quote(StrBuf *out, const char *s) {
    sb_puts(out, "\"");
    for (; *s; s++) {
        if (*s == '\\' || *s == '"' || *s == '$') sb_puts(out, "\\");
        sb_add(out, (unsigned char)*s < 0x20 ? " " : s, 1);
    }
    sb_puts(out, "\"");
}

/* A path (or image name) that a Containerfile can carry as it is. */
static int cf_path_ok(const Json *s) {
    return s->len > 0 && !has_nul(s) && strpbrk(s->str, "$\"\\\n\r") == NULL;
}

static int refuse(Err *e, const char *what, const char *value) {
    return fail(e, KERBLAM_STATUS_UNSUPPORTED,
                "%s \"%s\" is empty or holds `$`, `\"`, `\\`, a line break or a NUL, which the "
                "cbuild backend cannot write into a Containerfile and a build script safely",
                what, value);
}

/* ---- The Containerfile. ---------------------------------------------------------------------- */

/* Whether an image name (a tag or a reference) has no space or quoting character in it. */
static int image_name_ok(const Json *s) { return cf_path_ok(s) && strpbrk(s->str, " \t'") == NULL; }

int render_containerfile(const Json *plan, StrBuf *out, Err *e) {
    const Json *image = json_get(plan, "image"), *base = json_get(plan, "base");
    const Json *tag = json_get(image, "tag");
    if (!image_name_ok(tag)) return refuse(e, "the image tag", tag->str);

    sb_puts(out, "# The image ");
    one_line(out, tag->str);
    sb_puts(out, " for ");
    one_line(out, json_get_str(plan, "name"));
    sb_puts(out, ", rendered by kerblam's " CBUILD_NAME " backend.\nFROM ");
    const char *kind = json_get_str(base, "kind");
    if (strcmp(kind, "recipe") == 0) {
        sb_printf(out, "%s-base\n", tag->str);
    } else if (strcmp(kind, "image") == 0) {
        const Json *ref = json_get(base, "reference");
        if (!image_name_ok(ref)) return refuse(e, "the base image", ref->str);
        sb_printf(out, "%s\n", ref->str);
    } else {
        sb_puts(out, "scratch\n");
    }

    size_t i = 0;
    for (const Json *l = json_get(plan, "layers")->first; l != NULL; l = l->next, i++) {
        const Json *to = json_get(l, "to");
        if (!cf_path_ok(to)) return refuse(e, "a layer destination", to->str);
        sb_printf(out, "COPY [\"l%zu\", ", i);
        sb_json_string(out, to->str, to->len);
        sb_puts(out, "]\n");
    }

    /* One ENV and one LABEL instruction, a pair per continued line: each instruction is a step
     * (and a layer or a commit for some engines). */
    const char *sep = "ENV ";
    for (const Json *v = json_get(plan, "env")->first; v != NULL; v = v->next, sep = " \\\n    ") {
        const char *name = json_get_str(v, "name");
        if (has_nul(json_get(v, "value"))) return refuse(e, "the value of", name);
        if (*name == '\0' || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != strlen(name))
            return fail(e, KERBLAM_STATUS_UNSUPPORTED, "the environment variable name \"%s\" is not letters, digits and `_`", name);
        sb_printf(out, "%s%s=", sep, name);
        cf_quote(out, json_get_str(v, "value"));
    }
    if (strcmp(sep, "ENV ") != 0) sb_puts(out, "\n");
    sep = "LABEL ";
    for (const Json *v = json_get(image, "labels")->first; v != NULL; v = v->next, sep = " \\\n      ") {
        if (has_nul(v) || strlen(v->key) != v->key_len) return refuse(e, "the label", v->key);
        sb_puts(out, sep);
        cf_quote(out, v->key);
        sb_puts(out, "=");
        cf_quote(out, v->str);
    }
    if (strcmp(sep, "LABEL ") != 0) sb_puts(out, "\n");

    const Json *workdir = json_get(plan, "workdir");
    if (!cf_path_ok(workdir)) return refuse(e, "the workdir", workdir->str);
    sb_printf(out, "WORKDIR %s\nENTRYPOINT [", workdir->str);
    for (const Json *a = json_get(plan, "entrypoint")->first; a != NULL; a = a->next) {
        sb_json_string(out, a->str, a->len); /* JSON form: no shell, no expansion; \n survives */
        if (a->next != NULL) sb_puts(out, ",");
    }
    sb_puts(out, "]\nCMD []\n");
    return 0;
}

/* ---- The build script. ----------------------------------------------------------------------- */

/* The build context directory of the plan: $root, or $root/<context.root>. */
static void context_dir(const Json *plan, StrBuf *out) {
    const char *root = json_get_str(json_get(plan, "context"), "root");
    if (strcmp(root, ".") == 0 || *root == '\0') {
        sb_puts(out, "\"$root\"");
    } else {
        sb_puts(out, "\"$root\"/");
        sh_quote(out, root);
    }
}

static int render_base(const Request *req, StrBuf *s, Err *e) {
    const Json *plan = req->plan, *base = json_get(plan, "base");
    if (strcmp(json_get_str(base, "kind"), "recipe") != 0) return 0;
    const Json *recipe = json_get(base, "path"), *files = json_get(json_get(plan, "context"), "files");
    if (has_nul(recipe)) return refuse(e, "the recipe path", recipe->str);

    sb_puts(s, "\n# 1. The base image: the recipe ");
    one_line(s, recipe->str);
    sb_printf(s, ", built on the plan's build context\n"
                 "#    (its %zu files, staged in $ctx/base: what the plan lists, nothing else).\n"
                 "mkdir \"$ctx/base\"\n"
                 "put() { mkdir -p \"$ctx/base/$(dirname \"$1\")\" && cp -P \"$context/$1\" \"$ctx/base/$1\"; }\n",
              files->count);
    for (const Json *f = files->first; f != NULL; f = f->next) {
        const Json *path = json_get(f, "path");
        if (has_nul(path) || path->len == 0) return refuse(e, "a build context file", path->str);
        sb_puts(s, "put ");
        sh_quote(s, path->str);
        sb_puts(s, "\n");
    }
    sb_puts(s, "$engine build -t ");
    StrBuf base_tag = STRBUF_INIT;
    sb_printf(&base_tag, "%s-base", json_get_str(json_get(plan, "image"), "tag"));
    sh_quote(s, base_tag.data ? base_tag.data : "");
    s->oom |= base_tag.oom;
    sb_free(&base_tag);
    sb_puts(s, " -f \"$root\"/");
    sh_quote(s, recipe->str);
    sb_puts(s, " \"$ctx/base\"\n");
    return 0;
}

static int render_layers(const Request *req, StrBuf *s, Err *e) {
    size_t i = 0;
    sb_puts(s, "\n# 2. The layers kerblam adds, staged as $ctx/l0, $ctx/l1, ... with their modes.\n");
    for (const Json *l = json_get(req->plan, "layers")->first; l != NULL; l = l->next, i++) {
        const Json *from = json_get(l, "from");
        const char *kind = json_get_str(from, "kind");
        uint64_t mode = 0;
        json_uint(json_get(l, "mode"), UINT32_MAX, &mode);
        sb_printf(s, "# l%zu -> ", i);
        one_line(s, json_get_str(l, "to"));
        if (strcmp(kind, "kerblam") == 0) {
            sb_printf(s, ": the kerblam executable\ncp \"$kerblam\" \"$ctx/l%zu\"\n", i);
        } else if (strcmp(kind, "generated") == 0) {
            const Json *text = json_get(from, "text");
            if (has_nul(text)) return refuse(e, "generated text for", json_get_str(l, "to"));
            sb_puts(s, ": text the plan holds\nprintf '%s' ");
            sh_quote(s, text->str);
            sb_printf(s, " >\"$ctx/l%zu\"\n", i);
        } else { /* context: a file or a tree of the build context */
            const Json *path = json_get(from, "path");
            if (has_nul(path) || path->len == 0) return refuse(e, "a context layer path", path->str);
            sb_puts(s, ": ");
            one_line(s, path->str);
            sb_puts(s, " of the build context\ncp -R \"$context\"/");
            sh_quote(s, path->str);
            sb_printf(s, " \"$ctx/l%zu\"\n[ -d \"$ctx/l%zu\" ] || ", i, i); /* a tree keeps its modes */
        }
        sb_printf(s, "chmod %o \"$ctx/l%zu\"\n", (unsigned)(mode & 07777), i);
    }
    return 0;
}

int render_script(const Request *req, StrBuf *s, Err *e) {
    const Json *plan = req->plan;
    const char *tag = json_get_str(json_get(plan, "image"), "tag");
    const Json *context_root = json_get(json_get(plan, "context"), "root");
    if (has_nul(context_root)) return refuse(e, "the build context root", context_root->str);
    StrBuf containerfile = STRBUF_INIT;
    if (render_containerfile(plan, &containerfile, e) < 0) {
        sb_free(&containerfile);
        return -1;
    }

    sb_puts(s, "#!/bin/sh\n# Builds the image ");
    one_line(s, tag);
    sb_puts(s, " for the pipe ");
    one_line(s, json_get_str(plan, "name"));
    sb_puts(s, " with ${ENGINE:-docker}, e.g. ENGINE=podman sh THIS.\n"
               "# Written by kerblam's " CBUILD_NAME " backend from the package plan. It reads the project where\n"
               "# it was packaged (root= below), so run it on this machine, from any directory.\n"
               "set -eu\n"
               "engine=${ENGINE:-docker} # unquoted below on purpose: ENGINE='sudo docker' works\n"
               "root=");
    sh_quote(s, req->root);
    sb_puts(s, "\ncontext=");
    context_dir(plan, s);
    sb_puts(s, "\nkerblam=");
    sh_quote(s, req->kerblam);
    sb_puts(s, "\nctx=$(mktemp -d)\n"
               "trap 'rm -rf \"$ctx\"' EXIT\n"
               "trap 'exit 129' HUP\ntrap 'exit 130' INT\ntrap 'exit 143' TERM\n");

    int rc = 0;
    if (render_base(req, s, e) < 0 || render_layers(req, s, e) < 0) rc = -1;
    if (rc == 0) {
        sb_puts(s, "\n# 3. The Containerfile (`kerblam plan --show Containerfile` prints it), then the image.\n"
                   "printf '%s' ");
        sh_quote(s, containerfile.data ? containerfile.data : "");
        sb_puts(s, " >\"$ctx/Dockerfile\"\n$engine build -t ");
        sh_quote(s, tag);
        sb_puts(s, " \"$ctx\"\nprintf '%s\\n' ");
        StrBuf done = STRBUF_INIT;
        sb_printf(&done, "built the image %s", tag);
        sh_quote(s, done.data ? done.data : "");
        s->oom |= done.oom;
        sb_free(&done);
        sb_puts(s, "\n");
    }
    s->oom |= containerfile.oom;
    sb_free(&containerfile);
    return rc;
}

/* ---- The backend's part of the plan. ----------------------------------------------------------- */

/* `<dir>/<stem><suffix>`, or `<stem><suffix>` when dir is "." (kerblam's Output::file). */
static void output_file(const Json *plan, const char *suffix, StrBuf *out) {
    const Json *output = json_get(plan, "output");
    const char *dir = json_get_str(output, "dir");
    size_t n = strlen(dir);
    if (strcmp(dir, "/") == 0) {
        sb_puts(out, "/");
    } else if (strcmp(dir, ".") != 0 && n > 0) {
        while (n > 0 && dir[n - 1] == '/') n--;
        sb_add(out, dir, n);
        sb_puts(out, "/");
    }
    sb_printf(out, "%s%s", json_get_str(output, "stem"), suffix);
}

/* How many bytes the script may take: every text it embeds, four times over (quoting turns ' into
 * '\''), and 1 MiB of slack. Computed from the plan alone, so the plan stays deterministic. */
static uint64_t script_bytes(const Json *plan, size_t containerfile_len, uint64_t *embedded) {
    uint64_t n = containerfile_len;
    for (const Json *l = json_get(plan, "layers")->first; l != NULL; l = l->next)
        n += json_get(json_get(l, "from"), "text") ? json_get(json_get(l, "from"), "text")->len : 0;
    for (const Json *f = json_get(json_get(plan, "context"), "files")->first; f != NULL; f = f->next)
        n += json_get(f, "path")->len + 64;
    *embedded = n;
    return 4 * n + (1 << 20);
}

int render_backend_part(const Request *req, StrBuf *out, Err *e) {
    const Json *plan = req->plan;
    const Json *stem = json_get(json_get(plan, "output"), "stem");
    const Json *dir = json_get(json_get(plan, "output"), "dir");
    if (stem->len == 0 || has_nul(stem) || has_nul(dir) || strpbrk(stem->str, "/\n\r") != NULL ||
        strpbrk(dir->str, "\n\r") != NULL)
        return fail(e, KERBLAM_STATUS_UNSUPPORTED, "cannot name a file after plan.output (dir \"%s\", stem \"%s\")",
                    dir->str, stem->str);

    /* Render the script once, only to refuse now what execute could not write. */
    StrBuf scratch = STRBUF_INIT, containerfile = STRBUF_INIT, path = STRBUF_INIT;
    int rc = render_script(req, &scratch, e);
    if (rc == 0) rc = render_containerfile(plan, &containerfile, e);
    sb_free(&scratch);
    if (rc < 0) {
        sb_free(&containerfile);
        return -1;
    }
    output_file(plan, CBUILD_SUFFIX, &path);
    const char *tag = json_get_str(json_get(plan, "image"), "tag");
    uint64_t embedded;
    uint64_t bytes = script_bytes(plan, containerfile.len, &embedded);

    sb_puts(out, "{\"name\":\"" CBUILD_NAME "\",\"artifacts\":[{\"kind\":\"file\",\"path\":");
    sb_json_cstr(out, path.data);
    sb_puts(out, ",\"format\":\"" CBUILD_FORMAT "\",\"contents\":[");
    StrBuf line = STRBUF_INIT;
    sb_printf(&line, "a POSIX sh script that builds the image %s with ${ENGINE:-docker}", tag);
    sb_json_cstr(out, line.data);
    /* Its own checks: the output directory (relative to the root, as plan paths are) must be
     * writable and hold the script. */
    sb_puts(out, "]}],\"preflight\":[{\"check\":\"writable\",\"path\":");
    sb_json_cstr(out, json_get_str(json_get(plan, "output"), "dir"));
    sb_puts(out, "},{\"check\":\"disk-space\",\"path\":");
    sb_json_cstr(out, json_get_str(json_get(plan, "output"), "dir"));
    line.len = 0;
    sb_printf(&line, "the build script embeds %llu bytes of the plan (generated text, the build context's "
                     "file names, the Containerfile), up to 4 times over once quoted, and 1 MiB of slack",
              (unsigned long long)embedded);
    sb_printf(out, ",\"bytes\":%llu,\"why\":", (unsigned long long)bytes);
    sb_json_cstr(out, line.data);
    sb_puts(out, "}],\"rendered\":[{\"name\":\"Containerfile\",\"text\":");
    sb_json_cstr(out, containerfile.data ? containerfile.data : "");
    sb_puts(out, "}],\"usage\":[");
    line.len = 0;
    sb_puts(&line, "build the image with: sh ");
    sh_word(&line, path.data ? path.data : "");
    sb_json_cstr(out, line.data);
    sb_puts(out, ",");
    line.len = 0;
    sb_puts(&line, "or with podman: ENGINE=podman sh ");
    sh_word(&line, path.data ? path.data : "");
    sb_json_cstr(out, line.data);
    sb_puts(out, "]}");
    out->oom |= line.oom | path.oom | containerfile.oom;
    sb_free(&line);
    sb_free(&path);
    sb_free(&containerfile);
    return 0;
}

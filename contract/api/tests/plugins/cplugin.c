/* A TEST FIXTURE, not an example: a kerblam backend plugin in C whose behaviour is chosen at
 * compile time with -D flags, so the tests can build deliberately broken plugins (and the
 * conformance kit must fail most of them). Without flags it answers every request with ok, ignoring
 * preflight checks and cancellation: a liar. For a complete, conforming backend in C, read
 * examples/backend-c. Flags:
 *   NAME="x"          backend name (default "cplugin")
 *   ABI=N             value of kerblam_backend_abi_version (default KERBLAM_BACKEND_ABI_VERSION)
 *   NO_EXECUTE        leave out kerblam_backend_execute (a missing symbol)
 *   GARBAGE_DESCRIBE  describe returns bytes that are not JSON
 *   NON_UTF8          execute returns a buffer that is not UTF-8
 *   TRUNCATED         execute returns a JSON reply cut short
 *   LATE_CALLBACK     execute returns, then a thread calls host->log 100 ms later
 *   HANG              execute sleeps 30 s ignoring cancellation
 *   HANG_POLL         execute loops until host->is_cancelled says yes, then returns "cancelled"
 *   HANG_DESCRIBE     describe sleeps 30 s
 *   HANG_PLAN         exports kerblam_backend_plan, which sleeps 30 s before answering an empty part
 *   DETECT_OVERLAP    execute takes 50 ms and fails with "overlap" if another execute is running
 *   REENTRANT         describe claims "reentrant": true
 *   LEAKY_FREE        kerblam_backend_free frees nothing
 *   IGNORE_CANCEL     execute polls is_cancelled twice, ignores what it says and returns ok
 *   WRONG_TAG         describe's tag is not kerblam.describe/v1
 *   BAD_NAME          describe's name is not a valid backend name
 *   SCHEMA_RANGE      describe claims plan schemas v3..v4 only
 *   DESCRIBE_ABI2     describe says ABI 2.0 while kerblam_backend_abi_version says 1.0
 *   CLAIM_ALL         describe claims every capability (so the CLI hands it any plan)
 *   EXIT_CODE=N       the ok reply says exit_code N (a `run` result)
 *   PLAN_ARTIFACT     exports kerblam_backend_plan, whose part of the plan names a file artifact
 *                     `cplugin.out`; execute reports it as written but writes nothing
 *   WRITE_ARTIFACT    with PLAN_ARTIFACT: execute does write `cplugin.out` (in paths.output_dir,
 *                     found crudely in the request), then reports it
 *   PLAN_TWO          with PLAN_ARTIFACT: the plan also names `cplugin.second`, which execute
 *                     reports but never writes
 *   EXTRA_ARTIFACT    execute reports a sif artifact at /etc/passwd that no plan names
 *   KIND_MISMATCH     execute fails with status 1 (backend) but an error of kind "cancelled"
 *   STATUS_3          execute returns status 3 (cancelled) whatever the host says
 * With LATE_CALLBACK, every call after the first takes 300 ms, so a host making two calls (`kerblam
 * run`: build, then run) is still alive when the first call's late callback comes.
 */
#include <kerblam_backend.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef NAME
#define NAME "cplugin"
#endif
#ifndef ABI
#define ABI KERBLAM_BACKEND_ABI_VERSION
#endif
#ifdef REENTRANT
#define REENTRANT_JSON "true"
#else
#define REENTRANT_JSON "false"
#endif

static KerblamBuf make(const char *s, size_t len) {
    KerblamBuf b;
    b.ptr = malloc(len ? len : 1);
    memcpy(b.ptr, s, len);
    b.len = len;
    b.cap = len;
    return b;
}

static KerblamBuf make_str(const char *s) { return make(s, strlen(s)); }

uint32_t kerblam_backend_abi_version(void) { return ABI; }

#ifdef WRONG_TAG
#define DESCRIBE_TAG "kerblam.describe/v9"
#else
#define DESCRIBE_TAG "kerblam.describe/v1"
#endif
#ifdef BAD_NAME
#define DESCRIBE_NAME "Not A Name!"
#else
#define DESCRIBE_NAME NAME
#endif
#ifdef SCHEMA_RANGE
#define SCHEMA_JSON "{\"min\":3,\"max\":4}"
#else
#define SCHEMA_JSON "{\"min\":2,\"max\":2}"
#endif
#ifdef DESCRIBE_ABI2
#define DESCRIBE_ABI_JSON "{\"major\":2,\"minor\":0}"
#else
#define DESCRIBE_ABI_JSON "{\"major\":1,\"minor\":1}"
#endif

#ifdef CLAIM_ALL
#define CAPS_JSON \
    "\"actions\":[\"package\",\"run\"],\"sources\":[\"pipe\",\"freeze\"]," \
    "\"base_kinds\":[\"scratch\",\"image\",\"recipe\",\"archive\"]," \
    "\"layer_sources\":[\"generated\",\"context\",\"kerblam\",\"host\"],\"mounts\":true," \
    "\"embed_image\":true," \
    "\"artifact_kinds\":[\"engine-image\",\"context-archive\",\"oci-archive\"," \
    "\"image-archive\",\"sif\",\"tarball\",\"activate-script\",\"metadata-json\",\"file\"]," \
    "\"preflight_checks\":[\"disk-space\",\"writable\",\"tool\",\"file-exists\"],"
#else
#define CAPS_JSON \
    "\"actions\":[\"package\"],\"sources\":[\"pipe\"],\"base_kinds\":[\"scratch\"]," \
    "\"layer_sources\":[\"generated\"],\"preflight_checks\":[\"file-exists\"]," \
    "\"artifact_kinds\":[\"file\"],"
#endif

static const char *DESCRIBE =
    "{\"describe\":\"" DESCRIBE_TAG "\",\"name\":\"" DESCRIBE_NAME "\",\"version\":\"0.0.1\","
    "\"abi\":" DESCRIBE_ABI_JSON ",\"plan_schema\":" SCHEMA_JSON ","
    "\"capabilities\":{" CAPS_JSON "\"future_field\":true,"
    "\"reentrant\":" REENTRANT_JSON "}}";

int32_t kerblam_backend_describe(const uint8_t *hello, size_t hello_len, KerblamBuf *out) {
    (void)hello;
    (void)hello_len;
#ifdef HANG_DESCRIBE
    sleep(30);
#endif
#ifdef GARBAGE_DESCRIBE
    *out = make_str("\x01garbage{{");
#else
    *out = make_str(DESCRIBE);
#endif
    return 0;
}

static KerblamHostV1 saved;

static void *late(void *arg) {
    (void)arg;
    usleep(100000);
    saved.log(saved.ctx, 2, (const uint8_t *)"late", 4);
    return NULL;
}

#if defined(HANG_PLAN) && !defined(PLAN_ARTIFACT)
int32_t kerblam_backend_plan(const uint8_t *req, size_t len, KerblamBuf *out) {
    (void)req;
    (void)len;
    sleep(30);
    *out = make_str("{\"name\":\"" NAME "\"}");
    return KERBLAM_STATUS_OK;
}
#endif

#ifdef PLAN_ARTIFACT
int32_t kerblam_backend_plan(const uint8_t *req, size_t len, KerblamBuf *out) {
    if (len == 0 || req[0] != '{') {
        *out = make_str("{\"kind\":\"invalid-input\",\"message\":\"the request is not JSON\"}");
        return KERBLAM_STATUS_INVALID_INPUT;
    }
#ifdef PLAN_TWO
    *out = make_str("{\"name\":\"" NAME "\",\"artifacts\":[{\"kind\":\"file\",\"path\":\"cplugin.out\","
                    "\"contents\":[]},{\"kind\":\"file\",\"path\":\"cplugin.second\",\"contents\":[]}]}");
#else
    *out = make_str("{\"name\":\"" NAME "\",\"artifacts\":[{\"kind\":\"file\",\"path\":\"cplugin.out\","
                    "\"contents\":[\"what the fixture says it writes\"]}]}");
#endif
    return KERBLAM_STATUS_OK;
}

/* The value of "output_dir" in a request, crudely (the fixture has no JSON parser). */
static void output_dir(const uint8_t *req, size_t len, char *dir, size_t cap) {
    const char *key = "\"output_dir\":\"";
    char *text = malloc(len + 1);
    memcpy(text, req, len);
    text[len] = 0;
    char *at = strstr(text, key);
    dir[0] = 0;
    if (at) {
        at += strlen(key);
        char *end = strchr(at, '"');
        size_t n = end ? (size_t)(end - at) : 0;
        if (n >= cap) n = cap - 1;
        memcpy(dir, at, n);
        dir[n] = 0;
    }
    free(text);
}
#endif

#ifndef NO_EXECUTE
int32_t kerblam_backend_execute(const uint8_t *req, size_t len, const KerblamHostV1 *host, KerblamBuf *out) {
#ifdef EXIT_CODE
#define STR2(x) #x
#define STR(x) STR2(x)
    const char *ok = "{\"artifacts\":[],\"exit_code\":" STR(EXIT_CODE) ",\"notes\":[\"from C\"]}";
#else
    const char *ok = "{\"artifacts\":[],\"exit_code\":null,\"notes\":[\"from C\"]}";
#endif
#if defined(NON_UTF8)
    *out = make("{\"notes\":[\"\xff\xfe\"]}", 16);
    return 0;
#elif defined(TRUNCATED)
    *out = make(ok, 20);
    return 0;
#elif defined(LATE_CALLBACK)
    pthread_t t;
    static int calls = 0;
    if (calls++ > 0) usleep(300000);
    saved = *host;
    pthread_create(&t, NULL, late, NULL);
    pthread_detach(t);
#elif defined(HANG)
    sleep(30);
#elif defined(DETECT_OVERLAP)
    static int inflight = 0;
    int n = __atomic_add_fetch(&inflight, 1, __ATOMIC_SEQ_CST);
    usleep(50000);
    __atomic_sub_fetch(&inflight, 1, __ATOMIC_SEQ_CST);
    if (n > 1) {
        *out = make_str("{\"kind\":\"backend\",\"message\":\"overlap\"}");
        return 1;
    }
#elif defined(IGNORE_CANCEL)
    host->is_cancelled(host->ctx);
    host->is_cancelled(host->ctx);
#elif defined(HANG_POLL)
    while (!host->is_cancelled(host->ctx)) usleep(10000);
    *out = make_str("{\"kind\":\"cancelled\",\"message\":\"stopped when asked\"}");
    return 3;
#elif defined(KIND_MISMATCH)
    (void)req;
    (void)len;
    *out = make_str("{\"kind\":\"cancelled\",\"message\":\"a failure that says it was cancelled\"}");
    return KERBLAM_STATUS_BACKEND_ERROR;
#elif defined(STATUS_3)
    (void)req;
    (void)len;
    *out = make_str("{\"kind\":\"cancelled\",\"message\":\"stopped on its own\"}");
    return KERBLAM_STATUS_CANCELLED;
#elif defined(EXTRA_ARTIFACT)
    (void)host;
    if (len > 0 && req[0] == '{') {
        *out = make_str("{\"artifacts\":[{\"kind\":\"sif\",\"path\":\"/etc/passwd\",\"bytes\":null,"
                        "\"sha256\":null}],\"exit_code\":null,\"notes\":[]}");
        return KERBLAM_STATUS_OK;
    }
#elif defined(PLAN_ARTIFACT)
    if (len > 0 && req[0] == '{') {
        char dir[4096];
        output_dir(req, len, dir, sizeof dir);
        char path[4200];
        snprintf(path, sizeof path, "%s/cplugin.out", dir);
#ifdef WRITE_ARTIFACT
        FILE *f = fopen(path, "w");
        if (f) {
            fputs("written by the fixture\n", f);
            fclose(f);
        }
#endif
#ifdef FAIL_AFTER_WRITE
        /* Fails once its file is written: the host removes it. */
        *out = make_str("{\"kind\":\"backend\",\"message\":\"failed after writing\"}");
        return KERBLAM_STATUS_BACKEND_ERROR;
#endif
        char reply[9000];
#ifdef PLAN_TWO
        snprintf(reply, sizeof reply,
                 "{\"artifacts\":[{\"kind\":\"file\",\"path\":\"%s\"},"
                 "{\"kind\":\"file\",\"path\":\"%s/cplugin.second\"}],\"exit_code\":null,\"notes\":[]}",
                 path, dir);
#elif defined(WRONG_SHA)
        /* Claims a checksum its file does not have. */
        snprintf(reply, sizeof reply,
                 "{\"artifacts\":[{\"kind\":\"file\",\"path\":\"%s\",\"bytes\":null,\"sha256\":"
                 "\"sha256:0000000000000000000000000000000000000000000000000000000000000000\"}],"
                 "\"exit_code\":null,\"notes\":[]}",
                 path);
#else
        snprintf(reply, sizeof reply,
                 "{\"artifacts\":[{\"kind\":\"file\",\"path\":\"%s\",\"bytes\":null,\"sha256\":null}],"
                 "\"exit_code\":null,\"notes\":[]}",
                 path);
#endif
        *out = make_str(reply);
        (void)host;
        return KERBLAM_STATUS_OK;
    }
#endif
    if (len == 0 || req[0] != '{') {
        *out = make_str("{\"kind\":\"invalid-input\",\"message\":\"the request is not JSON\"}");
        return 2;
    }
    host->log(host->ctx, 2, (const uint8_t *)"hello from C", 12);
    *out = make_str(ok);
    return 0;
}
#endif

#ifdef LEAKY_FREE
void kerblam_backend_free(KerblamBuf b) { (void)b; }
#else
void kerblam_backend_free(KerblamBuf b) { free(b.ptr); }
#endif

/* json.h: just enough JSON for a kerblam backend: a strict reader that parses a message into a
 * tree, and a string builder that writes JSON back out.
 *
 * Reading. json_parse() checks that the bytes are UTF-8 and strict JSON (RFC 8259: no comments,
 * no trailing commas, no NaN, no lone surrogates in \u escapes, no duplicate member names) and
 * builds a tree of Json nodes. Every node and every string lives in one arena owned by the
 * JsonDoc, so json_free() releases the whole message at once and nothing can leak node by node.
 * The tree is read-only after parsing, so several threads may read it.
 *
 * Writing. A StrBuf is a growable, NUL-terminated byte string. Appending never fails loudly: when
 * memory runs out the buffer remembers it (`oom`), ignores later appends, and the caller checks
 * once at the end. sb_json_string() appends a string as a JSON string literal. */
#ifndef CBUILD_JSON_H
#define CBUILD_JSON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } JsonType;

typedef struct Json Json;

/* One value. Arrays and objects hold their children as a linked list (`first`, then `next`);
 * an object's children carry their member name in `key`. */
struct Json {
    JsonType type;
    const char *key;   /* member name (NUL-terminated) when this value is an object member */
    size_t key_len;
    const char *str;   /* JSON_STRING: the decoded text, NUL-terminated (it may also hold a
                        * NUL from \u0000: `len` is the real length); JSON_NUMBER: the literal */
    size_t len;
    int boolean;       /* JSON_BOOL: 0 or 1 */
    const Json *first; /* JSON_ARRAY, JSON_OBJECT: the first child */
    size_t count;      /* JSON_ARRAY, JSON_OBJECT: how many children */
    const Json *next;  /* the next sibling in the parent */
};

typedef struct JsonDoc JsonDoc;

/* Parses `len` bytes. On success returns a document (free it with json_free). On failure
 * returns NULL and writes why into `why` (at most `why_size` bytes, NUL-terminated); `*oom` is
 * set to 1 when the failure was running out of memory rather than bad input. Nesting deeper
 * than 128 levels is refused, as serde_json does. */
JsonDoc *json_parse(const uint8_t *bytes, size_t len, char *why, size_t why_size, int *oom);
const Json *json_root(const JsonDoc *doc);
void json_free(JsonDoc *doc);

/* The member `key` of object `obj`; NULL when `obj` is not an object or has no such member. */
const Json *json_get(const Json *obj, const char *key);
/* The string value of member `key`, or NULL when it is absent or not a string. */
const char *json_get_str(const Json *obj, const char *key);
/* Whether `v` is present and of type `t`. */
int json_is(const Json *v, JsonType t);
/* Whether `v` is a string equal to `s` (and holds no NUL). */
int json_str_eq(const Json *v, const char *s);
/* Reads a number that is a non-negative integer no larger than `max` (a JSON literal such as
 * 420; not 4.2e2, not -1) into *out. Returns 1 on success, 0 otherwise. */
int json_uint(const Json *v, uint64_t max, uint64_t *out);

/* ------------------------------------------------------------------------------------------ */

typedef struct {
    char *data; /* NUL-terminated when not NULL */
    size_t len;
    size_t cap;
    int oom; /* an append failed for lack of memory; the contents are incomplete */
} StrBuf;

#define STRBUF_INIT {NULL, 0, 0, 0}

void sb_add(StrBuf *sb, const char *s, size_t n);
void sb_puts(StrBuf *sb, const char *s);
void sb_printf(StrBuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vprintf(StrBuf *sb, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Appends `n` bytes of UTF-8 text as a JSON string literal, quotes included. */
void sb_json_string(StrBuf *sb, const char *s, size_t n);
/* The same for a NUL-terminated string; NULL is written as JSON null. */
void sb_json_cstr(StrBuf *sb, const char *s);
void sb_free(StrBuf *sb);

#endif /* CBUILD_JSON_H */

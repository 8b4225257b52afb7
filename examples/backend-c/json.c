/* json.c: a strict JSON reader building a tree in an arena, and a string builder. See json.h. */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The arena: big blocks, handed out in order, all freed together. ---------------------- */

typedef struct Block {
    struct Block *prev;
    size_t used, size;
    /* the bytes follow, suitably aligned */
} Block;

#define ALIGN 16 /* enough for any of our types */
#define BLOCK_HEADER ((sizeof(Block) + ALIGN - 1) / ALIGN * ALIGN)

struct JsonDoc {
    Block *blocks;
    const Json *root;
};

static void *arena_alloc(JsonDoc *doc, size_t n) {
    n = (n + ALIGN - 1) / ALIGN * ALIGN;
    Block *b = doc->blocks;
    if (b == NULL || b->size - b->used < n) {
        size_t size = n > 65536 ? n : 65536;
        b = malloc(BLOCK_HEADER + size);
        if (b == NULL) return NULL;
        b->prev = doc->blocks;
        b->used = 0;
        b->size = size;
        doc->blocks = b;
    }
    void *p = (char *)b + BLOCK_HEADER + b->used;
    b->used += n;
    return p;
}

void json_free(JsonDoc *doc) {
    if (doc == NULL) return;
    Block *b = doc->blocks;
    while (b != NULL) {
        Block *prev = b->prev;
        free(b);
        b = prev;
    }
    free(doc);
}

const Json *json_root(const JsonDoc *doc) { return doc->root; }

/* ---- UTF-8 validation, done once over the whole input before parsing. --------------------- */

/* Returns the offset of the first byte that is not part of well-formed UTF-8, or `len`. Rejects
 * overlong forms, surrogates (U+D800..U+DFFF) and code points above U+10FFFF. */
static size_t utf8_invalid_at(const uint8_t *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; min = 0x10000; }
        else return i;
        if (len - i <= n) return i;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += n + 1;
    }
    return len;
}

/* ---- The parser: recursive descent over the bytes. ---------------------------------------- */

typedef struct {
    const uint8_t *s;
    size_t len, pos;
    JsonDoc *doc;
    char *why;
    size_t why_size;
    int failed, oom;
} Parser;

#define MAX_DEPTH 128

static void *parse_error(Parser *p, const char *what) {
    if (!p->failed) {
        snprintf(p->why, p->why_size, "%s at byte %zu", what, p->pos);
        p->failed = 1;
    }
    return NULL;
}

static void *out_of_memory(Parser *p) {
    p->oom = 1;
    return parse_error(p, "out of memory");
}

static void skip_ws(Parser *p) {
    while (p->pos < p->len) {
        uint8_t c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static Json *new_node(Parser *p, JsonType type) {
    Json *v = arena_alloc(p->doc, sizeof *v);
    if (v == NULL) return out_of_memory(p);
    memset(v, 0, sizeof *v);
    v->type = type;
    return v;
}

static int hex4(Parser *p, uint32_t *out) {
    if (p->len - p->pos < 4) return 0;
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        uint8_t c = p->s[p->pos + k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    p->pos += 4;
    *out = v;
    return 1;
}

static size_t put_utf8(char *d, uint32_t cp) {
    if (cp < 0x80) { d[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        d[0] = (char)(0xC0 | (cp >> 6));
        d[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xE0 | (cp >> 12));
        d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        d[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | (cp >> 18));
    d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    d[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parses a string literal (p->pos at the opening quote) into an arena copy. The decoded text is
 * never longer than the literal, so one allocation of the literal's size is enough. */
static int parse_string(Parser *p, const char **out, size_t *out_len) {
    size_t start = ++p->pos, end = start;
    while (end < p->len && p->s[end] != '"') end += (p->s[end] == '\\') ? 2 : 1;
    if (end >= p->len) return parse_error(p, "unterminated string"), 0;
    char *d = arena_alloc(p->doc, end - start + 1);
    if (d == NULL) return out_of_memory(p), 0;
    size_t n = 0;
    while (p->s[p->pos] != '"') {
        uint8_t c = p->s[p->pos];
        if (c < 0x20) return parse_error(p, "control character in string"), 0;
        if (c != '\\') { d[n++] = (char)c; p->pos++; continue; }
        p->pos++;
        char e = (char)p->s[p->pos++];
        switch (e) {
        case '"': d[n++] = '"'; break;
        case '\\': d[n++] = '\\'; break;
        case '/': d[n++] = '/'; break;
        case 'b': d[n++] = '\b'; break;
        case 'f': d[n++] = '\f'; break;
        case 'n': d[n++] = '\n'; break;
        case 'r': d[n++] = '\r'; break;
        case 't': d[n++] = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (!hex4(p, &cp)) return parse_error(p, "bad \\u escape"), 0;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return parse_error(p, "lone trailing surrogate"), 0;
            if (cp >= 0xD800 && cp <= 0xDBFF) { /* a pair: \uD83D\uDE00 */
                if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
                    return parse_error(p, "lone leading surrogate"), 0;
                p->pos += 2;
                if (!hex4(p, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return parse_error(p, "bad surrogate pair"), 0;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            n += put_utf8(d + n, cp);
            break;
        }
        default:
            p->pos--;
            return parse_error(p, "bad escape in string"), 0;
        }
    }
    p->pos++; /* the closing quote */
    d[n] = '\0';
    *out = d;
    *out_len = n;
    return 1;
}

static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }

static Json *parse_number(Parser *p) {
    size_t start = p->pos;
    if (p->pos < p->len && p->s[p->pos] == '-') p->pos++;
    if (p->pos >= p->len || !is_digit(p->s[p->pos])) return parse_error(p, "bad number");
    if (p->s[p->pos] == '0') p->pos++;
    else while (p->pos < p->len && is_digit(p->s[p->pos])) p->pos++;
    if (p->pos < p->len && p->s[p->pos] == '.') {
        p->pos++;
        if (p->pos >= p->len || !is_digit(p->s[p->pos])) return parse_error(p, "bad number");
        while (p->pos < p->len && is_digit(p->s[p->pos])) p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
        if (p->pos >= p->len || !is_digit(p->s[p->pos])) return parse_error(p, "bad number");
        while (p->pos < p->len && is_digit(p->s[p->pos])) p->pos++;
    }
    Json *v = new_node(p, JSON_NUMBER);
    char *text = v ? arena_alloc(p->doc, p->pos - start + 1) : NULL;
    if (text == NULL) return out_of_memory(p);
    memcpy(text, p->s + start, p->pos - start);
    text[p->pos - start] = '\0';
    v->str = text;
    v->len = p->pos - start;
    return v;
}

static Json *parse_value(Parser *p, int depth);

/* Arrays and objects: children are appended to a linked list through `tail`. */
static Json *parse_container(Parser *p, int depth, int is_object) {
    if (depth >= MAX_DEPTH) return parse_error(p, "nesting too deep");
    Json *c = new_node(p, is_object ? JSON_OBJECT : JSON_ARRAY);
    if (c == NULL) return NULL;
    char close = is_object ? '}' : ']';
    Json *tail = NULL;
    p->pos++; /* the opening bracket */
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) { p->pos++; return c; }
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        if (is_object) {
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != '"') return parse_error(p, "expected a member name");
            if (!parse_string(p, &key, &key_len)) return NULL;
            for (const Json *m = c->first; m != NULL; m = m->next)
                if (m->key_len == key_len && memcmp(m->key, key, key_len) == 0)
                    return parse_error(p, "duplicate member name");
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') return parse_error(p, "expected ':'");
            p->pos++;
        }
        Json *v = parse_value(p, depth + 1);
        if (v == NULL) return NULL;
        v->key = key;
        v->key_len = key_len;
        if (tail == NULL) c->first = v; else tail->next = v;
        tail = v;
        c->count++;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') { p->pos++; continue; }
        if (p->pos < p->len && p->s[p->pos] == close) { p->pos++; return c; }
        return parse_error(p, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static Json *parse_literal(Parser *p, const char *word, JsonType type, int boolean) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) return parse_error(p, "unexpected character");
    p->pos += n;
    Json *v = new_node(p, type);
    if (v != NULL) v->boolean = boolean;
    return v;
}

static Json *parse_value(Parser *p, int depth) {
    skip_ws(p);
    if (p->pos >= p->len) return parse_error(p, "unexpected end of input");
    switch (p->s[p->pos]) {
    case '{': return parse_container(p, depth, 1);
    case '[': return parse_container(p, depth, 0);
    case '"': {
        Json *v = new_node(p, JSON_STRING);
        if (v == NULL || !parse_string(p, &v->str, &v->len)) return NULL;
        return v;
    }
    case 't': return parse_literal(p, "true", JSON_BOOL, 1);
    case 'f': return parse_literal(p, "false", JSON_BOOL, 0);
    case 'n': return parse_literal(p, "null", JSON_NULL, 0);
    case '-': return parse_number(p);
    default:
        if (is_digit(p->s[p->pos])) return parse_number(p);
        return parse_error(p, "unexpected character");
    }
}

JsonDoc *json_parse(const uint8_t *bytes, size_t len, char *why, size_t why_size, int *oom) {
    *oom = 0;
    size_t bad = utf8_invalid_at(bytes, len);
    if (bad < len) {
        snprintf(why, why_size, "not UTF-8 at byte %zu", bad);
        return NULL;
    }
    JsonDoc *doc = calloc(1, sizeof *doc);
    if (doc == NULL) {
        snprintf(why, why_size, "out of memory");
        *oom = 1;
        return NULL;
    }
    Parser p = {bytes, len, 0, doc, why, why_size, 0, 0};
    const Json *root = parse_value(&p, 0);
    if (root != NULL) {
        skip_ws(&p);
        if (p.pos != len) root = parse_error(&p, "trailing characters");
    }
    if (root == NULL) {
        *oom = p.oom;
        json_free(doc);
        return NULL;
    }
    doc->root = root;
    return doc;
}

/* ---- Lookups. ------------------------------------------------------------------------------ */

const Json *json_get(const Json *obj, const char *key) {
    if (obj == NULL || obj->type != JSON_OBJECT) return NULL;
    size_t n = strlen(key);
    for (const Json *m = obj->first; m != NULL; m = m->next)
        if (m->key_len == n && memcmp(m->key, key, n) == 0) return m;
    return NULL;
}

const char *json_get_str(const Json *obj, const char *key) {
    const Json *v = json_get(obj, key);
    return json_is(v, JSON_STRING) ? v->str : NULL;
}

int json_is(const Json *v, JsonType t) { return v != NULL && v->type == t; }

int json_str_eq(const Json *v, const char *s) {
    return json_is(v, JSON_STRING) && v->len == strlen(s) && memcmp(v->str, s, v->len) == 0;
}

int json_uint(const Json *v, uint64_t max, uint64_t *out) {
    if (!json_is(v, JSON_NUMBER)) return 0;
    uint64_t n = 0;
    for (size_t i = 0; i < v->len; i++) {
        char c = v->str[i];
        if (c < '0' || c > '9') return 0; /* a sign, a fraction or an exponent */
        unsigned d = (unsigned)(c - '0');
        if (n > max / 10 || (n == max / 10 && d > max % 10)) return 0;
        n = n * 10 + d;
    }
    *out = n;
    return 1;
}

/* ---- The string builder. ------------------------------------------------------------------- */

static int sb_reserve(StrBuf *sb, size_t more) {
    if (sb->oom) return 0;
    if (more < sb->cap - sb->len) return 1; /* room for `more` bytes and the NUL */
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap - sb->len <= more) {
        if (cap > SIZE_MAX / 2) { sb->oom = 1; return 0; }
        cap *= 2;
    }
    char *d = realloc(sb->data, cap);
    if (d == NULL) { sb->oom = 1; return 0; }
    sb->data = d;
    sb->cap = cap;
    return 1;
}

void sb_add(StrBuf *sb, const char *s, size_t n) {
    if (!sb_reserve(sb, n)) return;
    if (n > 0) memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void sb_puts(StrBuf *sb, const char *s) { sb_add(sb, s, strlen(s)); }

void sb_vprintf(StrBuf *sb, const char *fmt, va_list ap) {
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n >= 0 && sb_reserve(sb, (size_t)n)) {
        vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, again);
        sb->len += (size_t)n;
    }
    va_end(again);
}

void sb_printf(StrBuf *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(sb, fmt, ap);
    va_end(ap);
}

void sb_json_string(StrBuf *sb, const char *s, size_t n) {
    sb_add(sb, "\"", 1);
    size_t run = 0; /* bytes copied as they are, flushed before each escape */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char hex[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20) {
                snprintf(hex, sizeof hex, "\\u%04x", c);
                esc = hex;
            }
        }
        if (esc == NULL) { run++; continue; }
        sb_add(sb, s + i - run, run);
        run = 0;
        sb_puts(sb, esc);
    }
    sb_add(sb, s + n - run, run);
    sb_add(sb, "\"", 1);
}

void sb_json_cstr(StrBuf *sb, const char *s) {
    if (s == NULL) sb_puts(sb, "null");
    else sb_json_string(sb, s, strlen(s));
}

void sb_free(StrBuf *sb) {
    free(sb->data);
    sb->data = NULL;
    sb->len = sb->cap = 0;
    sb->oom = 0;
}

/*
 * json.h — the bounds-checked JSON reader of safetensors headers (lengths, depth, integer
 * overflow) and the growable string buffer the writers build headers in. Internal, header-only:
 * lib/safetensors.c (the file format) and lib/state.c (tg_state) include it.
 */
#ifndef TG_JSON_H
#define TG_JSON_H

#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the longest tensor name or metadata key, with its terminator */
#define MAX_NAME 256

/* ---- a small JSON reader for safetensors headers ------------------------------------------ */
typedef struct {
    const char *p, *end;
    int depth;
} jr;

static inline void ws(jr *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}
static inline bool lit(jr *r, char c) {
    ws(r);
    if (r->p < r->end && *r->p == c) {
        r->p++;
        return true;
    }
    return false;
}

/* Reads a JSON string into out (NUL-terminated, at most cap-1 bytes; longer is an error). */
static inline bool jstring(jr *r, char *out, size_t cap) {
    ws(r);
    if (r->p >= r->end || *r->p != '"') return false;
    r->p++;
    size_t n = 0;
    while (r->p < r->end && *r->p != '"') {
        unsigned c = (unsigned char)*r->p++;
        if (c == '\\') {
            if (r->p >= r->end) return false;
            char e = *r->p++;
            switch (e) {
            case '"': c = '"'; break;
            case '\\': c = '\\'; break;
            case '/': c = '/'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u': {
                if (r->end - r->p < 4) return false;
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    char h = *r->p++;
                    v <<= 4;
                    if (h >= '0' && h <= '9') v |= (unsigned)(h - '0');
                    else if (h >= 'a' && h <= 'f') v |= (unsigned)(h - 'a' + 10);
                    else if (h >= 'A' && h <= 'F') v |= (unsigned)(h - 'A' + 10);
                    else return false;
                }
                /* encode as UTF-8 (surrogate pairs are kept as two 3-byte sequences) */
                char u[3];
                size_t k;
                if (v < 0x80) { u[0] = (char)v; k = 1; }
                else if (v < 0x800) { u[0] = (char)(0xC0 | (v >> 6)); u[1] = (char)(0x80 | (v & 0x3F)); k = 2; }
                else { u[0] = (char)(0xE0 | (v >> 12)); u[1] = (char)(0x80 | ((v >> 6) & 0x3F)); u[2] = (char)(0x80 | (v & 0x3F)); k = 3; }
                if (n + k >= cap) return false;
                memcpy(out + n, u, k);
                n += k;
                continue;
            }
            default: return false;
            }
        } else if (c < 0x20) {
            return false;
        }
        if (n + 1 >= cap) return false;
        out[n++] = (char)c;
    }
    if (r->p >= r->end) return false;
    r->p++;
    out[n] = 0;
    return true;
}

static inline bool juint(jr *r, uint64_t *v) {
    ws(r);
    if (r->p >= r->end || *r->p < '0' || *r->p > '9') return false;
    uint64_t x = 0;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        unsigned d = (unsigned)(*r->p++ - '0');
        if (x > (UINT64_MAX - d) / 10) return false;
        x = x * 10 + d;
    }
    *v = x;
    return true;
}

/* Skips any JSON value (depth-limited). */
static inline bool jskip(jr *r) {
    ws(r);
    if (r->p >= r->end || ++r->depth > 32) return false;
    bool ok = true;
    char c = *r->p;
    if (c == '"') { /* scan it without copying: only its end matters */
        r->p++;
        while (r->end - r->p >= 2 && *r->p != '"') r->p += *r->p == '\\' ? 2 : 1;
        ok = r->p < r->end && *r->p == '"';
        if (ok) r->p++;
    } else if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        r->p++;
        if (!lit(r, close)) {
            do {
                if (c == '{') {
                    char k[MAX_NAME];
                    ok = jstring(r, k, sizeof k) && lit(r, ':');
                }
                ok = ok && jskip(r);
            } while (ok && lit(r, ','));
            ok = ok && lit(r, close);
        }
    } else {
        const char *s = r->p;
        while (r->p < r->end && (strchr("+-.eE", *r->p) || (*r->p >= '0' && *r->p <= '9') ||
                                 (*r->p >= 'a' && *r->p <= 'z')))
            r->p++;
        ok = r->p > s;
    }
    r->depth--;
    return ok;
}


/* ---- writing ------------------------------------------------------------------------------ */
typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static inline void sb_put(sbuf *b, const char *s, size_t len) {
    if (b->oom) return;
    if (b->n + len + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 4096);
        while (cap < b->n + len + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = 0;
}
static inline void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static inline void sb_json(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            sb_put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_str(b, esc);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}



#endif

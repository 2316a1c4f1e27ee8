/*
 * safetensors.c — tg_state: named tensors + string metadata saved to and loaded from safetensors
 * files (8-byte little-endian header length, a JSON header, then raw little-endian data).
 *
 * Saving writes "<path>.tmp.XXXXXX" in the same directory, fsyncs it and renames it over path,
 * so a crash leaves either the old file or the new one. Loading parses the header with a small
 * bounds-checked JSON reader, checks every registered name, dtype, shape and byte range, reads
 * all data, and only then writes into the tensors: a bad file changes nothing.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

#define MAX_HEADER ((uint64_t)100 << 20)
#define MAX_NAME 256

typedef struct {
    char *name;
    tg_tensor *t;
} st_entry;
typedef struct {
    char *prefix;
    tg_optim *o;
} st_optref;
typedef struct {
    char *k, *v;
} st_kv;

struct tg_state {
    st_entry *e;
    int n, cap;
    st_optref *opt;
    int nopt;
    st_kv *meta;
    int nmeta;
};

tg_state *tg_state_new(void) {
    tg_state *s = calloc(1, sizeof *s);
    if (!s) tg_fail(TG_ERR_NOMEM, "tg_state_new", "out of host memory");
    return s;
}

static void meta_clear(tg_state *s) {
    for (int i = 0; i < s->nmeta; i++) {
        free(s->meta[i].k);
        free(s->meta[i].v);
    }
    free(s->meta);
    s->meta = NULL;
    s->nmeta = 0;
}

void tg_state_free(tg_state *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->e[i].name);
    for (int i = 0; i < s->nopt; i++) free(s->opt[i].prefix);
    free(s->e);
    free(s->opt);
    meta_clear(s);
    free(s);
}

tg_status tg_state_add(tg_state *s, const char *name, tg_tensor *t) {
    static const char *fn = "tg_state_add";
    if (!s || !name || !t) return tg_fail(TG_ERR_INVALID, fn, "state, name or tensor is NULL");
    size_t len = strlen(name);
    if (len == 0 || len >= MAX_NAME || strcmp(name, "__metadata__") == 0)
        return tg_fail(TG_ERR_INVALID, fn, "bad tensor name \"%.64s\"", name);
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->e[i].name, name) == 0)
            return tg_fail(TG_ERR_INVALID, fn, "name \"%s\" registered twice", name);
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 32;
        st_entry *e = realloc(s->e, sizeof *e * (size_t)cap);
        if (!e) return tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
        s->e = e;
        s->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) return tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
    s->e[s->n].name = copy;
    s->e[s->n].t = t;
    s->n++;
    return TG_OK;
}

tg_status tg_state_add_module(tg_state *s, const char *prefix, tg_module *m) {
    static const char *fn = "tg_state_add_module";
    if (!s || !m) return tg_fail(TG_ERR_INVALID, fn, "state or module is NULL");
    if (!prefix) prefix = "";
    int n = tg_module_state(m, NULL, NULL, 0);
    if (n < 0) return TG_ERR_NOMEM;
    const char **names = calloc((size_t)n + 1, sizeof *names);
    tg_tensor **ts = calloc((size_t)n + 1, sizeof *ts);
    tg_status st = (!names || !ts) ? tg_fail(TG_ERR_NOMEM, fn, "out of host memory") : TG_OK;
    if (!st) tg_module_state(m, names, ts, n);
    char full[MAX_NAME];
    for (int i = 0; i < n && !st; i++) {
        snprintf(full, sizeof full, "%s%s", prefix, names[i]);
        st = tg_state_add(s, full, ts[i]);
    }
    free(names);
    free(ts);
    return st;
}

tg_status tg_state_add_optim(tg_state *s, const char *prefix, tg_optim *o) {
    static const char *fn = "tg_state_add_optim";
    if (!s || !o) return tg_fail(TG_ERR_INVALID, fn, "state or optimizer is NULL");
    if (!prefix) prefix = "";
    int n = tg_optim_state(o, NULL, NULL, 0, NULL);
    char(*names)[64] = calloc((size_t)n + 1, sizeof *names);
    tg_tensor **ts = calloc((size_t)n + 1, sizeof *ts);
    st_optref *r = realloc(s->opt, sizeof *r * (size_t)(s->nopt + 1));
    if (r) s->opt = r;
    tg_status st = (!names || !ts || !r) ? tg_fail(TG_ERR_NOMEM, fn, "out of host memory") : TG_OK;
    if (!st) tg_optim_state(o, names, ts, n, NULL);
    char full[MAX_NAME];
    for (int i = 0; i < n && !st; i++) {
        snprintf(full, sizeof full, "%s%s", prefix, names[i]);
        st = tg_state_add(s, full, ts[i]);
    }
    if (!st) {
        s->opt[s->nopt].prefix = strdup(prefix);
        s->opt[s->nopt].o = o;
        if (!s->opt[s->nopt].prefix) st = tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
        else s->nopt++;
    }
    free(names);
    free(ts);
    return st;
}

tg_status tg_state_set_meta(tg_state *s, const char *key, const char *value) {
    static const char *fn = "tg_state_set_meta";
    if (!s || !key || !value) return tg_fail(TG_ERR_INVALID, fn, "state, key or value is NULL");
    for (int i = 0; i < s->nmeta; i++) {
        if (strcmp(s->meta[i].k, key) == 0) {
            char *v = strdup(value);
            if (!v) return tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
            free(s->meta[i].v);
            s->meta[i].v = v;
            return TG_OK;
        }
    }
    st_kv *m = realloc(s->meta, sizeof *m * (size_t)(s->nmeta + 1));
    if (!m) return tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
    s->meta = m;
    m[s->nmeta].k = strdup(key);
    m[s->nmeta].v = strdup(value);
    if (!m[s->nmeta].k || !m[s->nmeta].v) {
        free(m[s->nmeta].k);
        free(m[s->nmeta].v);
        return tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
    }
    s->nmeta++;
    return TG_OK;
}

const char *tg_state_get_meta(const tg_state *s, const char *key) {
    if (!s || !key) return NULL;
    for (int i = 0; i < s->nmeta; i++)
        if (strcmp(s->meta[i].k, key) == 0) return s->meta[i].v;
    return NULL;
}

/* ---- writing ------------------------------------------------------------------------------ */
typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t len) {
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
static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_json(sbuf *b, const char *s) {
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

static tg_status steps_meta(tg_state *s) {
    for (int k = 0; k < s->nopt; k++) {
        int64_t *steps;
        int n = tg_optim_count(s->opt[k].o);
        tg_optim_state(s->opt[k].o, NULL, NULL, 0, &steps);
        sbuf b = {0};
        char num[32];
        for (int i = 0; i < n; i++) {
            snprintf(num, sizeof num, i ? ",%lld" : "%lld", (long long)steps[i]);
            sb_str(&b, num);
        }
        char key[MAX_NAME + 8];
        snprintf(key, sizeof key, "%ssteps", s->opt[k].prefix);
        tg_status st = b.oom ? tg_fail(TG_ERR_NOMEM, "tg_state_save", "out of host memory")
                             : tg_state_set_meta(s, key, b.p ? b.p : "");
        free(b.p);
        if (st) return st;
    }
    return TG_OK;
}

tg_status tg_state_save(tg_state *s, const char *path) {
    static const char *fn = "tg_state_save";
    if (!s || !path) return tg_fail(TG_ERR_INVALID, fn, "state or path is NULL");
    tg_status st = steps_meta(s);
    if (st) return st;
    sbuf h = {0};
    sb_str(&h, "{");
    if (s->nmeta) {
        sb_str(&h, "\"__metadata__\":{");
        for (int i = 0; i < s->nmeta; i++) {
            if (i) sb_str(&h, ",");
            sb_json(&h, s->meta[i].k);
            sb_str(&h, ":");
            sb_json(&h, s->meta[i].v);
        }
        sb_str(&h, "}");
    }
    uint64_t off = 0;
    int64_t maxn = 1;
    for (int i = 0; i < s->n; i++) {
        tg_tensor *t = s->e[i].t;
        if (s->nmeta || i) sb_str(&h, ",");
        sb_json(&h, s->e[i].name);
        sb_str(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        char num[64];
        for (int d = 0; d < t->ndim; d++) {
            snprintf(num, sizeof num, d ? ",%lld" : "%lld", (long long)t->shape[d]);
            sb_str(&h, num);
        }
        uint64_t end = off + (uint64_t)t->numel * 4u;
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)end);
        sb_str(&h, num);
        off = end;
        if (t->numel > maxn) maxn = t->numel;
    }
    sb_str(&h, "}");
    while (!h.oom && h.n % 8) sb_str(&h, " ");
    float *buf = malloc((size_t)maxn * sizeof(float));
    if (h.oom || !buf) {
        free(h.p);
        free(buf);
        return tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
    }

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) {
        free(h.p);
        free(buf);
        return tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
    }
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        st = tg_fail(TG_ERR_IO, fn, "cannot create %s: %s", tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        goto done;
    }
    uint64_t hl = h.n;
    bool ok = fwrite(&hl, 8, 1, f) == 1 && fwrite(h.p, 1, h.n, f) == h.n;
    for (int i = 0; i < s->n && ok; i++) {
        tg_tensor *t = s->e[i].t;
        if (tg_tensor_read(t, buf, t->numel) != TG_OK) {
            st = TG_ERR_DEVICE;
            ok = false;
            break;
        }
        ok = fwrite(buf, sizeof(float), (size_t)t->numel, f) == (size_t)t->numel;
    }
    if (ok) ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    int werr = errno;
    if (fclose(f) != 0) ok = false;
    if (ok && rename(tmp, path) != 0) {
        werr = errno;
        ok = false;
    }
    if (!ok) {
        unlink(tmp);
        if (!st) st = tg_fail(TG_ERR_IO, fn, "writing %s failed: %s", path, strerror(werr));
    }
done:
    free(tmp);
    free(h.p);
    free(buf);
    return st;
}

/* ---- a small JSON reader for safetensors headers ------------------------------------------ */
typedef struct {
    const char *p, *end;
    int depth;
} jr;

static void ws(jr *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}
static bool lit(jr *r, char c) {
    ws(r);
    if (r->p < r->end && *r->p == c) {
        r->p++;
        return true;
    }
    return false;
}

/* Reads a JSON string into out (NUL-terminated, at most cap-1 bytes; longer is an error). */
static bool jstring(jr *r, char *out, size_t cap) {
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

static bool juint(jr *r, uint64_t *v) {
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
static bool jskip(jr *r) {
    ws(r);
    if (r->p >= r->end || ++r->depth > 32) return false;
    bool ok = true;
    char c = *r->p;
    if (c == '"') {
        char tmp[4096];
        ok = jstring(r, tmp, sizeof tmp);
    } else if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        r->p++;
        if (!lit(r, close)) {
            do {
                if (c == '{') {
                    char k[4096];
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

typedef struct {
    char name[MAX_NAME];
    char dtype[16];
    int ndim;
    int64_t shape[8];
    uint64_t begin, end;
    int want; /* index in the state's entries, -1 if not registered */
} st_info;

static int dtype_size(const char *d) {
    static const char *n8[] = {"F64", "I64", "U64"}, *n4[] = {"F32", "I32", "U32"},
                      *n2[] = {"F16", "BF16", "I16", "U16"}, *n1[] = {"I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2"};
    for (int i = 0; i < 3; i++) if (!strcmp(d, n8[i])) return 8;
    for (int i = 0; i < 3; i++) if (!strcmp(d, n4[i])) return 4;
    for (int i = 0; i < 4; i++) if (!strcmp(d, n2[i])) return 2;
    for (int i = 0; i < 5; i++) if (!strcmp(d, n1[i])) return 1;
    return 0;
}

static bool parse_tensor_info(jr *r, st_info *ti) {
    bool have_d = false, have_s = false, have_o = false;
    if (!lit(r, '{')) return false;
    if (lit(r, '}')) return false;
    do {
        char key[64];
        if (!jstring(r, key, sizeof key) || !lit(r, ':')) return false;
        if (!strcmp(key, "dtype")) {
            if (!jstring(r, ti->dtype, sizeof ti->dtype)) return false;
            have_d = true;
        } else if (!strcmp(key, "shape")) {
            if (!lit(r, '[')) return false;
            ti->ndim = 0;
            if (!lit(r, ']')) {
                do {
                    uint64_t v;
                    if (ti->ndim >= 8 || !juint(r, &v) || v > ((uint64_t)1 << 40)) return false;
                    ti->shape[ti->ndim++] = (int64_t)v;
                } while (lit(r, ','));
                if (!lit(r, ']')) return false;
            }
            have_s = true;
        } else if (!strcmp(key, "data_offsets")) {
            if (!lit(r, '[') || !juint(r, &ti->begin) || !lit(r, ',') || !juint(r, &ti->end) ||
                !lit(r, ']'))
                return false;
            have_o = true;
        } else if (!jskip(r)) {
            return false;
        }
    } while (lit(r, ','));
    return lit(r, '}') && have_d && have_s && have_o;
}

static tg_status load_fail(tg_status code, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static tg_status load_fail(tg_status code, const char *path, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tg_fail(code, "tg_state_load", "%s: %s", path, msg);
}

tg_status tg_state_load(tg_state *s, const char *path, bool strict) {
    static const char *fn = "tg_state_load";
    if (!s || !path) return tg_fail(TG_ERR_INVALID, fn, "state or path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f) return tg_fail(TG_ERR_IO, fn, "cannot open %s: %s", path, strerror(errno));
    tg_status st = TG_OK;
    char *hdr = NULL;
    st_info *info = NULL;
    float **data = NULL;
    st_kv *meta = NULL;
    int ninfo = 0, cap = 0, nmeta = 0;
    int64_t **steps_new = NULL;

    struct stat sb;
    uint64_t hl = 0;
    if (fstat(fileno(f), &sb) != 0 || sb.st_size < 8) {
        st = load_fail(TG_ERR_FORMAT, path, "file too short for a safetensors header");
        goto out;
    }
    const uint64_t fsize = (uint64_t)sb.st_size;
    if (fread(&hl, 8, 1, f) != 1) {
        st = load_fail(TG_ERR_IO, path, "cannot read the header length");
        goto out;
    }
    if (hl < 2 || hl > MAX_HEADER || hl > fsize - 8) {
        st = load_fail(TG_ERR_FORMAT, path,
                       "header length %llu is impossible for a file of %llu bytes",
                       (unsigned long long)hl, (unsigned long long)fsize);
        goto out;
    }
    hdr = malloc(hl + 1);
    if (!hdr || fread(hdr, 1, hl, f) != hl) {
        st = hdr ? load_fail(TG_ERR_IO, path, "truncated header")
                 : tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
        goto out;
    }
    hdr[hl] = 0;
    const uint64_t data_size = fsize - 8 - hl;

    jr r = {hdr, hdr + hl, 0};
    if (!lit(&r, '{')) {
        st = load_fail(TG_ERR_FORMAT, path, "header is not a JSON object");
        goto out;
    }
    if (!lit(&r, '}')) {
        do {
            char key[MAX_NAME];
            if (!jstring(&r, key, sizeof key) || !lit(&r, ':')) {
                st = load_fail(TG_ERR_FORMAT, path, "malformed header near byte %lld",
                               (long long)(r.p - hdr));
                goto out;
            }
            if (!strcmp(key, "__metadata__")) {
                if (!lit(&r, '{')) goto bad;
                if (!lit(&r, '}')) {
                    do {
                        char k[MAX_NAME], *v = malloc(65536);
                        st_kv *m = realloc(meta, sizeof *m * (size_t)(nmeta + 1));
                        if (m) meta = m;
                        if (!v || !m) {
                            free(v);
                            st = tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
                            goto out;
                        }
                        if (!jstring(&r, k, sizeof k) || !lit(&r, ':') || !jstring(&r, v, 65536)) {
                            free(v);
                            goto bad;
                        }
                        meta[nmeta].k = strdup(k);
                        meta[nmeta].v = v;
                        nmeta++;
                    } while (lit(&r, ','));
                    if (!lit(&r, '}')) goto bad;
                }
                continue;
            }
            if (ninfo == cap) {
                cap = cap ? cap * 2 : 64;
                st_info *ni = realloc(info, sizeof *ni * (size_t)cap);
                if (!ni) {
                    st = tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
                    goto out;
                }
                info = ni;
            }
            st_info *ti = &info[ninfo];
            memset(ti, 0, sizeof *ti);
            snprintf(ti->name, sizeof ti->name, "%s", key);
            if (!parse_tensor_info(&r, ti)) {
                st = load_fail(TG_ERR_FORMAT, path, "bad entry for tensor \"%s\"", key);
                goto out;
            }
            /* bounds: the byte range must lie in the data section and match dtype*shape */
            int es = dtype_size(ti->dtype);
            uint64_t numel = 1;
            for (int d = 0; d < ti->ndim; d++) numel *= (uint64_t)ti->shape[d];
            if (ti->begin > ti->end || ti->end > data_size ||
                (es && (ti->end - ti->begin) != numel * (uint64_t)es)) {
                st = load_fail(TG_ERR_FORMAT, path,
                               "tensor \"%s\": byte range [%llu, %llu) does not fit its shape (%s) or "
                               "the %llu-byte data section",
                               key, (unsigned long long)ti->begin, (unsigned long long)ti->end,
                               ti->dtype, (unsigned long long)data_size);
                goto out;
            }
            ti->want = -1;
            ninfo++;
        } while (lit(&r, ','));
        if (!lit(&r, '}')) goto bad;
    }
    ws(&r);
    if (r.p != r.end) goto bad;

    /* match the registered entries */
    for (int i = 0; i < ninfo; i++) {
        for (int j = 0; j < s->n; j++)
            if (!strcmp(info[i].name, s->e[j].name)) info[i].want = j;
        if (info[i].want < 0 && strict) {
            st = load_fail(TG_ERR_FORMAT, path, "unexpected tensor \"%s\" (strict load)",
                           info[i].name);
            goto out;
        }
    }
    data = calloc((size_t)s->n + 1, sizeof *data);
    if (!data) {
        st = tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
        goto out;
    }
    for (int j = 0; j < s->n; j++) {
        st_info *ti = NULL;
        for (int i = 0; i < ninfo; i++)
            if (info[i].want == j) ti = &info[i];
        tg_tensor *t = s->e[j].t;
        char want[64];
        tg_shape_str(t, want, sizeof want);
        if (!ti) {
            st = load_fail(TG_ERR_FORMAT, path, "missing tensor \"%s\"", s->e[j].name);
            goto out;
        }
        bool same = ti->ndim == t->ndim && !strcmp(ti->dtype, "F32");
        for (int d = 0; same && d < t->ndim; d++) same = ti->shape[d] == t->shape[d];
        if (!same) {
            char got[160];
            int o = snprintf(got, sizeof got, "%s [", ti->dtype);
            for (int d = 0; d < ti->ndim && o < (int)sizeof got; d++)
                o += snprintf(got + o, sizeof got - (size_t)o, d ? ",%lld" : "%lld",
                              (long long)ti->shape[d]);
            snprintf(got + o, o < (int)sizeof got ? sizeof got - (size_t)o : 0, "]");
            st = tg_fail(TG_ERR_FORMAT, fn, "%s: tensor \"%s\" is %s in the file, expected F32 %s",
                         path, s->e[j].name, got, want);
            goto out;
        }
        data[j] = malloc((size_t)t->numel * sizeof(float));
        if (!data[j]) {
            st = tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
            goto out;
        }
        if (fseeko(f, (off_t)(8 + hl + ti->begin), SEEK_SET) != 0 ||
            fread(data[j], sizeof(float), (size_t)t->numel, f) != (size_t)t->numel) {
            st = load_fail(TG_ERR_IO, path, "cannot read tensor \"%s\"", s->e[j].name);
            goto out;
        }
    }
    /* optimizer step counts, validated before anything changes */
    steps_new = calloc((size_t)s->nopt + 1, sizeof *steps_new);
    if (!steps_new) {
        st = tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
        goto out;
    }
    for (int k = 0; k < s->nopt; k++) {
        char key[MAX_NAME + 8];
        snprintf(key, sizeof key, "%ssteps", s->opt[k].prefix);
        const char *v = NULL;
        for (int i = 0; i < nmeta; i++)
            if (!strcmp(meta[i].k, key)) v = meta[i].v;
        int n = tg_optim_count(s->opt[k].o);
        steps_new[k] = calloc((size_t)n + 1, sizeof(int64_t));
        if (!steps_new[k]) {
            st = tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
            goto out;
        }
        int got = 0;
        const char *p = v;
        while (p && *p && got < n + 1) {
            char *e;
            long long x = strtoll(p, &e, 10);
            if (e == p || x < 0) break;
            if (got < n) steps_new[k][got] = x;
            got++;
            p = *e == ',' ? e + 1 : e;
            if (*e != ',' ) break;
        }
        if (!v || got != n || (p && *p)) {
            st = load_fail(TG_ERR_FORMAT, path, "metadata \"%s\" must list %d step counts", key,
                           n);
            goto out;
        }
    }

    /* everything checked: commit */
    for (int j = 0; j < s->n; j++) {
        st = tg_tensor_write(s->e[j].t, data[j], s->e[j].t->numel);
        if (st) goto out;
    }
    for (int k = 0; k < s->nopt; k++) {
        int64_t *steps;
        tg_optim_state(s->opt[k].o, NULL, NULL, 0, &steps);
        memcpy(steps, steps_new[k], sizeof(int64_t) * (size_t)tg_optim_count(s->opt[k].o));
    }
    meta_clear(s);
    s->meta = meta;
    s->nmeta = nmeta;
    meta = NULL;
    nmeta = 0;
    goto out;
bad:
    st = load_fail(TG_ERR_FORMAT, path, "malformed JSON header near byte %lld",
                   (long long)(r.p - hdr));
out:
    fclose(f);
    free(hdr);
    free(info);
    if (data)
        for (int j = 0; j < s->n; j++) free(data[j]);
    free(data);
    for (int i = 0; i < nmeta; i++) {
        free(meta[i].k);
        free(meta[i].v);
    }
    free(meta);
    if (steps_new)
        for (int k = 0; k < s->nopt; k++) free(steps_new[k]);
    free(steps_new);
    return st;
}

tg_status tg_module_save(tg_module *m, const char *path) {
    tg_state *s = tg_state_new();
    if (!s) return TG_ERR_NOMEM;
    tg_status st = tg_state_add_module(s, "", m);
    if (!st) st = tg_state_save(s, path);
    tg_state_free(s);
    return st;
}

tg_status tg_module_load(tg_module *m, const char *path) {
    tg_state *s = tg_state_new();
    if (!s) return TG_ERR_NOMEM;
    tg_status st = tg_state_add_module(s, "", m);
    if (!st) st = tg_state_load(s, path, false);
    tg_state_free(s);
    return st;
}

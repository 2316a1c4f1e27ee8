/*
 * state.c — tg_state: named tensors (and optimizers' moments and step counts) plus string
 * metadata, saved to and loaded from safetensors files (lib/safetensors.c). A load checks every
 * name, dtype and shape before writing into any tensor, so a bad file changes nothing.
 */
#include "core.h"
#include "io.h"
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void truncate_entries(tg_state *s, int keep);

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
    truncate_entries(s, 0);
    for (int i = 0; i < s->nopt; i++) free(s->opt[i].prefix), tg_optim_release(s->opt[i].o);
    free(s->e);
    free(s->opt);
    meta_clear(s);
    free(s);
}

/* Whether s is well-formed UTF-8 (what a safetensors header, JSON, must hold): no stray
 * continuation bytes, no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_ok(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p, need, min;
        if (c < 0x80) { p++; continue; }
        if (c >= 0xC2 && c <= 0xDF) need = 1, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF) need = 2, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4) need = 3, min = 0x10000;
        else return false;
        unsigned v = c & (0x3Fu >> need);
        for (unsigned k = 1; k <= need; k++) {
            if ((p[k] & 0xC0) != 0x80) return false;
            v = (v << 6) | (p[k] & 0x3Fu);
        }
        if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return false;
        p += need + 1;
    }
    return true;
}

/* A name a file can hold and a load can read back: 1..MAX_NAME-1 bytes of UTF-8, no control
 * characters (they would be escaped, and nobody means them), not the metadata key. */
static tg_status name_ok(const char *name, const char *what, const char *fn) {
    const size_t len = strlen(name);
    if (len == 0 || len >= MAX_NAME)
        return tg_fail(TG_ERR_INVALID, fn, "%s \"%.64s%s\" has %zu bytes (1 to %d allowed)", what, name,
                       len > 64 ? "..." : "", len, MAX_NAME - 1);
    if (!utf8_ok(name)) return tg_fail(TG_ERR_INVALID, fn, "%s is not valid UTF-8", what);
    for (const char *c = name; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return tg_fail(TG_ERR_INVALID, fn, "%s \"%.64s\" holds a control character", what, name);
    if (!strcmp(name, "__metadata__"))
        return tg_fail(TG_ERR_INVALID, fn, "%s \"__metadata__\" is the file's metadata key", what);
    return TG_OK;
}

/* drops the entries added after the first `keep` (a failed add_module/add_optim adds nothing) */
static void truncate_entries(tg_state *s, int keep) {
    while (s->n > keep) {
        s->n--;
        free(s->e[s->n].name);
        tg_tensor_release(s->e[s->n].t);
    }
}

tg_status tg_state_add(tg_state *s, const char *name, tg_tensor *t) {
    static const char *fn = "tg_state_add";
    if (!s || !name || !t)
        return tg_fail(TG_ERR_INVALID, fn, "%s is NULL", !s ? "state" : !name ? "name" : "tensor");
    tg_status st = name_ok(name, "tensor name", fn);
    if (st) return st;
    if (!t->is_leaf)
        return tg_fail(TG_ERR_INVALID, fn, "\"%s\" is an op result, which lives only until tg_ctx_clear_tape: "
                       "copy it into a leaf tensor (tg_tensor_copy) to register it", name);
    if (s->n == INT32_MAX) return tg_fail(TG_ERR_INVALID, fn, "the state is full");
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
    tg_tensor_retain(t); /* it stays while s does, whatever is freed first */
    return TG_OK;
}

tg_status tg_state_add_module(tg_state *s, const char *prefix, tg_module *m) {
    static const char *fn = "tg_state_add_module";
    TG_API_SCOPE(fn);
    if (!s || !m) return tg_fail(TG_ERR_INVALID, fn, "%s is NULL", !s ? "state" : "module");
    if (!prefix) prefix = "";
    if (strlen(prefix) >= MAX_NAME)
        return tg_fail(TG_ERR_INVALID, fn, "prefix of %zu bytes: names are under %d bytes", strlen(prefix), MAX_NAME);
    int n = tg_module_state(m, NULL, NULL, 0);
    if (n < 0) return tg_last_status();
    const int keep = s->n;
    const char **names = calloc((size_t)n + 1, sizeof *names);
    tg_tensor **ts = calloc((size_t)n + 1, sizeof *ts);
    tg_status st = (!names || !ts) ? tg_fail(TG_ERR_NOMEM, fn, "out of host memory") : TG_OK;
    if (!st) tg_module_state(m, names, ts, n);
    char full[2 * MAX_NAME];
    for (int i = 0; i < n && !st; i++) {
        snprintf(full, sizeof full, "%s%s", prefix, names[i]);
        st = tg_state_add(s, full, ts[i]);
    }
    if (st) truncate_entries(s, keep);
    free(names);
    free(ts);
    return st;
}

tg_status tg_state_add_optim(tg_state *s, const char *prefix, tg_optim *o) {
    static const char *fn = "tg_state_add_optim";
    TG_API_SCOPE(fn);
    if (!s || !o) return tg_fail(TG_ERR_INVALID, fn, "%s is NULL", !s ? "state" : "optimizer");
    if (!prefix) prefix = "";
    if (strlen(prefix) + 8 >= MAX_NAME) /* "<prefix>steps" is a metadata key */
        return tg_fail(TG_ERR_INVALID, fn, "prefix of %zu bytes: names are under %d bytes", strlen(prefix), MAX_NAME);
    for (int k = 0; k < s->nopt; k++) {
        if (s->opt[k].o == o) return tg_fail(TG_ERR_INVALID, fn, "the optimizer is already registered");
        if (!strcmp(s->opt[k].prefix, prefix))
            return tg_fail(TG_ERR_INVALID, fn, "prefix \"%s\" is already an optimizer's", prefix);
    }
    const int keep = s->n;
    int n = tg_optim_state(o, NULL, NULL, 0, NULL);
    char(*names)[64] = calloc((size_t)n + 1, sizeof *names);
    tg_tensor **ts = calloc((size_t)n + 1, sizeof *ts);
    st_optref *r = realloc(s->opt, sizeof *r * (size_t)(s->nopt + 1));
    if (r) s->opt = r;
    tg_status st = (!names || !ts || !r) ? tg_fail(TG_ERR_NOMEM, fn, "out of host memory") : TG_OK;
    if (!st) tg_optim_state(o, names, ts, n, NULL);
    char full[2 * MAX_NAME];
    for (int i = 0; i < n && !st; i++) {
        snprintf(full, sizeof full, "%s%s", prefix, names[i]);
        st = tg_state_add(s, full, ts[i]);
    }
    if (st) truncate_entries(s, keep);
    if (!st) {
        s->opt[s->nopt].prefix = strdup(prefix);
        s->opt[s->nopt].o = o;
        if (!s->opt[s->nopt].prefix) st = tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
        else s->nopt++, tg_optim_retain(o); /* its step counts stay readable while s lives */
    }
    free(names);
    free(ts);
    return st;
}

tg_status tg_state_set_meta(tg_state *s, const char *key, const char *value) {
    static const char *fn = "tg_state_set_meta";
    if (!s || !key || !value)
        return tg_fail(TG_ERR_INVALID, fn, "%s is NULL", !s ? "state" : !key ? "key" : "value");
    const size_t len = strlen(key);
    if (len == 0 || len >= MAX_NAME)
        return tg_fail(TG_ERR_INVALID, fn, "key of %zu bytes (1 to %d allowed)", len, MAX_NAME - 1);
    if (!utf8_ok(key) || !utf8_ok(value))
        return tg_fail(TG_ERR_INVALID, fn, "the %s is not valid UTF-8", utf8_ok(key) ? "value" : "key");
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
    if (!s || !key) {
        tg_fail(TG_ERR_INVALID, "tg_state_get_meta", "%s is NULL", !s ? "state" : "key");
        return NULL;
    }
    for (int i = 0; i < s->nmeta; i++)
        if (strcmp(s->meta[i].k, key) == 0) return s->meta[i].v;
    return NULL;
}

tg_status tg_state_load(tg_state *s, const char *path, bool strict) {
    static const char *fn = "tg_state_load";
    TG_API_SCOPE(fn);
    if (!s || !path) return tg_fail(TG_ERR_INVALID, fn, "%s is NULL", !s ? "state" : "path");
    tg_st_file f;
    tg_status st = tg_st_read(path, &f, fn);
    if (st) return st;
    int64_t **steps_new = NULL;
    for (int i = 0; i < f.n && strict && f.n != s->n; i++) { /* names are unique on both sides */
        bool known = false;
        for (int j = 0; j < s->n && !known; j++) known = !strcmp(f.t[i].name, s->e[j].name);
        if (!known) {
            st = tg_st_fail(TG_ERR_FORMAT, fn, path, "unexpected tensor \"%s\" (strict load)", f.t[i].name);
            goto out;
        }
    }
    for (int j = 0; j < s->n; j++) {
        const tg_st_tensor *ti = tg_st_find(&f, s->e[j].name);
        tg_tensor *t = s->e[j].t;
        if (!ti) {
            st = tg_st_fail(TG_ERR_FORMAT, fn, path, "missing tensor \"%s\"", s->e[j].name);
            goto out;
        }
        bool same = ti->ndim == t->ndim && !strcmp(ti->dtype, "F32");
        for (int d = 0; same && d < t->ndim; d++) same = ti->shape[d] == t->shape[d];
        if (!same) {
            char got[160], want[64];
            int o = snprintf(got, sizeof got, "%s [", ti->dtype);
            for (int d = 0; d < ti->ndim && o < (int)sizeof got; d++)
                o += snprintf(got + o, sizeof got - (size_t)o, d ? ",%lld" : "%lld",
                              (long long)ti->shape[d]);
            if (o < (int)sizeof got) snprintf(got + o, sizeof got - (size_t)o, "]");
            st = tg_st_fail(TG_ERR_FORMAT, fn, path, "tensor \"%s\" is %s in the file, expected F32 %s",
                         s->e[j].name, got, tg_shape_str(t, want, sizeof want));
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
        const char *v = tg_st_meta(&f, key), *p = v;
        int n = tg_optim_count(s->opt[k].o), got = 0;
        steps_new[k] = calloc((size_t)n + 1, sizeof(int64_t));
        if (!steps_new[k]) {
            st = tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
            goto out;
        }
        while (p && *p && got <= n) {
            char *e;
            long long x = strtoll(p, &e, 10);
            if (e == p || x < 0) break;
            if (got < n) steps_new[k][got] = x;
            got++;
            if (*e != ',') {
                p = e;
                break;
            }
            p = e + 1;
        }
        if (!v || got != n || (p && *p)) {
            st = tg_st_fail(TG_ERR_FORMAT, fn, path, "metadata \"%s\" must list %d step counts", key, n);
            goto out;
        }
    }
    /* everything checked: commit (data may be unaligned in the buffer: write copies it) */
    for (int j = 0; j < s->n && !st; j++) {
        const tg_st_tensor *ti = tg_st_find(&f, s->e[j].name);
        float *tmp = malloc((size_t)ti->nbytes + 1);
        if (!tmp) {
            st = tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
            break;
        }
        memcpy(tmp, ti->data, (size_t)ti->nbytes);
        st = tg_tensor_write(s->e[j].t, tmp, s->e[j].t->numel);
        free(tmp);
    }
    if (st) goto out;
    for (int k = 0; k < s->nopt; k++) {
        int64_t *steps;
        tg_optim_state(s->opt[k].o, NULL, NULL, 0, &steps);
        memcpy(steps, steps_new[k], sizeof(int64_t) * (size_t)tg_optim_count(s->opt[k].o));
    }
    meta_clear(s);
    for (int i = 0; i < f.nmeta && !st; i++) st = tg_state_set_meta(s, f.mk[i], f.mv[i]);
out:
    if (steps_new)
        for (int k = 0; k < s->nopt; k++) free(steps_new[k]);
    free(steps_new);
    tg_st_release(&f);
    return st;
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
    TG_API_SCOPE(fn);
    if (!s || !path) return tg_fail(TG_ERR_INVALID, fn, "%s is NULL", !s ? "state" : "path");
    if (!path[0]) return tg_fail(TG_ERR_INVALID, fn, "path is empty");
    tg_status st = steps_meta(s);
    if (st) return st;
    tg_st_entry *e = calloc((size_t)s->n + 1, sizeof *e);
    char **mk = calloc((size_t)s->nmeta + 1, sizeof *mk), **mv = calloc((size_t)s->nmeta + 1, sizeof *mv);
    if (!e || !mk || !mv) {
        free(e), free(mk), free(mv);
        return tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
    }
    for (int i = 0; i < s->n; i++) {
        e[i].name = s->e[i].name;
        e[i].dtype = "F32";
        e[i].ndim = s->e[i].t->ndim;
        memcpy(e[i].shape, s->e[i].t->shape, sizeof(int64_t) * (size_t)e[i].ndim);
        e[i].t = s->e[i].t;
    }
    for (int i = 0; i < s->nmeta; i++) {
        mk[i] = s->meta[i].k;
        mv[i] = s->meta[i].v;
    }
    st = tg_st_write(path, e, s->n, mk, mv, s->nmeta, fn);
    free(e), free(mk), free(mv);
    return st;
}

tg_status tg_module_save(tg_module *m, const char *path) {
    static const char *fn = "tg_module_save";
    TG_API_SCOPE(fn);
    if (!m || !path) return tg_fail(TG_ERR_INVALID, fn, "%s is NULL", !m ? "module" : "path");
    tg_state *s = tg_state_new();
    if (!s) return TG_ERR_NOMEM;
    tg_status st = tg_state_add_module(s, "", m);
    if (!st) st = tg_state_save(s, path);
    tg_state_free(s);
    return st;
}

tg_status tg_module_load(tg_module *m, const char *path) {
    static const char *fn = "tg_module_load";
    TG_API_SCOPE(fn);
    if (!m || !path) return tg_fail(TG_ERR_INVALID, fn, "%s is NULL", !m ? "module" : "path");
    tg_state *s = tg_state_new();
    if (!s) return TG_ERR_NOMEM;
    tg_status st = tg_state_add_module(s, "", m);
    if (!st) st = tg_state_load(s, path, false);
    tg_state_free(s);
    return st;
}


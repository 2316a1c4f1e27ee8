/*
 * safetensors.c — the safetensors file format (8-byte little-endian header length, a JSON header,
 * then raw little-endian data), used by tg_state (lib/state.c) and by packed datasets
 * (lib/dataset.c).
 *
 * tg_st_read reads a whole file into memory — decompressing it if it is xz, to the size its index
 * declares, within tg_limits — and checks the header with the bounds-checked JSON reader of json.h
 * (every byte range against the data section and dtype*shape, unique names, disjoint ranges).
 * tg_st_write streams one out to an unnamed O_TMPFILE file in the same directory (a named
 * "<path>.tmp.XXXXXX" where that is unavailable), fsyncs it, names it and renames it over path, so
 * a crash leaves either the old file or the new one and no temporary file.
 *
 * Built with TG_NO_CODECS (the WebAssembly build, make wasm: no liblzma there), an xz file is
 * refused with TG_ERR_UNSUPPORTED, reading and writing; plain files are unchanged.
 */
#define _GNU_SOURCE
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#ifndef TG_NO_CODECS
#include <lzma.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif
#include "json.h"

static int dtype_size(const char *d) {
    static const char *n8[] = {"F64", "I64", "U64"}, *n4[] = {"F32", "I32", "U32"},
                      *n2[] = {"F16", "BF16", "I16", "U16"}, *n1[] = {"I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2"};
    for (int i = 0; i < 3; i++) if (!strcmp(d, n8[i])) return 8;
    for (int i = 0; i < 3; i++) if (!strcmp(d, n4[i])) return 4;
    for (int i = 0; i < 4; i++) if (!strcmp(d, n2[i])) return 2;
    for (int i = 0; i < 5; i++) if (!strcmp(d, n1[i])) return 1;
    return 0;
}

static bool parse_tensor_info(jr *r, tg_st_tensor *ti, uint64_t *begin, uint64_t *end) {
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
            if (!lit(r, '[') || !juint(r, begin) || !lit(r, ',') || !juint(r, end) || !lit(r, ']'))
                return false;
            have_o = true;
        } else if (!jskip(r)) {
            return false;
        }
    } while (lit(r, ','));
    return lit(r, '}') && have_d && have_s && have_o;
}

tg_status tg_st_fail(tg_status code, const char *fn, const char *path, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tg_fail(code, fn, "%s: %s", path, msg);
}

#ifndef TG_NO_CODECS
#define XZ_DECODER_MEMLIMIT ((uint64_t)512 << 20) /* xz -9e needs ~65 MiB to decode */

/* The uncompressed size an xz file declares in the index of each of its streams (walked from the
 * end, stream padding skipped), or UINT64_MAX when there is no readable index. Reading it costs
 * O(index) memory and lets a decompression bomb be refused before anything is decoded. */
static uint64_t xz_declared_size(const uint8_t *buf, size_t n) {
    uint64_t total = 0;
    size_t end = n;
    while (end > 0) {
        while (end >= 4 && !buf[end - 1] && !buf[end - 2] && !buf[end - 3] && !buf[end - 4])
            end -= 4;
        if (end < 2 * LZMA_STREAM_HEADER_SIZE) return UINT64_MAX;
        lzma_stream_flags footer;
        if (lzma_stream_footer_decode(&footer, buf + end - LZMA_STREAM_HEADER_SIZE) != LZMA_OK)
            return UINT64_MAX;
        if (footer.backward_size > end - 2 * LZMA_STREAM_HEADER_SIZE) return UINT64_MAX;
        size_t ipos = end - LZMA_STREAM_HEADER_SIZE - (size_t)footer.backward_size;
        lzma_index *idx = NULL;
        uint64_t memlimit = (uint64_t)64 << 20;
        size_t in_pos = ipos;
        if (lzma_index_buffer_decode(&idx, &memlimit, NULL, buf, &in_pos,
                                     ipos + (size_t)footer.backward_size) != LZMA_OK)
            return UINT64_MAX;
        const uint64_t usize = lzma_index_uncompressed_size(idx);
        const uint64_t ssize = lzma_index_stream_size(idx);
        lzma_index_end(idx, NULL);
        if (ssize > end || usize > UINT64_MAX - total) return UINT64_MAX;
        total += usize;
        end -= (size_t)ssize;
    }
    return total;
}
#endif

/* Whole file into memory; xz (by magic bytes) is decompressed into a buffer of exactly the size
 * its index declares, after checking that size against the limit. */
static tg_status slurp(const char *path, uint8_t **out, size_t *size, const char *fn) {
    const tg_limits *lim = tg_limits_now();
    tg_status st;
    FILE *f = tg_open_regular(path, fn, &st);
    if (!f) return st;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        fclose(f);
        return tg_st_fail(TG_ERR_IO, fn, path, "cannot read its size: %s", strerror(errno));
    }
    if ((uint64_t)sb.st_size > lim->max_file_bytes) {
        fclose(f);
        return tg_fail(TG_ERR_FORMAT, fn, "%s is %lld bytes, over the %llu-byte file limit (tg_set_limits)",
                       path, (long long)sb.st_size, (unsigned long long)lim->max_file_bytes);
    }
    size_t n = (size_t)sb.st_size;
    uint8_t *raw = malloc(n ? n : 1);
    if (!raw) {
        fclose(f);
        return tg_fail(TG_ERR_NOMEM, fn, "out of host memory reading %s", path);
    }
    size_t got = fread(raw, 1, n, f);
    fclose(f);
    if (got != n) {
        free(raw);
        return tg_st_fail(TG_ERR_IO, fn, path, "short read");
    }
    static const uint8_t xz_magic[6] = {0xFD, '7', 'z', 'X', 'Z', 0};
    if (n < 6 || memcmp(raw, xz_magic, 6) != 0) {
        *out = raw;
        *size = n;
        return TG_OK;
    }
#ifdef TG_NO_CODECS
    free(raw);
    return tg_st_fail(TG_ERR_UNSUPPORTED, fn, path, "xz-compressed data, and this build of libtensorgan has "
                      "no xz decoder (the WebAssembly build): decompress it first (unxz)");
#else
    const uint64_t declared = xz_declared_size(raw, n);
    if (declared == UINT64_MAX) {
        free(raw);
        return tg_st_fail(TG_ERR_FORMAT, fn, path, "corrupt or truncated xz data (no readable index)");
    }
    if (declared > lim->max_file_bytes || declared > SIZE_MAX - 1) {
        free(raw);
        return tg_fail(TG_ERR_FORMAT, fn,
                       "%s: the xz data declares %llu bytes uncompressed, over the %llu-byte file "
                       "limit (tg_set_limits)",
                       path, (unsigned long long)declared, (unsigned long long)lim->max_file_bytes);
    }
    lzma_stream z = LZMA_STREAM_INIT;
    lzma_ret r = lzma_stream_decoder(&z, XZ_DECODER_MEMLIMIT, LZMA_CONCATENATED);
    if (r != LZMA_OK) {
        free(raw);
        return tg_fail(TG_ERR_NOMEM, fn, "cannot start the xz decoder");
    }
    /* one byte more than declared: data beyond the index's word is an error, not a realloc */
    const size_t cap = (size_t)declared + 1;
    uint8_t *dec = malloc(cap);
    if (!dec) {
        lzma_end(&z);
        free(raw);
        return tg_fail(TG_ERR_NOMEM, fn, "out of host memory decompressing %s (%llu bytes)", path,
                       (unsigned long long)declared);
    }
    z.next_in = raw;
    z.avail_in = n;
    z.next_out = dec;
    z.avail_out = cap;
    r = lzma_code(&z, LZMA_FINISH);
    const size_t len = cap - z.avail_out;
    lzma_end(&z);
    free(raw);
    if (r != LZMA_STREAM_END || len != declared) {
        free(dec);
        if (r == LZMA_MEMLIMIT_ERROR)
            return tg_st_fail(TG_ERR_FORMAT, fn, path, "xz data needs more than %llu MiB to decode",
                           (unsigned long long)(XZ_DECODER_MEMLIMIT >> 20));
        return tg_st_fail(TG_ERR_FORMAT, fn, path,
                       "corrupt or truncated xz data (liblzma error %d, %zu of %llu bytes)", (int)r,
                       len, (unsigned long long)declared);
    }
    *out = dec;
    *size = len;
    return TG_OK;
#endif
}

void tg_st_release(tg_st_file *f) {
    if (!f) return;
    free(f->buf);
    for (int i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    free(f->by_name);
    for (int i = 0; i < f->nmeta; i++) {
        free(f->mk[i]);
        free(f->mv[i]);
    }
    free(f->mk);
    free(f->mv);
    memset(f, 0, sizeof *f);
}

/* for the duplicate check and tg_st_find */
static _Thread_local const tg_st_file *sort_file;
static int cmp_name(const void *a, const void *b) {
    return strcmp(sort_file->t[*(const int *)a].name, sort_file->t[*(const int *)b].name);
}
static int cmp_begin(const void *a, const void *b) {
    const tg_st_tensor *x = &sort_file->t[*(const int *)a], *y = &sort_file->t[*(const int *)b];
    return x->data < y->data ? -1 : x->data > y->data;
}

/* Names unique, byte ranges disjoint (empty ones aside); builds the by-name index. */
static tg_status check_table(tg_st_file *f, const char *path, const char *fn) {
    int *ord = malloc(sizeof *ord * (size_t)(f->n ? f->n : 1));
    f->by_name = malloc(sizeof *f->by_name * (size_t)(f->n ? f->n : 1));
    if (!ord || !f->by_name) {
        free(ord);
        return tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
    }
    for (int i = 0; i < f->n; i++) f->by_name[i] = ord[i] = i;
    sort_file = f; /* qsort has no user pointer: a thread-local stands in */
    qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_name);
    qsort(ord, (size_t)f->n, sizeof *ord, cmp_begin);
    sort_file = NULL;
    tg_status st = TG_OK;
    for (int i = 1; i < f->n && !st; i++)
        if (!strcmp(f->t[f->by_name[i]].name, f->t[f->by_name[i - 1]].name))
            st = tg_st_fail(TG_ERR_FORMAT, fn, path, "tensor \"%s\" appears twice in the header",
                         f->t[f->by_name[i]].name);
    const tg_st_tensor *prev = NULL;
    for (int i = 0; i < f->n && !st; i++) {
        const tg_st_tensor *t = &f->t[ord[i]];
        if (!t->nbytes) continue;
        if (prev && t->data < prev->data + prev->nbytes)
            st = tg_st_fail(TG_ERR_FORMAT, fn, path, "tensors \"%s\" and \"%s\" overlap in the data section",
                         prev->name, t->name);
        prev = t;
    }
    free(ord);
    return st;
}

tg_status tg_st_read(const char *path, tg_st_file *f, const char *fn) {
    memset(f, 0, sizeof *f);
    if (!path) return tg_fail(TG_ERR_INVALID, fn, "path is NULL");
    tg_status st = slurp(path, &f->buf, &f->size, fn);
    if (st) return st;
    uint64_t hl = 0;
    char *scratch = NULL;
    if (f->size < 8) {
        st = tg_fail(TG_ERR_FORMAT, fn, "%s is not a safetensors file (only %zu bytes)", path,
                     f->size);
        goto fail;
    }
    memcpy(&hl, f->buf, 8);
    if (hl < 2 || hl > f->size - 8) {
        st = tg_fail(TG_ERR_FORMAT, fn,
                     "%s is not a safetensors file (its first 8 bytes give a header length of "
                     "%llu, impossible for a file of %zu bytes)",
                     path, (unsigned long long)hl, f->size);
        goto fail;
    }
    if (f->buf[8] != '{') {
        st = tg_fail(TG_ERR_FORMAT, fn,
                     "%s is not a safetensors file (the header does not start a JSON object)", path);
        goto fail;
    }
    if (hl > tg_limits_now()->max_header_bytes) {
        st = tg_fail(TG_ERR_FORMAT, fn, "%s: header of %llu bytes is over the %llu-byte limit (tg_set_limits)",
                     path, (unsigned long long)hl,
                     (unsigned long long)tg_limits_now()->max_header_bytes);
        goto fail;
    }
    const char *hdr = (const char *)f->buf + 8;
    const uint64_t data_size = f->size - 8 - hl;
    const uint8_t *data = f->buf + 8 + hl;
    /* every string of the header fits in it: metadata values are read here and copied to size */
    scratch = malloc((size_t)hl + 1);
    if (!scratch) {
        st = tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
        goto fail;
    }
    jr r = {hdr, hdr + hl, 0};
    int cap = 0, mcap = 0;
    if (!lit(&r, '{')) goto bad;
    if (!lit(&r, '}')) {
        do {
            char key[MAX_NAME];
            if (!jstring(&r, key, sizeof key) || !lit(&r, ':')) goto bad;
            if (!strcmp(key, "__metadata__")) {
                if (!lit(&r, '{')) goto bad;
                if (lit(&r, '}')) continue;
                do {
                    if (f->nmeta == mcap) {
                        mcap = mcap ? mcap * 2 : 16;
                        char **nk = realloc(f->mk, sizeof *nk * (size_t)mcap);
                        if (nk) f->mk = nk;
                        char **nv = nk ? realloc(f->mv, sizeof *nv * (size_t)mcap) : NULL;
                        if (nv) f->mv = nv;
                        if (!nk || !nv) {
                            st = tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
                            goto fail;
                        }
                    }
                    char k[MAX_NAME];
                    if (!jstring(&r, k, sizeof k) || !lit(&r, ':') ||
                        !jstring(&r, scratch, (size_t)hl + 1))
                        goto bad;
                    f->mk[f->nmeta] = strdup(k);
                    f->mv[f->nmeta] = strdup(scratch);
                    if (!f->mk[f->nmeta] || !f->mv[f->nmeta]) {
                        free(f->mk[f->nmeta]);
                        free(f->mv[f->nmeta]);
                        st = tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
                        goto fail;
                    }
                    f->nmeta++;
                } while (lit(&r, ','));
                if (!lit(&r, '}')) goto bad;
                continue;
            }
            if (f->n == cap) {
                cap = cap ? cap * 2 : 64;
                tg_st_tensor *nt = realloc(f->t, sizeof *nt * (size_t)cap);
                if (!nt) {
                    st = tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
                    goto fail;
                }
                f->t = nt;
            }
            tg_st_tensor *ti = &f->t[f->n];
            memset(ti, 0, sizeof *ti);
            uint64_t b = 0, e = 0;
            if (!parse_tensor_info(&r, ti, &b, &e)) {
                st = tg_st_fail(TG_ERR_FORMAT, fn, path, "bad entry for tensor \"%s\"", key);
                goto fail;
            }
            /* element count and byte size without overflow: a shape of [2^40, 4096, 4096, 3]
             * must not wrap around to match a tiny byte range */
            const uint64_t es = (uint64_t)dtype_size(ti->dtype);
            uint64_t numel = 1;
            bool overflow = false;
            for (int d = 0; d < ti->ndim; d++) {
                const uint64_t dim = (uint64_t)ti->shape[d];
                if (dim && numel > UINT64_MAX / dim) overflow = true;
                else numel *= dim;
            }
            if (es && numel > UINT64_MAX / es) overflow = true;
            if (overflow || b > e || e > data_size || (es && (e - b) != numel * es)) {
                st = tg_st_fail(TG_ERR_FORMAT, fn, path,
                             "tensor \"%s\": byte range [%llu, %llu) does not fit its shape (%s) "
                             "or the %llu-byte data section",
                             key, (unsigned long long)b, (unsigned long long)e, ti->dtype,
                             (unsigned long long)data_size);
                goto fail;
            }
            ti->name = strdup(key);
            if (!ti->name) {
                st = tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
                goto fail;
            }
            ti->data = data + b;
            ti->nbytes = e - b;
            f->n++;
        } while (lit(&r, ','));
        if (!lit(&r, '}')) goto bad;
    }
    ws(&r);
    if (r.p != r.end) goto bad;
    free(scratch);
    st = check_table(f, path, fn);
    if (st) {
        tg_st_release(f);
        return st;
    }
    return TG_OK;
bad:
    st = tg_st_fail(TG_ERR_FORMAT, fn, path, "malformed JSON header near byte %lld",
                 (long long)(r.p - hdr));
fail:
    free(scratch);
    tg_st_release(f);
    return st;
}

const tg_st_tensor *tg_st_find(const tg_st_file *f, const char *name) {
    int lo = 0, hi = f->n - 1; /* binary search over by_name */
    while (lo <= hi) {
        const int mid = lo + (hi - lo) / 2;
        const int c = strcmp(f->t[f->by_name[mid]].name, name);
        if (!c) return &f->t[f->by_name[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

const char *tg_st_meta(const tg_st_file *f, const char *key) {
    for (int i = 0; i < f->nmeta; i++)
        if (!strcmp(f->mk[i], key)) return f->mv[i];
    return NULL;
}

/* Output stream: plain file, or through an xz encoder. */
typedef struct {
    FILE *f;
    int xz;
#ifndef TG_NO_CODECS
    lzma_stream z;
#endif
    uint8_t out[1 << 16];
    int ok;
    int err; /* errno of the first failed write */
} sink;

static void sink_put(sink *k, const void *p, size_t n) {
    if (!k->ok || n == 0) return;
    if (!k->xz) {
        k->ok = fwrite(p, 1, n, k->f) == n;
        if (!k->ok) k->err = errno ? errno : EIO;
        return;
    }
#ifndef TG_NO_CODECS
    k->z.next_in = p;
    k->z.avail_in = n;
    while (k->ok && k->z.avail_in) {
        k->z.next_out = k->out;
        k->z.avail_out = sizeof k->out;
        if (lzma_code(&k->z, LZMA_RUN) != LZMA_OK) k->ok = 0, k->err = ENOMEM;
        size_t w = sizeof k->out - k->z.avail_out;
        if (k->ok && w && fwrite(k->out, 1, w, k->f) != w) k->ok = 0, k->err = errno ? errno : EIO;
    }
#endif
}

static void sink_finish(sink *k) {
    if (!k->xz) return;
#ifndef TG_NO_CODECS
    lzma_ret r = LZMA_OK;
    while (k->ok && r != LZMA_STREAM_END) {
        k->z.next_out = k->out;
        k->z.avail_out = sizeof k->out;
        r = lzma_code(&k->z, LZMA_FINISH);
        if (r != LZMA_OK && r != LZMA_STREAM_END) k->ok = 0, k->err = ENOMEM;
        size_t w = sizeof k->out - k->z.avail_out;
        if (k->ok && w && fwrite(k->out, 1, w, k->f) != w) k->ok = 0, k->err = errno ? errno : EIO;
    }
    lzma_end(&k->z);
#endif
}

tg_status tg_st_write(const char *path, const tg_st_entry *e, int n, char *const *mk,
                      char *const *mv, int nmeta, const char *fn) {
    if (!path) return tg_fail(TG_ERR_INVALID, fn, "path is NULL");
    if (!path[0]) return tg_fail(TG_ERR_INVALID, fn, "path is empty");
    const size_t last = strlen(path) - 1;
    if (path[last] == '/') return tg_fail(TG_ERR_INVALID, fn, "path %s names a directory, not a file", path);
#ifdef TG_NO_CODECS
    if (last >= 3 && !strcmp(path + last - 2, ".xz"))
        return tg_st_fail(TG_ERR_UNSUPPORTED, fn, path, "this build of libtensorgan has no xz encoder (the "
                          "WebAssembly build): write it without .xz");
#endif
    sbuf h = {0};
    sb_str(&h, "{");
    if (nmeta) {
        sb_str(&h, "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i) sb_str(&h, ",");
            sb_json(&h, mk[i]);
            sb_str(&h, ":");
            sb_json(&h, mv[i]);
        }
        sb_str(&h, "}");
    }
    uint64_t off = 0, maxb = 1;
    for (int i = 0; i < n; i++) {
        if (nmeta || i) sb_str(&h, ",");
        sb_json(&h, e[i].name);
        sb_str(&h, ":{\"dtype\":");
        sb_json(&h, e[i].dtype);
        sb_str(&h, ",\"shape\":[");
        char num[64];
        uint64_t numel = 1;
        for (int d = 0; d < e[i].ndim; d++) {
            snprintf(num, sizeof num, d ? ",%lld" : "%lld", (long long)e[i].shape[d]);
            sb_str(&h, num);
            numel *= (uint64_t)e[i].shape[d];
        }
        uint64_t bytes = numel * (uint64_t)dtype_size(e[i].dtype);
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + bytes));
        sb_str(&h, num);
        off += bytes;
        if (e[i].t && bytes > maxb) maxb = bytes;
    }
    sb_str(&h, "}");
    while (!h.oom && h.n % 8) sb_str(&h, " ");
    size_t plen = strlen(path);
    float *buf = malloc((size_t)maxb);
    char *tmp = malloc(plen + 16);
    if (h.oom || !buf || !tmp) {
        free(h.p), free(buf), free(tmp);
        return tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
    }
    tg_status st = TG_OK;
    /* The temporary file: unnamed (O_TMPFILE) in path's directory where the system allows, so a
     * process killed while writing leaves nothing behind; it gets the name <path>.tmp.XXXXXX
     * (linkat) only for the instant before the rename. Elsewhere a named mkstemp file. */
    char *dir = strdup(path);
    if (!dir) {
        st = tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
        goto done;
    }
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = 0; /* "/name": the root */
    else if (slash) *slash = 0;
    else dir[0] = '.', dir[1] = 0;  /* "name": the current directory (path has >= 1 char) */
    mode_t um = umask(0);
    umask(um);
    int fd = -1, unnamed = 0;
#ifdef O_TMPFILE
    if (access("/proc/self/fd", X_OK) == 0) {
        fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666 & ~um);
        unnamed = fd >= 0;
    }
#endif
    if (fd < 0) {
        snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
        fd = mkstemp(tmp);
        /* mkstemp makes 0600 files; give the result the permissions a plain fopen would */
        if (fd >= 0 && fchmod(fd, 0666 & ~um) != 0) { /* keep 0600: still a valid file */ }
    }
    sink k = {0};
    k.f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!k.f) {
        st = tg_fail(TG_ERR_IO, fn, "cannot create a temporary file for %s: %s", path,
                     strerror(errno));
        if (fd >= 0) {
            close(fd);
            if (!unnamed) unlink(tmp);
        }
        free(dir);
        goto done;
    }
    k.ok = 1;
    k.xz = plen > 3 && strcmp(path + plen - 3, ".xz") == 0;
#ifndef TG_NO_CODECS
    if (k.xz) {
        lzma_stream z = LZMA_STREAM_INIT;
        k.z = z;
        lzma_mt mt = {0};
        mt.threads = lzma_cputhreads() ? lzma_cputhreads() : 1;
        mt.preset = 9 | LZMA_PRESET_EXTREME; /* packed datasets are written once, read often */
        mt.check = LZMA_CHECK_CRC64;
        if (lzma_stream_encoder_mt(&k.z, &mt) != LZMA_OK) k.ok = 0;
    }
#endif
    uint64_t hl = h.n;
    sink_put(&k, &hl, 8);
    sink_put(&k, h.p, h.n);
    for (int i = 0; i < n && k.ok; i++) {
        if (e[i].t) {
            if (tg_tensor_read(e[i].t, buf, tg_tensor_numel(e[i].t)) != TG_OK) {
                st = TG_ERR_DEVICE;
                k.ok = 0;
                break;
            }
            sink_put(&k, buf, (size_t)tg_tensor_numel(e[i].t) * sizeof(float));
        } else {
            uint64_t numel = 1;
            for (int d = 0; d < e[i].ndim; d++) numel *= (uint64_t)e[i].shape[d];
            sink_put(&k, e[i].host, (size_t)(numel * (uint64_t)dtype_size(e[i].dtype)));
        }
    }
    sink_finish(&k);
    /* errno is taken where each step fails: a stale one would name the wrong error */
    int werr = k.ok ? 0 : (k.err ? k.err : EIO);
    bool ok = k.ok;
    if (ok && fflush(k.f) != 0) ok = false, werr = errno;
    if (ok && fsync(fileno(k.f)) != 0) ok = false, werr = errno;
    if (ok && unnamed) { /* give it a name next to path: retry on the (unlikely) collision */
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fileno(k.f));
        ok = false;
        for (int tries = 0; tries < 100 && !ok; tries++) {
            snprintf(tmp, plen + 16, "%s.tmp.%06x", path,
                     (unsigned)((tg_now_ns() >> 6) + (uint64_t)tries * 7919u) & 0xffffffu);
            ok = linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0;
            if (!ok && errno != EEXIST) break;
        }
        if (!ok) werr = errno;
    }
    const bool named = !unnamed || ok; /* whether tmp now exists on disk */
    if (fclose(k.f) != 0 && ok) {
        werr = errno;
        ok = false;
    }
    if (ok && rename(tmp, path) != 0) {
        werr = errno;
        ok = false;
    }
    if (ok) { /* make the rename itself durable */
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            if (fsync(dfd) != 0) { /* the file is complete; a failed directory sync is not fatal */ }
            close(dfd);
        }
    }
    if (!ok) {
        if (named) unlink(tmp);
        if (!st) st = tg_fail(TG_ERR_IO, fn, "writing %s failed: %s", path, strerror(werr));
    }
    free(dir);
done:
    free(tmp);
    free(h.p);
    free(buf);
    return st;
}


/*
 * dataset.c — image datasets: a directory of PNG/JPEG files (searched recursively, decoded in
 * parallel, center-cropped and resized once) or a packed safetensors file (optionally xz), kept
 * in memory as uint8 [N,size,size,3] and served as float batches in [-1,1].
 */
#define _GNU_SOURCE
#include "core.h"
#include "io.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct tg_dataset {
    int64_t n;
    int size;
    uint8_t *px;     /* [n][size][size][3] */
    float *scratch;  /* one batch on the host */
    int64_t scratch_n;
};

typedef struct {
    char **p;
    int n, cap;
    struct { dev_t dev; ino_t ino; } *seen; /* directories visited (a symlink loop is entered once) */
    int nseen, capseen;
} pathlist;

/* whether directory sb was visited already; records it otherwise */
static bool visited(pathlist *l, const struct stat *sb) {
    for (int i = 0; i < l->nseen; i++)
        if (l->seen[i].dev == sb->st_dev && l->seen[i].ino == sb->st_ino) return true;
    if (l->nseen == l->capseen) {
        int cap = l->capseen ? l->capseen * 2 : 64;
        void *p = realloc(l->seen, sizeof *l->seen * (size_t)cap);
        if (!p) return true; /* out of memory: do not descend */
        l->seen = p;
        l->capseen = cap;
    }
    l->seen[l->nseen].dev = sb->st_dev;
    l->seen[l->nseen].ino = sb->st_ino;
    l->nseen++;
    return false;
}

static bool is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

static void scan(const char *dir, pathlist *l, int depth) {
    struct stat ds;
    if (depth > 32 || stat(dir, &ds) != 0 || visited(l, &ds)) return;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(len);
        if (!p) break;
        snprintf(p, len, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(p, &sb) != 0) {
            free(p);
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            scan(p, l, depth + 1);
            free(p);
        } else if (S_ISREG(sb.st_mode) && is_image_name(e->d_name) && l->n < INT32_MAX / 2) {
            if (l->n == l->cap) {
                int cap = l->cap ? l->cap * 2 : 256;
                char **np = realloc(l->p, sizeof *np * (size_t)cap);
                if (!np) {
                    free(p);
                    break;
                }
                l->p = np;
                l->cap = cap;
            }
            l->p[l->n++] = p;
        } else {
            free(p);
        }
    }
    closedir(d);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* bytes of n images of size x size x 3, when that fits (checked.h); 0 otherwise */
static size_t images_bytes(int64_t n, int size) {
    int64_t px, all;
    size_t bytes;
    if (!tg_mul_ok(size, size, &px) || !tg_mul_ok(px, 3, &px) || !tg_mul_ok(n, px, &all) ||
        !tg_bytes_ok(all, 1, &bytes) || bytes == SIZE_MAX)
        return 0;
    return bytes;
}

/* NULL when out of memory (bytes from images_bytes, already checked) */
static tg_dataset *ds_new(int64_t n, int size, size_t bytes) {
    if (bytes >= tg_host_memory()) return NULL;
    tg_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return NULL;
    ds->n = n;
    ds->size = size;
    ds->px = malloc(bytes + 1);
    if (!ds->px) {
        free(ds);
        return NULL;
    }
    return ds;
}

static tg_dataset *load_dir(const char *dir, int size, int *skipped) {
    static const char *fn = "tg_dataset_load";
    pathlist l = {0};
    scan(dir, &l, 0);
    if (l.n) qsort(l.p, (size_t)l.n, sizeof *l.p, cmp_str); /* the same order on every machine */
    const size_t img = (size_t)size * size * 3;
    uint8_t *px = malloc(img * (size_t)(l.n ? l.n : 1));
    char *ok = calloc((size_t)l.n + 1, 1);
    tg_dataset *ds = NULL;
    if (!px || !ok) {
        tg_fail(TG_ERR_NOMEM, fn, "out of memory for %d images", l.n);
        goto out;
    }
#pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i < l.n; i++) {
        uint8_t *rgb = NULL;
        int w, h;
        if (tg_image_load(l.p[i], &rgb, &w, &h) == TG_OK &&
            tg_image_resize_square(rgb, w, h, px + img * (size_t)i, size) == TG_OK)
            ok[i] = 1;
        free(rgb);
    }
    int64_t good = 0;
    for (int i = 0; i < l.n; i++) {
        if (!ok[i]) continue;
        if (good != i) memmove(px + img * (size_t)good, px + img * (size_t)i, img);
        good++;
    }
    if (skipped) *skipped = l.n - (int)good;
    if (good == 0) {
        tg_fail(TG_ERR_FORMAT, fn, "no usable PNG or JPEG image under %s (%d image files found, all unreadable)",
                dir, l.n);
        if (l.n == 0)
            tg_fail(TG_ERR_FORMAT, fn, "no PNG or JPEG image under %s (searched recursively)", dir);
        goto out;
    }
    ds = calloc(1, sizeof *ds);
    if (!ds) {
        tg_fail(TG_ERR_NOMEM, fn, "out of memory");
        goto out;
    }
    ds->n = good;
    ds->size = size;
    ds->px = px;
    px = NULL;
out:
    for (int i = 0; i < l.n; i++) free(l.p[i]);
    free(l.p);
    free(l.seen);
    free(ok);
    free(px);
    return ds;
}

static tg_dataset *load_packed(const char *path, int size) {
    static const char *fn = "tg_dataset_load";
    tg_st_file f;
    tg_status st = tg_st_read(path, &f, fn);
    if (st) {
        if (strstr(tg_last_error(), "is not a safetensors file")) { /* what the caller was after */
            char detail[1024];
            const char *m = tg_last_error();
            size_t skip = strlen(fn) + 2;
            snprintf(detail, sizeof detail, "%s", strncmp(m, fn, strlen(fn)) ? m : m + skip);
            tg_fail(st, fn, "%s is neither an image directory nor a packed image dataset: %s",
                    path, detail);
        }
        return NULL;
    }
    tg_dataset *ds = NULL;
    const tg_st_tensor *t = tg_st_find(&f, "images");
    const char *kind = tg_st_meta(&f, "format");
    if (!t || strcmp(t->dtype, "U8") || t->ndim != 4 || t->shape[3] != 3 ||
        t->shape[1] != t->shape[2] || t->shape[0] < 1) {
        tg_fail(TG_ERR_FORMAT, fn,
                "%s is not a packed image dataset: it has no U8 tensor \"images\" [N,S,S,3]%s%s%s",
                path, kind ? " (its format is \"" : "", kind ? kind : "", kind ? "\")" : "");
    } else if (t->shape[1] != size) {
        tg_fail(TG_ERR_FORMAT, fn, "%s holds %lldx%lld images, %dx%d were asked for", path,
                (long long)t->shape[1], (long long)t->shape[2], size, size);
    } else if (t->nbytes != (uint64_t)t->shape[0] * (uint64_t)size * (uint64_t)size * 3u) {
        tg_fail(TG_ERR_FORMAT, fn, "%s: \"images\" holds %llu bytes, not N*S*S*3", path,
                (unsigned long long)t->nbytes); /* cannot happen after tg_st_read's checks */
    } else if (!(ds = ds_new(t->shape[0], size, (size_t)t->nbytes))) {
        tg_fail(TG_ERR_NOMEM, fn, "out of memory for %lld images", (long long)t->shape[0]);
    } else {
        memcpy(ds->px, t->data, (size_t)t->nbytes);
    }
    tg_st_release(&f);
    return ds;
}

tg_dataset *tg_dataset_load(const char *path, int size, int *skipped) {
    static const char *fn = "tg_dataset_load";
    if (skipped) *skipped = 0;
    if (!path || size < 1 || size > 4096) {
        tg_fail(TG_ERR_INVALID, fn, "path is NULL or size %d out of range", size);
        return NULL;
    }
    struct stat sb;
    if (stat(path, &sb) != 0) {
        tg_fail(TG_ERR_IO, fn, "%s does not exist", path);
        return NULL;
    }
    return S_ISDIR(sb.st_mode) ? load_dir(path, size, skipped) : load_packed(path, size);
}

tg_dataset *tg_dataset_from_memory(const uint8_t *rgb, int64_t n, int size) {
    static const char *fn = "tg_dataset_from_memory";
    if (!rgb || n < 1 || size < 1 || size > 4096) {
        tg_fail(TG_ERR_INVALID, fn, "%s", !rgb ? "rgb is NULL" : n < 1 ? "n must be >= 1" : "size must be in 1..4096");
        return NULL;
    }
    const size_t bytes = images_bytes(n, size);
    if (!bytes) {
        tg_fail(TG_ERR_INVALID, fn, "%lld images of %dx%d x 3 bytes overflow a memory size", (long long)n, size, size);
        return NULL;
    }
    tg_dataset *ds = ds_new(n, size, bytes);
    if (!ds) {
        tg_fail(TG_ERR_NOMEM, fn, "out of memory for %lld images (%zu bytes)", (long long)n, bytes);
        return NULL;
    }
    memcpy(ds->px, rgb, bytes);
    return ds;
}

tg_status tg_dataset_save(const tg_dataset *ds, const char *path) {
    static const char *fn = "tg_dataset_save";
    if (!ds || !path) return tg_fail(TG_ERR_INVALID, fn, "%s is NULL", !ds ? "dataset" : "path");
    char count[32], size[16];
    snprintf(count, sizeof count, "%lld", (long long)ds->n);
    snprintf(size, sizeof size, "%d", ds->size);
    char *mk[3] = {"format", "count", "size"}, *mv[3] = {"tensorgan-images-v1", count, size};
    tg_st_entry e = {"images", "U8", 4, {ds->n, ds->size, ds->size, 3}, ds->px, NULL};
    return tg_st_write(path, &e, 1, mk, mv, 3, fn);
}

int64_t tg_dataset_count(const tg_dataset *ds) {
    if (!ds) tg_fail(TG_ERR_INVALID, "tg_dataset_count", "dataset is NULL");
    return ds ? ds->n : 0;
}
int tg_dataset_size(const tg_dataset *ds) {
    if (!ds) tg_fail(TG_ERR_INVALID, "tg_dataset_size", "dataset is NULL");
    return ds ? ds->size : 0;
}

const uint8_t *tg_dataset_image(const tg_dataset *ds, int64_t i) {
    static const char *fn = "tg_dataset_image";
    if (!ds) {
        tg_fail(TG_ERR_INVALID, fn, "dataset is NULL");
        return NULL;
    }
    if (i < 0 || i >= ds->n) {
        tg_fail(TG_ERR_INVALID, fn, "index %lld is outside the dataset's %lld images", (long long)i, (long long)ds->n);
        return NULL;
    }
    return ds->px + (size_t)i * ds->size * ds->size * 3;
}

tg_status tg_dataset_batch(const tg_dataset *cds, tg_tensor *out, const int64_t *idx,
                           const uint8_t *flip) {
    static const char *fn = "tg_dataset_batch";
    TG_API_SCOPE(fn);
    tg_dataset *ds = (tg_dataset *)cds; /* the scratch buffer is the only thing that changes */
    if (!ds || !out || !idx)
        return tg_fail(TG_ERR_INVALID, fn, "%s is NULL", !ds ? "dataset" : !out ? "out" : "idx");
    if (out->ctx->closing) return tg_fail(TG_ERR_INVALID, fn, "out's context was freed (tg_ctx_free)");
    const int S = ds->size;
    if (out->ndim != 4 || out->shape[1] != 3 || out->shape[2] != S || out->shape[3] != S) {
        char b[64];
        return tg_fail(TG_ERR_SHAPE, fn, "out %s must be [B,3,%d,%d]",
                       tg_shape_str(out, b, sizeof b), S, S);
    }
    const int64_t B = out->shape[0], P = (int64_t)S * S;
    for (int64_t b = 0; b < B; b++)
        if (idx[b] < 0 || idx[b] >= ds->n)
            return tg_fail(TG_ERR_INVALID, fn, "index %lld outside [0, %lld)", (long long)idx[b],
                           (long long)ds->n);
    if (ds->scratch_n < out->numel) {
        float *p = realloc(ds->scratch, sizeof(float) * (size_t)out->numel);
        if (!p) return tg_fail(TG_ERR_NOMEM, fn, "out of memory");
        ds->scratch = p;
        ds->scratch_n = out->numel;
    }
    float *h = ds->scratch;
#pragma omp parallel for if (B * P > 65536)
    for (int64_t b = 0; b < B; b++) {
        const uint8_t *src = ds->px + (size_t)idx[b] * P * 3;
        const int mirror = flip && flip[b];
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                const uint8_t *p = src + ((size_t)y * S + (mirror ? S - 1 - x : x)) * 3;
                for (int c = 0; c < 3; c++)
                    h[(b * 3 + c) * P + (int64_t)y * S + x] = p[c] * (1.0f / 127.5f) - 1.0f;
            }
    }
    return tg_tensor_write(out, h, out->numel);
}

void tg_dataset_free(tg_dataset *ds) {
    if (!ds) return;
    free(ds->px);
    free(ds->scratch);
    free(ds);
}

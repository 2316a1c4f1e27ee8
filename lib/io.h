/*
 * io.h — files: opening a caller's path for reading (lib/file.c) and the safetensors format
 * (lib/safetensors.c), shared by checkpoints (lib/state.c) and packed datasets (lib/dataset.c).
 * Uses the public API for tensor contents and lib/error.h for messages.
 */
#ifndef TG_IO_H
#define TG_IO_H

#include "error.h"

#include <stdio.h>

/* ---- files (lib/file.c) -------------------------------------------------------------------- */
/* path opened for reading when it is a regular file; NULL + message (named fn) and *st
 * otherwise: a NULL or empty path, a missing file, a directory, a FIFO or a device (never waits
 * for a FIFO's writer). */
TG_INTERNAL FILE *tg_open_regular(const char *path, const char *fn, tg_status *st);

/* ---- safetensors files (lib/safetensors.c), shared by checkpoints and datasets ------------- */
typedef struct {
    char *name;
    char dtype[16];
    int ndim;
    int64_t shape[8];
    const uint8_t *data; /* into the file buffer */
    uint64_t nbytes;
} tg_st_tensor;
typedef struct {
    uint8_t *buf;
    size_t size;
    tg_st_tensor *t;
    int n;
    int *by_name;        /* t's indices sorted by name (tg_st_find) */
    char **mk, **mv;
    int nmeta;
} tg_st_file;
/* Reads a whole safetensors file (xz-compressed or not, by content) and checks its header and
 * every byte range: sizes against tg_limits, element counts without overflow, unique names,
 * disjoint byte ranges. Messages are attributed to fn. */
TG_INTERNAL tg_status tg_st_read(const char *path, tg_st_file *f, const char *fn);
TG_INTERNAL void tg_st_release(tg_st_file *f);
TG_INTERNAL const tg_st_tensor *tg_st_find(const tg_st_file *f, const char *name);
TG_INTERNAL const char *tg_st_meta(const tg_st_file *f, const char *key);
typedef struct {
    const char *name;
    const char *dtype;       /* "F32", "U8", ... */
    int ndim;
    int64_t shape[8];
    const void *host;        /* data in host memory, or */
    const tg_tensor *t;      /* a float tensor on any device */
} tg_st_entry;
/* Sets "fn: path: <message>" and returns code (lib/safetensors.c; lib/state.c uses it too). */
TG_INTERNAL tg_status tg_st_fail(tg_status code, const char *fn, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Writes atomically (temp file, fsync, rename); xz-compressed when path ends in ".xz". */
TG_INTERNAL tg_status tg_st_write(const char *path, const tg_st_entry *e, int n, char *const *mk,
                                  char *const *mv, int nmeta, const char *fn);

#endif /* TG_IO_H */

/*
 * idx.h — Fashion-MNIST's gzip-compressed IDX files (Debian's dataset-fashion-mnist), shared by
 * examples/fashion and examples/cgan. Header-only: static functions, zlib. Errors exit with a
 * message naming the file.
 */
#ifndef EXAMPLES_IDX_H
#define EXAMPLES_IDX_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_SIDE 28
#define IDX_PIX (IDX_SIDE * IDX_SIDE)
#define IDX_CLASSES 10
#define IDX_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"

static const char *const IDX_NAMES[IDX_CLASSES] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

static void idx_die(const char *path, const char *what) {
    fprintf(stderr, "%s: %s\n", path, what);
    exit(1);
}

static uint32_t idx_be32(const uint8_t *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* An IDX file of unsigned bytes: magic 0x0801 (labels [n]) or 0x0803 (images [n,28,28]). */
static uint8_t *idx_read(const char *path, int dims, int64_t *count) {
    gzFile f = gzopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s: %s (install Debian's dataset-fashion-mnist, or pass --data DIR)\n", path,
                strerror(errno));
        exit(1);
    }
    uint8_t head[16];
    const int hlen = 4 + 4 * dims;
    if (gzread(f, head, (unsigned)hlen) != hlen) idx_die(path, "truncated header");
    if (idx_be32(head) != (uint32_t)(0x0800 | dims)) idx_die(path, "not an IDX file of unsigned bytes of the expected rank");
    const int64_t n = idx_be32(head + 4);
    if (dims == 3 && (idx_be32(head + 8) != IDX_SIDE || idx_be32(head + 12) != IDX_SIDE)) idx_die(path, "images are not 28x28");
    if (n < 1 || n > 1000000) idx_die(path, "implausible item count");
    const int64_t bytes = n * (dims == 3 ? IDX_PIX : 1);
    uint8_t *d = malloc((size_t)bytes);
    if (!d) idx_die(path, "out of memory");
    if (gzread(f, d, (unsigned)bytes) != (int)bytes) idx_die(path, "truncated data");
    gzclose(f);
    *count = n;
    return d;
}

typedef struct {
    uint8_t *img, *lab;
    int64_t n;
} idx_split;

/* "train" or "t10k" from dir; at most limit items when limit > 0 */
static idx_split idx_load(const char *dir, const char *name, int64_t limit) {
    char p[4096];
    idx_split s;
    int64_t nl;
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte.gz", dir, name);
    s.img = idx_read(p, 3, &s.n);
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte.gz", dir, name);
    s.lab = idx_read(p, 1, &nl);
    if (nl != s.n) idx_die(p, "label count differs from the image count");
    for (int64_t i = 0; i < s.n; i++)
        if (s.lab[i] >= IDX_CLASSES) idx_die(p, "a label is not one of the 10 classes");
    if (limit > 0 && limit < s.n) s.n = limit;
    return s;
}

static void idx_free(idx_split *s) {
    free(s->img), free(s->lab);
    s->img = s->lab = NULL;
}

#endif

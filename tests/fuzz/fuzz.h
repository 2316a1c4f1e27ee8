/*
 * fuzz.h — shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c, built and run by
 * tests/fuzz/run.sh, `make fuzz`). The library's loaders take paths, so each input is written
 * to a per-process file (in /dev/shm when there is one) and loaded from there. The loader
 * limits are lowered so that what a 1 MB input may ask for stays far below libFuzzer's memory
 * limit: anything over them must be refused with a message, never allocated.
 */
#ifndef TG_FUZZ_H
#define TG_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tensorgan.h>

static const char *fuzz_dir(void) { return access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"; }

/* path of this process's scratch file with the given suffix */
static const char *fuzz_path(const char *suffix) {
    static char p[4][256];
    static int next;
    char *out = p[next++ & 3];
    snprintf(out, 256, "%s/tg_fuzz_%d%s", fuzz_dir(), (int)getpid(), suffix);
    return out;
}

static void fuzz_write(const char *path, const uint8_t *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(data, 1, n, f) != n) abort();
    fclose(f);
}

static void fuzz_limits(void) {
    static int done;
    if (done) return;
    done = 1;
    tg_limits lim = {(uint64_t)64 << 20, (uint64_t)1 << 20, (uint64_t)4 << 20};
    tg_set_limits(&lim);
}

/* A message must exist whenever a loader fails. */
static void fuzz_expect_message(tg_status st) {
    if (st != TG_OK && !tg_last_error()[0]) abort();
}

/* One image through tg_image_load and the crop + resize after it. The input gets the format's
 * signature (sig, nsig bytes) in front when it lacks one, so every run reaches the decoder. */
static inline int fuzz_image(const uint8_t *data, size_t size, const uint8_t *sig, size_t nsig,
                      const char *suffix) {
    fuzz_limits();
    const char *path = fuzz_path(suffix);
    if (size >= nsig && !memcmp(data, sig, nsig)) {
        fuzz_write(path, data, size);
    } else {
        uint8_t *buf = malloc(size + nsig);
        memcpy(buf, sig, nsig);
        if (size) memcpy(buf + nsig, data, size);
        fuzz_write(path, buf, size + nsig);
        free(buf);
    }
    uint8_t *rgb = NULL, out[8 * 8 * 3];
    int w = 0, h = 0;
    tg_status st = tg_image_load(path, &rgb, &w, &h);
    fuzz_expect_message(st);
    if (st == TG_OK) {
        if (!rgb || w < 1 || h < 1) abort();
        if (tg_image_resize_square(rgb, w, h, out, 8) != TG_OK && !tg_last_error()[0]) abort();
    }
    free(rgb);
    return 0;
}

#endif

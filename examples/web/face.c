/*
 * face.c — mangagan's generator as a WebAssembly module for the page beside it (index.html), and
 * the same code as a native program that the browser test compares the page against.
 *
 * Built with emcc (make wasm -> build-wasm/web/face.js + face.wasm), it exports three calls to
 * JavaScript:
 *   face_load(path)          builds the generator a mangagan generator file describes (recipe and
 *                            width from its metadata, examples/mangagan/checkpoint.c) and loads
 *                            its weights; the page first copies the file into Emscripten's
 *                            in-memory file system. Returns the latent length nz, 0 on failure.
 *   face_draw(z, n, rgba)    n faces from n * nz latent values into n 64x64 RGBA images (alpha
 *                            255), each row of 64 pixels after the last. 0, or -1 on failure.
 *   face_error()             the last failure's message.
 * Built with cc (make test-web), main() below reads a generator file, n * nz float32 latent values
 * and writes the n faces as RGBA bytes: what the page must draw for the same noise. It prints the
 * time a face takes natively, alone and in the batch, beside which the page's time is recorded.
 *
 * It uses the public API and mangagan's own files (recipes, model, checkpoint) and nothing else.
 */
#define EXAMPLE_NAME "face"
#include "../mangagan/mangagan.h"

#include <stdio.h>
#include <string.h>

#ifdef __EMSCRIPTEN__
#include <emscripten.h>
#define EXPORT EMSCRIPTEN_KEEPALIVE
#else
#define EXPORT
#endif

static gan g;
static int loaded;
static char err[512];

static int fail(const char *what) {
    snprintf(err, sizeof err, "%s: %s", what, tg_last_error());
    return -1;
}

EXPORT const char *face_error(void) { return err; }

EXPORT int face_load(const char *path) {
    if (loaded) gan_free(&g), loaded = 0;
    /* a file that is not a generator ends in die(): the page reports the exit */
    load_generator(&g, path, TG_CPU, 1, 1, 0);
    loaded = 1;
    return g.r->nz;
}

EXPORT int face_draw(const float *z, int n, uint8_t *rgba) {
    if (!loaded) return snprintf(err, sizeof err, "face_draw: no generator loaded (face_load)"), -1;
    if (n < 1 || n > 256 || !z || !rgba) return snprintf(err, sizeof err, "face_draw: n is %d (1..256)", n), -1;
    int64_t zs[4] = {n, g.r->nz, 1, 1};
    tg_tensor *tz = tg_tensor_new(g.ctx, 4, zs);
    if (!tz || tg_tensor_write(tz, z, (int64_t)n * g.r->nz) != TG_OK) {
        const int rc = fail("face_draw"); /* the message first: freeing comes after */
        tg_tensor_free(tz);
        return rc;
    }
    bool old = tg_ctx_set_grad_enabled(g.ctx, false);
    tg_module_set_training(g.G, false);
    tg_tensor *x = tg_module_forward(g.G, tz);
    int rc = x && tg_tensor_to_rgb(x, rgba) == TG_OK ? 0 : fail("face_draw");
    tg_ctx_set_grad_enabled(g.ctx, old);
    tg_ctx_clear_tape(g.ctx);
    tg_tensor_free(tz);
    /* RGB -> RGBA in place, from the end so nothing is overwritten before it is read */
    for (int64_t i = (int64_t)n * SIZE * SIZE - 1; rc == 0 && i >= 0; i--) {
        const uint8_t r = rgba[3 * i], gr = rgba[3 * i + 1], b = rgba[3 * i + 2];
        rgba[4 * i] = r, rgba[4 * i + 1] = gr, rgba[4 * i + 2] = b, rgba[4 * i + 3] = 255;
    }
    return rc;
}

#ifndef __EMSCRIPTEN__
/* face GENERATOR Z.f32 N OUT.rgba */
int main(int argc, char **argv) {
    long n;
    if (argc != 5 || !parse_long(argv[3], 1, 256, &n)) die("usage: face GENERATOR Z.f32 N(1..256) OUT.rgba");
    const int nz = face_load(argv[1]);
    float *z = need(malloc(sizeof(float) * (size_t)n * nz));
    uint8_t *rgba = need(malloc((size_t)n * SIZE * SIZE * 4));
    FILE *f = fopen(argv[2], "rb");
    if (!f || fread(z, sizeof(float), (size_t)n * nz, f) != (size_t)n * nz) die("cannot read %ld x %d floats from %s", n, nz, argv[2]);
    fclose(f);
    double t0 = now();
    if (face_draw(z, (int)n, rgba) != 0) die("%s", err);
    const double batch_ms = 1e3 * (now() - t0) / (double)n;
    double one[9]; /* one face at a time, as the page's slider draws them: the median of 9 */
    for (int i = 0; i < 9; i++) {
        t0 = now();
        if (face_draw(z + (size_t)(i % n) * nz, 1, rgba + (size_t)(n - 1) * SIZE * SIZE * 4) != 0) die("%s", err);
        one[i] = 1e3 * (now() - t0);
        for (int j = i; j > 0 && one[j] < one[j - 1]; j--) { double x = one[j]; one[j] = one[j - 1], one[j - 1] = x; }
    }
    if (face_draw(z, (int)n, rgba) != 0) die("%s", err); /* the output again, whole */
    printf("a face alone %.1f ms (median of 9), %.2f ms a face in a batch of %ld\n", one[4], batch_ms, n);
    f = fopen(argv[4], "wb");
    if (!f || fwrite(rgba, 1, (size_t)n * SIZE * SIZE * 4, f) != (size_t)n * SIZE * SIZE * 4 || fclose(f))
        die("cannot write %s", argv[4]);
    free(z), free(rgba);
    gan_free(&g);
    return 0;
}
#endif

/*
 * evaluate.c — what mangagan draws and how it is scored: the sampling generator (the moving
 * average, its BatchNorm statistics re-estimated), images and grids, the sliced Wasserstein
 * distance to real faces, and the sample, interpolate and eval commands.
 */
#define _GNU_SOURCE
#include "mangagan.h"

#include <math.h>
#include <string.h>

/* Writes n images (uint8 [n][S][S][3]) as a grid with cols columns and 2-pixel gutters. */
void write_grid(const char *path, const uint8_t *img, int n, int cols) {
    const int rows = (n + cols - 1) / cols, pad = 2;
    const int W = cols * SIZE + (cols + 1) * pad, H = rows * SIZE + (rows + 1) * pad;
    uint8_t *g = need(malloc((size_t)W * H * 3));
    memset(g, 255, (size_t)W * H * 3);
    for (int i = 0; i < n; i++) {
        int x0 = pad + (i % cols) * (SIZE + pad), y0 = pad + (i / cols) * (SIZE + pad);
        for (int y = 0; y < SIZE; y++)
            memcpy(g + ((size_t)(y0 + y) * W + x0) * 3, img + ((size_t)i * SIZE + y) * SIZE * 3, SIZE * 3);
    }
    TRY(tg_image_save_png(path, g, W, H));
    free(g);
}

/* Runs f(g, u) with the context's RNG at its own fixed position (stream `which`), then puts the
 * RNG back where it was: sampling and evaluation never change what training draws. */
static void with_rng(gan *g, uint64_t which, void (*f)(gan *, void *), void *u) {
    uint64_t seed, off;
    tg_ctx_rng_get(g->ctx, &seed, &off);
    tg_ctx_rng_set(g->ctx, mix64(seed ^ which), 0);
    f(g, u);
    tg_ctx_rng_set(g->ctx, seed, off);
}

static void recalibrate_draw(gan *g, void *u) {
    (void)u;
    TRY(tg_tensor_fill_normal(g->z, 0.0f, 1.0f));
    bool old = tg_ctx_set_grad_enabled(g->ctx, false);
    tg_module_set_training(g->Gema, true);
    need(tg_module_forward(g->Gema, g->z));
    tg_ctx_set_grad_enabled(g->ctx, old);
    tg_ctx_clear_tape(g->ctx);
}

/* The generator that samples: the moving average (its BatchNorm statistics re-estimated on one
 * batch of noise from a fixed RNG position) when --ema is on, else G. */
tg_module *sampler(gan *g) {
    if (!g->Gema) return g->G;
    if (!g->ema_calibrated) { /* once per change of its weights: grid, evaluation and checkpoint share it */
        with_rng(g, 0x656d61, recalibrate_draw, NULL);
        g->ema_calibrated = 1;
    }
    return g->Gema;
}

/* generator m in inference mode on z [n,nz,1,1] -> uint8 images */
uint8_t *generate(gan *g, tg_module *m, tg_tensor *z) {
    int64_t n = tg_tensor_dim(z, 0);
    bool old = tg_ctx_set_grad_enabled(g->ctx, false);
    tg_module_set_training(m, false);
    tg_tensor *x = need(tg_module_forward(m, z));
    uint8_t *img = need(malloc((size_t)n * SIZE * SIZE * 3));
    TRY(tg_tensor_to_rgb(x, img));
    tg_module_set_training(m, true);
    tg_ctx_set_grad_enabled(g->ctx, old);
    tg_ctx_clear_tape(g->ctx);
    return img;
}

typedef struct {
    tg_module *m;
    uint8_t *out;
    int64_t n;
} gen_job;

static void generate_n(gan *g, void *u) {
    gen_job *j = u;
    int64_t zs[4] = {64, g->r->nz, 1, 1};
    tg_tensor *z = need(tg_tensor_new(g->ctx, 4, zs));
    for (int64_t i = 0; i < j->n; i += 64) {
        TRY(tg_tensor_fill_normal(z, 0.0f, 1.0f));
        uint8_t *img = generate(g, j->m, z);
        int64_t k = j->n - i < 64 ? j->n - i : 64;
        memcpy(j->out + (size_t)i * SIZE * SIZE * 3, img, (size_t)k * SIZE * SIZE * 3);
        free(img);
    }
    tg_tensor_free(z);
}

/* n images of ds (the first n) as one block */
uint8_t *first_images(const tg_dataset *ds, int64_t n, const char *what) {
    if (tg_dataset_count(ds) < n)
        die("%s has %lld images, fewer than the %lld the evaluation compares (--eval-n)", what,
            (long long)tg_dataset_count(ds), (long long)n);
    uint8_t *b = need(malloc((size_t)n * SIZE * SIZE * 3));
    for (int64_t i = 0; i < n; i++) memcpy(b + (size_t)i * SIZE * SIZE * 3, tg_dataset_image(ds, i), SIZE * SIZE * 3);
    return b;
}

/* SWD x1e3 (levels 64, 32, 16 and their mean) between n samples of the sampling generator
 * (noise from a fixed RNG position) and n real images (first_images). */
double eval_swd(gan *g, const uint8_t *real, int64_t n, double lv[3]) {
    gen_job j = {sampler(g), need(malloc((size_t)n * SIZE * SIZE * 3)), n};
    with_rng(g, 0x6576616c, generate_n, &j);
    tg_swd_options o;
    tg_swd_defaults(&o);
    double mean = 0;
    int nl = 0;
    TRY(tg_swd(j.out, n, real, n, SIZE, &o, lv, 3, &nl, &mean));
    free(j.out);
    return mean;
}

int cmd_sample(opts o) {
    if (!o.checkpoint) bad(CMD_SAMPLE, "--checkpoint FILE is required");
    if (!o.out) bad(CMD_SAMPLE, "--out X.png|DIR is required");
    if (!o.n) o.n = 64;
    int to_dir = !(strlen(o.out) > 4 && !strcmp(o.out + strlen(o.out) - 4, ".png"));
    if (to_dir) cli_out_dir("mangagan", "--out", o.out); /* before the generator is loaded and run */
    else cli_out_file("mangagan", "--out", o.out);
    gan g;
    load_generator(&g, o.checkpoint, pick_device(o.device), o.seed, 2, o.no_ema);
    gan_set_precision(&g, o.precision);
    int64_t zs[4] = {o.n, g.r->nz, 1, 1};
    tg_tensor *z = need(tg_tensor_new(g.ctx, 4, zs));
    TRY(tg_tensor_fill_normal(z, 0.0f, 1.0f));
    uint8_t *img = generate(&g, sampler(&g), z);
    if (to_dir) {
        if (mkdirs(o.out) != 0) die("cannot create %s: %s", o.out, strerror(errno));
        for (long i = 0; i < o.n; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/sample-%04ld.png", o.out, i);
            TRY(tg_image_save_png(path, img + (size_t)i * SIZE * SIZE * 3, SIZE, SIZE));
        }
        printf("mangagan: wrote %ld images into %s\n", o.n, o.out);
    } else {
        int cols = (int)ceil(sqrt((double)o.n));
        write_grid(o.out, img, (int)o.n, cols);
        printf("mangagan: wrote a grid of %ld samples to %s\n", o.n, o.out);
    }
    free(img);
    tg_tensor_free(z);
    gan_free(&g);
    return 0;
}

/* the sampling generator as ONNX (z [batch,nz,1,1] -> image [batch,3,64,64]), and optionally a
 * check sample: 4 noise vectors and this library's images for them */
int cmd_export(opts o) {
    if (!o.checkpoint) bad(CMD_EXPORT, "--checkpoint FILE is required");
    if (!o.onnx) bad(CMD_EXPORT, "--onnx FILE is required");
    cli_out_file("mangagan", "--onnx", o.onnx);
    if (o.sample) cli_out_file("mangagan", "--sample", o.sample);
    gan g;
    const int ema = load_generator(&g, o.checkpoint, TG_CPU, o.seed, 2, o.no_ema);
    tg_module *m = sampler(&g);
    tg_onnx_input in = {"z", 4, {1, g.r->nz, 1, 1}, NULL};
    TRY(tg_module_export_onnx(m, &in, 1, "image", o.onnx));
    printf("mangagan: wrote the %s generator (recipe %s, width %d) to %s\n", ema ? "moving-average" : "trained",
           g.r->name, g.width, o.onnx);
    if (o.sample) {
        int64_t zs[4] = {4, g.r->nz, 1, 1};
        tg_tensor *z = need(tg_tensor_new(g.ctx, 4, zs));
        TRY(tg_tensor_fill_normal(z, 0.0f, 1.0f));
        tg_module_set_training(m, false);
        tg_tensor *x = need(tg_module_forward(m, z));
        int64_t xs[4] = {4, 3, SIZE, SIZE};
        tg_tensor *xc = need(tg_tensor_new(g.ctx, 4, xs));
        TRY(tg_tensor_copy(xc, x));
        tg_state *s = need(tg_state_new());
        TRY(tg_state_add(s, "in.z", z));
        TRY(tg_state_add(s, "out", xc));
        TRY(tg_state_save(s, o.sample));
        tg_state_free(s);
        tg_tensor_free(z), tg_tensor_free(xc);
        printf("mangagan: wrote 4 noise vectors and their faces to %s\n", o.sample);
    }
    gan_free(&g);
    return 0;
}

/* rows of spherical interpolations between pairs of random latent points */
int cmd_interpolate(opts o) {
    if (!o.checkpoint) bad(CMD_INTERP, "--checkpoint FILE is required");
    if (!o.out) bad(CMD_INTERP, "--out X.png is required");
    cli_out_file("mangagan", "--out", o.out);
    gan g;
    load_generator(&g, o.checkpoint, pick_device(o.device), o.seed, 2, o.no_ema);
    gan_set_precision(&g, o.precision);
    const int nz = g.r->nz, R = (int)o.rows, C = (int)o.cols;
    int64_t es[2] = {2 * R, nz}, zs[4] = {R * C, nz, 1, 1};
    tg_tensor *ends = need(tg_tensor_new(g.ctx, 2, es)), *z = need(tg_tensor_new(g.ctx, 4, zs));
    TRY(tg_tensor_fill_normal(ends, 0.0f, 1.0f));
    float *e = need(malloc(sizeof(float) * 2 * R * nz)), *zh = need(malloc(sizeof(float) * R * C * nz));
    TRY(tg_tensor_read(ends, e, 2 * R * nz));
    for (int r = 0; r < R; r++) {
        const float *a = e + 2 * r * nz, *b = a + nz;
        double na = 0, nb = 0, dot = 0;
        for (int k = 0; k < nz; k++) na += a[k] * a[k], nb += b[k] * b[k], dot += a[k] * b[k];
        double omega = acos(fmax(-1.0, fmin(1.0, dot / sqrt(na * nb)))), so = sin(omega);
        for (int c = 0; c < C; c++) {
            double t = (double)c / (C - 1);
            double wa = so < 1e-6 ? 1 - t : sin((1 - t) * omega) / so, wb = so < 1e-6 ? t : sin(t * omega) / so;
            for (int k = 0; k < nz; k++) zh[((size_t)r * C + c) * nz + k] = (float)(wa * a[k] + wb * b[k]);
        }
    }
    TRY(tg_tensor_write(z, zh, R * C * nz));
    uint8_t *img = generate(&g, sampler(&g), z);
    write_grid(o.out, img, R * C, C);
    printf("mangagan: wrote %d interpolation rows of %d to %s\n", R, C, o.out);
    free(img), free(e), free(zh);
    tg_tensor_free(ends), tg_tensor_free(z);
    gan_free(&g);
    return 0;
}

int cmd_eval(opts o) {
    if (!o.checkpoint == !o.images)
        bad(CMD_EVAL, "give either --checkpoint FILE (a generator to sample) or --images FILE|DIR (a set of images)");
    const int64_t n = o.n ? o.n : 2048;
    char buf[4096];
    const char *data = o.data ? o.data : bundled(buf, sizeof buf, "heldout.safetensors.xz");
    if (!data) die("the bundled held-out faces were not found (pass --data FILE|DIR)");
    double t0 = now();
    tg_dataset *real = tg_dataset_load(data, SIZE, NULL);
    if (!real) die("%s", tg_last_error());
    double lv[3] = {0, 0, 0}, mean;
    if (o.checkpoint) {
        gan g;
        load_generator(&g, o.checkpoint, pick_device(o.device), o.seed, 64, o.no_ema);
        gan_set_precision(&g, o.precision);
        uint8_t *r = first_images(real, n, data);
        mean = eval_swd(&g, r, n, lv);
        free(r);
        gan_free(&g);
    } else {
        tg_dataset *other = tg_dataset_load(o.images, SIZE, NULL);
        if (!other) die("%s", tg_last_error());
        uint8_t *a = first_images(other, n, o.images), *b = first_images(real, n, data);
        tg_swd_options so;
        tg_swd_defaults(&so);
        so.seed = o.seed;
        TRY(tg_swd(a, n, b, n, SIZE, &so, lv, 3, NULL, &mean));
        free(a), free(b);
        tg_dataset_free(other);
    }
    printf("mangagan eval: SWD x1e3 between %s and %s, %lld images each: 64px %.2f, 32px %.2f, 16px %.2f, "
           "mean %.2f (%.1f s)\n", o.checkpoint ? o.checkpoint : o.images, data, (long long)n, lv[0], lv[1], lv[2],
           mean, now() - t0);
    tg_dataset_free(real);
    return 0;
}


/*
 * bench/infer.c — inference timing of two models, ours against ONNX Runtime on the same exported
 * file (bench/infer.sh alternates the two; make bench-infer):
 *   infer export DIR            writes DIR/generator.onnx (mangagan's dcgan generator at width 64:
 *                               z [B,100,1,1] -> [B,3,64,64]) and DIR/classifier.onnx (fashion's
 *                               network: [B,1,28,28] -> [B,10]), weights from the context's RNG,
 *                               BatchNorm statistics random
 *   infer time MODEL B REPS     builds the same model again (same seed: the same weights) and
 *                               prints the median and minimum milliseconds of REPS forward passes
 *                               of batch B in evaluation mode, gradients off (after 3 untimed)
 * Threads: OMP_NUM_THREADS.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tensorgan.h>
#include <time.h>

#define CHECK(x)                                                                              \
    do {                                                                                      \
        if (!(x)) {                                                                           \
            fprintf(stderr, "infer: %s failed: %s\n", #x, tg_last_error());                    \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

static void add(tg_module *s, tg_module *l) { CHECK(l && tg_sequential_add(s, l) == TG_OK); }

static tg_module *generator(tg_ctx *ctx) {
    tg_module *g = tg_sequential(ctx);
    const int ch[6] = {100, 512, 256, 128, 64, 3};
    for (int i = 0; i < 5; i++) {
        add(g, tg_layer_conv_transpose2d(ctx, ch[i], ch[i + 1], 4, i ? 2 : 1, i ? 1 : 0, false));
        if (i < 4) add(g, tg_layer_batch_norm(ctx, ch[i + 1], 0.1f, 1e-5f)), add(g, tg_layer_relu(ctx));
    }
    add(g, tg_layer_tanh(ctx));
    return g;
}

static tg_module *classifier(tg_ctx *ctx) {
    tg_module *m = tg_sequential(ctx);
    add(m, tg_layer_conv2d(ctx, 1, 32, 3, 1, 1, false));
    add(m, tg_layer_batch_norm(ctx, 32, 0.1f, 1e-5f));
    add(m, tg_layer_relu(ctx));
    add(m, tg_layer_conv2d(ctx, 32, 32, 3, 1, 1, false));
    add(m, tg_layer_batch_norm(ctx, 32, 0.1f, 1e-5f));
    add(m, tg_layer_relu(ctx));
    add(m, tg_layer_max_pool2d(ctx, 2, 2, 0));
    add(m, tg_layer_conv2d(ctx, 32, 64, 3, 1, 1, false));
    add(m, tg_layer_batch_norm(ctx, 64, 0.1f, 1e-5f));
    add(m, tg_layer_relu(ctx));
    add(m, tg_layer_max_pool2d(ctx, 2, 2, 0));
    add(m, tg_layer_flatten(ctx));
    add(m, tg_layer_dropout(ctx, 0.25f));
    add(m, tg_layer_dense(ctx, 64 * 7 * 7, 256, true));
    add(m, tg_layer_relu(ctx));
    add(m, tg_layer_dropout(ctx, 0.5f));
    add(m, tg_layer_dense(ctx, 256, 10, true));
    return m;
}

/* the model named, its weights and statistics from seed 1 */
static tg_module *build(tg_ctx *ctx, const char *name, tg_onnx_input *in) {
    const int gen = !strcmp(name, "generator");
    if (!gen && strcmp(name, "classifier")) {
        fprintf(stderr, "infer: unknown model %s (generator, classifier)\n", name);
        exit(2);
    }
    tg_module *m = gen ? generator(ctx) : classifier(ctx);
    const int n = tg_module_state(m, NULL, NULL, 0);
    const char **names = malloc(sizeof(char *) * (size_t)n);
    tg_tensor **t = malloc(sizeof(tg_tensor *) * (size_t)n);
    CHECK(names && t && tg_module_state(m, names, t, n) == n);
    for (int i = 0; i < n; i++) {
        if (strstr(names[i], "running_mean")) CHECK(tg_tensor_fill_uniform(t[i], -0.1f, 0.1f) == TG_OK);
        if (strstr(names[i], "running_var")) CHECK(tg_tensor_fill_uniform(t[i], 0.5f, 1.5f) == TG_OK);
    }
    free(names), free(t);
    tg_module_set_training(m, false);
    *in = gen ? (tg_onnx_input){"z", 4, {1, 100, 1, 1}, NULL} : (tg_onnx_input){"image", 4, {1, 1, 28, 28}, NULL};
    return m;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
static int cmp(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "export")) {
        const char *models[2] = {"generator", "classifier"};
        for (int i = 0; i < 2; i++) {
            tg_ctx *ctx = tg_ctx_new(TG_CPU, 1);
            tg_onnx_input in;
            tg_module *m = build(ctx, models[i], &in);
            char path[1024];
            snprintf(path, sizeof path, "%s/%s.onnx", argv[2], models[i]);
            CHECK(tg_module_export_onnx(m, &in, 1, "out", path) == TG_OK);
            tg_module_free(m);
            tg_ctx_free(ctx);
        }
        return 0;
    }
    if (argc != 5 || strcmp(argv[1], "time")) {
        fprintf(stderr, "usage: infer export DIR | infer time generator|classifier BATCH REPS\n");
        return 2;
    }
    const long B = atol(argv[3]), reps = atol(argv[4]);
    if (B < 1 || reps < 1) return 2;
    tg_ctx *ctx = tg_ctx_new(TG_CPU, 1);
    CHECK(ctx);
    tg_onnx_input in;
    tg_module *m = build(ctx, argv[2], &in);
    in.shape[0] = B;
    tg_ctx_set_grad_enabled(ctx, false);
    tg_tensor *x = tg_tensor_new(ctx, in.ndim, in.shape);
    CHECK(x && tg_tensor_fill_normal(x, 0.0f, 1.0f) == TG_OK);
    double *t = malloc(sizeof(double) * (size_t)reps);
    for (long i = -3; i < reps; i++) {
        const double t0 = now_ms();
        tg_tensor *y = tg_module_forward(m, x);
        CHECK(y && tg_ctx_sync(ctx) == TG_OK);
        if (i >= 0) t[i] = now_ms() - t0;
        tg_ctx_clear_tape(ctx);
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    printf("ours %s batch %ld: median %.3f ms, min %.3f ms (%ld runs)\n", argv[2], B, t[reps / 2], t[0], reps);
    free(t);
    tg_tensor_free(x);
    tg_module_free(m);
    tg_ctx_free(ctx);
    return 0;
}

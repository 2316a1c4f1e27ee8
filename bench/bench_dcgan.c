/*
 * bench_dcgan.c — times training steps of the standard 64x64 DCGAN (the PyTorch example's model:
 * nz 100, ngf = ndf = 64, no biases, BatchNorm, ReLU in G, LeakyReLU(0.2) in D, conv head) on
 * synthetic data, after warm-up, and prints median ms/step, images/s, achieved GFLOP/s and the
 * split between the D-real, D-fake and G phases. Uses only <tensorgan.h>.
 *
 * One step (as the PyTorch example, with D frozen while G trains):
 *   D-real: D(real) vs 1, backward.  D-fake: fake = G(z); D(detach(fake)) vs 0, backward, D step.
 *   G:      D frozen; D(fake) vs 1, backward through D into G, G step.
 * Reference: bench/dcgan_torch.py runs the same step in PyTorch.
 *
 *   bench_dcgan [--device cpu|cuda] [--batch 64] [--steps 10] [--warmup 2] [--tf32]
 */
#include <tensorgan.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define CHECK(call)                                                                             \
    do {                                                                                        \
        if ((call) != TG_OK) {                                                                  \
            fprintf(stderr, "bench_dcgan: %s\n", tg_last_error());                              \
            exit(1);                                                                            \
        }                                                                                       \
    } while (0)

/* forward FLOPs of one conv-like layer: 2 * N * Cin * Cout * k*k * (the smaller spatial grid) */
static double conv_flops(int N, int cin, int cout, int k, int small_hw) {
    return 2.0 * N * cin * cout * k * k * (double)small_hw * small_hw;
}

int main(int argc, char **argv) {
    const char *dev = "cpu";
    int B = 64, steps = 10, warm = 2, tf32 = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc) dev = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warm = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tf32")) tf32 = 1;
        else {
            fprintf(stderr, "usage: %s [--device cpu|cuda] [--batch B] [--steps N] [--warmup W] [--tf32]\n", argv[0]);
            return 2;
        }
    }
    if (B < 2 || steps < 1 || warm < 0) {
        fprintf(stderr, "bench_dcgan: --batch must be >= 2 and --steps >= 1\n");
        return 2;
    }
    tg_ctx *ctx = tg_ctx_new(strcmp(dev, "cuda") ? TG_CPU : TG_CUDA, 1);
    if (!ctx) {
        fprintf(stderr, "bench_dcgan: %s\n", tg_last_error());
        return 1;
    }
    tg_ctx_set_tf32(ctx, tf32);
    const int nz = 100, f = 64;
    tg_module *G = tg_sequential(ctx), *D = tg_sequential(ctx);
    tg_sequential_add(G, tg_layer_reshape(ctx, nz, 1, 1));
    int gch[5] = {nz, 8 * f, 4 * f, 2 * f, f};
    for (int l = 0; l < 4; l++) {
        tg_sequential_add(G, tg_layer_conv_transpose2d(ctx, gch[l], gch[l + 1], 4, l ? 2 : 1, l ? 1 : 0, false));
        tg_sequential_add(G, tg_layer_batch_norm(ctx, gch[l + 1], 0.1f, 1e-5f));
        tg_sequential_add(G, tg_layer_relu(ctx));
    }
    tg_sequential_add(G, tg_layer_conv_transpose2d(ctx, f, 3, 4, 2, 1, false));
    tg_sequential_add(G, tg_layer_tanh(ctx));
    int dch[5] = {3, f, 2 * f, 4 * f, 8 * f};
    for (int l = 0; l < 4; l++) {
        tg_sequential_add(D, tg_layer_conv2d(ctx, dch[l], dch[l + 1], 4, 2, 1, false));
        if (l) tg_sequential_add(D, tg_layer_batch_norm(ctx, dch[l + 1], 0.1f, 1e-5f));
        tg_sequential_add(D, tg_layer_leaky_relu(ctx, 0.2f));
    }
    tg_sequential_add(D, tg_layer_conv2d(ctx, 8 * f, 1, 4, 1, 0, false));
    CHECK(tg_module_init(G, TG_INIT_NORMAL, 0.02f, 0.02f));
    CHECK(tg_module_init(D, TG_INIT_NORMAL, 0.02f, 0.02f));
    tg_tensor *pg[64], *pd[64];
    int ng = tg_module_params(G, pg, 64), nd = tg_module_params(D, pd, 64);
    tg_optim *og = tg_adam(ctx, pg, ng, 2e-4f, 0.5f, 0.999f, 1e-8f);
    tg_optim *od = tg_adam(ctx, pd, nd, 2e-4f, 0.5f, 0.999f, 1e-8f);
    int64_t xs[4] = {B, 3, 64, 64}, zs[2] = {B, nz}, ls[4] = {B, 1, 1, 1};
    tg_tensor *real = tg_tensor_new(ctx, 4, xs), *z = tg_tensor_new(ctx, 2, zs);
    tg_tensor *ones = tg_tensor_new(ctx, 4, ls), *zeros = tg_tensor_new(ctx, 4, ls);
    if (!og || !od || !real || !z || !ones || !zeros) {
        fprintf(stderr, "bench_dcgan: %s\n", tg_last_error());
        return 1;
    }
    CHECK(tg_tensor_fill_uniform(real, -1.0f, 1.0f));
    CHECK(tg_tensor_fill(ones, 1.0f));

    /* model FLOPs: forward of G and D, then 3 G-forward-equivalents + 8 D-forward-equivalents */
    double FG = conv_flops(B, nz, 8 * f, 4, 1), FD = conv_flops(B, 8 * f, 1, 4, 1);
    for (int l = 1; l < 4; l++) FG += conv_flops(B, gch[l], gch[l + 1], 4, 4 << (l - 1));
    FG += conv_flops(B, f, 3, 4, 32);
    for (int l = 0; l < 4; l++) FD += conv_flops(B, dch[l], dch[l + 1], 4, 32 >> l);
    const double step_flops = 3 * FG + 8 * FD;

    const int total = warm + steps;
    double *t = calloc((size_t)total * 4, sizeof(double));
    float lr = 0, lf = 0, lgv = 0;
    for (int s = 0; s < total; s++) {
        double t0 = now();
        tg_optim_zero_grad(od);
        tg_tensor *l1 = tg_bce_with_logits(ctx, tg_module_forward(D, real), ones);
        CHECK(tg_backward(ctx, l1));
        CHECK(tg_ctx_sync(ctx));
        double t1 = now();
        CHECK(tg_tensor_fill_normal(z, 0.0f, 1.0f));
        tg_tensor *fake = tg_module_forward(G, z);
        tg_tensor *l2 = tg_bce_with_logits(ctx, tg_module_forward(D, tg_detach(ctx, fake)), zeros);
        CHECK(tg_backward(ctx, l2));
        CHECK(tg_optim_step(od));
        CHECK(tg_ctx_sync(ctx));
        double t2 = now();
        tg_module_set_frozen(D, true);
        tg_optim_zero_grad(og);
        tg_tensor *l3 = tg_bce_with_logits(ctx, tg_module_forward(D, fake), ones);
        CHECK(tg_backward(ctx, l3));
        CHECK(tg_optim_step(og));
        tg_module_set_frozen(D, false);
        lr = tg_tensor_item(l1), lf = tg_tensor_item(l2), lgv = tg_tensor_item(l3);
        tg_ctx_clear_tape(ctx);
        double t3 = now();
        t[s * 4 + 0] = t3 - t0, t[s * 4 + 1] = t1 - t0, t[s * 4 + 2] = t2 - t1, t[s * 4 + 3] = t3 - t2;
        if (!isfinite(lr) || !isfinite(lf) || !isfinite(lgv)) {
            fprintf(stderr, "bench_dcgan: non-finite loss at step %d\n", s);
            return 1;
        }
    }
    double med[4];
    double *col = malloc(sizeof(double) * (size_t)steps);
    for (int k = 0; k < 4; k++) {
        for (int s = 0; s < steps; s++) col[s] = t[(warm + s) * 4 + k];
        qsort(col, (size_t)steps, sizeof(double), cmp_d);
        med[k] = steps % 2 ? col[steps / 2] : 0.5 * (col[steps / 2 - 1] + col[steps / 2]);
    }
    tg_ctx_stats st;
    tg_ctx_stats_get(ctx, &st);
    printf("bench_dcgan: device %s, batch %d, %d steps after %d warm-up%s\n", dev, B, steps, warm,
           tf32 ? ", TF32 on" : "");
    if (!strcmp(dev, "cpu")) printf("  blas: %s\n", tg_blas_info());
    printf("  median step %.1f ms  (D-real %.1f, D-fake %.1f, G %.1f)\n", med[0] * 1e3,
           med[1] * 1e3, med[2] * 1e3, med[3] * 1e3);
    printf("  %.1f images/s, %.1f GFLOP/step, %.1f GFLOP/s\n", B / med[0], step_flops * 1e-9,
           step_flops / med[0] * 1e-9);
    printf("  last losses: D(real) %.4f  D(fake) %.4f  G %.4f\n", lr, lf, lgv);
    printf("  arena %.1f MiB (peak %.1f), workspace %.1f MiB, %zu arena allocations\n",
           st.arena_bytes / 1048576.0, st.arena_peak_bytes / 1048576.0,
           st.workspace_bytes / 1048576.0, st.arena_chunk_allocs);
    free(col);
    free(t);
    tg_optim_free(og), tg_optim_free(od);
    tg_tensor_free(real), tg_tensor_free(z), tg_tensor_free(ones), tg_tensor_free(zeros);
    tg_module_free(G), tg_module_free(D);
    tg_ctx_free(ctx);
    return 0;
}

/*
 * dist_allreduce.c — what averaging gradients costs: under `mpirun -np N`, tg_dist_grads_sync of
 * MB megabytes of float gradients (in tensors of the DCGAN's sizes) ITERS times; rank 0 prints
 * the median time and the bus bandwidth, 2 (N-1)/N x bytes / time (what each rank's link
 * carries in a ring all-reduce). Built and run by bench/dist_scaling.sh.
 *   mpirun -np 2 dist_allreduce MB [ITERS]
 */
#include <tensorgan.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    tg_dist *d = tg_dist_init(&argc, &argv);
    if (!d || argc < 2) return fprintf(stderr, "%s\n", d ? "usage: dist_allreduce MB [ITERS]" : tg_last_error()), 1;
    const double mb = atof(argv[1]);
    const int iters = argc > 2 ? atoi(argv[2]) : 10;
    tg_ctx *ctx = tg_ctx_new(TG_CPU, 1);
    /* tensors of 2M, 512K, 128K, 32K, 8K floats, again and again until MB is reached, like a conv
     * net's layers */
    tg_tensor *p[256];
    int n = 0;
    double left = mb * 1e6 / 4;
    for (int64_t sz = 2097152; left > 0 && n < 256; sz = sz > 8192 ? sz / 4 : 2097152) {
        int64_t k = (int64_t)(left < (double)sz ? left : (double)sz);
        if (k < 1) break;
        p[n] = tg_tensor_new(ctx, 1, &k);
        tg_tensor_fill(p[n], 1.0f);
        tg_tensor_set_requires_grad(p[n], true);
        tg_backward(ctx, tg_sum(ctx, p[n])); /* a gradient of ones */
        tg_ctx_clear_tape(ctx);
        left -= (double)k;
        n++;
    }
    tg_dist_grads *g = tg_dist_grads_new(d, p, n, 0);
    if (!g) return fprintf(stderr, "%s\n", tg_last_error()), 1;
    double *t = malloc(sizeof(double) * (size_t)iters);
    tg_dist_grads_sync(g); /* warm-up */
    for (int i = 0; i < iters; i++) {
        tg_dist_barrier(d);
        double t0 = now();
        if (tg_dist_grads_sync(g) != TG_OK) return fprintf(stderr, "%s\n", tg_last_error()), 1;
        t[i] = now() - t0;
    }
    qsort(t, (size_t)iters, sizeof *t, cmp);
    const int w = tg_dist_world(d);
    if (tg_dist_rank(d) == 0)
        printf("dist_allreduce: %d ranks, %.1f MB in %d tensors: median %.2f ms, bus bandwidth %.2f GB/s\n", w, mb, n,
               1e3 * t[iters / 2], 2.0 * (w - 1) / w * mb * 1e6 / t[iters / 2] / 1e9);
    free(t);
    tg_dist_grads_free(g);
    for (int i = 0; i < n; i++) tg_tensor_free(p[i]);
    tg_ctx_free(ctx);
    tg_dist_free(d);
    return 0;
}

/*
 * conv_phases.c (make bench-conv) — the 4x4, stride-2 convolution passes of a width-64 DCGAN at
 * batch 64 with at least 64 channels: forward (also the generator's ConvTranspose2D data
 * gradients) and data gradient (also its ConvTranspose2D forwards), direct against Winograd
 * F(2x2, 2x2) (lib/cpu/winograd.c), alternating, best of REPS calls each, on OMP_NUM_THREADS
 * threads. Prints milliseconds and GFLOP/s counted as the direct pass's multiply-adds. Built on
 * the static library's internal entry points (lib/cpu/cpu.h).
 */
#include "cpu/cpu.h"
#include "tg_omp.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(void) {
    const int N = 64, REPS = 5, ROUNDS = 2;
    const int shapes[][3] = {{64, 128, 32}, {128, 256, 16}, {256, 512, 8}}; /* C, Co, H of dx */
    tg_ctx *ctx = tg_ctx_new(TG_CPU, 1);
    if (!ctx) return 1;
    printf("conv_phases: isa %s, %d thread(s), batch %d\n", tg_cpu_isa_get()->name, omp_get_max_threads(), N);
    for (int si = 0; si < 3; si++) {
        const int C = shapes[si][0], Co = shapes[si][1], H = shapes[si][2], Ho = H / 2;
        const size_t nx = (size_t)N * C * H * H, ny = (size_t)N * Co * Ho * Ho, nw = (size_t)Co * C * 16;
        float *dy = malloc(ny * 4), *w = malloc(nw * 4), *dx = malloc(nx * 4);
        if (!dy || !w || !dx) return 1;
        srand(1);
        for (size_t i = 0; i < ny; i++) dy[i] = (float)rand() / RAND_MAX - 0.5f;
        for (size_t i = 0; i < nw; i++) w[i] = (float)rand() / RAND_MAX - 0.5f;
        for (size_t i = 0; i < nx; i++) dx[i] = (float)rand() / RAND_MAX - 0.5f;
        const double flop = 2.0 * N * C * H * H * Co * 4;
        for (int pass = 0; pass < 2; pass++)
            for (int round = 0; round < ROUNDS; round++)
                for (int wino = 0; wino < 2; wino++) {
                    tg_cpu_winograd_force(wino);
                    double best = 1e30;
                    for (int it = 0; it <= REPS; it++) { /* the first call warms up */
                        const double t0 = now();
                        const tg_conv_geom g = {N, C, H, H, Co, 4, 4, 2, 1, Ho, Ho};
                        const tg_mem mx = tg_mem_f32(dx, (int64_t)N * C * H * H), mw = tg_mem_f32(w, (int64_t)Co * C * 16),
                                     my = tg_mem_f32(dy, (int64_t)N * Co * Ho * Ho);
                        const tg_status st = pass ? tg_cpu_conv_bwd_data(ctx, &g, my, mw, mx, 0)
                                                  : tg_cpu_conv_fwd(ctx, &g, mx, mw, tg_mem_none(), my, 0);
                        if (st) return 1;
                        const double t = now() - t0;
                        if (it && t < best) best = t;
                    }
                    printf("  %s [%d,%d,%d,%d] <-> [%d,%d,%d,%d], round %d, %-9s %7.2f ms  %5.0f GFLOP/s\n",
                           pass ? "data grad" : "forward  ", N, C, H, H, N, Co, Ho, Ho, round + 1,
                           wino ? "winograd" : "direct", best * 1e3, flop / best * 1e-9);
                }
        free(dy), free(w), free(dx);
    }
    tg_ctx_free(ctx);
    return 0;
}

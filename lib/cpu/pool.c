/*
 * pool.c (CPU) — max and average pooling behind lib/pool.c; the window math (tg_pool_out1,
 * tg_pool_in1) is tg_math.h's, shared with cuda/pool.cu. Planes in parallel; the backward
 * gathers per input, so no two threads write one value.
 */
#include "cpu.h"

#include <math.h>

void tg_cpu_pool_fwd(tg_ctx *ctx, const tg_pool_geom *g, tg_mem xm, tg_mem ym, tg_mem am) {
    const float *x = tg_f(xm);
    float *y = tg_f(ym);
    int32_t *idx = tg_i(am);
    const int H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo;
#pragma omp parallel for schedule(static)
    for (int64_t q = 0; q < g->planes; q++) {
        const float *xp = x + q * H * W;
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++) {
                const int64_t o = q * Ho * Wo + (int64_t)oh * Wo + ow;
                int32_t arg;
                tg_pool_out1(xp, H, W, oh, ow, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw, g->is_max, &y[o], &arg);
                if (g->is_max) idx[o] = arg;
            }
    }
}

void tg_cpu_pool_bwd(tg_ctx *ctx, const tg_pool_geom *g, tg_mem dym, tg_mem am, tg_mem dxm) {
    const float *dy = tg_f(dym);
    const int32_t *idx = tg_i(am);
    float *dx = tg_f(dxm);
    const int H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo;
#pragma omp parallel for schedule(static)
    for (int64_t q = 0; q < g->planes; q++) {
        const float *gq = dy + q * Ho * Wo;
        const int32_t *ix = g->is_max ? idx + q * Ho * Wo : NULL;
        for (int h = 0; h < H; h++)
            for (int w = 0; w < W; w++)
                dx[q * H * W + (int64_t)h * W + w] +=
                    tg_pool_in1(gq, ix, H, W, h, w, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw, Ho, Wo, g->is_max);
    }
}

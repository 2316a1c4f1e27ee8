/*
 * pool.c (CPU) — max and average pooling behind lib/pool.c; the window math (tg_pool_out1,
 * tg_pool_in1) is tg_math.h's, shared with cuda/pool.cu. Planes in parallel; the backward
 * gathers per input, so no two threads write one value.
 */
#include "cpu.h"

#include <math.h>

/* 2x2 windows, stride 2, no padding (the classifier's and the U-Net's pooling): every window
 * inside the plane, no window arithmetic per output, and branch-free selects the compiler
 * vectorises. The same values as tg_pool_out1 / tg_pool_in1, bit for bit: the window is scanned
 * in the same order (the first maximum wins a tie; the first NaN wins and stays), and the
 * average sums from 0 in that order. */
static int is_2x2(const tg_pool_geom *g) {
    return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0;
}

/* one output row: rows r0, r1 of the plane (base: r0's offset in it) -> y, idx */
static void pool2_max_row(const float *restrict r0, const float *restrict r1, int32_t base, int W, int Wo,
                          float *restrict y, int32_t *restrict idx) {
    for (int ow = 0; ow < Wo; ow++) {
        const float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
        /* each later value is taken when m is not a NaN and it is larger or a NaN (written as
         * ifs on plain comparisons, which GCC turns into vector selects) */
        float m = a;
        int32_t k = 0; /* which of the four: bit 0 the column, bit 1 the row */
        if (m == m && (b > m || b != b)) m = b, k = 1;
        if (m == m && (c > m || c != c)) m = c, k = 2;
        if (m == m && (d > m || d != d)) m = d, k = 3;
        y[ow] = m;
        idx[ow] = base + 2 * ow + (k & 1) + (k >> 1) * W;
    }
}

static void pool2_fwd_plane(const float *xp, int W, int Ho, int Wo, int is_max, float *y, int32_t *idx) {
    for (int oh = 0; oh < Ho; oh++) {
        const float *r0 = xp + (int64_t)2 * oh * W, *r1 = r0 + W;
        float *yr = y + (int64_t)oh * Wo;
        if (!is_max) {
            for (int ow = 0; ow < Wo; ow++)
                yr[ow] = ((((0.0f + r0[2 * ow]) + r0[2 * ow + 1]) + r1[2 * ow]) + r1[2 * ow + 1]) / 4.0f;
            continue;
        }
        pool2_max_row(r0, r1, 2 * oh * W, W, Wo, yr, idx + (int64_t)oh * Wo);
    }
}

/* each input is in at most one window: dx += (its window's dy when it is that window's argmax,
 * or the average's share), 0 outside every window */
static void pool2_bwd_plane(const float *restrict gq, const int32_t *restrict ix, int H, int W, int Ho, int Wo,
                            int is_max, float *restrict dx) {
    for (int h = 0; h < H; h++) {
        float *restrict dr = dx + (int64_t)h * W;
        const int oh = h / 2, wc = oh < Ho ? 2 * Wo : 0; /* the columns in a window */
        const float *restrict gr = gq + (int64_t)oh * Wo;
        const int32_t *restrict xr = is_max ? ix + (int64_t)oh * Wo : NULL;
        const int32_t off = h * W;
        if (is_max)
            for (int w = 0; w < wc; w++) dr[w] += xr[w / 2] == off + w ? 0.0f + gr[w / 2] : 0.0f;
        else
            for (int w = 0; w < wc; w++) dr[w] += (0.0f + gr[w / 2]) / 4.0f;
        for (int w = wc; w < W; w++) dr[w] += 0.0f;
    }
}

void tg_cpu_pool_fwd(tg_ctx *ctx, const tg_pool_geom *g, tg_mem xm, tg_mem ym, tg_mem am) {
    const float *x = tg_f(xm);
    float *y = tg_f(ym);
    int32_t *idx = tg_i(am);
    const int H = g->H, W = g->W, Ho = g->Ho, Wo = g->Wo;
    if (is_2x2(g)) {
#pragma omp parallel for schedule(static)
        for (int64_t q = 0; q < g->planes; q++)
            pool2_fwd_plane(x + q * H * W, W, Ho, Wo, g->is_max, y + q * Ho * Wo, g->is_max ? idx + q * Ho * Wo : NULL);
        return;
    }
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
    if (is_2x2(g)) {
#pragma omp parallel for schedule(static)
        for (int64_t q = 0; q < g->planes; q++)
            pool2_bwd_plane(dy + q * Ho * Wo, g->is_max ? idx + q * Ho * Wo : NULL, H, W, Ho, Wo, g->is_max,
                            dx + q * H * W);
        return;
    }
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

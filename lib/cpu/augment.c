/*
 * augment.c (CPU) — the kernels behind lib/augment.c (DiffAugment); the per-element math is in
 * tg_math.h, shared with cuda/augment.cu. One sample per thread.
 */
#include "cpu.h"

void tg_cpu_augment_fwd(tg_ctx *ctx, const tg_aug *a, tg_mem xv, tg_mem ym) {
    const float *x = tg_f(xv), *p = tg_f(a->params);
    float *y = tg_f(ym), *mean = tg_f(a->mean);
    const int64_t N = a->N, C = a->C, H = a->H, W = a->W;
    const int64_t P = H * W, S = C * P;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const float *xs = x + n * S, *q = p + n * TG_AUG_NPARAM;
        float *ys = y + n * S;
        double m = 0;
        for (int64_t i = 0; i < S; i++) m += xs[i];
        const float xm = (float)(m / (double)S);
        mean[n] = xm;
        const int ty = (int)q[3], tx = (int)q[4];
        for (int h = 0; h < H; h++)
            for (int w = 0; w < W; w++)
                tg_aug_pixel_fwd(xs, C, P, (int64_t)h * W + w, (int64_t)(h - ty) * W + (w - tx),
                                 tg_aug_kept(h, w, (int)H, (int)W, q), xm, q, ys);
    }
}

void tg_cpu_augment_bwd(tg_ctx *ctx, const tg_aug *a, tg_mem dym, tg_mem dxm) {
    const float *dy = tg_f(dym), *p = tg_f(a->params);
    float *dx = tg_f(dxm), *mean = tg_f(a->mean);
    const int64_t N = a->N, C = a->C, H = a->H, W = a->W;
    const int64_t P = H * W, S = C * P;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; n++) {
        const float *g = dy + n * S, *q = p + n * TG_AUG_NPARAM;
        float *d = dx + n * S;
        /* the sample's mean of g3: dy over the kept output pixels */
        double m = 0;
        for (int h = 0; h < H; h++)
            for (int w = 0; w < W; w++)
                if (tg_aug_kept(h, w, (int)H, (int)W, q))
                    for (int64_t c = 0; c < C; c++) m += g[c * P + (int64_t)h * W + w];
        const float gm = (float)(m / (double)S);
        mean[n] = gm;
        const int ty = (int)q[3], tx = (int)q[4];
        for (int sh = 0; sh < H; sh++)
            for (int sw = 0; sw < W; sw++) {
                const int h = sh + ty, w = sw + tx;
                const int kept = tg_aug_kept(h, w, (int)H, (int)W, q);
                tg_aug_pixel_bwd(g, C, P, (int64_t)sh * W + sw, kept ? (int64_t)h * W + w : 0, kept, gm, q, d);
            }
    }
}

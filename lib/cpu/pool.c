/*
 * pool.c (CPU) — the kernels behind lib/pool.c and lib/softmax.c and dropout's mask; the
 * per-element math is in tg_math.h, shared with cuda/pool.cu. Planes (pooling) and rows
 * (softmax) in parallel; backward passes gather per input, so no two threads write one value.
 */
#include "internal.h"
#include "cpu.h"

#include <math.h>

void tg_cpu_pool_fwd(tg_ctx *ctx, int is_max, const float *x, int64_t planes, int H, int W, int kh,
                     int kw, int sh, int sw, int ph, int pw, int Ho, int Wo, float *y, int32_t *idx) {
    (void)ctx;
#pragma omp parallel for schedule(static)
    for (int64_t q = 0; q < planes; q++) {
        const float *xp = x + q * H * W;
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++) {
                int hlo, hhi, wlo, whi;
                tg_pool_window(oh, sh, ph, kh, H, &hlo, &hhi);
                tg_pool_window(ow, sw, pw, kw, W, &wlo, &whi);
                float best = -INFINITY, sum = 0.0f;
                int arg = -1;
                for (int h = hlo; h < hhi; h++)
                    for (int w = wlo; w < whi; w++) {
                        const float v = xp[h * W + w];
                        sum += v;
                        if (v > best || arg < 0 || v != v) best = v, arg = h * W + w;
                        if (v != v) h = hhi, w = whi; /* NaN propagates, as in PyTorch */
                    }
                const int64_t o = q * Ho * Wo + (int64_t)oh * Wo + ow;
                if (is_max) y[o] = best, idx[o] = arg;
                else y[o] = sum / tg_pool_area(kh, kw);
            }
    }
}

void tg_cpu_pool_bwd(tg_ctx *ctx, int is_max, const float *dy, const int32_t *idx, int64_t planes,
                     int H, int W, int kh, int kw, int sh, int sw, int ph, int pw, int Ho, int Wo,
                     float *dx) {
    (void)ctx;
#pragma omp parallel for schedule(static)
    for (int64_t q = 0; q < planes; q++) {
        const float *g = dy + q * Ho * Wo;
        const int32_t *ix = is_max ? idx + q * Ho * Wo : NULL;
        for (int h = 0; h < H; h++) {
            int olo, ohi;
            tg_pool_cover(h, ph, kh, sh, Ho, &olo, &ohi);
            for (int w = 0; w < W; w++) {
                int plo, phi;
                tg_pool_cover(w, pw, kw, sw, Wo, &plo, &phi);
                float s = 0.0f;
                for (int oh = olo; oh <= ohi; oh++)
                    for (int ow = plo; ow <= phi; ow++) {
                        const int64_t o = (int64_t)oh * Wo + ow;
                        if (!is_max) s += g[o];
                        else if (ix[o] == h * W + w) s += g[o];
                    }
                dx[q * H * W + (int64_t)h * W + w] += is_max ? s : s / tg_pool_area(kh, kw);
            }
        }
    }
}

void tg_cpu_softmax_fwd(tg_ctx *ctx, int is_log, const float *x, int64_t N, int64_t C, int64_t P,
                        float *y) {
    (void)ctx;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < N * P; r++) {
        const int64_t n = r / P, p = r % P, base = n * C * P + p;
        const float lse = tg_logsumexp_row(x + base, C, P);
        for (int64_t c = 0; c < C; c++) {
            const float l = x[base + c * P] - lse;
            y[base + c * P] = is_log ? l : expf(l);
        }
    }
}

void tg_cpu_softmax_bwd(tg_ctx *ctx, int is_log, const float *y, const float *dy, int64_t N,
                        int64_t C, int64_t P, float *dx) {
    (void)ctx;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < N * P; r++) {
        const int64_t n = r / P, p = r % P, base = n * C * P + p;
        float s = 0.0f; /* log: sum dy; softmax: sum dy * y */
        for (int64_t c = 0; c < C; c++) s += is_log ? dy[base + c * P] : dy[base + c * P] * y[base + c * P];
        for (int64_t c = 0; c < C; c++) {
            const int64_t i = base + c * P;
            dx[i] += is_log ? dy[i] - expf(y[i]) * s : y[i] * (dy[i] - s);
        }
    }
}

void tg_cpu_xent_fwd(tg_ctx *ctx, const float *x, const int32_t *labels, int64_t N, int64_t C,
                     int64_t P, float e, float *rows) {
    (void)ctx;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < N * P; r++) {
        const int64_t n = r / P, p = r % P;
        rows[r] = tg_xent_row(x + n * C * P + p, C, P, labels[r], e);
    }
}

void tg_cpu_xent_bwd(tg_ctx *ctx, const float *x, const int32_t *labels, int64_t N, int64_t C,
                     int64_t P, float e, const float *dl, float scale, float *dx) {
    (void)ctx;
    const float k = scale * dl[0];
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < N * P; r++) {
        const int64_t n = r / P, p = r % P, base = n * C * P + p;
        const float lse = tg_logsumexp_row(x + base, C, P);
        for (int64_t c = 0; c < C; c++)
            dx[base + c * P] += k * tg_xent_dx1(x[base + c * P], lse, (int)c, labels[r], e, C);
    }
}

void tg_cpu_dropout_mask(tg_ctx *ctx, float *mask, int64_t n, uint64_t seed, uint32_t stream,
                         uint64_t offset, float p) {
    (void)ctx;
#pragma omp parallel for schedule(static) if (n > 16384)
    for (int64_t i = 0; i < n; i++) mask[i] = tg_dropout_mask1(seed, stream, offset + (uint64_t)i, p);
}

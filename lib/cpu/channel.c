/*
 * channel.c (CPU) — the kernels behind lib/channel.c: channel blocks (concatenation, slicing),
 * per-channel broadcasts and their reductions, upsampling by 2, embedding lookups. Mirrors
 * cuda/channel.cu; shared math in tg_math.h. Reductions in double, in a fixed order.
 */
#include "internal.h"
#include "cpu.h"

void tg_cpu_chan_block(tg_ctx *ctx, float *big, int64_t Ca, int64_t off, float *small, int64_t Cb,
                       int64_t N, int64_t P, int to_big, int acc) {
    (void)ctx;
#pragma omp parallel for schedule(static) if (N * Cb * P > 16384)
    for (int64_t r = 0; r < N * Cb; r++) {
        const int64_t n = r / Cb, c = r % Cb;
        float *b = big + (n * Ca + off + c) * P, *s = small + r * P;
        float *d = to_big ? b : s;
        const float *src = to_big ? s : b;
        for (int64_t p = 0; p < P; p++) d[p] = acc ? d[p] + src[p] : src[p];
    }
}

void tg_cpu_chan_bcast(tg_ctx *ctx, int op, const float *x, const float *b, int64_t N, int64_t C,
                       int64_t P, int per_sample, float *y, int acc) {
    (void)ctx;
#pragma omp parallel for schedule(static) if (N * C * P > 16384)
    for (int64_t r = 0; r < N * C; r++) {
        const float v = b[per_sample ? r : r % C];
        const float *xs = x + r * P;
        float *ys = y + r * P;
        for (int64_t p = 0; p < P; p++) {
            const float t = op ? xs[p] * v : xs[p] + v;
            ys[p] = acc ? ys[p] + t : t;
        }
    }
}

void tg_cpu_chan_reduce(tg_ctx *ctx, const float *dy, const float *x, int64_t N, int64_t C,
                        int64_t P, int per_sample, float *db, int acc) {
    (void)ctx;
    const int64_t outs = per_sample ? N * C : C;
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < outs; o++) {
        double s = 0;
        for (int64_t n = per_sample ? o / C : 0; n < (per_sample ? o / C + 1 : N); n++) {
            const int64_t r = n * C + o % C;
            for (int64_t p = 0; p < P; p++) s += (double)dy[r * P + p] * (x ? x[r * P + p] : 1.0f);
        }
        db[o] = acc ? db[o] + (float)s : (float)s;
    }
}

void tg_cpu_up2_fwd(tg_ctx *ctx, int bilinear, const float *x, int64_t planes, int H, int W, float *y) {
    (void)ctx;
    const int Ho = 2 * H, Wo = 2 * W;
#pragma omp parallel for schedule(static)
    for (int64_t q = 0; q < planes; q++)
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++)
                y[q * Ho * Wo + oh * Wo + ow] = tg_up2_sample(x + q * H * W, H, W, oh, ow, bilinear);
}

void tg_cpu_up2_bwd(tg_ctx *ctx, int bilinear, const float *dy, int64_t planes, int H, int W, float *dx) {
    (void)ctx;
#pragma omp parallel for schedule(static)
    for (int64_t q = 0; q < planes; q++)
        for (int h = 0; h < H; h++)
            for (int w = 0; w < W; w++) dx[q * H * W + h * W + w] += tg_up2_gather(dy + q * 4 * H * W, H, W, h, w, bilinear);
}

void tg_cpu_embed_fwd(tg_ctx *ctx, const float *table, int64_t D, const int32_t *idx, int64_t n, float *y) {
    (void)ctx;
    for (int64_t i = 0; i < n; i++)
        for (int64_t d = 0; d < D; d++) y[i * D + d] = table[(int64_t)idx[i] * D + d];
}

void tg_cpu_embed_bwd(tg_ctx *ctx, const float *dy, const int32_t *idx, int64_t n, int64_t D, float *dtable) {
    (void)ctx;
#pragma omp parallel for schedule(static) if (n * D > 16384)
    for (int64_t d = 0; d < D; d++) /* each column by one thread, rows in order: deterministic */
        for (int64_t i = 0; i < n; i++) dtable[(int64_t)idx[i] * D + d] += dy[i * D + d];
}

/*
 * channel.c (CPU) — the kernels behind lib/channel.c: channel blocks (concatenation, slicing),
 * per-channel broadcasts and their reductions, upsampling by 2, embedding lookups. Mirrors
 * cuda/channel.cu; shared math in tg_math.h. Reductions in double, in a fixed order.
 */
#include "cpu.h"

void tg_cpu_chan_block(tg_ctx *ctx, const tg_chan_block *cb) {
    float *big = tg_f(cb->big), *small = tg_f(cb->small);
    const int64_t Ca = cb->Cbig, off = cb->off, Cb = cb->Csmall, N = cb->N, P = cb->P;
    const int to_big = cb->to_big, acc = cb->acc;
#pragma omp parallel for schedule(static) if (N * Cb * P > 16384)
    for (int64_t r = 0; r < N * Cb; r++) {
        const int64_t n = r / Cb, c = r % Cb;
        float *b = big + (n * Ca + off + c) * P, *s = small + r * P;
        float *d = to_big ? b : s;
        const float *src = to_big ? s : b;
        for (int64_t p = 0; p < P; p++) d[p] = acc ? d[p] + src[p] : src[p];
    }
}

void tg_cpu_chan_bcast(tg_ctx *ctx, const tg_bcast *bc, tg_mem xm, tg_mem bm, tg_mem ym, int acc) {
    const float *x = tg_f(xm), *b = tg_f(bm);
    float *y = tg_f(ym);
    const int64_t N = bc->s.N, C = bc->s.C, P = bc->s.P;
    const int op = bc->op, per_sample = bc->per_sample;
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

void tg_cpu_chan_reduce(tg_ctx *ctx, const tg_bcast *bc, tg_mem dym, tg_mem xm, tg_mem dbm, int acc) {
    const float *dy = tg_f(dym), *x = tg_f(xm);
    float *db = tg_f(dbm);
    const int64_t N = bc->s.N, C = bc->s.C, P = bc->s.P;
    const int per_sample = bc->per_sample;
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

void tg_cpu_up2_fwd(tg_ctx *ctx, const tg_up2 *u, tg_mem xm, tg_mem ym) {
    const float *x = tg_f(xm);
    float *y = tg_f(ym);
    const int64_t planes = u->planes;
    const int H = u->H, W = u->W, bilinear = u->bilinear;
    const int Ho = 2 * H, Wo = 2 * W;
#pragma omp parallel for schedule(static)
    for (int64_t q = 0; q < planes; q++)
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++)
                y[q * Ho * Wo + oh * Wo + ow] = tg_up2_sample(x + q * H * W, H, W, oh, ow, bilinear);
}

void tg_cpu_up2_bwd(tg_ctx *ctx, const tg_up2 *u, tg_mem dym, tg_mem dxm) {
    const float *dy = tg_f(dym);
    float *dx = tg_f(dxm);
    const int64_t planes = u->planes;
    const int H = u->H, W = u->W, bilinear = u->bilinear;
#pragma omp parallel for schedule(static)
    for (int64_t q = 0; q < planes; q++)
        for (int h = 0; h < H; h++)
            for (int w = 0; w < W; w++) dx[q * H * W + h * W + w] += tg_up2_gather(dy + q * 4 * H * W, H, W, h, w, bilinear);
}

void tg_cpu_embed_fwd(tg_ctx *ctx, tg_mem tm, int64_t D, tg_mem im, tg_mem ym) {
    const float *table = tg_f(tm);
    const int32_t *idx = tg_i(im);
    float *y = tg_f(ym);
    const int64_t n = im.n;
    for (int64_t i = 0; i < n; i++)
        for (int64_t d = 0; d < D; d++) y[i * D + d] = table[(int64_t)idx[i] * D + d];
}

void tg_cpu_embed_bwd(tg_ctx *ctx, tg_mem dym, tg_mem im, int64_t D, tg_mem dtm) {
    const float *dy = tg_f(dym);
    const int32_t *idx = tg_i(im);
    float *dtable = tg_f(dtm);
    const int64_t n = im.n;
#pragma omp parallel for schedule(static) if (n * D > 16384)
    for (int64_t d = 0; d < D; d++) /* each column by one thread, rows in order: deterministic */
        for (int64_t i = 0; i < n; i++) dtable[(int64_t)idx[i] * D + d] += dy[i * D + d];
}

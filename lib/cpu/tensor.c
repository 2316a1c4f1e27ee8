/*
 * tensor.c (CPU) — copies, fills and the counter-based draws (Philox, tg_math.h: uniform,
 * normal, dropout's mask) behind lib/tensor.c and lib/dropout.c; mirrors cuda/tensor.cu.
 */
#include "cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void tg_cpu_copy(tg_ctx *ctx, tg_mem dst, tg_mem src) {
    memcpy(dst.p, src.p, (size_t)src.n * sizeof(float));
}

void tg_cpu_fill(tg_ctx *ctx, tg_mem xm, float v) {
    float *x = tg_f(xm);
    const int64_t n = xm.n;
    if (v == 0.0f) {
        memset(x, 0, (size_t)n * sizeof(float));
        return;
    }
#pragma omp parallel for simd if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) x[i] = v;
}

void tg_cpu_draw(tg_ctx *ctx, tg_mem xm, const tg_draw *d) {
    float *x = tg_f(xm);
    const int64_t n = xm.n;
    const uint64_t seed = d->seed, off = d->offset;
    const uint32_t stream = d->stream;
    switch (d->kind) {
    case TG_DRAW_UNIFORM:
#pragma omp parallel for if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) x[i] = tg_rng_uniform1(seed, stream, off + (uint64_t)i, d->a, d->b);
        break;
    case TG_DRAW_NORMAL:
#pragma omp parallel for if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) x[i] = tg_rng_normal1(seed, stream, off + (uint64_t)i, d->a, d->b);
        break;
    case TG_DRAW_DROPOUT:
#pragma omp parallel for if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) x[i] = tg_dropout_mask1(seed, stream, off + (uint64_t)i, d->a);
        break;
    }
}

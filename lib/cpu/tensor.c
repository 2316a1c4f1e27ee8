/*
 * tensor.c (CPU) — fills and the counter-based RNG (Philox, tg_math.h) behind lib/tensor.c; mirrors
 * cuda/tensor.cu.
 */
#include "cpu.h"

#include "../tg_omp.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void tg_cpu_fill(tg_ctx *ctx, float *x, int64_t n, float v) {
    (void)ctx;
    if (v == 0.0f) {
        memset(x, 0, (size_t)n * sizeof(float));
        return;
    }
#pragma omp parallel for simd if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) x[i] = v;
}


void tg_cpu_rng_uniform(tg_ctx *ctx, float *x, int64_t n, uint64_t seed, uint32_t stream,
                            uint64_t offset, float lo, float hi) {
    (void)ctx;
#pragma omp parallel for if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) x[i] = tg_rng_uniform1(seed, stream, offset + (uint64_t)i, lo, hi);
}

void tg_cpu_rng_normal(tg_ctx *ctx, float *x, int64_t n, uint64_t seed, uint32_t stream,
                           uint64_t offset, float mean, float std) {
    (void)ctx;
#pragma omp parallel for if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        x[i] = tg_rng_normal1(seed, stream, offset + (uint64_t)i, mean, std);
}

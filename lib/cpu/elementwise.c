/*
 * elementwise.c (CPU) — axpby, multiply, sum and scalar fills behind lib/elementwise.c; mirrors
 * cuda/elementwise.cu. Reductions accumulate in double.
 */
#include "cpu.h"

#include "../tg_omp.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void tg_cpu_axpby(tg_ctx *ctx, int64_t n, float a, const float *x, float b, float *y) {
    (void)ctx;
#pragma omp parallel for simd if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = a * x[i] + (b == 0.0f ? 0.0f : b * y[i]);
}

void tg_cpu_mul(tg_ctx *ctx, int64_t n, const float *a, const float *b, float *out, int acc) {
    (void)ctx;
#pragma omp parallel for simd if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = (acc ? out[i] : 0.0f) + a[i] * b[i];
}

void tg_cpu_sum(tg_ctx *ctx, const float *x, int64_t n, float scale, float *out) {
    (void)ctx;
    double s = 0.0;
#pragma omp parallel for reduction(+ : s) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) s += x[i];
    out[0] = (float)(s * scale);
}

void tg_cpu_fill_scalar(tg_ctx *ctx, float *x, int64_t n, const float *s, float scale,
                            int acc) {
    (void)ctx;
    const float v = s[0] * scale;
#pragma omp parallel for simd if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) x[i] = (acc ? x[i] : 0.0f) + v;
}

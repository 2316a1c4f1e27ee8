/*
 * elementwise.c (CPU) — axpby, multiply, sum and scalar fills behind lib/elementwise.c; mirrors
 * cuda/elementwise.cu. Reductions accumulate in double.
 */
#include "cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void tg_cpu_axpby(tg_ctx *ctx, float a, tg_mem xm, float b, tg_mem ym) {
    const float *x = tg_f(xm);
    float *y = tg_f(ym);
    const int64_t n = ym.n;
#pragma omp parallel for simd if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = a * x[i] + (b == 0.0f ? 0.0f : b * y[i]);
}

void tg_cpu_mul(tg_ctx *ctx, tg_mem am, tg_mem bm, tg_mem om, int acc) {
    const float *a = tg_f(am), *b = tg_f(bm);
    float *out = tg_f(om);
    const int64_t n = om.n;
#pragma omp parallel for simd if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = (acc ? out[i] : 0.0f) + a[i] * b[i];
}

void tg_cpu_sum(tg_ctx *ctx, tg_mem xm, float scale, tg_mem om) {
    const float *x = tg_f(xm);
    float *out = tg_f(om);
    const int64_t n = xm.n;
    double s = 0.0;
#pragma omp parallel for reduction(+ : s) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) s += x[i];
    out[0] = (float)(s * scale);
}

void tg_cpu_fill_scalar(tg_ctx *ctx, tg_mem xm, tg_mem sm, float scale, int acc) {
    float *x = tg_f(xm);
    const float *s = tg_f(sm);
    const int64_t n = xm.n;
    const float v = s[0] * scale;
#pragma omp parallel for simd if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) x[i] = (acc ? x[i] : 0.0f) + v;
}

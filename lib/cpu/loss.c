/*
 * loss.c (CPU) — BCE-with-logits forward (mean, in double) and backward behind lib/loss.c; mirrors
 * cuda/loss.cu.
 */
#include "cpu.h"

#include "../tg_omp.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void tg_cpu_bce_fwd(tg_ctx *ctx, const float *x, const float *t, int64_t n, float *out) {
    (void)ctx;
    double s = 0.0;
#pragma omp parallel for reduction(+ : s) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) s += tg_bce1(x[i], t[i]);
    out[0] = (float)(s / (double)n);
}

void tg_cpu_bce_bwd(tg_ctx *ctx, const float *x, const float *t, const float *dl, int64_t n,
                        float *dx, float *dt) {
    (void)ctx;
    const float k = dl[0] / (float)n;
    for (int64_t i = 0; i < n; i++) {
        if (dx) dx[i] += k * tg_bce_dx1(x[i], t[i]);
        if (dt) dt[i] += k * tg_bce_dt1(x[i]);
    }
}

/*
 * loss.c (CPU) — BCE-with-logits forward (mean, in double) and backward behind lib/loss.c; mirrors
 * cuda/loss.cu.
 */
#include "cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void tg_cpu_bce_fwd(tg_ctx *ctx, tg_mem xm, tg_mem tm, tg_mem om) {
    const float *x = tg_f(xm), *t = tg_f(tm);
    float *out = tg_f(om);
    const int64_t n = xm.n;
    double s = 0.0;
#pragma omp parallel for reduction(+ : s) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) s += tg_bce1(x[i], t[i]);
    out[0] = (float)(s / (double)n);
}

void tg_cpu_bce_bwd(tg_ctx *ctx, tg_mem xm, tg_mem tm, tg_mem dlm, tg_mem dxm, tg_mem dtm) {
    const float *x = tg_f(xm), *t = tg_f(tm), *dl = tg_f(dlm);
    float *dx = tg_f(dxm), *dt = tg_f(dtm);
    const int64_t n = xm.n;
    const float k = dl[0] / (float)n;
    for (int64_t i = 0; i < n; i++) {
        if (dx) dx[i] += k * tg_bce_dx1(x[i], t[i]);
        if (dt) dt[i] += k * tg_bce_dt1(x[i]);
    }
}

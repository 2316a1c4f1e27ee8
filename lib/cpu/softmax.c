/*
 * softmax.c (CPU) — softmax, log-softmax and cross-entropy behind lib/softmax.c: one row of C
 * values (stride P) per iteration, rows in parallel; the row math is tg_math.h's, shared with
 * cuda/softmax.cu.
 */
#include "cpu.h"

void tg_cpu_softmax_fwd(tg_ctx *ctx, tg_ncp s, int is_log, tg_mem xm, tg_mem ym) {
    const float *x = tg_f(xm);
    float *y = tg_f(ym);
    const int64_t C = s.C, P = s.P;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < s.N * P; r++) {
        const int64_t base = r / P * C * P + r % P;
        tg_softmax_row(x + base, y + base, C, P, is_log);
    }
}

void tg_cpu_softmax_bwd(tg_ctx *ctx, tg_ncp s, int is_log, tg_mem ym, tg_mem dym, tg_mem dxm) {
    const float *y = tg_f(ym), *dy = tg_f(dym);
    float *dx = tg_f(dxm);
    const int64_t C = s.C, P = s.P;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < s.N * P; r++) {
        const int64_t base = r / P * C * P + r % P;
        tg_softmax_row_bwd(y + base, dy + base, dx + base, C, P, is_log);
    }
}

void tg_cpu_xent_fwd(tg_ctx *ctx, const tg_xent *e, tg_mem rm) {
    const float *x = tg_f(e->x);
    const int32_t *labels = tg_i(e->labels);
    float *rows = tg_f(rm);
    const int64_t C = e->s.C, P = e->s.P;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < e->s.N * P; r++) rows[r] = tg_xent_row(x + r / P * C * P + r % P, C, P, labels[r], e->smoothing);
}

void tg_cpu_xent_bwd(tg_ctx *ctx, const tg_xent *e, tg_mem dlm, float scale, tg_mem dxm) {
    const float *x = tg_f(e->x);
    const int32_t *labels = tg_i(e->labels);
    float *dx = tg_f(dxm);
    const int64_t C = e->s.C, P = e->s.P;
    const float k = scale * tg_f(dlm)[0];
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < e->s.N * P; r++) {
        const int64_t base = r / P * C * P + r % P;
        tg_xent_row_bwd(x + base, dx + base, C, P, labels[r], e->smoothing, k);
    }
}

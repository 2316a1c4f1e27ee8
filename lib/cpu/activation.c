/*
 * activation.c (CPU) — the activations' forward and backward loops (per-element math in tg_math.h),
 * behind lib/activation.c; mirrors cuda/activation.cu.
 */
#include "cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


/* One function per activation, so the formula (tg_unary_*1 with a constant op) inlines without
 * its switch. */
#define UNARY_FWD_FN(name, OP)                                                                  \
    static void name(const float *restrict x, float *restrict y, float a, int64_t lo,           \
                     int64_t hi) {                                                              \
        for (int64_t i = lo; i < hi; i++) y[i] = tg_unary_fwd1(OP, a, x[i]);                    \
    }
UNARY_FWD_FN(leaky_fwd, TG_UN_LEAKY_RELU)
UNARY_FWD_FN(relu_fwd, TG_UN_RELU)
UNARY_FWD_FN(tanh_fwd, TG_UN_TANH)
UNARY_FWD_FN(sigmoid_fwd, TG_UN_SIGMOID)

#define UNARY_BWD_FN(name, OP)                                                                  \
    static void name(const float *restrict x, const float *restrict y, const float *restrict dy,\
                     float *restrict dx, float a, int acc, int64_t lo, int64_t hi) {            \
        if (acc)                                                                                \
            for (int64_t i = lo; i < hi; i++) dx[i] += tg_unary_bwd1(OP, a, x[i], y[i], dy[i]); \
        else                                                                                    \
            for (int64_t i = lo; i < hi; i++) dx[i] = tg_unary_bwd1(OP, a, x[i], y[i], dy[i]);  \
    }
UNARY_BWD_FN(leaky_bwd, TG_UN_LEAKY_RELU)
UNARY_BWD_FN(relu_bwd, TG_UN_RELU)
UNARY_BWD_FN(tanh_bwd, TG_UN_TANH)
UNARY_BWD_FN(sigmoid_bwd, TG_UN_SIGMOID)

void tg_cpu_unary_fwd(tg_ctx *ctx, tg_unary u, tg_mem xm, tg_mem ym) {
    const int op = u.op;
    const float a = u.a, *x = tg_f(xm);
    float *y = tg_f(ym);
    const int64_t n = xm.n;
    void (*f)(const float *restrict, float *restrict, float, int64_t, int64_t) =
        op == TG_UN_LEAKY_RELU ? leaky_fwd : op == TG_UN_RELU ? relu_fwd
                                           : op == TG_UN_TANH ? tanh_fwd : sigmoid_fwd;
    PAR_RANGES(n, f(x, y, a, lo, hi));
}

void tg_cpu_unary_bwd(tg_ctx *ctx, tg_unary u, tg_mem xm, tg_mem ym, tg_mem dym, tg_mem dxm, int acc) {
    const int op = u.op;
    const float a = u.a, *x = tg_f(xm), *y = tg_f(ym), *dy = tg_f(dym);
    float *dx = tg_f(dxm);
    const int64_t n = dxm.n;
    void (*f)(const float *restrict, const float *restrict, const float *restrict,
              float *restrict, float, int, int64_t, int64_t) =
        op == TG_UN_LEAKY_RELU ? leaky_bwd : op == TG_UN_RELU ? relu_bwd
                                           : op == TG_UN_TANH ? tanh_bwd : sigmoid_bwd;
    PAR_RANGES(n, f(x, y, dy, dx, a, acc, lo, hi));
}

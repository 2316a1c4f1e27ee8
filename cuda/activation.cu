/*
 * activation.cu — CUDA kernels behind lib/activation.c; the math is tg_unary_fwd1/bwd1.
 */
#include "cuda_common.cuh"

static __global__ void unary_fwd_kernel(int op, float a, const float *x, float *y, int64_t n) {
    TG_GRID_STRIDE(i, n) { y[i] = tg_unary_fwd1(op, a, x[i]); }
}

static __global__ void unary_bwd_kernel(int op, float a, const float *x, const float *y,
                                        const float *dy, float *dx, int64_t n, int acc) {
    TG_GRID_STRIDE(i, n) { dx[i] = (acc ? dx[i] : 0.0f) + tg_unary_bwd1(op, a, x[i], y[i], dy[i]); }
}

extern "C" {

void tg_cuda_unary_fwd(tg_ctx *ctx, tg_unary u, tg_mem x, tg_mem y) {
    unary_fwd_kernel<<<tg_blocks(y.n), TG_THREADS, 0, tg_stream(ctx)>>>(u.op, u.a, tg_f(x), tg_f(y), y.n);
    TG_LAUNCHED(ctx, "activation forward");
}

void tg_cuda_unary_bwd(tg_ctx *ctx, tg_unary u, tg_mem x, tg_mem y, tg_mem dy, tg_mem dx, int acc) {
    unary_bwd_kernel<<<tg_blocks(dx.n), TG_THREADS, 0, tg_stream(ctx)>>>(u.op, u.a, tg_f(x), tg_f(y), tg_f(dy),
                                                                         tg_f(dx), dx.n, acc);
    TG_LAUNCHED(ctx, "activation backward");
}

} /* extern "C" */

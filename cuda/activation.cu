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

void tg_cuda_unary_fwd(tg_ctx *ctx, int op, float a, const float *x, float *y, int64_t n) {
    unary_fwd_kernel<<<tg_blocks(n), TG_THREADS, 0, tg_stream(ctx)>>>(op, a, x, y, n);
    TG_LAUNCHED(ctx, "activation forward");
}

void tg_cuda_unary_bwd(tg_ctx *ctx, int op, float a, const float *x, const float *y,
                       const float *dy, float *dx, int64_t n, int acc) {
    unary_bwd_kernel<<<tg_blocks(n), TG_THREADS, 0, tg_stream(ctx)>>>(op, a, x, y, dy, dx, n, acc);
    TG_LAUNCHED(ctx, "activation backward");
}

} /* extern "C" */

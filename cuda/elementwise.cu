/*
 * elementwise.cu — CUDA kernels behind lib/elementwise.c: fill, axpby, mul, the full sum (one
 * block, fixed order: deterministic) and the broadcast of a device scalar.
 */
#include "cuda_common.cuh"

static __global__ void fill_kernel(float *x, int64_t n, float v) {
    TG_GRID_STRIDE(i, n) { x[i] = v; }
}

static __global__ void axpby_kernel(int64_t n, float a, const float *x, float b, float *y) {
    TG_GRID_STRIDE(i, n) { y[i] = a * x[i] + (b == 0.0f ? 0.0f : b * y[i]); }
}

static __global__ void mul_kernel(int64_t n, const float *a, const float *b, float *out, int acc) {
    TG_GRID_STRIDE(i, n) { out[i] = (acc ? out[i] : 0.0f) + a[i] * b[i]; }
}

static __global__ void sum_kernel(const float *x, int64_t n, float scale, float *out) {
    __shared__ double sh[32];
    double s = 0.0; /* in double, as the CPU's */
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += (double)x[i];
    s = tg_block_sum_d(s, sh);
    if (threadIdx.x == 0) out[0] = (float)(s * (double)scale);
}

static __global__ void fill_scalar_kernel(float *x, int64_t n, const float *s, float scale,
                                          int acc) {
    const float v = s[0] * scale;
    TG_GRID_STRIDE(i, n) { x[i] = (acc ? x[i] : 0.0f) + v; }
}

extern "C" {

void tg_cuda_fill(tg_ctx *ctx, tg_mem xm, float v) {
    float *x = tg_f(xm);
    const int64_t n = xm.n;
    if (v == 0.0f) {
        tg_cuda_note(ctx, cudaMemsetAsync(x, 0, (size_t)n * sizeof(float), tg_stream(ctx)), "fill");
        return;
    }
    fill_kernel<<<tg_blocks(n), TG_THREADS, 0, tg_stream(ctx)>>>(x, n, v);
    TG_LAUNCHED(ctx, "fill");
}

void tg_cuda_axpby(tg_ctx *ctx, float a, tg_mem x, float b, tg_mem y) {
    axpby_kernel<<<tg_blocks(y.n), TG_THREADS, 0, tg_stream(ctx)>>>(y.n, a, tg_f(x), b, tg_f(y));
    TG_LAUNCHED(ctx, "axpby");
}

void tg_cuda_mul(tg_ctx *ctx, tg_mem a, tg_mem b, tg_mem out, int acc) {
    mul_kernel<<<tg_blocks(out.n), TG_THREADS, 0, tg_stream(ctx)>>>(out.n, tg_f(a), tg_f(b), tg_f(out), acc);
    TG_LAUNCHED(ctx, "mul");
}

void tg_cuda_sum(tg_ctx *ctx, tg_mem x, float scale, tg_mem out) {
    sum_kernel<<<1, TG_THREADS, 0, tg_stream(ctx)>>>(tg_f(x), x.n, scale, tg_f(out));
    TG_LAUNCHED(ctx, "sum");
}

void tg_cuda_fill_scalar(tg_ctx *ctx, tg_mem x, tg_mem s, float scale, int acc) {
    fill_scalar_kernel<<<tg_blocks(x.n), TG_THREADS, 0, tg_stream(ctx)>>>(tg_f(x), x.n, tg_f(s), scale, acc);
    TG_LAUNCHED(ctx, "fill_scalar");
}

} /* extern "C" */

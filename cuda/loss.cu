/*
 * loss.cu — CUDA kernels behind lib/loss.c: fused, numerically stable BCE-with-logits (one block
 * reduces the mean in a fixed order) and its gradient; the math is tg_bce1/tg_bce_dx1.
 */
#include "cuda_common.cuh"

static __global__ void bce_fwd_kernel(const float *x, const float *t, int64_t n, float *out) {
    __shared__ double sh[32];
    double s = 0.0; /* in double, as the CPU's */
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += (double)tg_bce1(x[i], t[i]);
    s = tg_block_sum_d(s, sh);
    if (threadIdx.x == 0) out[0] = (float)(s / (double)n);
}

static __global__ void bce_bwd_kernel(const float *x, const float *t, const float *dl, int64_t n,
                                      float *dx, float *dt) {
    const float k = dl[0] / (float)n;
    TG_GRID_STRIDE(i, n) {
        if (dx) dx[i] += k * tg_bce_dx1(x[i], t[i]);
        if (dt) dt[i] += k * tg_bce_dt1(x[i]);
    }
}

extern "C" {

void tg_cuda_bce_fwd(tg_ctx *ctx, tg_mem x, tg_mem t, tg_mem out) {
    bce_fwd_kernel<<<1, TG_THREADS, 0, tg_stream(ctx)>>>(tg_f(x), tg_f(t), x.n, tg_f(out));
    TG_LAUNCHED(ctx, "bce_with_logits forward");
}

void tg_cuda_bce_bwd(tg_ctx *ctx, tg_mem x, tg_mem t, tg_mem dl, tg_mem dx, tg_mem dt) {
    bce_bwd_kernel<<<tg_blocks(x.n), TG_THREADS, 0, tg_stream(ctx)>>>(tg_f(x), tg_f(t), tg_f(dl), x.n, tg_f(dx),
                                                                      tg_f(dt));
    TG_LAUNCHED(ctx, "bce_with_logits backward");
}

} /* extern "C" */

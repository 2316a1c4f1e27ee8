/*
 * tensor.cu — CUDA kernels behind lib/tensor.c's random fills: element i of a draw at `offset` is
 * a pure function of (seed, stream, offset + i) (tg_rng_*1, Philox4x32-10), so the GPU draws the
 * CPU's numbers.
 */
#include "cuda_common.cuh"

static __global__ void rng_uniform_kernel(float *x, int64_t n, uint64_t seed, uint32_t stream,
                                          uint64_t offset, float lo, float hi) {
    TG_GRID_STRIDE(i, n) { x[i] = tg_rng_uniform1(seed, stream, offset + (uint64_t)i, lo, hi); }
}

static __global__ void rng_normal_kernel(float *x, int64_t n, uint64_t seed, uint32_t stream,
                                         uint64_t offset, float mean, float std) {
    TG_GRID_STRIDE(i, n) { x[i] = tg_rng_normal1(seed, stream, offset + (uint64_t)i, mean, std); }
}

static __global__ void dropout_mask_kernel(float *mask, int64_t n, uint64_t seed, uint32_t stream,
                                           uint64_t offset, float p) {
    TG_GRID_STRIDE(i, n) mask[i] = tg_dropout_mask1(seed, stream, offset + (uint64_t)i, p);
}

extern "C" {

void tg_cuda_draw(tg_ctx *ctx, tg_mem xm, const tg_draw *d) {
    float *x = tg_f(xm);
    const int64_t n = xm.n;
    switch (d->kind) {
    case TG_DRAW_UNIFORM:
        rng_uniform_kernel<<<tg_blocks(n), TG_THREADS, 0, tg_stream(ctx)>>>(x, n, d->seed, d->stream, d->offset, d->a, d->b);
        TG_LAUNCHED(ctx, "rng_uniform");
        break;
    case TG_DRAW_NORMAL:
        rng_normal_kernel<<<tg_blocks(n), TG_THREADS, 0, tg_stream(ctx)>>>(x, n, d->seed, d->stream, d->offset, d->a, d->b);
        TG_LAUNCHED(ctx, "rng_normal");
        break;
    case TG_DRAW_DROPOUT:
        dropout_mask_kernel<<<tg_blocks(n), TG_THREADS, 0, tg_stream(ctx)>>>(x, n, d->seed, d->stream, d->offset, d->a);
        TG_LAUNCHED(ctx, "dropout mask");
        break;
    }
}

} /* extern "C" */

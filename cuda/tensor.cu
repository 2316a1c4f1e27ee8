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

extern "C" {

void tg_cuda_rng_uniform(tg_ctx *ctx, float *x, int64_t n, uint64_t seed, uint32_t stream,
                         uint64_t offset, float lo, float hi) {
    rng_uniform_kernel<<<tg_blocks(n), TG_THREADS, 0, tg_stream(ctx)>>>(x, n, seed, stream, offset,
                                                                         lo, hi);
    TG_LAUNCHED(ctx, "rng_uniform");
}

void tg_cuda_rng_normal(tg_ctx *ctx, float *x, int64_t n, uint64_t seed, uint32_t stream,
                        uint64_t offset, float mean, float std) {
    rng_normal_kernel<<<tg_blocks(n), TG_THREADS, 0, tg_stream(ctx)>>>(x, n, seed, stream, offset,
                                                                        mean, std);
    TG_LAUNCHED(ctx, "rng_normal");
}

} /* extern "C" */

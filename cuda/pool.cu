/*
 * pool.cu — the pooling kernels behind lib/pool.c: one thread per output (forward) and per input
 * (backward: it gathers from the windows that cover it, no atomics), each calling tg_math.h's
 * window math (tg_pool_out1, tg_pool_in1) as lib/cpu/pool.c does.
 */
#include "cuda_common.cuh"

static __global__ void pool_fwd_kernel(tg_pool_geom g, const float *x, float *y, int32_t *idx) {
    TG_GRID_STRIDE(o, g.planes * g.Ho * g.Wo) {
        const int64_t q = o / ((int64_t)g.Ho * g.Wo);
        const int oh = (int)(o / g.Wo % g.Ho), ow = (int)(o % g.Wo);
        int32_t arg;
        tg_pool_out1(x + q * g.H * g.W, g.H, g.W, oh, ow, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.is_max, &y[o], &arg);
        if (g.is_max) idx[o] = arg;
    }
}

static __global__ void pool_bwd_kernel(tg_pool_geom g, const float *dy, const int32_t *idx, float *dx) {
    TG_GRID_STRIDE(i, g.planes * g.H * g.W) {
        const int64_t q = i / ((int64_t)g.H * g.W);
        const int h = (int)(i / g.W % g.H), w = (int)(i % g.W);
        const int64_t plane = q * g.Ho * g.Wo;
        dx[i] += tg_pool_in1(dy + plane, g.is_max ? idx + plane : NULL, g.H, g.W, h, w, g.kh, g.kw, g.sh, g.sw, g.ph,
                             g.pw, g.Ho, g.Wo, g.is_max);
    }
}

extern "C" {

void tg_cuda_pool_fwd(tg_ctx *ctx, const tg_pool_geom *g, tg_mem x, tg_mem y, tg_mem argmax) {
    pool_fwd_kernel<<<tg_blocks(g->planes * g->Ho * g->Wo), TG_THREADS, 0, tg_stream(ctx)>>>(*g, tg_f(x), tg_f(y),
                                                                                            tg_i(argmax));
    TG_LAUNCHED(ctx, "pool forward");
}

void tg_cuda_pool_bwd(tg_ctx *ctx, const tg_pool_geom *g, tg_mem dy, tg_mem argmax, tg_mem dx) {
    pool_bwd_kernel<<<tg_blocks(g->planes * g->H * g->W), TG_THREADS, 0, tg_stream(ctx)>>>(*g, tg_f(dy), tg_i(argmax),
                                                                                          tg_f(dx));
    TG_LAUNCHED(ctx, "pool backward");
}

} /* extern "C" */

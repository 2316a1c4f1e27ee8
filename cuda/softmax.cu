/*
 * softmax.cu — softmax, log-softmax and cross-entropy behind lib/softmax.c: one thread per row of
 * C values (stride P), each calling tg_math.h's row math as lib/cpu/softmax.c does.
 */
#include "cuda_common.cuh"

static __global__ void softmax_fwd_kernel(tg_ncp s, int is_log, const float *x, float *y) {
    TG_GRID_STRIDE(r, s.N * s.P) {
        const int64_t base = r / s.P * s.C * s.P + r % s.P;
        tg_softmax_row(x + base, y + base, s.C, s.P, is_log);
    }
}

static __global__ void softmax_bwd_kernel(tg_ncp s, int is_log, const float *y, const float *dy, float *dx) {
    TG_GRID_STRIDE(r, s.N * s.P) {
        const int64_t base = r / s.P * s.C * s.P + r % s.P;
        tg_softmax_row_bwd(y + base, dy + base, dx + base, s.C, s.P, is_log);
    }
}

static __global__ void xent_fwd_kernel(tg_ncp s, const float *x, const int32_t *labels, float e, float *rows) {
    TG_GRID_STRIDE(r, s.N * s.P) rows[r] = tg_xent_row(x + r / s.P * s.C * s.P + r % s.P, s.C, s.P, labels[r], e);
}

static __global__ void xent_bwd_kernel(tg_ncp s, const float *x, const int32_t *labels, float e, const float *dl,
                                       float scale, float *dx) {
    const float k = scale * dl[0];
    TG_GRID_STRIDE(r, s.N * s.P) {
        const int64_t base = r / s.P * s.C * s.P + r % s.P;
        tg_xent_row_bwd(x + base, dx + base, s.C, s.P, labels[r], e, k);
    }
}

extern "C" {

void tg_cuda_softmax_fwd(tg_ctx *ctx, tg_ncp s, int is_log, tg_mem x, tg_mem y) {
    softmax_fwd_kernel<<<tg_blocks(s.N * s.P), TG_THREADS, 0, tg_stream(ctx)>>>(s, is_log, tg_f(x), tg_f(y));
    TG_LAUNCHED(ctx, "softmax forward");
}

void tg_cuda_softmax_bwd(tg_ctx *ctx, tg_ncp s, int is_log, tg_mem y, tg_mem dy, tg_mem dx) {
    softmax_bwd_kernel<<<tg_blocks(s.N * s.P), TG_THREADS, 0, tg_stream(ctx)>>>(s, is_log, tg_f(y), tg_f(dy), tg_f(dx));
    TG_LAUNCHED(ctx, "softmax backward");
}

void tg_cuda_xent_fwd(tg_ctx *ctx, const tg_xent *e, tg_mem rows) {
    xent_fwd_kernel<<<tg_blocks(e->s.N * e->s.P), TG_THREADS, 0, tg_stream(ctx)>>>(e->s, tg_f(e->x), tg_i(e->labels),
                                                                                  e->smoothing, tg_f(rows));
    TG_LAUNCHED(ctx, "cross_entropy forward");
}

void tg_cuda_xent_bwd(tg_ctx *ctx, const tg_xent *e, tg_mem dl, float scale, tg_mem dx) {
    xent_bwd_kernel<<<tg_blocks(e->s.N * e->s.P), TG_THREADS, 0, tg_stream(ctx)>>>(
        e->s, tg_f(e->x), tg_i(e->labels), e->smoothing, tg_f(dl), scale, tg_f(dx));
    TG_LAUNCHED(ctx, "cross_entropy backward");
}

} /* extern "C" */

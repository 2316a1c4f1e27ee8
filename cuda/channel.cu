/*
 * channel.cu — the kernels behind lib/channel.c, as on the CPU (lib/cpu/channel.c): channel
 * blocks, per-channel broadcasts and reductions (one block per output, fixed-order sums),
 * upsampling by 2 (backward gathers per input) and embeddings (one thread per column, rows in
 * order: deterministic).
 */
#include "cuda_common.cuh"

static __global__ void chan_block_kernel(float *big, int64_t Ca, int64_t off, float *small, int64_t Cb,
                                         int64_t N, int64_t P, int to_big, int acc) {
    TG_GRID_STRIDE(i, N * Cb * P) {
        const int64_t p = i % P, r = i / P, n = r / Cb, c = r % Cb;
        float *b = big + (n * Ca + off + c) * P + p, *s = small + i;
        float *d = to_big ? b : s;
        const float v = to_big ? *s : *b;
        *d = acc ? *d + v : v;
    }
}

static __global__ void chan_bcast_kernel(int op, const float *x, const float *b, int64_t N, int64_t C,
                                         int64_t P, int per_sample, float *y, int acc) {
    TG_GRID_STRIDE(i, N * C * P) {
        const int64_t r = i / P;
        const float v = b[per_sample ? r : r % C], t = op ? x[i] * v : x[i] + v;
        y[i] = acc ? y[i] + t : t;
    }
}

static __global__ void chan_reduce_kernel(const float *dy, const float *x, int64_t N, int64_t C, int64_t P,
                                          int per_sample, float *db, int acc) {
    __shared__ double sh[32];
    const int64_t o = blockIdx.x, nlo = per_sample ? o / C : 0, nhi = per_sample ? o / C + 1 : N;
    const int64_t count = (nhi - nlo) * P;
    double s = 0.0; /* in double, as the CPU's */
    for (int64_t k = threadIdx.x; k < count; k += blockDim.x) {
        const int64_t n = nlo + k / P, i = (n * C + o % C) * P + k % P;
        s += (double)dy[i] * (x ? (double)x[i] : 1.0);
    }
    s = tg_block_sum_d(s, sh);
    if (threadIdx.x == 0) db[o] = acc ? db[o] + (float)s : (float)s;
}

static __global__ void up2_fwd_kernel(int bilinear, const float *x, int64_t planes, int H, int W, float *y) {
    const int Ho = 2 * H, Wo = 2 * W;
    TG_GRID_STRIDE(i, planes * Ho * Wo) {
        const int64_t q = i / ((int64_t)Ho * Wo);
        y[i] = tg_up2_sample(x + q * H * W, H, W, (int)(i / Wo % Ho), (int)(i % Wo), bilinear);
    }
}

static __global__ void up2_bwd_kernel(int bilinear, const float *dy, int64_t planes, int H, int W, float *dx) {
    TG_GRID_STRIDE(i, planes * H * W) {
        const int64_t q = i / ((int64_t)H * W);
        dx[i] += tg_up2_gather(dy + q * 4 * H * W, H, W, (int)(i / W % H), (int)(i % W), bilinear);
    }
}

static __global__ void embed_fwd_kernel(const float *table, int64_t D, const int32_t *idx, int64_t n, float *y) {
    TG_GRID_STRIDE(i, n * D) y[i] = table[(int64_t)idx[i / D] * D + i % D];
}

static __global__ void embed_bwd_kernel(const float *dy, const int32_t *idx, int64_t n, int64_t D, float *dtable) {
    TG_GRID_STRIDE(d, D)
    for (int64_t i = 0; i < n; i++) dtable[(int64_t)idx[i] * D + d] += dy[i * D + d];
}

extern "C" {

void tg_cuda_chan_block(tg_ctx *ctx, const tg_chan_block *b) {
    chan_block_kernel<<<tg_blocks(b->N * b->Csmall * b->P), TG_THREADS, 0, tg_stream(ctx)>>>(
        tg_f(b->big), b->Cbig, b->off, tg_f(b->small), b->Csmall, b->N, b->P, b->to_big, b->acc);
    TG_LAUNCHED(ctx, "channel block copy");
}

void tg_cuda_chan_bcast(tg_ctx *ctx, const tg_bcast *c, tg_mem x, tg_mem b, tg_mem y, int acc) {
    const int64_t N = c->s.N, C = c->s.C, P = c->s.P;
    chan_bcast_kernel<<<tg_blocks(N * C * P), TG_THREADS, 0, tg_stream(ctx)>>>(c->op, tg_f(x), tg_f(b), N, C, P,
                                                                               c->per_sample, tg_f(y), acc);
    TG_LAUNCHED(ctx, "per-channel broadcast");
}

void tg_cuda_chan_reduce(tg_ctx *ctx, const tg_bcast *c, tg_mem dy, tg_mem x, tg_mem db, int acc) {
    const int64_t N = c->s.N, C = c->s.C, P = c->s.P;
    const int per_sample = c->per_sample;
    chan_reduce_kernel<<<(unsigned)(per_sample ? N * C : C), TG_THREADS, 0, tg_stream(ctx)>>>(
        tg_f(dy), tg_f(x), N, C, P, per_sample, tg_f(db), acc);
    TG_LAUNCHED(ctx, "per-channel reduction");
}

void tg_cuda_up2_fwd(tg_ctx *ctx, const tg_up2 *u, tg_mem x, tg_mem y) {
    up2_fwd_kernel<<<tg_blocks(u->planes * 4 * u->H * u->W), TG_THREADS, 0, tg_stream(ctx)>>>(
        u->bilinear, tg_f(x), u->planes, u->H, u->W, tg_f(y));
    TG_LAUNCHED(ctx, "upsample forward");
}

void tg_cuda_up2_bwd(tg_ctx *ctx, const tg_up2 *u, tg_mem dy, tg_mem dx) {
    up2_bwd_kernel<<<tg_blocks(u->planes * u->H * u->W), TG_THREADS, 0, tg_stream(ctx)>>>(
        u->bilinear, tg_f(dy), u->planes, u->H, u->W, tg_f(dx));
    TG_LAUNCHED(ctx, "upsample backward");
}

void tg_cuda_embed_fwd(tg_ctx *ctx, tg_mem table, int64_t D, tg_mem idx, tg_mem y) {
    embed_fwd_kernel<<<tg_blocks(idx.n * D), TG_THREADS, 0, tg_stream(ctx)>>>(tg_f(table), D, tg_i(idx), idx.n,
                                                                              tg_f(y));
    TG_LAUNCHED(ctx, "embedding forward");
}

void tg_cuda_embed_bwd(tg_ctx *ctx, tg_mem dy, tg_mem idx, int64_t D, tg_mem dtable) {
    embed_bwd_kernel<<<tg_blocks(D), TG_THREADS, 0, tg_stream(ctx)>>>(tg_f(dy), tg_i(idx), idx.n, D, tg_f(dtable));
    TG_LAUNCHED(ctx, "embedding backward");
}

} /* extern "C" */

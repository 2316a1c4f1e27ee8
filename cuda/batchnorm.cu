/*
 * batchnorm.cu — CUDA kernels behind lib/batchnorm.c and the per-channel bias gradient: one block
 * per channel reduces that channel's N*P values in a fixed order (deterministic for a given
 * launch), then, where the op needs it, the same block writes the channel's outputs.
 * Statistics are two-pass (mean, then squared deviations) and accumulate in double, like the CPU
 * backend's (a channel of mean 1e4 and deviation 1 keeps its variance).
 */
#include "cuda_common.cuh"

/* sum over n,p of x[n,c,p] for c = blockIdx.x, in double */
static __device__ double channel_reduce(const float *x, int64_t N, int64_t C, int64_t P, int64_t c,
                                        double *sh) {
    double s = 0.0;
    for (int64_t k = threadIdx.x; k < N * P; k += blockDim.x) {
        const int64_t n = k / P, p = k % P;
        s += (double)x[(n * C + c) * P + p];
    }
    return tg_block_sum_d(s, sh);
}

static __global__ void channel_sum_kernel(const float *x, int64_t N, int64_t C, int64_t P,
                                          float *out, int acc) {
    __shared__ double sh[32];
    const int64_t c = blockIdx.x;
    const double s = channel_reduce(x, N, C, P, c, sh);
    if (threadIdx.x == 0) out[c] = (float)(acc ? (double)out[c] + s : s);
}

static __global__ void bn_train_kernel(const float *x, int64_t N, int64_t C, int64_t P,
                                       const float *gamma, const float *beta, float eps,
                                       float momentum, float *rmean, float *rvar, float *mean,
                                       float *invstd, float *y) {
    __shared__ double sh[32];
    const int64_t c = blockIdx.x, M = N * P;
    const double mud = channel_reduce(x, N, C, P, c, sh) / (double)M;
    double ss = 0.0;
    for (int64_t k = threadIdx.x; k < M; k += blockDim.x) {
        const double d = (double)x[((k / P) * C + c) * P + k % P] - mud;
        ss += d * d;
    }
    ss = tg_block_sum_d(ss, sh);
    const float mu = (float)mud, is = tg_bn_invstd1(ss / (double)M, eps);
    if (threadIdx.x == 0) {
        mean[c] = mu;
        invstd[c] = is;
        if (rmean) {
            rmean[c] = tg_bn_running1(rmean[c], mud, momentum);
            rvar[c] = tg_bn_running1(rvar[c], tg_bn_unbiased(ss, (double)M), momentum);
        }
    }
    const float g = gamma ? gamma[c] : 1.0f, b = beta ? beta[c] : 0.0f;
    for (int64_t k = threadIdx.x; k < M; k += blockDim.x) {
        const int64_t i = ((k / P) * C + c) * P + k % P;
        y[i] = tg_bn_fwd1(x[i], mu, is, g, b);
    }
}

static __global__ void bn_apply_kernel(const float *x, int64_t C, int64_t P, const float *mean,
                                       const float *invstd, const float *gamma, const float *beta,
                                       float *y, int64_t n) {
    TG_GRID_STRIDE(i, n) {
        const int64_t c = (i / P) % C;
        y[i] = tg_bn_fwd1(x[i], mean[c], invstd[c], gamma ? gamma[c] : 1.0f, beta ? beta[c] : 0.0f);
    }
}

static __global__ void bn_invstd_kernel(const float *var, int64_t C, float eps, float *invstd) {
    TG_GRID_STRIDE(c, C) { invstd[c] = tg_bn_invstd1(var[c], eps); }
}

static __global__ void bn_bwd_kernel(const float *x, const float *dy, int64_t N, int64_t C,
                                     int64_t P, const float *gamma, const float *mean,
                                     const float *invstd, int training, float *dx, float *dgamma,
                                     float *dbeta, int acc) {
    __shared__ double sh[32];
    const int64_t c = blockIdx.x, M = N * P;
    const float mu = mean[c], is = invstd[c], g = gamma ? gamma[c] : 1.0f;
    double sdyd = 0.0, sdyxd = 0.0;
    for (int64_t k = threadIdx.x; k < M; k += blockDim.x) {
        const int64_t i = ((k / P) * C + c) * P + k % P;
        sdyd += (double)dy[i];
        sdyxd += (double)dy[i] * ((x[i] - mu) * is);
    }
    sdyd = tg_block_sum_d(sdyd, sh);
    sdyxd = tg_block_sum_d(sdyxd, sh);
    const float sdy = (float)sdyd, sdyx = (float)sdyxd;
    if (threadIdx.x == 0) {
        if (dgamma) dgamma[c] += sdyx; /* as the CPU adds them */
        if (dbeta) dbeta[c] += sdy;
    }
    if (!dx) return;
    const float inv_m = 1.0f / (float)M;
    for (int64_t k = threadIdx.x; k < M; k += blockDim.x) {
        const int64_t i = ((k / P) * C + c) * P + k % P;
        dx[i] = (acc ? dx[i] : 0.0f) + (training ? tg_bn_bwd1(dy[i], x[i], mu, is, g, sdy, sdyx, inv_m)
                                                 : tg_bn_bwd_eval1(dy[i], g, is));
    }
}

extern "C" {

void tg_cuda_channel_sum(tg_ctx *ctx, tg_ncp s, tg_mem x, tg_mem out, int acc) {
    channel_sum_kernel<<<(unsigned)s.C, TG_RED_THREADS, 0, tg_stream(ctx)>>>(tg_f(x), s.N, s.C, s.P, tg_f(out), acc);
    TG_LAUNCHED(ctx, "channel_sum");
}

/* The fused BatchNorm + (leaky) ReLU on CUDA is the two kernels, the activation applied in place
 * over the BN output (bit for bit the two ops; the CPU fuses them into one pass). */
void tg_cuda_bn_fwd(tg_ctx *ctx, const tg_bn *b, tg_mem ym) {
    const int64_t N = b->s.N, C = b->s.C, P = b->s.P;
    float *y = tg_f(ym), *mean = tg_f(b->mean), *invstd = tg_f(b->invstd);
    if (b->training) {
        bn_train_kernel<<<(unsigned)C, TG_RED_THREADS, 0, tg_stream(ctx)>>>(
            tg_f(b->x), N, C, P, tg_f(b->gamma), tg_f(b->beta), b->eps, b->momentum, tg_f(b->running_mean),
            tg_f(b->running_var), mean, invstd, y);
        TG_LAUNCHED(ctx, "batch_norm forward");
    } else {
        tg_cuda_copy(ctx, b->mean, b->running_mean);
        bn_invstd_kernel<<<tg_blocks(C), TG_THREADS, 0, tg_stream(ctx)>>>(tg_f(b->running_var), C, b->eps, invstd);
        TG_LAUNCHED(ctx, "batch_norm invstd");
        bn_apply_kernel<<<tg_blocks(N * C * P), TG_THREADS, 0, tg_stream(ctx)>>>(
            tg_f(b->x), C, P, mean, invstd, tg_f(b->gamma), tg_f(b->beta), y, N * C * P);
        TG_LAUNCHED(ctx, "batch_norm apply");
    }
    if (b->act) {
        const tg_unary u = {b->slope == 0.0f ? TG_UN_RELU : TG_UN_LEAKY_RELU, b->slope};
        tg_cuda_unary_fwd(ctx, u, ym, ym);
    }
}

/* With act, dy = act'(y) * dz, taken from the output z (for a slope >= 0, z > 0 exactly when
 * y > 0) into the workspace, then the plain backward. */
void tg_cuda_bn_bwd(tg_ctx *ctx, const tg_bn *b, tg_mem zm, tg_mem dzm, tg_mem dxm, tg_mem dgm, tg_mem dbm, int acc) {
    const int64_t N = b->s.N, C = b->s.C, P = b->s.P;
    const float *dy = tg_f(dzm);
    if (b->act) {
        float *t = tg_workspace(ctx, sizeof(float) * (size_t)dzm.n);
        if (!t) return; /* the failure is recorded for the backward pass */
        const tg_unary u = {b->slope == 0.0f ? TG_UN_RELU : TG_UN_LEAKY_RELU, b->slope};
        tg_cuda_unary_bwd(ctx, u, zm, zm, dzm, tg_mem_f32(t, dzm.n), 0);
        dy = t;
    }
    bn_bwd_kernel<<<(unsigned)C, TG_RED_THREADS, 0, tg_stream(ctx)>>>(
        tg_f(b->x), dy, N, C, P, tg_f(b->gamma), tg_f(b->mean), tg_f(b->invstd), b->training, tg_f(dxm), tg_f(dgm),
        tg_f(dbm), acc);
    TG_LAUNCHED(ctx, "batch_norm backward");
}

} /* extern "C" */

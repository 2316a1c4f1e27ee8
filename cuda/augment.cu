/*
 * augment.cu — the kernels behind lib/augment.c (DiffAugment), the per-element math from
 * tg_math.h as on the CPU (lib/cpu/augment.c): one block per sample for its mean (fixed-order
 * reduction), then one thread per pixel for all its channels.
 */
#include "cuda_common.cuh"

/* mean[n] = the sample's mean of x (fwd), or of dy over the kept output pixels (bwd) */
static __global__ void sample_mean_kernel(const float *x, int64_t C, int H, int W, const float *p,
                                          int kept_only, float *mean) {
    __shared__ double sh[32];
    const int64_t n = blockIdx.x, P = (int64_t)H * W, S = C * P;
    const float *xs = x + n * S, *q = p + n * TG_AUG_NPARAM;
    double s = 0.0; /* in double, as the CPU's */
    for (int64_t i = threadIdx.x; i < S; i += blockDim.x) {
        const int64_t o = i % P;
        if (!kept_only || tg_aug_kept((int)(o / W), (int)(o % W), H, W, q)) s += (double)xs[i];
    }
    s = tg_block_sum_d(s, sh);
    if (threadIdx.x == 0) mean[n] = (float)(s / (double)S);
}

static __global__ void augment_fwd_kernel(const float *x, int64_t N, int64_t C, int H, int W,
                                          const float *p, const float *mean, float *y) {
    const int64_t P = (int64_t)H * W;
    TG_GRID_STRIDE(i, N * P) {
        const int64_t n = i / P, o = i % P;
        const int h = (int)(o / W), w = (int)(o % W);
        const float *q = p + n * TG_AUG_NPARAM;
        tg_aug_pixel_fwd(x + n * C * P, C, P, o, (int64_t)(h - (int)q[3]) * W + (w - (int)q[4]),
                         tg_aug_kept(h, w, H, W, q), mean[n], q, y + n * C * P);
    }
}

static __global__ void augment_bwd_kernel(const float *dy, int64_t N, int64_t C, int H, int W,
                                          const float *p, const float *mean, float *dx) {
    const int64_t P = (int64_t)H * W;
    TG_GRID_STRIDE(i, N * P) {
        const int64_t n = i / P, src = i % P;
        const int sh = (int)(src / W), sw = (int)(src % W);
        const float *q = p + n * TG_AUG_NPARAM;
        const int h = sh + (int)q[3], w = sw + (int)q[4];
        const int kept = tg_aug_kept(h, w, H, W, q);
        tg_aug_pixel_bwd(dy + n * C * P, C, P, src, kept ? (int64_t)h * W + w : 0, kept, mean[n], q, dx + n * C * P);
    }
}

extern "C" {

void tg_cuda_augment_fwd(tg_ctx *ctx, const tg_aug *a, tg_mem xm, tg_mem ym) {
    const int64_t N = a->N, C = a->C, H = a->H, W = a->W;
    const float *x = tg_f(xm), *p = tg_f(a->params);
    float *y = tg_f(ym), *mean = tg_f(a->mean);
    sample_mean_kernel<<<(unsigned)N, TG_THREADS, 0, tg_stream(ctx)>>>(x, C, (int)H, (int)W, p, 0, mean);
    augment_fwd_kernel<<<tg_blocks(N * H * W), TG_THREADS, 0, tg_stream(ctx)>>>(x, N, C, (int)H, (int)W, p,
                                                                                 mean, y);
    TG_LAUNCHED(ctx, "diff_augment forward");
}

void tg_cuda_augment_bwd(tg_ctx *ctx, const tg_aug *a, tg_mem dym, tg_mem dxm) {
    const int64_t N = a->N, C = a->C, H = a->H, W = a->W;
    const float *dy = tg_f(dym), *p = tg_f(a->params);
    float *dx = tg_f(dxm), *mean = tg_f(a->mean);
    sample_mean_kernel<<<(unsigned)N, TG_THREADS, 0, tg_stream(ctx)>>>(dy, C, (int)H, (int)W, p, 1, mean);
    augment_bwd_kernel<<<tg_blocks(N * H * W), TG_THREADS, 0, tg_stream(ctx)>>>(dy, N, C, (int)H, (int)W, p,
                                                                                 mean, dx);
    TG_LAUNCHED(ctx, "diff_augment backward");
}

} /* extern "C" */

/*
 * backend_cpu.c — the CPU backend's table (struct tg_backend_ops): memory, copies, GEMM (CBLAS
 * sgemm through lib/cpu/blas.c, or a plain fallback) and errors here; the kernels in one file
 * per op family beside it, as in cuda/ (activation.c, batchnorm.c, conv.c, elementwise.c,
 * loss.c, optim.c, pool.c, channel.c, augment.c, tensor.c). Per-element math comes from
 * tg_math.h, shared with the CUDA kernels; reductions accumulate in double, so the thread count
 * changes results by rounding at most.
 */
#include "cpu.h"

#include "../tg_omp.h"
#include <stdlib.h>
#include <string.h>


static tg_status cpu_init(tg_ctx *ctx) {
    (void)ctx;
    return TG_OK;
}
static void cpu_shutdown(tg_ctx *ctx) { (void)ctx; }

/* A request larger than the machine's physical memory is refused (NULL: the caller reports
 * TG_ERR_NOMEM) rather than overcommitted and then killed by the OOM killer when touched. */
static void *cpu_alloc(tg_ctx *ctx, size_t bytes) {
    (void)ctx;
    if (bytes > tg_host_memory() || bytes > SIZE_MAX - 64) return NULL;
    bytes = (bytes + 63) & ~(size_t)63;
    return aligned_alloc(64, bytes ? bytes : 64);
}
static void cpu_release(tg_ctx *ctx, void *p) {
    (void)ctx;
    free(p);
}
static tg_status cpu_sync(tg_ctx *ctx) {
    (void)ctx;
    return TG_OK;
}
static tg_status cpu_memcpy(tg_ctx *ctx, void *dst, const void *src, size_t bytes) {
    (void)ctx;
    memcpy(dst, src, bytes);
    return TG_OK;
}
static void cpu_copy(tg_ctx *ctx, float *dst, const float *src, int64_t n) {
    (void)ctx;
    memcpy(dst, src, (size_t)n * sizeof(float));
}
/* Fallback when no CBLAS library can be loaded: correct, cache-blocked, not fast. */
static void naive_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                       float *C, int64_t ldc) {
#pragma omp parallel for if (M * N * K > PAR_MIN)
    for (int64_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        for (int64_t j = 0; j < N; j++) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
        for (int64_t k = 0; k < K; k++) {
            float a = alpha * (ta ? A[k * lda + i] : A[i * lda + k]);
            if (a == 0.0f) continue;
            if (!tb) {
                const float *b = B + k * ldb;
                for (int64_t j = 0; j < N; j++) c[j] += a * b[j];
            } else {
                for (int64_t j = 0; j < N; j++) c[j] += a * B[j * ldb + k];
            }
        }
    }
}

static void cpu_gemm(tg_ctx *ctx, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                     const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                     int64_t ldc) {
    (void)ctx;
    tg_sgemm_fn f = tg_blas_sgemm();
    /* CBLAS takes int sizes: anything larger goes to the plain loops (64-bit indices) */
    const int64_t big = INT32_MAX;
    if (f && M <= big && N <= big && K <= big && lda <= big && ldb <= big && ldc <= big)
        f(101 /* CblasRowMajor */, ta ? 112 : 111, tb ? 112 : 111, (int)M, (int)N, (int)K, alpha,
          A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
    else
        naive_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static tg_status cpu_check(tg_ctx *ctx, const char *what) {
    (void)ctx;
    (void)what;
    return TG_OK;
}

const struct tg_backend_ops tg_cpu_backend = {
    .name = "cpu",
    .init = cpu_init,
    .shutdown = cpu_shutdown,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .sync = cpu_sync,
    .to_device = cpu_memcpy,
    .to_host = cpu_memcpy,
    .copy = cpu_copy,
    .fill = tg_cpu_fill,
    .gemm = cpu_gemm,
    .im2col = tg_cpu_im2col,
    .col2im = tg_cpu_col2im,
    .nc_to_cn = tg_cpu_nc_to_cn,
    .cn_to_nc = tg_cpu_cn_to_nc,
    .bias_add = tg_cpu_bias_add,
    .channel_sum = tg_cpu_channel_sum,
    .unary_fwd = tg_cpu_unary_fwd,
    .unary_bwd = tg_cpu_unary_bwd,
    .axpby = tg_cpu_axpby,
    .mul = tg_cpu_mul,
    .sum = tg_cpu_sum,
    .fill_scalar = tg_cpu_fill_scalar,
    .bn_fwd_train = tg_cpu_bn_fwd_train,
    .bn_fwd_apply = tg_cpu_bn_fwd_apply,
    .bn_invstd = tg_cpu_bn_invstd,
    .bn_bwd = tg_cpu_bn_bwd,
    .conv_fwd = tg_cpu_conv_fwd,
    .conv_bwd_data = tg_cpu_conv_bwd_data,
    .conv_wgrad = tg_cpu_conv_wgrad,
    .bn_act_fwd = tg_cpu_bn_act_fwd,
    .bn_act_bwd = tg_cpu_bn_act_bwd,
    .pool_fwd = tg_cpu_pool_fwd,
    .pool_bwd = tg_cpu_pool_bwd,
    .softmax_fwd = tg_cpu_softmax_fwd,
    .softmax_bwd = tg_cpu_softmax_bwd,
    .xent_fwd = tg_cpu_xent_fwd,
    .xent_bwd = tg_cpu_xent_bwd,
    .dropout_mask = tg_cpu_dropout_mask,
    .chan_block = tg_cpu_chan_block,
    .chan_bcast = tg_cpu_chan_bcast,
    .chan_reduce = tg_cpu_chan_reduce,
    .up2_fwd = tg_cpu_up2_fwd,
    .up2_bwd = tg_cpu_up2_bwd,
    .embed_fwd = tg_cpu_embed_fwd,
    .embed_bwd = tg_cpu_embed_bwd,
    .augment_fwd = tg_cpu_augment_fwd,
    .augment_bwd = tg_cpu_augment_bwd,
    .bce_fwd = tg_cpu_bce_fwd,
    .bce_bwd = tg_cpu_bce_bwd,
    .adam = tg_cpu_adam,
    .sgd = tg_cpu_sgd,
    .rng_uniform = tg_cpu_rng_uniform,
    .rng_normal = tg_cpu_rng_normal,
    .check = cpu_check,
};

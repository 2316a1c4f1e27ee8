/*
 * cuda_common.cuh — what the CUDA backend's files share: the per-context state (stream, cuBLAS
 * handle, first recorded error), launch helpers, and the launchers each cuda/<op>.cu defines for
 * the backend table in backend_cuda.cu. Kernels call the TG_HD math of lib/tg_math.h.
 */
#ifndef TG_CUDA_COMMON_CUH
#define TG_CUDA_COMMON_CUH

#include "internal.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

struct tg_cublas_api;

typedef struct {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    const tg_cublas_api *cublas; /* its entry points (cuda/libs.cu) */
    int blas_tf32;          /* math mode last set on the handle */
    tg_status err;          /* first failure since the last check */
    char msg[320];
    void *items;            /* device copy of the optimizer's item table */
    size_t items_bytes;
} tg_cuda_state;

/* cuBLAS's entry points, opened at the first CUDA context (cuda/libs.cu) rather than linked, so
 * a CPU-only program never maps libcublas/libcublasLt. X(field, symbol): the table's field and
 * the library's symbol (the _v2 names the header's macros stand for). */
#define TG_CUBLAS_ENTRIES(X)                                                                    \
    X(create, cublasCreate_v2)                                                                  \
    X(destroy, cublasDestroy_v2)                                                                \
    X(set_stream, cublasSetStream_v2)                                                           \
    X(set_math_mode, cublasSetMathMode)                                                         \
    X(sgemm, cublasSgemm_v2)                                                                    \
    X(status_name, cublasGetStatusName)                                                         \
    X(status_string, cublasGetStatusString)
#define TG_API_FIELD(field, sym) decltype(&sym) field;
struct tg_cublas_api {
    TG_CUBLAS_ENTRIES(TG_API_FIELD)
};
/* the table, loading the library on the first call; NULL when it cannot be loaded or lacks an
 * entry point, after tg_fail(fn, ...) unless fn is NULL */
TG_INTERNAL const tg_cublas_api *tg_cublas_api_get(const char *fn);

#ifdef TG_WITH_NCCL
#include <nccl.h>
#define TG_NCCL_ENTRIES(X)                                                                      \
    X(get_version, ncclGetVersion)                                                              \
    X(get_unique_id, ncclGetUniqueId)                                                           \
    X(comm_init_rank, ncclCommInitRank)                                                         \
    X(comm_destroy, ncclCommDestroy)                                                            \
    X(comm_abort, ncclCommAbort)                                                                \
    X(comm_get_async_error, ncclCommGetAsyncError)                                              \
    X(all_reduce, ncclAllReduce)                                                                \
    X(broadcast, ncclBroadcast)                                                                 \
    X(error_string, ncclGetErrorString)
struct tg_nccl_api {
    TG_NCCL_ENTRIES(TG_API_FIELD)
};
/* as tg_cublas_api_get */
TG_INTERNAL const tg_nccl_api *tg_nccl_api_get(const char *fn);
#endif

/* the GPU new contexts use (cuda/dist.cu; lib/dist.c sets it from the local rank) */
extern "C" TG_INTERNAL int tg_cuda_default_device;

/* device allocation failure injection (test hook, see cuda_alloc) */
extern "C" TG_INTERNAL long tg_cuda_fail_alloc_at, tg_cuda_alloc_count;

static inline tg_cuda_state *tg_cuda(tg_ctx *ctx) { return (tg_cuda_state *)ctx->be_state; }
static inline cudaStream_t tg_stream(tg_ctx *ctx) { return tg_cuda(ctx)->stream; }

/* Records the first CUDA failure; reported by the next check (backward, step, read, sync). */
extern "C" TG_INTERNAL void tg_cuda_note(tg_ctx *ctx, cudaError_t e, const char *what);
/* After a launch: records a launch failure (bad configuration, no kernel image for this GPU). */
#define TG_LAUNCHED(ctx, what) tg_cuda_note((ctx), cudaGetLastError(), (what))

#define TG_THREADS 256
#define TG_RED_THREADS 1024 /* one block per channel: as many threads as a block can have */
/* blocks for a grid-stride loop over n elements */
static inline unsigned tg_blocks(int64_t n) {
    int64_t b = (n + TG_THREADS - 1) / TG_THREADS;
    if (b < 1) b = 1;
    return (unsigned)(b > 65535 * 8 ? 65535 * 8 : b);
}
#define TG_GRID_STRIDE(i, n)                                                                    \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                   \
         i += (int64_t)blockDim.x * gridDim.x)

/* Block-wide sum of v (blockDim.x a multiple of 32, at most 1024), fixed order: deterministic.
 * Result in all threads. */
static __device__ __forceinline__ float tg_block_sum(float v, float *sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads(); /* sh may still be read from a previous call */
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    float t = 0.0f;
    if (warp == 0) {
        t = lane < (int)(blockDim.x >> 5) ? sh[lane] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) t += __shfl_down_sync(0xffffffffu, t, o);
        if (lane == 0) sh[0] = t;
    }
    __syncthreads();
    return sh[0];
}

#ifdef __cplusplus
extern "C" {
#endif
/* conv.cu */
TG_INTERNAL void tg_cuda_im2col(tg_ctx *ctx, const float *x, int N, int C, int H, int W, int kh,
                                int kw, int stride, int pad, int Ho, int Wo, float *col);
TG_INTERNAL void tg_cuda_col2im(tg_ctx *ctx, const float *col, int N, int C, int H, int W, int kh,
                                int kw, int stride, int pad, int Ho, int Wo, float *x, int acc);
TG_INTERNAL void tg_cuda_nc_to_cn(tg_ctx *ctx, const float *src, int64_t N, int64_t C, int64_t P,
                                  float *dst);
TG_INTERNAL void tg_cuda_cn_to_nc(tg_ctx *ctx, const float *src, int64_t N, int64_t C, int64_t P,
                                  const float *bias, float *dst, int acc);
TG_INTERNAL void tg_cuda_bias_add(tg_ctx *ctx, float *y, const float *b, int64_t N, int64_t C,
                                  int64_t P);
/* batchnorm.cu */
TG_INTERNAL void tg_cuda_channel_sum(tg_ctx *ctx, const float *x, int64_t N, int64_t C, int64_t P,
                                     float *out, int acc);
TG_INTERNAL void tg_cuda_bn_fwd_train(tg_ctx *ctx, const float *x, int64_t N, int64_t C, int64_t P,
                                      const float *gamma, const float *beta, float eps,
                                      float momentum, float *running_mean, float *running_var,
                                      float *mean, float *invstd, float *y);
TG_INTERNAL void tg_cuda_bn_fwd_apply(tg_ctx *ctx, const float *x, int64_t N, int64_t C, int64_t P,
                                      const float *mean, const float *invstd, const float *gamma,
                                      const float *beta, float *y);
TG_INTERNAL void tg_cuda_bn_invstd(tg_ctx *ctx, const float *var, int64_t C, float eps,
                                   float *invstd);
TG_INTERNAL void tg_cuda_bn_bwd(tg_ctx *ctx, const float *x, const float *dy, int64_t N, int64_t C,
                                int64_t P, const float *gamma, const float *mean,
                                const float *invstd, int training, float *dx, float *dgamma,
                                float *dbeta, int acc);
/* activation.cu */
TG_INTERNAL void tg_cuda_unary_fwd(tg_ctx *ctx, int op, float a, const float *x, float *y,
                                   int64_t n);
TG_INTERNAL void tg_cuda_unary_bwd(tg_ctx *ctx, int op, float a, const float *x, const float *y,
                                   const float *dy, float *dx, int64_t n, int acc);
/* elementwise.cu */
TG_INTERNAL void tg_cuda_fill(tg_ctx *ctx, float *x, int64_t n, float v);
TG_INTERNAL void tg_cuda_axpby(tg_ctx *ctx, int64_t n, float a, const float *x, float b, float *y);
TG_INTERNAL void tg_cuda_mul(tg_ctx *ctx, int64_t n, const float *a, const float *b, float *out,
                             int acc);
TG_INTERNAL void tg_cuda_sum(tg_ctx *ctx, const float *x, int64_t n, float scale, float *out);
TG_INTERNAL void tg_cuda_fill_scalar(tg_ctx *ctx, float *x, int64_t n, const float *s, float scale,
                                     int acc);
/* pool.cu */
TG_INTERNAL void tg_cuda_pool_fwd(tg_ctx *ctx, int is_max, const float *x, int64_t planes, int H,
                                  int W, int kh, int kw, int sh, int sw, int ph, int pw, int Ho,
                                  int Wo, float *y, int32_t *idx);
TG_INTERNAL void tg_cuda_pool_bwd(tg_ctx *ctx, int is_max, const float *dy, const int32_t *idx,
                                  int64_t planes, int H, int W, int kh, int kw, int sh, int sw,
                                  int ph, int pw, int Ho, int Wo, float *dx);
TG_INTERNAL void tg_cuda_softmax_fwd(tg_ctx *ctx, int is_log, const float *x, int64_t N, int64_t C,
                                     int64_t P, float *y);
TG_INTERNAL void tg_cuda_softmax_bwd(tg_ctx *ctx, int is_log, const float *y, const float *dy,
                                     int64_t N, int64_t C, int64_t P, float *dx);
TG_INTERNAL void tg_cuda_xent_fwd(tg_ctx *ctx, const float *x, const int32_t *labels, int64_t N,
                                  int64_t C, int64_t P, float e, float *rows);
TG_INTERNAL void tg_cuda_xent_bwd(tg_ctx *ctx, const float *x, const int32_t *labels, int64_t N,
                                  int64_t C, int64_t P, float e, const float *dl, float scale,
                                  float *dx);
TG_INTERNAL void tg_cuda_dropout_mask(tg_ctx *ctx, float *mask, int64_t n, uint64_t seed,
                                      uint32_t stream, uint64_t offset, float p);
/* channel.cu */
TG_INTERNAL void tg_cuda_chan_block(tg_ctx *ctx, float *big, int64_t Ca, int64_t off, float *small, int64_t Cb, int64_t N, int64_t P, int to_big, int acc);
TG_INTERNAL void tg_cuda_chan_bcast(tg_ctx *ctx, int op, const float *x, const float *b, int64_t N, int64_t C, int64_t P, int per_sample, float *y, int acc);
TG_INTERNAL void tg_cuda_chan_reduce(tg_ctx *ctx, const float *dy, const float *x, int64_t N, int64_t C, int64_t P, int per_sample, float *db, int acc);
TG_INTERNAL void tg_cuda_up2_fwd(tg_ctx *ctx, int bilinear, const float *x, int64_t planes, int H, int W, float *y);
TG_INTERNAL void tg_cuda_up2_bwd(tg_ctx *ctx, int bilinear, const float *dy, int64_t planes, int H, int W, float *dx);
TG_INTERNAL void tg_cuda_embed_fwd(tg_ctx *ctx, const float *table, int64_t D, const int32_t *idx, int64_t n, float *y);
TG_INTERNAL void tg_cuda_embed_bwd(tg_ctx *ctx, const float *dy, const int32_t *idx, int64_t n, int64_t D, float *dtable);
/* augment.cu */
TG_INTERNAL void tg_cuda_augment_fwd(tg_ctx *ctx, const float *x, int64_t N, int64_t C, int64_t H,
                                     int64_t W, const float *p, float *mean, float *y);
TG_INTERNAL void tg_cuda_augment_bwd(tg_ctx *ctx, const float *dy, int64_t N, int64_t C, int64_t H,
                                     int64_t W, const float *p, float *mean, float *dx);
/* loss.cu */
TG_INTERNAL void tg_cuda_bce_fwd(tg_ctx *ctx, const float *x, const float *t, int64_t n, float *out);
TG_INTERNAL void tg_cuda_bce_bwd(tg_ctx *ctx, const float *x, const float *t, const float *dl,
                                 int64_t n, float *dx, float *dt);
/* optim.cu */
TG_INTERNAL tg_status tg_cuda_adam(tg_ctx *ctx, const tg_adam_item *items, int count,
                                   const tg_adam_hyper *h);
TG_INTERNAL tg_status tg_cuda_sgd(tg_ctx *ctx, const tg_sgd_item *items, int count, float lr,
                                  float momentum);
/* tensor.cu */
TG_INTERNAL void tg_cuda_rng_uniform(tg_ctx *ctx, float *x, int64_t n, uint64_t seed,
                                     uint32_t stream, uint64_t offset, float lo, float hi);
TG_INTERNAL void tg_cuda_rng_normal(tg_ctx *ctx, float *x, int64_t n, uint64_t seed,
                                    uint32_t stream, uint64_t offset, float mean, float std);
#ifdef __cplusplus
}
#endif
#endif

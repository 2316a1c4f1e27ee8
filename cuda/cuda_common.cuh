/*
 * cuda_common.cuh — what the CUDA backend's files share: the per-context state (stream, cuBLAS
 * handle, first recorded error), launch helpers, and the launchers each cuda/<op>.cu defines for
 * the backend table in backend_cuda.cu. Kernels call the TG_HD math of lib/tg_math.h.
 */
#ifndef TG_CUDA_COMMON_CUH
#define TG_CUDA_COMMON_CUH

#include "backend.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

struct tg_cublas_api;

typedef struct {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    const tg_cublas_api *cublas; /* its entry points (cuda/libs.cu) */
    int blas_mode;          /* cublasMath_t last set on the handle */
    tg_status err;          /* first failure since the last check */
    char msg[320];
    void *items;            /* device copy of the optimizer's item table */
    size_t items_bytes;
    void *bf16;             /* a bf16 GEMM's operands, rounded (tg_cuda_gemm); grows */
    size_t bf16_bytes;
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
    X(sgemm_ex, cublasSgemmEx)                                                                  \
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

static inline tg_cuda_state *tg_cuda(tg_ctx *ctx) { return (tg_cuda_state *)tg_be_state(ctx); }
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
 * Result in all threads. In double: BatchNorm's statistics and every per-channel, per-sample or
 * whole-tensor sum accumulate in double, as the CPU backend's do (sh: 32 doubles of shared
 * memory). */
static __device__ __forceinline__ double tg_block_sum_d(double v, double *sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads(); /* sh may still be read from a previous call */
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    double t = 0.0;
    if (warp == 0) {
        t = lane < (int)(blockDim.x >> 5) ? sh[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1) t += __shfl_down_sync(0xffffffffu, t, o);
        if (lane == 0) sh[0] = t;
    }
    __syncthreads();
    return sh[0];
}


/* The table's slots: tg_cuda_<slot> for every slot of lib/backend.h's list, defined in the
 * cuda/<family>.cu files (memory, GEMM and the context's life in backend_cuda.cu). */
#define TG_CUDA_DECL(ret, name, params) extern "C" TG_INTERNAL ret tg_cuda_##name params;
TG_BACKEND_SLOTS(TG_CUDA_DECL)
#undef TG_CUDA_DECL
/* the number of CUDA devices (lib/ctx.c's tg_cuda_device_count) */
extern "C" TG_INTERNAL int tg_cuda_devices(void);
#endif

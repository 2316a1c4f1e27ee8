/*
 * backend_cuda.cu — the CUDA backend's table (struct tg_backend_ops): context setup (device,
 * stream, cuBLAS handle), device memory, host transfers, error recording, and every GEMM through
 * cuBLAS. Kernels live in the cuda/<op>.cu file named after the lib/<op>.c they serve.
 *
 * Errors: kernel launches are asynchronous, so failures are recorded (first one wins) and turned
 * into a tg_status with the CUDA/cuBLAS message at the next check: tg_backward, tg_optim_step,
 * tg_tensor_read, tg_ctx_sync.
 */
#include "cuda_common.cuh"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {

void tg_cuda_note(tg_ctx *ctx, cudaError_t e, const char *what) {
    if (e == cudaSuccess) return;
    tg_cuda_state *s = tg_cuda(ctx);
    if (s->err == TG_OK) {
        s->err = e == cudaErrorMemoryAllocation ? TG_ERR_NOMEM : TG_ERR_DEVICE;
        snprintf(s->msg, sizeof s->msg, "%s: CUDA error %s (%s)", what, cudaGetErrorName(e),
                 cudaGetErrorString(e));
    }
}

static void note_blas(tg_ctx *ctx, cublasStatus_t e, const char *what) {
    if (e == CUBLAS_STATUS_SUCCESS) return;
    tg_cuda_state *s = tg_cuda(ctx);
    if (s->err == TG_OK) {
        s->err = e == CUBLAS_STATUS_ALLOC_FAILED ? TG_ERR_NOMEM : TG_ERR_DEVICE;
        snprintf(s->msg, sizeof s->msg, "%s: cuBLAS error %s (%s)", what, s->cublas->status_name(e),
                 s->cublas->status_string(e));
    }
}

tg_status tg_cuda_check(tg_ctx *ctx, const char *what) {
    tg_cuda_state *s = tg_cuda(ctx);
    tg_cuda_note(ctx, cudaGetLastError(), what);
    if (s->err == TG_OK) return TG_OK;
    tg_status e = s->err;
    tg_fail(e, what, "%s", s->msg);
    s->err = TG_OK;
    s->msg[0] = 0;
    return e;
}

int tg_cuda_devices(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky "no device" error */
        return 0;
    }
    return n;
}

tg_status tg_cuda_init(tg_ctx *ctx) {
    static const char *fn = "tg_ctx_new";
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        cudaGetLastError();
        return tg_fail(TG_ERR_DEVICE, fn, "no CUDA device available (%s)",
                       e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    }
    const tg_cublas_api *cb = tg_cublas_api_get(fn);
    if (!cb) return TG_ERR_DEVICE;
    tg_cuda_state *s = (tg_cuda_state *)calloc(1, sizeof *s);
    if (!s) return tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
    s->cublas = cb;
    s->device = tg_cuda_default_device; /* 0 unless tg_dist_init chose one */
    if ((e = cudaSetDevice(s->device)) != cudaSuccess ||
        (e = cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        free(s);
        return tg_fail(TG_ERR_DEVICE, fn, "CUDA setup failed: %s", cudaGetErrorString(e));
    }
    cublasStatus_t b = cb->create(&s->blas);
    if (b == CUBLAS_STATUS_SUCCESS) b = cb->set_stream(s->blas, s->stream);
    if (b == CUBLAS_STATUS_SUCCESS) b = cb->set_math_mode(s->blas, CUBLAS_PEDANTIC_MATH);
    s->blas_mode = (int)CUBLAS_PEDANTIC_MATH;
    if (b != CUBLAS_STATUS_SUCCESS) {
        cudaStreamDestroy(s->stream);
        free(s);
        return tg_fail(TG_ERR_DEVICE, fn, "cuBLAS setup failed: %s", cb->status_string(b));
    }
    tg_be_set_state(ctx, s);
    return TG_OK;
}

void tg_cuda_describe(tg_ctx *ctx, char *buf, size_t n) {
    const int dev = tg_cuda(ctx)->device;
    cudaDeviceProp prop;
    static const char *const how[] = {"precision fp32: cuBLAS SGEMM, pedantic",
                                      "precision bf16: cuBLAS SgemmEx on bf16 operands, fp32 accumulation",
                                      "precision tf32: cuBLAS SGEMM with TF32 tensor cores"};
    const tg_precision p = tg_be_precision(ctx);
    const char *h = (unsigned)p <= TG_PRECISION_TF32 ? how[p] : "";
    if (cudaGetDeviceProperties(&prop, dev) == cudaSuccess)
        snprintf(buf, n, "CUDA device %d: %s (sm_%d%d, %.0f GiB, %d SMs); %s", dev, prop.name, prop.major, prop.minor,
                 (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), prop.multiProcessorCount, h);
    else
        snprintf(buf, n, "CUDA device %d; %s", dev, h);
}

void tg_cuda_shutdown(tg_ctx *ctx) {
    tg_cuda_state *s = tg_cuda(ctx);
    if (!s) return;
    cudaStreamSynchronize(s->stream);
    if (s->items) cudaFree(s->items); /* (tg_cuda_alloc'd; the stream is synchronised above) */
    if (s->bf16) cudaFree(s->bf16);
    s->cublas->destroy(s->blas);
    cudaStreamDestroy(s->stream);
    free(s);
    tg_be_set_state(ctx, NULL);
}

/* Test hook (tests/test_cuda.c): when tg_cuda_fail_alloc_at is k > 0, the k-th device
 * allocation from then on fails as an out-of-memory cudaMalloc would. */
long tg_cuda_fail_alloc_at, tg_cuda_alloc_count;

void *tg_cuda_alloc(tg_ctx *ctx, size_t bytes) {
    if (tg_cuda_fail_alloc_at && ++tg_cuda_alloc_count == tg_cuda_fail_alloc_at) return NULL;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 256);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* allocation failure is reported by the caller, not sticky */
        return NULL;
    }
    return p;
}

void tg_cuda_release(tg_ctx *ctx, void *p) {
    if (!p) return;
    /* memory may still be read by queued kernels */
    cudaStreamSynchronize(tg_stream(ctx));
    tg_cuda_note(ctx, cudaFree(p), "cudaFree");
}

tg_status tg_cuda_sync(tg_ctx *ctx) {
    tg_cuda_note(ctx, cudaStreamSynchronize(tg_stream(ctx)), "tg_ctx_sync");
    return tg_cuda_check(ctx, "tg_ctx_sync");
}

tg_status tg_cuda_to_device(tg_ctx *ctx, void *dst, const void *src, size_t bytes) {
    tg_cuda_note(ctx, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, tg_stream(ctx)),
                 "tg_tensor_write");
    /* the caller may reuse src as soon as we return */
    tg_cuda_note(ctx, cudaStreamSynchronize(tg_stream(ctx)), "tg_tensor_write");
    return tg_cuda_check(ctx, "tg_tensor_write");
}

tg_status tg_cuda_to_host(tg_ctx *ctx, void *dst, const void *src, size_t bytes) {
    tg_cuda_note(ctx, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, tg_stream(ctx)),
                 "tg_tensor_read");
    tg_cuda_note(ctx, cudaStreamSynchronize(tg_stream(ctx)), "tg_tensor_read");
    return tg_cuda_check(ctx, "tg_tensor_read");
}

void tg_cuda_copy(tg_ctx *ctx, tg_mem dst, tg_mem src) {
    tg_cuda_note(ctx,
                 cudaMemcpyAsync(dst.p, src.p, (size_t)src.n * sizeof(float), cudaMemcpyDeviceToDevice,
                                 tg_stream(ctx)),
                 "copy");
}

/* x rounded to bf16 as lib/tg_math.h rounds (the CPU's bf16 operands are the same numbers) */
__global__ void round_bf16_kernel(const float *x, uint16_t *y, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = tg_bf16_of(x[i]);
}

/* the elements a row-major rows x cols operand with leading dimension ld spans */
static int64_t span(int64_t rows, int64_t cols, int64_t ld) { return rows > 0 && cols > 0 ? (rows - 1) * ld + cols : 0; }

/* the handle's math mode, set when it changes */
static void math_mode(tg_ctx *ctx, tg_cuda_state *s, cublasMath_t m) {
    if ((int)m == s->blas_mode) return;
    note_blas(ctx, s->cublas->set_math_mode(s->blas, m), "cublasSetMathMode");
    s->blas_mode = (int)m;
}

/* Row-major C = op(A) op(B): in cuBLAS's column-major view that is C^T = op(B)^T op(A)^T, so the
 * operands swap places and keep their transpose flags. FP32: SGEMM in pedantic math; TF32: SGEMM
 * with TF32 tensor cores allowed; BF16: A and B rounded to bf16 (round_bf16_kernel) into the
 * state's scratch, then cublasSgemmEx (bf16 A and B, FP32 accumulation and C) with tensor cores
 * allowed. */
void tg_cuda_gemm(tg_ctx *ctx, const tg_gemm_args *g) {
    const int ta = g->ta, tb = g->tb;
    const int64_t M = g->M, N = g->N, K = g->K, lda = g->lda, ldb = g->ldb, ldc = g->ldc;
    const float alpha = g->alpha, beta = g->beta, *A = tg_f(g->A), *B = tg_f(g->B);
    float *C = tg_f(g->C);
    tg_cuda_state *s = tg_cuda(ctx);
    if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX) {
        tg_cuda_note(ctx, cudaErrorInvalidValue, "gemm dimensions exceed 2^31");
        return;
    }
    const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (g->prec == TG_PRECISION_BF16) {
        const int64_t na = ta ? span(K, M, lda) : span(M, K, lda), nb = tb ? span(N, K, ldb) : span(K, N, ldb);
        const size_t bytes = (size_t)(tg_round_up(na, 64) + nb + 64) * sizeof(uint16_t);
        if (bytes > s->bf16_bytes) {
            if (s->bf16) cudaFree(s->bf16);
            s->bf16 = NULL;
            s->bf16_bytes = 0;
            const cudaError_t e = cudaMalloc(&s->bf16, bytes);
            if (e != cudaSuccess) {
                s->bf16 = NULL;
                tg_cuda_note(ctx, e, "bf16 operands");
                return;
            }
            s->bf16_bytes = bytes;
        }
        uint16_t *ah = (uint16_t *)s->bf16, *bh = ah + tg_round_up(na, 64);
        if (na) round_bf16_kernel<<<tg_blocks(na), TG_THREADS, 0, tg_stream(ctx)>>>(A, ah, na);
        if (nb) round_bf16_kernel<<<tg_blocks(nb), TG_THREADS, 0, tg_stream(ctx)>>>(B, bh, nb);
        TG_LAUNCHED(ctx, "round_bf16");
        math_mode(ctx, s, CUBLAS_DEFAULT_MATH);
        note_blas(ctx,
                  s->cublas->sgemm_ex(s->blas, opb, opa, (int)N, (int)M, (int)K, &alpha, bh, CUDA_R_16BF, (int)ldb, ah,
                                      CUDA_R_16BF, (int)lda, &beta, C, CUDA_R_32F, (int)ldc),
                  "cublasSgemmEx (bf16)");
        return;
    }
    math_mode(ctx, s, g->prec == TG_PRECISION_TF32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH);
    note_blas(ctx,
              s->cublas->sgemm(s->blas, opb, opa, (int)N, (int)M, (int)K, &alpha, B, (int)ldb, A, (int)lda, &beta, C,
                               (int)ldc),
              "cublasSgemm");
}

/* every slot of lib/backend.h's list, by name */
#define TG_CUDA_ENTRY(ret, name, params) .name = tg_cuda_##name,
const struct tg_backend_ops tg_cuda_backend = {
    .name = "cuda",
    TG_BACKEND_SLOTS(TG_CUDA_ENTRY)
};

} /* extern "C" */

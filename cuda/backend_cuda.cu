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
    if (cudaGetDeviceProperties(&prop, dev) == cudaSuccess)
        snprintf(buf, n, "CUDA device %d: %s (sm_%d%d, %.0f GiB, %d SMs)", dev, prop.name, prop.major, prop.minor,
                 (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), prop.multiProcessorCount);
    else
        snprintf(buf, n, "CUDA device %d", dev);
}

void tg_cuda_shutdown(tg_ctx *ctx) {
    tg_cuda_state *s = tg_cuda(ctx);
    if (!s) return;
    cudaStreamSynchronize(s->stream);
    if (s->items) cudaFree(s->items);
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

/* Row-major C = op(A) op(B): in cuBLAS's column-major view that is C^T = op(B)^T op(A)^T, so the
 * operands swap places and keep their transpose flags. */
void tg_cuda_gemm(tg_ctx *ctx, const tg_gemm_args *g) {
    const int ta = g->ta, tb = g->tb;
    const int64_t M = g->M, N = g->N, K = g->K, lda = g->lda, ldb = g->ldb, ldc = g->ldc;
    const float alpha = g->alpha, beta = g->beta, *A = tg_f(g->A), *B = tg_f(g->B);
    float *C = tg_f(g->C);
    tg_cuda_state *s = tg_cuda(ctx);
    const int tf32 = tg_be_tf32(ctx) ? 1 : 0;
    if (tf32 != s->blas_tf32) {
        note_blas(ctx,
                  s->cublas->set_math_mode(s->blas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH),
                  "cublasSetMathMode");
        s->blas_tf32 = tf32;
    }
    if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX) {
        tg_cuda_note(ctx, cudaErrorInvalidValue, "gemm dimensions exceed 2^31");
        return;
    }
    note_blas(ctx,
              s->cublas->sgemm(s->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                          (int)N, (int)M, (int)K, &alpha, B, (int)ldb, A, (int)lda, &beta, C,
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

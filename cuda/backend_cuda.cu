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

static tg_status cuda_check(tg_ctx *ctx, const char *what) {
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

static tg_status cuda_init(tg_ctx *ctx) {
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
    ctx->be_state = s;
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, s->device) == cudaSuccess)
        snprintf(ctx->desc, sizeof ctx->desc, "CUDA device %d: %s (sm_%d%d, %.0f GiB, %d SMs)",
                 s->device, prop.name, prop.major, prop.minor,
                 (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), prop.multiProcessorCount);
    else
        snprintf(ctx->desc, sizeof ctx->desc, "CUDA device %d", s->device);
    return TG_OK;
}

static void cuda_shutdown(tg_ctx *ctx) {
    tg_cuda_state *s = tg_cuda(ctx);
    if (!s) return;
    cudaStreamSynchronize(s->stream);
    if (s->items) cudaFree(s->items);
    s->cublas->destroy(s->blas);
    cudaStreamDestroy(s->stream);
    free(s);
    ctx->be_state = NULL;
}

/* Test hook (tests/test_cuda.c): when tg_cuda_fail_alloc_at is k > 0, the k-th device
 * allocation from then on fails as an out-of-memory cudaMalloc would. */
long tg_cuda_fail_alloc_at, tg_cuda_alloc_count;

static void *cuda_alloc(tg_ctx *ctx, size_t bytes) {
    if (tg_cuda_fail_alloc_at && ++tg_cuda_alloc_count == tg_cuda_fail_alloc_at) return NULL;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 256);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* allocation failure is reported by the caller, not sticky */
        return NULL;
    }
    return p;
}

static void cuda_release(tg_ctx *ctx, void *p) {
    if (!p) return;
    /* memory may still be read by queued kernels */
    cudaStreamSynchronize(tg_stream(ctx));
    tg_cuda_note(ctx, cudaFree(p), "cudaFree");
}

static tg_status cuda_sync(tg_ctx *ctx) {
    tg_cuda_note(ctx, cudaStreamSynchronize(tg_stream(ctx)), "tg_ctx_sync");
    return cuda_check(ctx, "tg_ctx_sync");
}

static tg_status cuda_to_device(tg_ctx *ctx, void *dst, const void *src, size_t bytes) {
    tg_cuda_note(ctx, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, tg_stream(ctx)),
                 "tg_tensor_write");
    /* the caller may reuse src as soon as we return */
    tg_cuda_note(ctx, cudaStreamSynchronize(tg_stream(ctx)), "tg_tensor_write");
    return cuda_check(ctx, "tg_tensor_write");
}

static tg_status cuda_to_host(tg_ctx *ctx, void *dst, const void *src, size_t bytes) {
    tg_cuda_note(ctx, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, tg_stream(ctx)),
                 "tg_tensor_read");
    tg_cuda_note(ctx, cudaStreamSynchronize(tg_stream(ctx)), "tg_tensor_read");
    return cuda_check(ctx, "tg_tensor_read");
}

static void cuda_copy(tg_ctx *ctx, float *dst, const float *src, int64_t n) {
    tg_cuda_note(ctx,
                 cudaMemcpyAsync(dst, src, (size_t)n * sizeof(float), cudaMemcpyDeviceToDevice,
                                 tg_stream(ctx)),
                 "copy");
}

/* Row-major C = op(A) op(B): in cuBLAS's column-major view that is C^T = op(B)^T op(A)^T, so the
 * operands swap places and keep their transpose flags. */
static void cuda_gemm(tg_ctx *ctx, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                      const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                      float *C, int64_t ldc) {
    tg_cuda_state *s = tg_cuda(ctx);
    const int tf32 = ctx->tf32 ? 1 : 0;
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

/* member order follows struct tg_backend_ops */
const struct tg_backend_ops tg_cuda_backend = {
    .name = "cuda",
    .init = cuda_init,
    .shutdown = cuda_shutdown,
    .alloc = cuda_alloc,
    .release = cuda_release,
    .sync = cuda_sync,
    .to_device = cuda_to_device,
    .to_host = cuda_to_host,
    .copy = cuda_copy,
    .fill = tg_cuda_fill,
    .gemm = cuda_gemm,
    .im2col = tg_cuda_im2col,
    .col2im = tg_cuda_col2im,
    .nc_to_cn = tg_cuda_nc_to_cn,
    .cn_to_nc = tg_cuda_cn_to_nc,
    .bias_add = tg_cuda_bias_add,
    .channel_sum = tg_cuda_channel_sum,
    .unary_fwd = tg_cuda_unary_fwd,
    .unary_bwd = tg_cuda_unary_bwd,
    .axpby = tg_cuda_axpby,
    .mul = tg_cuda_mul,
    .sum = tg_cuda_sum,
    .fill_scalar = tg_cuda_fill_scalar,
    .bn_fwd_train = tg_cuda_bn_fwd_train,
    .bn_fwd_apply = tg_cuda_bn_fwd_apply,
    .bn_invstd = tg_cuda_bn_invstd,
    .bn_bwd = tg_cuda_bn_bwd,
    .pool_fwd = tg_cuda_pool_fwd,
    .pool_bwd = tg_cuda_pool_bwd,
    .softmax_fwd = tg_cuda_softmax_fwd,
    .softmax_bwd = tg_cuda_softmax_bwd,
    .xent_fwd = tg_cuda_xent_fwd,
    .xent_bwd = tg_cuda_xent_bwd,
    .dropout_mask = tg_cuda_dropout_mask,
    .chan_block = tg_cuda_chan_block,
    .chan_bcast = tg_cuda_chan_bcast,
    .chan_reduce = tg_cuda_chan_reduce,
    .up2_fwd = tg_cuda_up2_fwd,
    .up2_bwd = tg_cuda_up2_bwd,
    .embed_fwd = tg_cuda_embed_fwd,
    .embed_bwd = tg_cuda_embed_bwd,
    .augment_fwd = tg_cuda_augment_fwd,
    .augment_bwd = tg_cuda_augment_bwd,
    .bce_fwd = tg_cuda_bce_fwd,
    .bce_bwd = tg_cuda_bce_bwd,
    .adam = tg_cuda_adam,
    .sgd = tg_cuda_sgd,
    .rng_uniform = tg_cuda_rng_uniform,
    .rng_normal = tg_cuda_rng_normal,
    .check = cuda_check,
};

} /* extern "C" */

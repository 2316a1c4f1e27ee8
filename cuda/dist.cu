/*
 * dist.cu — NCCL for lib/dist.c: the communicator of a CUDA context's rank, gradient buckets
 * reduced on a stream of their own (so a reduction runs beside the backward pass's kernels),
 * and broadcasts. Built only with NCCL (TG_WITH_NCCL); lib/dist.c falls back to MPI through
 * host memory without it.
 */
#include "cuda_common.cuh"

#include <string.h>

/* The GPU a CUDA context created from now on uses (lib/dist.c sets local rank mod count). */
int tg_cuda_default_device = 0;

extern "C" TG_INTERNAL void tg_cuda_use_device(int local_rank) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n <= 0) {
        cudaGetLastError();
        return;
    }
    tg_cuda_default_device = local_rank % n;
}

#ifdef TG_WITH_NCCL
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct tg_nccl {
    ncclComm_t comm;
    cudaStream_t stream; /* the reductions' own stream */
    cudaEvent_t ready;   /* a bucket's values are in its buffer (recorded on the ctx stream) */
    cudaEvent_t done;    /* every reduction started so far has finished (on the comm stream) */
    int device;
    const tg_nccl_api *api; /* NCCL's entry points (cuda/libs.cu) */
};
typedef struct tg_nccl tg_nccl;

extern "C" TG_INTERNAL const char *tg_nccl_version(char *b, size_t n) {
    const tg_nccl_api *api = tg_nccl_api_get(NULL);
    if (!api) return snprintf(b, n, "NCCL (cannot be loaded)"), b;
    int v = 0;
    api->get_version(&v);
    snprintf(b, n, "NCCL %d.%d.%d", v / 10000, (v / 100) % 100, v % 100);
    return b;
}

extern "C" TG_INTERNAL size_t tg_nccl_id_bytes(void) { return sizeof(ncclUniqueId); }

extern "C" TG_INTERNAL tg_status tg_nccl_make_id(void *id) {
    const tg_nccl_api *api = tg_nccl_api_get("tg_dist");
    if (!api) return TG_ERR_DEVICE;
    ncclResult_t r = api->get_unique_id((ncclUniqueId *)id);
    return r == ncclSuccess ? TG_OK
                            : tg_fail(TG_ERR_DEVICE, "tg_dist", "ncclGetUniqueId: %s", api->error_string(r));
}

extern "C" TG_INTERNAL tg_nccl *tg_nccl_new(tg_ctx *ctx, const void *id, int rank, int world) {
    const tg_nccl_api *api = tg_nccl_api_get("tg_dist");
    if (!api) return NULL;
    tg_nccl *c = (tg_nccl *)calloc(1, sizeof *c);
    if (!c) return tg_fail(TG_ERR_NOMEM, "tg_dist", "out of host memory"), (tg_nccl *)NULL;
    c->api = api;
    c->device = tg_cuda(ctx)->device;
    cudaSetDevice(c->device);
    ncclUniqueId uid;
    memcpy(&uid, id, sizeof uid);
    ncclResult_t r = api->comm_init_rank(&c->comm, world, uid, rank);
    cudaError_t e = cudaSuccess;
    if (r == ncclSuccess) e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (r == ncclSuccess && e == cudaSuccess) e = cudaEventCreateWithFlags(&c->ready, cudaEventDisableTiming);
    if (r == ncclSuccess && e == cudaSuccess) e = cudaEventCreateWithFlags(&c->done, cudaEventDisableTiming);
    if (r != ncclSuccess || e != cudaSuccess) {
        tg_fail(TG_ERR_DEVICE, "tg_dist", "NCCL setup on GPU %d failed: %s", c->device,
                r != ncclSuccess ? api->error_string(r) : cudaGetErrorString(e));
        free(c);
        return NULL;
    }
    return c;
}

extern "C" TG_INTERNAL void tg_nccl_free(tg_nccl *c) {
    if (!c) return;
    cudaStreamSynchronize(c->stream);
    c->api->comm_destroy(c->comm);
    cudaEventDestroy(c->ready), cudaEventDestroy(c->done);
    cudaStreamDestroy(c->stream);
    free(c);
}

/* Starts the sum of buf[0..n) over the ranks once the ctx stream has written it; in place. */
extern "C" TG_INTERNAL tg_status tg_nccl_start(tg_nccl *c, tg_ctx *ctx, float *buf, size_t n) {
    cudaError_t e = cudaEventRecord(c->ready, tg_stream(ctx));
    if (e == cudaSuccess) e = cudaStreamWaitEvent(c->stream, c->ready, 0);
    if (e != cudaSuccess) return tg_fail(TG_ERR_DEVICE, "tg_dist_grads", "CUDA: %s", cudaGetErrorString(e));
    ncclResult_t r = c->api->all_reduce(buf, buf, n, ncclFloat32, ncclSum, c->comm, c->stream);
    return r == ncclSuccess ? TG_OK
                            : tg_fail(TG_ERR_DEVICE, "tg_dist_grads", "ncclAllReduce: %s", c->api->error_string(r));
}

/* Waits (host side, at most timeout_s seconds) until every reduction started has finished, then
 * orders the ctx stream after them. A peer that stops answering aborts the communicator. */
extern "C" TG_INTERNAL tg_status tg_nccl_join(tg_nccl *c, tg_ctx *ctx, double timeout_s) {
    cudaError_t e = cudaEventRecord(c->done, c->stream);
    if (e != cudaSuccess) return tg_fail(TG_ERR_DEVICE, "tg_dist_grads", "CUDA: %s", cudaGetErrorString(e));
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while ((e = cudaEventQuery(c->done)) == cudaErrorNotReady) {
        ncclResult_t async = ncclSuccess;
        c->api->comm_get_async_error(c->comm, &async);
        clock_gettime(CLOCK_MONOTONIC, &t);
        const double waited = (double)(t.tv_sec - t0.tv_sec) + 1e-9 * (double)(t.tv_nsec - t0.tv_nsec);
        if (async != ncclSuccess || waited > timeout_s) {
            c->api->comm_abort(c->comm);
            return tg_fail(TG_ERR_DEVICE, "tg_dist_grads", "NCCL: %s",
                           async != ncclSuccess ? c->api->error_string(async)
                                                : "no answer from the other ranks within TG_DIST_TIMEOUT");
        }
        struct timespec nap = {0, 20000};
        nanosleep(&nap, NULL);
    }
    if (e == cudaSuccess) e = cudaStreamWaitEvent(tg_stream(ctx), c->done, 0);
    return e == cudaSuccess ? TG_OK : tg_fail(TG_ERR_DEVICE, "tg_dist_grads", "CUDA: %s", cudaGetErrorString(e));
}

/* buf[0..n) from rank root into every rank's buf, on the ctx stream. */
extern "C" TG_INTERNAL tg_status tg_nccl_broadcast(tg_nccl *c, tg_ctx *ctx, float *buf, size_t n, int root) {
    ncclResult_t r = c->api->broadcast(buf, buf, n, ncclFloat32, root, c->comm, tg_stream(ctx));
    return r == ncclSuccess ? TG_OK
                            : tg_fail(TG_ERR_DEVICE, "tg_dist_broadcast", "ncclBroadcast: %s", c->api->error_string(r));
}
#endif

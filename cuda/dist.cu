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
    int aborted;            /* ncclCommAbort ran: the communicator is gone, every call refuses */
    char why[200];          /* ... and why */
};
typedef struct tg_nccl tg_nccl;

/* A call on an aborted communicator: refused at once (it no longer exists) */
static tg_status gone(const tg_nccl *c, const char *fn) {
    return tg_fail(TG_ERR_DEVICE, fn, "the NCCL communicator was aborted after %s; free the tg_dist and make a new one",
                   c->why);
}

/* Aborts the communicator once, remembering why; a failure of fn saying so */
static tg_status abort_comm(tg_nccl *c, const char *fn, const char *why) {
    if (!c->aborted) {
        c->api->comm_abort(c->comm);
        c->aborted = 1;
        snprintf(c->why, sizeof c->why, "%s", why);
    }
    return tg_fail(TG_ERR_DEVICE, fn, "NCCL: %s", why);
}

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

/* The communicator, its stream and events; on any failure, whatever was made is released.
 * (ncclCommInitRank blocks until every rank has joined: lib/dist.c arms its watchdog around this
 * call, as around every other wait for the other ranks.) */
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
    int have_comm = 0, have_stream = 0, have_ready = 0, have_done = 0;
    ncclResult_t r = api->comm_init_rank(&c->comm, world, uid, rank);
    cudaError_t e = cudaSuccess;
    have_comm = r == ncclSuccess;
    if (have_comm) have_stream = (e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)) == cudaSuccess;
    if (have_stream) have_ready = (e = cudaEventCreateWithFlags(&c->ready, cudaEventDisableTiming)) == cudaSuccess;
    if (have_ready) have_done = (e = cudaEventCreateWithFlags(&c->done, cudaEventDisableTiming)) == cudaSuccess;
    if (!have_done) {
        tg_fail(TG_ERR_DEVICE, "tg_dist", "NCCL setup on GPU %d failed: %s", c->device,
                r != ncclSuccess ? api->error_string(r) : cudaGetErrorString(e));
        if (have_ready) cudaEventDestroy(c->ready);
        if (have_stream) cudaStreamDestroy(c->stream);
        if (have_comm) api->comm_destroy(c->comm);
        cudaGetLastError(); /* the failure is reported here, not by the next launch check */
        free(c);
        return NULL;
    }
    return c;
}

/* (lib/dist.c arms its watchdog around this: the stream's last reduction may wait on a dead
 * peer.) An aborted communicator is not destroyed again. */
extern "C" TG_INTERNAL void tg_nccl_free(tg_nccl *c) {
    if (!c) return;
    cudaStreamSynchronize(c->stream);
    if (!c->aborted) c->api->comm_destroy(c->comm);
    cudaEventDestroy(c->ready), cudaEventDestroy(c->done);
    cudaStreamDestroy(c->stream);
    cudaGetLastError();
    free(c);
}

/* Starts the sum of buf[0..n) over the ranks once the ctx stream has written it; in place. */
extern "C" TG_INTERNAL tg_status tg_nccl_start(tg_nccl *c, tg_ctx *ctx, float *buf, size_t n) {
    if (c->aborted) return gone(c, "tg_dist_grads");
    cudaError_t e = cudaEventRecord(c->ready, tg_stream(ctx));
    if (e == cudaSuccess) e = cudaStreamWaitEvent(c->stream, c->ready, 0);
    if (e != cudaSuccess) return tg_fail(TG_ERR_DEVICE, "tg_dist_grads", "CUDA: %s", cudaGetErrorString(e));
    ncclResult_t r = c->api->all_reduce(buf, buf, n, ncclFloat32, ncclSum, c->comm, c->stream);
    return r == ncclSuccess ? TG_OK
                            : tg_fail(TG_ERR_DEVICE, "tg_dist_grads", "ncclAllReduce: %s", c->api->error_string(r));
}

/* Waits on the host (at most timeout_s seconds) for event ev, watching NCCL's asynchronous
 * error; a peer that stops answering, or an NCCL error, aborts the communicator. A "not ready"
 * answer is not a failure: it is cleared, so the next launch check does not report it. */
static tg_status wait_event(tg_nccl *c, cudaEvent_t ev, double timeout_s, const char *fn) {
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cudaError_t e;
    while ((e = cudaEventQuery(ev)) == cudaErrorNotReady) {
        cudaGetLastError();
        ncclResult_t async = ncclSuccess;
        c->api->comm_get_async_error(c->comm, &async);
        clock_gettime(CLOCK_MONOTONIC, &t);
        const double waited = (double)(t.tv_sec - t0.tv_sec) + 1e-9 * (double)(t.tv_nsec - t0.tv_nsec);
        if (async != ncclSuccess) return abort_comm(c, fn, c->api->error_string(async));
        if (waited > timeout_s) return abort_comm(c, fn, "no answer from the other ranks within TG_DIST_TIMEOUT");
        struct timespec nap = {0, 20000};
        nanosleep(&nap, NULL);
    }
    return e == cudaSuccess ? TG_OK : tg_fail(TG_ERR_DEVICE, fn, "CUDA: %s", cudaGetErrorString(e));
}

/* Waits until every reduction started has finished, then orders the ctx stream after them. */
extern "C" TG_INTERNAL tg_status tg_nccl_join(tg_nccl *c, tg_ctx *ctx, double timeout_s) {
    if (c->aborted) return gone(c, "tg_dist_grads");
    cudaError_t e = cudaEventRecord(c->done, c->stream);
    if (e != cudaSuccess) return tg_fail(TG_ERR_DEVICE, "tg_dist_grads", "CUDA: %s", cudaGetErrorString(e));
    tg_status st = wait_event(c, c->done, timeout_s, "tg_dist_grads");
    if (st) return st;
    e = cudaStreamWaitEvent(tg_stream(ctx), c->done, 0);
    return e == cudaSuccess ? TG_OK : tg_fail(TG_ERR_DEVICE, "tg_dist_grads", "CUDA: %s", cudaGetErrorString(e));
}

/* buf[0..n) from rank root into every rank's buf, on the ctx stream; waited for on the host
 * within timeout_s (a dead root aborts the communicator). */
extern "C" TG_INTERNAL tg_status tg_nccl_broadcast(tg_nccl *c, tg_ctx *ctx, float *buf, size_t n, int root,
                                                   double timeout_s) {
    if (c->aborted) return gone(c, "tg_dist_broadcast");
    ncclResult_t r = c->api->broadcast(buf, buf, n, ncclFloat32, root, c->comm, tg_stream(ctx));
    if (r != ncclSuccess)
        return tg_fail(TG_ERR_DEVICE, "tg_dist_broadcast", "ncclBroadcast: %s", c->api->error_string(r));
    cudaError_t e = cudaEventRecord(c->done, tg_stream(ctx));
    if (e != cudaSuccess) return tg_fail(TG_ERR_DEVICE, "tg_dist_broadcast", "CUDA: %s", cudaGetErrorString(e));
    return wait_event(c, c->done, timeout_s, "tg_dist_broadcast");
}
#endif

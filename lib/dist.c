/*
 * dist.c — data-parallel training (tensorgan.h, "Data-parallel training"; docs/scaling.md).
 *
 * A job is N processes started by an MPI launcher. Sums over the ranks go through MPI for CPU
 * contexts (non-blocking all-reduces, see sum_op) and through NCCL for CUDA contexts
 * (cuda/dist.cu; host memory over MPI in a build without NCCL).
 * Gradients travel in buckets filled from the last parameter to the first; armed with
 * tg_dist_grads_arm, a bucket starts as soon as the backward pass has finished every gradient in
 * it (the tape's grad hook, lib/tape.c) and the pass goes on beside it.
 * Every wait is bounded by TG_DIST_TIMEOUT seconds: past it the rank exits with a message (see
 * the watchdog), so a rank that died or hangs never leaves the others waiting for ever.
 * Without MPI (the build or the launch) the world is one rank and every call is the identity.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef TG_WITH_MPI
#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#endif

#if defined(TG_WITH_CUDA) && defined(TG_WITH_NCCL) && defined(TG_WITH_MPI) /* NCCL ids travel over MPI */
#define TG_DIST_NCCL 1
typedef struct tg_nccl tg_nccl;
TG_INTERNAL const char *tg_nccl_version(char *b, size_t n);
TG_INTERNAL size_t tg_nccl_id_bytes(void);
TG_INTERNAL tg_status tg_nccl_make_id(void *id);
TG_INTERNAL tg_nccl *tg_nccl_new(tg_ctx *ctx, const void *id, int rank, int world);
TG_INTERNAL void tg_nccl_free(tg_nccl *c);
TG_INTERNAL tg_status tg_nccl_start(tg_nccl *c, tg_ctx *ctx, float *buf, size_t n);
TG_INTERNAL tg_status tg_nccl_join(tg_nccl *c, tg_ctx *ctx, double timeout_s);
TG_INTERNAL tg_status tg_nccl_broadcast(tg_nccl *c, tg_ctx *ctx, float *buf, size_t n, int root, double timeout_s);
#endif
#ifdef TG_WITH_CUDA
TG_INTERNAL void tg_cuda_use_device(int local_rank);
#endif

struct tg_dist {
    int rank, world, local_rank;
    int mpi;          /* collectives go through MPI (launched under a launcher) */
    int own_mpi;      /* tg_dist_init initialised MPI, so tg_dist_free finalises it */
    double timeout_s; /* TG_DIST_TIMEOUT */
#ifdef TG_WITH_MPI
    MPI_Comm comm;
#endif
#ifdef TG_DIST_NCCL
    tg_nccl *nccl;
    tg_ctx *nccl_ctx; /* the CUDA context the communicator was made for */
#endif
};

static int g_dist_live; /* one tg_dist per process */

#ifdef TG_WITH_MPI
#define MPI_INFO_BYTES (MPI_MAX_LIBRARY_VERSION_STRING + 160)
#else
#define MPI_INFO_BYTES 160
#endif

const char *tg_dist_info(void) {
    static char b[MPI_INFO_BYTES];
#ifdef TG_WITH_MPI
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(v, &len);
    char *nl = strpbrk(v, ",\n");
    if (nl) *nl = 0;
#ifdef TG_DIST_NCCL
    char nv[64];
    snprintf(b, sizeof b, "MPI (%s); %s for CUDA contexts", v, tg_nccl_version(nv, sizeof nv));
#elif defined(TG_WITH_CUDA)
    snprintf(b, sizeof b, "MPI (%s); CUDA contexts through host memory (built without NCCL)", v);
#else
    snprintf(b, sizeof b, "MPI (%s)", v);
#endif
#else
    snprintf(b, sizeof b, "unavailable: built without MPI (one rank only)");
#endif
    return b;
}

/* The world size an MPI launcher announces in the environment, 0 when none launched us. */
static int launcher_world(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 0) return atoi(v);
    }
    return getenv("PMIX_RANK") ? 1 : 0;
}


#ifdef TG_WITH_MPI
/* ---- the watchdog ------------------------------------------------------------------------
 * Every wait is a blocking MPI_Wait*: Open MPI moves non-blocking collectives fast only inside
 * them (polling with MPI_Test ran 7 x 4 MB of all-reduces in 104 ms against 6.5 ms with
 * MPI_Waitall here). A collective cannot be cancelled, so a wait that outlasts TG_DIST_TIMEOUT
 * is ended by a thread that watches the deadline: it says why and exits the process, and the
 * launcher then ends the job (mpirun kills the other ranks when one exits non-zero). */
static _Atomic int64_t wd_deadline; /* monotonic ns; 0: nothing is waited for */
static const char *_Atomic wd_what;
static _Atomic int wd_stop;
static pthread_t wd_thread;
static tg_dist *wd_dist;

static void *watchdog(void *arg) {
    (void)arg;
    while (!atomic_load(&wd_stop)) {
        struct timespec nap = {0, 100000000};
        nanosleep(&nap, NULL);
        const int64_t dl = atomic_load(&wd_deadline);
        if (dl && (int64_t)tg_now_ns() > dl) {
            fprintf(stderr,
                    "libtensorgan: %s: rank %d of %d waited %.0f s (TG_DIST_TIMEOUT) for the other ranks: "
                    "one of them died or hangs; ending this rank so the launcher ends the job\n",
                    atomic_load(&wd_what), wd_dist->rank, wd_dist->world, wd_dist->timeout_s);
            fflush(stderr);
            _exit(70);
        }
    }
    return NULL;
}

/* every wait for the other ranks runs armed: past TG_DIST_TIMEOUT the watchdog ends the rank */
static void wd_arm(tg_dist *d, const char *fn) {
    atomic_store(&wd_what, fn);
    atomic_store(&wd_deadline, (int64_t)tg_now_ns() + (int64_t)(d->timeout_s * 1e9));
}
static void wd_disarm(void) { atomic_store(&wd_deadline, 0); }

#endif

tg_dist *tg_dist_init(int *argc, char ***argv) {
    static const char *fn = "tg_dist_init";
    if (g_dist_live) return tg_fail(TG_ERR_INVALID, fn, "the process already has a tg_dist"), NULL;
    const int launched = launcher_world();
#ifndef TG_WITH_MPI
    (void)argc, (void)argv;
    if (launched > 1)
        return tg_fail(TG_ERR_UNSUPPORTED, fn,
                       "launched as one of %d ranks, but this libtensorgan was built without MPI "
                       "(install libopenmpi-dev and rebuild)", launched),
               NULL;
#endif
    tg_dist *d = calloc(1, sizeof *d);
    if (!d) return tg_fail(TG_ERR_NOMEM, fn, "out of host memory"), NULL;
    d->world = 1;
    const char *to = getenv("TG_DIST_TIMEOUT");
    d->timeout_s = to && atof(to) > 0 ? atof(to) : 600.0;
#ifdef TG_WITH_MPI
    if (launched) {
        int inited = 0, finished = 0;
        MPI_Initialized(&inited);
        MPI_Finalized(&finished);
        if (finished) {
            free(d);
            return tg_fail(TG_ERR_INVALID, fn, "MPI was finalised in this process (by tg_dist_free or the "
                                               "program), and MPI cannot start twice"), NULL;
        }
        if (!inited) {
            int provided;
            if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
                free(d);
                return tg_fail(TG_ERR_DEVICE, fn, "MPI_Init_thread failed"), NULL;
            }
            d->own_mpi = 1;
        }
        MPI_Comm_dup(MPI_COMM_WORLD, &d->comm);
        MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
        MPI_Comm_rank(d->comm, &d->rank);
        MPI_Comm_size(d->comm, &d->world);
        MPI_Comm local;
        MPI_Comm_split_type(d->comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &local);
        MPI_Comm_rank(local, &d->local_rank);
        MPI_Comm_free(&local);
        d->mpi = 1;
        wd_dist = d;
        atomic_store(&wd_stop, 0);
        if (pthread_create(&wd_thread, NULL, watchdog, NULL) != 0) {
            MPI_Comm_free(&d->comm);
            free(d);
            return tg_fail(TG_ERR_NOMEM, fn, "cannot start the watchdog thread"), NULL;
        }
    }
#endif
#ifdef TG_WITH_CUDA
    if (d->mpi) tg_cuda_use_device(d->local_rank); /* alone, the default (GPU 0) stays */
#endif
    g_dist_live = 1;
    return d;
}

void tg_dist_free(tg_dist *d) {
    if (!d) return;
#ifdef TG_DIST_NCCL
    if (d->nccl) {
        wd_arm(d, "tg_dist_free"); /* its last reduction may wait on a dead peer */
        tg_nccl_free(d->nccl);
        wd_disarm();
    }
#endif
#ifdef TG_WITH_MPI
    if (d->mpi) {
        atomic_store(&wd_stop, 1);
        pthread_join(wd_thread, NULL);
        MPI_Comm_free(&d->comm);
        int fin = 0;
        MPI_Finalized(&fin);
        if (d->own_mpi && !fin) MPI_Finalize();
    }
#endif
    free(d);
    g_dist_live = 0;
}

static bool have(const tg_dist *d, const char *fn) {
    if (!d) tg_fail(TG_ERR_INVALID, fn, "dist is NULL");
    return d != NULL;
}
int tg_dist_rank(const tg_dist *d) { return have(d, "tg_dist_rank") ? d->rank : 0; }
int tg_dist_world(const tg_dist *d) { return have(d, "tg_dist_world") ? d->world : 1; }
int tg_dist_local_rank(const tg_dist *d) { return have(d, "tg_dist_local_rank") ? d->local_rank : 0; }

/* ---- MPI: bounded waits and the same-bits sum ---------------------------------------------- */
#ifdef TG_WITH_MPI

/* Waits for req[0..n), within the timeout. */
static tg_status wait_reqs(tg_dist *d, int n, MPI_Request *req, const char *fn) {
    wd_arm(d, fn);
    const int rc = MPI_Waitall(n, req, MPI_STATUSES_IGNORE);
    wd_disarm();
    return rc == MPI_SUCCESS ? TG_OK : tg_fail(TG_ERR_DEVICE, fn, "an MPI operation failed (a rank left the job?)");
}

/* A sum over the ranks, in place: one MPI_Iallreduce. Its result has the same bits on every rank
 * for two ranks (a + b = b + a exactly) and, beyond, as far as the MPI library combines
 * symmetrically, which Open MPI's algorithms do (tests/test_dist.c checks 4 ranks). A
 * reduce-scatter then all-gather of our own would promise it for any library, but Open MPI ran
 * several of those at once ten times slower than all-reduces (85 ms against 7.6 ms for
 * 7 x 4 MB here). */
typedef struct {
    MPI_Request req;
    int running;
    void *buf;
    size_t n;
} sum_op;

static tg_status sum_start(tg_dist *d, sum_op *s, MPI_Datatype type, const char *fn) {
    if (s->n > (size_t)0x7fffffff) return tg_fail(TG_ERR_INVALID, fn, "%zu elements in one sum (at most 2^31 - 1)", s->n);
    s->running = 1;
    if (MPI_Iallreduce(MPI_IN_PLACE, s->buf, (int)s->n, type, MPI_SUM, d->comm, &s->req) != MPI_SUCCESS)
        return tg_fail(TG_ERR_DEVICE, fn, "MPI_Iallreduce failed");
    return TG_OK;
}

/* Blocking sum of n elements of buf. */
static tg_status sum_blocking(tg_dist *d, void *buf, size_t n, MPI_Datatype type, const char *fn) {
    sum_op s = {MPI_REQUEST_NULL, 0, buf, n};
    tg_status st = sum_start(d, &s, type, fn);
    return st ? st : wait_reqs(d, 1, &s.req, fn);
}
#endif

static tg_status check_tensors(tg_dist *d, tg_tensor *const *t, int n, const char *fn) {
    if (!d) return tg_fail(TG_ERR_INVALID, fn, "dist is NULL");
    if (n < 0) return tg_fail(TG_ERR_INVALID, fn, "n %d is negative", n);
    if (n > 0 && !t) return tg_fail(TG_ERR_INVALID, fn, "the tensor array is NULL (n %d)", n);
    for (int i = 0; i < n; i++) {
        if (!t[i]) return tg_fail(TG_ERR_INVALID, fn, "tensor %d is NULL", i);
        if (t[i]->ctx != t[0]->ctx) return tg_fail(TG_ERR_DEVICE, fn, "tensor %d is on another context", i);
        if (t[i]->ctx->closing) return tg_fail(TG_ERR_INVALID, fn, "tensor %d's context was freed (tg_ctx_free)", i);
        if (t[i]->numel > INT32_MAX) /* MPI counts are ints */
            return tg_fail(TG_ERR_SHAPE, fn, "tensor %d has %lld elements, over the %d one message carries", i,
                           (long long)t[i]->numel, INT32_MAX);
    }
    return TG_OK;
}

#ifdef TG_DIST_NCCL
/* The NCCL communicator for ctx, made on first use (rank 0's id travels over MPI). */
static tg_status nccl_for(tg_dist *d, tg_ctx *ctx, const char *fn) {
    if (d->nccl) {
        if (d->nccl_ctx != ctx)
            return tg_fail(TG_ERR_INVALID, fn, "the job's NCCL communicator belongs to another CUDA context");
        return TG_OK;
    }
    unsigned char id[256];
    const size_t nb = tg_nccl_id_bytes();
    if (nb > sizeof id) return tg_fail(TG_ERR_DEVICE, fn, "NCCL id of %zu bytes", nb);
    if (d->rank == 0) {
        tg_status st = tg_nccl_make_id(id);
        if (st) return st;
    }
    MPI_Request r;
    MPI_Ibcast(id, (int)nb, MPI_BYTE, 0, d->comm, &r);
    tg_status st = wait_reqs(d, 1, &r, fn);
    if (st) return st;
    wd_arm(d, fn); /* ncclCommInitRank waits for every rank */
    d->nccl = tg_nccl_new(ctx, id, d->rank, d->world);
    wd_disarm();
    if (!d->nccl) return TG_ERR_DEVICE;
    d->nccl_ctx = ctx;
    return TG_OK;
}
#endif

#ifdef TG_WITH_MPI
/* Host copy of t's values (any context). */
static tg_status to_host(tg_tensor *t, float *dst) { return tg_tensor_read(t, dst, t->numel); }
#endif

tg_status tg_dist_broadcast(tg_dist *d, tg_tensor *const *t, int n, int root) {
    static const char *fn = "tg_dist_broadcast";
    TG_API_SCOPE(fn);
    tg_status st = check_tensors(d, t, n, fn);
    if (st) return st;
    if (root < 0 || root >= d->world) return tg_fail(TG_ERR_INVALID, fn, "root %d outside 0..%d", root, d->world - 1);
    if (!d->mpi || n == 0) return TG_OK;
#ifdef TG_WITH_MPI
    tg_ctx *ctx = t[0]->ctx;
#ifdef TG_DIST_NCCL
    if (ctx->device == TG_CUDA) {
        if ((st = nccl_for(d, ctx, fn))) return st;
        for (int i = 0; i < n && !st; i++)
            st = tg_nccl_broadcast(d->nccl, ctx, t[i]->data, (size_t)t[i]->numel, root, d->timeout_s);
        return st ? st : ctx->be->check(ctx, fn);
    }
#endif
    for (int i = 0; i < n && !st; i++) {
        float *h = ctx->device == TG_CPU ? t[i]->data : malloc(sizeof(float) * (size_t)t[i]->numel);
        if (!h) return tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
        if (h != t[i]->data && d->rank == root) st = to_host(t[i], h);
        MPI_Request r;
        if (!st && MPI_Ibcast(h, (int)t[i]->numel, MPI_FLOAT, root, d->comm, &r) != MPI_SUCCESS)
            st = tg_fail(TG_ERR_DEVICE, fn, "MPI_Ibcast failed");
        if (!st) st = wait_reqs(d, 1, &r, fn);
        if (!st && h != t[i]->data && d->rank != root) st = tg_tensor_write(t[i], h, t[i]->numel);
        if (h != t[i]->data) free(h);
    }
    return st;
#else
    return TG_OK;
#endif
}

tg_status tg_dist_average(tg_dist *d, tg_tensor *const *t, int n) {
    static const char *fn = "tg_dist_average";
    TG_API_SCOPE(fn);
    tg_status st = check_tensors(d, t, n, fn);
    if (st || !d->mpi || n == 0) return st;
#ifdef TG_WITH_MPI
    /* through host memory: these are small (BatchNorm statistics, a few losses) */
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (size_t)t[i]->numel;
    float *h = calloc(total, sizeof(float));
    if (!h) return tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
    size_t off = 0;
    for (int i = 0; i < n && !st; i++) st = to_host(t[i], h + off), off += (size_t)t[i]->numel;
    if (!st) st = sum_blocking(d, h, total, MPI_FLOAT, fn);
    const float inv = 1.0f / (float)d->world;
    off = 0;
    for (int i = 0; i < n && !st; i++) {
        for (int64_t k = 0; k < t[i]->numel; k++) h[off + k] *= inv;
        st = tg_tensor_write(t[i], h + off, t[i]->numel);
        off += (size_t)t[i]->numel;
    }
    free(h);
    return st;
#else
    return TG_OK;
#endif
}

tg_status tg_dist_sum_host(tg_dist *d, double *v, int n) {
    static const char *fn = "tg_dist_sum_host";
    if (!d) return tg_fail(TG_ERR_INVALID, fn, "dist is NULL");
    if (n < 0) return tg_fail(TG_ERR_INVALID, fn, "n %d is negative", n);
    if (n && !v) return tg_fail(TG_ERR_INVALID, fn, "v is NULL (n %d)", n);
    if (!d->mpi || n == 0) return TG_OK;
#ifdef TG_WITH_MPI
    return sum_blocking(d, v, (size_t)n, MPI_DOUBLE, fn);
#else
    return TG_OK;
#endif
}

tg_status tg_dist_barrier(tg_dist *d) {
    if (!d) return tg_fail(TG_ERR_INVALID, "tg_dist_barrier", "dist is NULL");
    if (!d->mpi) return TG_OK;
#ifdef TG_WITH_MPI
    MPI_Request r;
    if (MPI_Ibarrier(d->comm, &r) != MPI_SUCCESS) return tg_fail(TG_ERR_DEVICE, "tg_dist_barrier", "MPI_Ibarrier failed");
    return wait_reqs(d, 1, &r, "tg_dist_barrier");
#else
    return TG_OK;
#endif
}

/* ---- gradient buckets ------------------------------------------------------------------------ */
typedef struct {
    int first, count;  /* parameters p[first .. first+count) */
    size_t n;          /* elements */
    int pending;       /* parameters whose gradient the armed pass has not finished yet */
    int started;
    float *host;       /* MPI path: n floats */
    float *dev;        /* NCCL path: n floats of device memory */
#ifdef TG_WITH_MPI
    sum_op op;
#endif
} bucket;

struct tg_dist_grads {
    tg_dist *d;
    tg_ctx *ctx;
    int n, nb;
    tg_tensor **p;  /* the parameters, last one first (the order backward finishes them) */
    int *bucket_of; /* per p[] */
    bucket *b;
    int nccl;       /* this set reduces through NCCL */
#ifdef TG_WITH_MPI
    sum_op **ops;   /* the buckets' sums in the order their buckets became ready */
    int nops, next; /* next: the first not started; one runs at a time (see mpi_pump) */
#endif
    tg_status err;  /* first failure inside the grad hook */
};

void tg_dist_grads_free(tg_dist_grads *g) {
    if (!g) return;
    if (g->ctx && g->ctx->grad_hook_user == g) g->ctx->grad_hook = NULL, g->ctx->grad_hook_user = NULL;
    for (int i = 0; g->b && i < g->nb; i++) {
        free(g->b[i].host);
        if (g->b[i].dev) g->ctx->be->release(g->ctx, g->b[i].dev);
    }
#ifdef TG_WITH_MPI
    free(g->ops);
#endif
    for (int i = 0; g->p && i < g->n; i++) tg_tensor_release(g->p[i]);
    free(g->b), free(g->p), free(g->bucket_of);
    free(g);
}

tg_dist_grads *tg_dist_grads_new(tg_dist *d, tg_tensor *const *p, int n, size_t bucket_bytes) {
    static const char *fn = "tg_dist_grads_new";
    TG_API_SCOPE(fn);
    if (check_tensors(d, p, n, fn)) return NULL;
    if (n == 0) return tg_fail(TG_ERR_INVALID, fn, "no parameters"), NULL;
    for (int i = 0; i < n; i++)
        if (!p[i]->is_leaf) return tg_fail(TG_ERR_INVALID, fn, "tensor %d is an op result, not a parameter", i), NULL;
    if (!bucket_bytes) bucket_bytes = (size_t)4 << 20;
    tg_dist_grads *g = calloc(1, sizeof *g);
    if (!g) return tg_fail(TG_ERR_NOMEM, fn, "out of host memory"), NULL;
    g->d = d, g->ctx = p[0]->ctx, g->n = n;
    g->p = calloc((size_t)n, sizeof *g->p);
    g->bucket_of = malloc(sizeof *g->bucket_of * (size_t)n);
    g->b = calloc((size_t)n, sizeof *g->b); /* at most one bucket per parameter */
    if (!g->p || !g->bucket_of || !g->b) goto nomem;
#ifdef TG_WITH_MPI
    if (!(g->ops = calloc((size_t)n, sizeof *g->ops))) goto nomem;
#endif
    for (int i = 0; i < n; i++) {
        g->p[i] = p[n - 1 - i];
        tg_tensor_retain(g->p[i]); /* they stay while g does, whatever is freed first */
        const size_t bytes = sizeof(float) * (size_t)g->p[i]->numel;
        bucket *cur = g->nb ? &g->b[g->nb - 1] : NULL;
        if (!cur || (cur->n * sizeof(float) + bytes > bucket_bytes && cur->n))
            cur = &g->b[g->nb++], cur->first = i;
        cur->count++;
        cur->n += (size_t)g->p[i]->numel;
        g->bucket_of[i] = (int)(cur - g->b);
    }
    if (!d->mpi) return g; /* a world of one: nothing to reduce */
#ifdef TG_DIST_NCCL
    if (g->ctx->device == TG_CUDA) {
        if (nccl_for(d, g->ctx, fn)) {
            tg_dist_grads_free(g);
            return NULL;
        }
        g->nccl = 1;
    }
#endif
    for (int i = 0; i < g->nb; i++) {
        bucket *b = &g->b[i];
        if (g->nccl) {
            b->dev = g->ctx->be->alloc(g->ctx, sizeof(float) * b->n);
            if (!b->dev) goto nomem;
            continue;
        }
        b->host = calloc(b->n, sizeof(float));
        if (!b->host) goto nomem;
    }
    return g;
nomem:
    tg_fail(TG_ERR_NOMEM, fn, "out of memory for %d parameters' buckets", n);
    tg_dist_grads_free(g);
    return NULL;
}

#ifdef TG_WITH_MPI
/* MPI: the buckets' sums one at a time, in the order they became ready (the same on every rank).
 * Open MPI's non-blocking collectives slow each other down badly when several run at once: each
 * new MPI_Iallreduce of 8 MB took 25 ms to start while others were in flight, a whole step's 25 MB
 * 68 ms instead of 6. Starts the next when the one in flight is done; wait: until all are. */
static tg_status mpi_pump(tg_dist_grads *g, int wait, const char *fn) {
    for (;;) {
        sum_op *cur = g->next ? g->ops[g->next - 1] : NULL;
        if (cur && cur->running) {
            if (wait) {
                tg_status st = wait_reqs(g->d, 1, &cur->req, fn);
                if (st) return st;
            } else {
                int flag = 0;
                if (MPI_Test(&cur->req, &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS)
                    return tg_fail(TG_ERR_DEVICE, fn, "an MPI operation failed (a rank left the job?)");
                if (!flag) return TG_OK;
            }
            cur->running = 0;
        }
        if (g->next == g->nops) return TG_OK;
        tg_status st = sum_start(g->d, g->ops[g->next++], MPI_FLOAT, fn);
        if (st) return st;
    }
}
#endif

/* Copies the bucket's gradients into its buffer (zeros for a parameter without one) and starts
 * the sum over the ranks (MPI: queues it). */
static tg_status bucket_start(tg_dist_grads *g, bucket *b) {
    static const char *fn = "tg_dist_grads";
    tg_ctx *ctx = g->ctx;
    b->started = 1;
    size_t off = 0;
    for (int j = 0; j < b->count; j++) {
        tg_tensor *t = g->p[b->first + j];
        const int has = t->grad && t->grad_valid;
        if (g->nccl) {
            if (has) ctx->be->copy(ctx, tg_mem_f32(b->dev + off, t->numel), tg_mem_of(t->grad));
            else ctx->be->fill(ctx, tg_mem_f32(b->dev + off, t->numel), 0.0f);
        } else if (!has) {
            memset(b->host + off, 0, sizeof(float) * (size_t)t->numel);
        } else if (ctx->device == TG_CPU) {
            memcpy(b->host + off, t->grad->data, sizeof(float) * (size_t)t->numel);
        } else {
            tg_status st = ctx->be->to_host(ctx, b->host + off, t->grad->data, sizeof(float) * (size_t)t->numel);
            if (st) return st;
        }
        off += (size_t)t->numel;
    }
#ifdef TG_DIST_NCCL
    if (g->nccl) return tg_nccl_start(g->d->nccl, ctx, b->dev, b->n);
#endif
#ifdef TG_WITH_MPI
    b->op = (sum_op){MPI_REQUEST_NULL, 0, b->host, b->n};
    g->ops[g->nops++] = &b->op;
    return mpi_pump(g, 0, fn);
#else
    (void)fn;
    return TG_OK;
#endif
}

/* The tape's hook (once per leaf and pass): a parameter's gradient is final; start its bucket
 * when it was the last. */
static void on_grad_final(void *user, tg_tensor *leaf) {
    tg_dist_grads *g = user;
    if (g->err) return;
    for (int k = 0; k < g->n; k++) {
        if (g->p[k] != leaf) continue;
        bucket *b = &g->b[g->bucket_of[k]];
        if (--b->pending == 0 && !b->started) g->err = bucket_start(g, b);
        break;
    }
#ifdef TG_WITH_MPI /* MPI moves only inside MPI calls */
    if (!g->err && !g->nccl) g->err = mpi_pump(g, 0, "tg_dist_grads");
#endif
}

/* back to "nothing started": before an armed pass and after each sync */
static void reset(tg_dist_grads *g) {
    for (int i = 0; i < g->nb; i++) g->b[i].started = 0, g->b[i].pending = g->b[i].count;
#ifdef TG_WITH_MPI
    g->nops = g->next = 0;
#endif
    g->err = TG_OK;
}

tg_status tg_dist_grads_arm(tg_dist_grads *g) {
    if (!g) return tg_fail(TG_ERR_INVALID, "tg_dist_grads_arm", "grads is NULL");
    if (!g->d->mpi) return TG_OK;
    if (g->ctx->grad_hook && g->ctx->grad_hook_user != g)
        return tg_fail(TG_ERR_INVALID, "tg_dist_grads_arm", "another gradient set is armed on this context");
    for (int i = 0; i < g->nb; i++)
        if (g->b[i].started)
            return tg_fail(TG_ERR_INVALID, "tg_dist_grads_arm", "armed twice without tg_dist_grads_sync between");
    reset(g);
    g->ctx->grad_hook = on_grad_final;
    g->ctx->grad_hook_user = g;
    return TG_OK;
}

tg_status tg_dist_grads_sync(tg_dist_grads *g) {
    static const char *fn = "tg_dist_grads_sync";
    TG_API_SCOPE(fn);
    if (!g) return tg_fail(TG_ERR_INVALID, fn, "grads is NULL");
    if (!g->d->mpi) return TG_OK;
    tg_ctx *ctx = g->ctx;
    if (ctx->grad_hook_user == g) ctx->grad_hook = NULL, ctx->grad_hook_user = NULL; /* armed, no pass ran */
    tg_status st = g->err;
    /* what the armed pass did not start (everything, unarmed): now, in bucket order */
    for (int i = 0; i < g->nb && !st; i++)
        if (!g->b[i].started) st = bucket_start(g, &g->b[i]);
#ifdef TG_DIST_NCCL
    if (!st && g->nccl) st = tg_nccl_join(g->d->nccl, ctx, g->d->timeout_s);
#endif
#ifdef TG_WITH_MPI
    if (!st && !g->nccl) st = mpi_pump(g, 1, fn);
#endif
    /* every gradient := sum / world */
    const float inv = 1.0f / (float)g->d->world;
    for (int i = 0; i < g->nb && !st; i++) {
        bucket *b = &g->b[i];
        size_t off = 0;
        for (int j = 0; j < b->count && !st; j++) {
            tg_tensor *t = g->p[b->first + j];
            int acc;
            float *dst = tg_grad_write(ctx, t, &acc);
            if (!dst) {
                st = tg_fail(TG_ERR_NOMEM, fn, "cannot allocate a gradient");
                break;
            }
            if (g->nccl) {
                if (!acc) ctx->be->fill(ctx, tg_mem_f32(dst, t->numel), 0.0f);
                ctx->be->axpby(ctx, inv, tg_mem_f32(b->dev + off, t->numel), 0.0f, tg_mem_f32(dst, t->numel));
            } else {
                float *src = b->host + off;
                for (int64_t k = 0; k < t->numel; k++) src[k] *= inv;
                st = ctx->device == TG_CPU ? (memcpy(dst, src, sizeof(float) * (size_t)t->numel), TG_OK)
                                           : ctx->be->to_device(ctx, dst, src, sizeof(float) * (size_t)t->numel);
            }
            off += (size_t)t->numel;
        }
    }
    reset(g);
    return st ? st : ctx->be->check(ctx, fn);
}

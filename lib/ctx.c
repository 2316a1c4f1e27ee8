/*
 * ctx.c — contexts: device selection, the op-result arena, the workspace, the tape's storage,
 * grad mode and the RNG counter. Pairs with tape.c (which walks the nodes stored here).
 */
#include "internal.h"

#include <stddef.h>

#include "tg_omp.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_ALIGN 256
#define TG_MIN_CHUNK ((size_t)16 << 20)

#ifdef TG_WITH_CUDA
TG_INTERNAL int tg_cuda_devices(void);
#endif

bool tg_built_with_cuda(void) {
#ifdef TG_WITH_CUDA
    return true;
#else
    return false;
#endif
}

int tg_cuda_device_count(void) {
#ifdef TG_WITH_CUDA
    return tg_cuda_devices();
#else
    return 0;
#endif
}

/* Every slot of a backend table after its name is a function pointer, and all but the optional
 * ones (the direct convolution passes and the fused BatchNorm + activation, which the op layer
 * replaces by im2col + GEMM and by two ops when a backend leaves them NULL) must be set: a table
 * that left one out (a new op wired into one backend only) is refused at context creation,
 * naming the slot's position, instead of crashing at the op's first call. */
typedef void (*tg_any_fn)(void);
_Static_assert((sizeof(struct tg_backend_ops) - offsetof(struct tg_backend_ops, init)) % sizeof(tg_any_fn) == 0,
               "struct tg_backend_ops: every member after `name` must be a function pointer");
static bool optional_slot(size_t off) {
    return off == offsetof(struct tg_backend_ops, conv_fwd) || off == offsetof(struct tg_backend_ops, conv_bwd_data) ||
           off == offsetof(struct tg_backend_ops, conv_wgrad) || off == offsetof(struct tg_backend_ops, bn_act_fwd) ||
           off == offsetof(struct tg_backend_ops, bn_act_bwd);
}
int tg_backend_missing_slot(const struct tg_backend_ops *be) {
    const size_t first = offsetof(struct tg_backend_ops, init);
    for (size_t off = first; off < sizeof *be; off += sizeof(tg_any_fn)) {
        tg_any_fn f;
        memcpy(&f, (const char *)be + off, sizeof f);
        if (!f && !optional_slot(off)) return (int)((off - first) / sizeof(tg_any_fn));
    }
    return -1;
}
static bool backend_complete(const struct tg_backend_ops *be) {
    const int slot = tg_backend_missing_slot(be);
    if (slot >= 0)
        tg_fail(TG_ERR_UNSUPPORTED, "tg_ctx_new", "the %s backend leaves operation slot %d of struct tg_backend_ops empty (a build defect)",
                be->name, slot);
    return slot < 0;
}

tg_ctx *tg_ctx_new(tg_device device, uint64_t seed) {
    const struct tg_backend_ops *be = NULL;
    if (device == TG_CPU) {
        be = &tg_cpu_backend;
    } else if (device == TG_CUDA) {
#ifdef TG_WITH_CUDA
        be = &tg_cuda_backend;
#else
        tg_fail(TG_ERR_UNSUPPORTED, "tg_ctx_new",
                "libtensorgan was built without CUDA (rebuild with nvcc on PATH, CUDA=1)");
        return NULL;
#endif
    } else {
        tg_fail(TG_ERR_INVALID, "tg_ctx_new", "unknown device %d", (int)device);
        return NULL;
    }
    if (!backend_complete(be)) return NULL;
    tg_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        tg_fail(TG_ERR_NOMEM, "tg_ctx_new", "out of host memory");
        return NULL;
    }
    ctx->device = device;
    ctx->be = be;
    ctx->grad_enabled = true;
    ctx->seed = seed;
    ctx->data.on_device = 1;
    if (be->init(ctx) != TG_OK) { /* message set by the backend */
        free(ctx);
        return NULL;
    }
    return ctx;
}

/* The tape, the arena and the workspace go at tg_ctx_free; the context itself (and its backend,
 * which leaves need to release their memory) stays until its last leaf tensor is freed. */
void tg_ctx_free(tg_ctx *ctx) {
    if (!ctx || ctx->closing) return;
    if (ctx->be->sync) ctx->be->sync(ctx);
    ctx->n_nodes = 0;
    tg_arena_release(ctx, &ctx->data);
    tg_arena_release(ctx, &ctx->meta);
    ctx->data.on_device = 1;
    if (ctx->ws) ctx->be->release(ctx, ctx->ws);
    ctx->ws = NULL;
    ctx->ws_bytes = 0;
    free(ctx->nodes);
    ctx->nodes = NULL;
    ctx->cap_nodes = 0;
    ctx->closing = true;
    if (ctx->live_leaves == 0) tg_ctx_destroy(ctx);
}

void tg_ctx_destroy(tg_ctx *ctx) {
    ctx->be->shutdown(ctx);
    free(ctx);
}

/* the getters' and setters' answer to a NULL or freed context: nothing changes, with a message */
static bool usable(const tg_ctx *ctx, const char *fn) {
    if (!ctx) tg_fail(TG_ERR_INVALID, fn, "ctx is NULL");
    else if (ctx->closing) tg_fail(TG_ERR_INVALID, fn, "ctx was freed (tg_ctx_free)");
    return ctx && !ctx->closing;
}

tg_device tg_ctx_device(const tg_ctx *ctx) { return usable(ctx, "tg_ctx_device") ? ctx->device : TG_CPU; }

/* "model name" from /proc/cpuinfo, or "unknown CPU" */
static void cpu_model(char *out, size_t n) {
    snprintf(out, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        char *v = strchr(line, ':');
        if (!v) break;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        v[strcspn(v, "\n")] = 0;
        snprintf(out, n, "%s", v);
        break;
    }
    fclose(f);
}

const char *tg_ctx_describe(tg_ctx *ctx) {
    if (!usable(ctx, "tg_ctx_describe")) return "";
    if (ctx->device == TG_CPU && !ctx->desc[0]) {
        char model[160];
        cpu_model(model, sizeof model);
        snprintf(ctx->desc, sizeof ctx->desc, "CPU: %s, %d thread%s; BLAS: %s", model,
                 omp_get_max_threads(), omp_get_max_threads() == 1 ? "" : "s", tg_blas_info());
    }
    return ctx->desc;
}

void tg_ctx_clear_tape(tg_ctx *ctx) {
    if (!usable(ctx, "tg_ctx_clear_tape")) return;
    ctx->n_nodes = 0;
    tg_arena_rewind(&ctx->data);
    tg_arena_rewind(&ctx->meta);
}

bool tg_ctx_set_grad_enabled(tg_ctx *ctx, bool enabled) {
    if (!usable(ctx, "tg_ctx_set_grad_enabled")) return false;
    bool old = ctx->grad_enabled;
    ctx->grad_enabled = enabled;
    return old;
}

bool tg_ctx_grad_enabled(const tg_ctx *ctx) {
    return usable(ctx, "tg_ctx_grad_enabled") && ctx->grad_enabled;
}

tg_status tg_ctx_sync(tg_ctx *ctx) {
    if (!usable(ctx, "tg_ctx_sync")) return TG_ERR_INVALID;
    return ctx->be->sync(ctx);
}

void tg_ctx_rng_get(const tg_ctx *ctx, uint64_t *seed, uint64_t *offset) {
    const bool ok = usable(ctx, "tg_ctx_rng_get");
    if (seed) *seed = ok ? ctx->seed : 0;
    if (offset) *offset = ok ? ctx->rng_offset : 0;
}

void tg_ctx_rng_set(tg_ctx *ctx, uint64_t seed, uint64_t offset) {
    if (!usable(ctx, "tg_ctx_rng_set")) return;
    ctx->seed = seed;
    ctx->rng_offset = offset;
}

void tg_ctx_set_tf32(tg_ctx *ctx, bool allow) {
    if (usable(ctx, "tg_ctx_set_tf32")) ctx->tf32 = allow;
}

void tg_ctx_stats_get(const tg_ctx *ctx, tg_ctx_stats *out) {
    if (!out) {
        tg_fail(TG_ERR_INVALID, "tg_ctx_stats_get", "out is NULL");
        return;
    }
    memset(out, 0, sizeof *out);
    if (!usable(ctx, "tg_ctx_stats_get")) return;
    out->arena_bytes = ctx->data.total;
    out->arena_peak_bytes = ctx->data.peak;
    out->workspace_bytes = ctx->ws_bytes;
    out->arena_chunk_allocs = ctx->data.chunk_allocs + ctx->meta.chunk_allocs;
    out->tape_nodes = ctx->n_nodes;
}

uint64_t tg_rng_take(tg_ctx *ctx, int64_t n) {
    uint64_t off = ctx->rng_offset;
    ctx->rng_offset += (uint64_t)n;
    return off;
}

/* ---- arena -------------------------------------------------------------------------------- */
void *tg_arena_alloc(tg_ctx *ctx, tg_arena *a, size_t bytes) {
    bytes = (bytes + TG_ALIGN - 1) & ~(size_t)(TG_ALIGN - 1);
    if (bytes == 0) bytes = TG_ALIGN;
    /* walk forward through existing chunks (they are reused in order after a rewind) */
    while (a->cur && a->cur->size - a->cur->used < bytes) {
        if (!a->cur->next) break;
        a->cur = a->cur->next;
    }
    if (!a->cur || a->cur->size - a->cur->used < bytes) {
        size_t size = a->total > TG_MIN_CHUNK ? a->total : TG_MIN_CHUNK;
        if (size < bytes) size = bytes;
        tg_chunk *c = malloc(sizeof *c);
        if (!c) return NULL;
        c->base = a->on_device ? ctx->be->alloc(ctx, size) : aligned_alloc(TG_ALIGN, size);
        if (!c->base) {
            free(c);
            return NULL;
        }
        c->size = size;
        c->used = 0;
        c->next = NULL;
        if (a->cur) {
            /* insert after cur so later chunks keep their order */
            c->next = a->cur->next;
            a->cur->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
        a->cur = c;
        a->total += size;
        a->chunk_allocs++;
    }
    void *p = a->cur->base + a->cur->used;
    a->cur->used += bytes;
    a->in_use += bytes;
    if (a->in_use > a->peak) a->peak = a->in_use;
    return p;
}

void tg_arena_rewind(tg_arena *a) {
    for (tg_chunk *c = a->head; c; c = c->next) c->used = 0;
    a->cur = a->head;
    a->in_use = 0;
}

void tg_arena_release(tg_ctx *ctx, tg_arena *a) {
    tg_chunk *c = a->head;
    while (c) {
        tg_chunk *n = c->next;
        if (a->on_device)
            ctx->be->release(ctx, c->base);
        else
            free(c->base);
        free(c);
        c = n;
    }
    memset(a, 0, sizeof *a);
}

float *tg_workspace(tg_ctx *ctx, size_t bytes) {
    if (bytes <= ctx->ws_bytes) return ctx->ws;
    if (ctx->ws) ctx->be->release(ctx, ctx->ws);
    size_t want = bytes + bytes / 4;
    ctx->ws = ctx->be->alloc(ctx, want);
    ctx->ws_bytes = ctx->ws ? want : 0;
    if (!ctx->ws) {
        ctx->bw_status = tg_fail(TG_ERR_NOMEM, "tg_workspace", "cannot allocate %zu bytes on %s",
                                 want, ctx->be->name);
    }
    return ctx->ws;
}

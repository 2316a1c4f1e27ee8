/*
 * ctx.c — contexts: device selection, the op-result arena, the workspace, the tape's storage,
 * grad mode and the RNG counter. Pairs with tape.c (which walks the nodes stored here).
 */
#include "core.h"

#include <stddef.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_ALIGN 256
#define TG_MIN_CHUNK ((size_t)16 << 20)

#ifdef TG_WITH_CUDA
TG_INTERNAL int tg_cuda_devices(void); /* cuda/backend_cuda.cu */
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
    ctx->be->sync(ctx);
    ctx->n_nodes = 0;
    tg_tape_release(ctx); /* before closing: releasing the last leaf must not destroy ctx here */
    free(ctx->held);
    ctx->held = NULL;
    ctx->cap_held = 0;
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

/* the backend's line, written anew at each call (the thread count may have changed) */
const char *tg_ctx_describe(tg_ctx *ctx) {
    if (!usable(ctx, "tg_ctx_describe")) return "";
    ctx->be->describe(ctx, ctx->desc, sizeof ctx->desc);
    return ctx->desc;
}

/* ---- what a backend may use of its context (lib/backend.h) --------------------------------- */
void *tg_be_state(const tg_ctx *ctx) { return ctx->be_state; }
void tg_be_set_state(tg_ctx *ctx, void *state) { ctx->be_state = state; }
tg_precision tg_be_precision(const tg_ctx *ctx) { return ctx->precision; }

void tg_ctx_clear_tape(tg_ctx *ctx) {
    if (!usable(ctx, "tg_ctx_clear_tape")) return;
    ctx->n_nodes = 0;
    tg_tape_release(ctx);
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
    if (!usable(ctx, "tg_ctx_set_tf32") || ctx->device != TG_CUDA) return;
    if (allow) ctx->precision = TG_PRECISION_TF32;
    else if (ctx->precision == TG_PRECISION_TF32) ctx->precision = TG_PRECISION_FP32;
}

static const char *const PRECISION_NAMES[] = {[TG_PRECISION_FP32] = "fp32", [TG_PRECISION_BF16] = "bf16",
                                              [TG_PRECISION_TF32] = "tf32"};

const char *tg_precision_name(tg_precision precision) {
    return (unsigned)precision <= TG_PRECISION_TF32 ? PRECISION_NAMES[precision] : NULL;
}

int tg_precision_parse(const char *name) {
    for (int p = TG_PRECISION_FP32; name && p <= TG_PRECISION_TF32; p++)
        if (!strcmp(name, PRECISION_NAMES[p])) return p;
    return -1;
}

tg_status tg_ctx_set_precision(tg_ctx *ctx, tg_precision precision) {
    static const char *fn = "tg_ctx_set_precision";
    if (!usable(ctx, fn)) return TG_ERR_INVALID;
    if ((unsigned)precision > TG_PRECISION_TF32)
        return tg_fail(TG_ERR_INVALID, fn, "precision %d is not TG_PRECISION_FP32, _BF16 or _TF32", (int)precision);
    if (precision == TG_PRECISION_TF32 && ctx->device != TG_CUDA)
        return tg_fail(TG_ERR_UNSUPPORTED, fn, "TF32 is a CUDA precision; the CPU computes in fp32 or bf16");
    ctx->precision = precision;
    return TG_OK;
}

tg_precision tg_ctx_precision(const tg_ctx *ctx) {
    return usable(ctx, "tg_ctx_precision") ? ctx->precision : TG_PRECISION_FP32;
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

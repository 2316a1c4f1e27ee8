/*
 * tape.c — eager autograd. Ops append nodes (tg_record); tg_backward seeds d(loss) = 1 and walks
 * the nodes in reverse, calling each op's backward, which accumulates (+=) into its inputs'
 * gradients. Pairs with ctx.c, which owns the node storage and the arena.
 */
#include "core.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

bool tg_needs_grad(tg_ctx *ctx, tg_tensor *const *in, int n) {
    if (ctx->tracing) return true;
    if (!ctx->grad_enabled) return false;
    for (int i = 0; i < n; i++)
        if (in[i] && in[i]->requires_grad) return true;
    return false;
}

bool tg_tape_hold(tg_ctx *ctx, tg_tensor *t, const char *fn) {
    if (!t || !t->is_leaf) return true;
    if (ctx->n_held == ctx->cap_held) {
        size_t cap = ctx->cap_held ? ctx->cap_held * 2 : 256;
        tg_tensor **h = realloc(ctx->held, cap * sizeof *h);
        if (!h) {
            tg_fail(TG_ERR_NOMEM, fn, "cannot grow the tape's list of inputs to %zu", cap);
            return false;
        }
        ctx->held = h;
        ctx->cap_held = cap;
    }
    tg_tensor_retain(t);
    ctx->held[ctx->n_held++] = t;
    return true;
}

void tg_tape_release(tg_ctx *ctx) {
    /* detached first: a release may free a leaf, never the context (tg_ctx_free releases before
     * it marks the context closing) */
    tg_tensor **h = ctx->held;
    const size_t n = ctx->n_held;
    ctx->n_held = 0;
    for (size_t i = 0; i < n; i++) tg_tensor_release(h[i]);
}

tg_node *tg_record(tg_ctx *ctx, tg_op_kind kind, tg_backward_fn fn, tg_tensor *out, tg_tensor *const *in,
                   int n_in, const char *func) {
    for (int i = 0; i < n_in && i < TG_NODE_MAX_IN; i++)
        if (!tg_tape_hold(ctx, in[i], func)) return NULL;
    if (ctx->n_nodes == ctx->cap_nodes) {
        size_t cap = ctx->cap_nodes ? ctx->cap_nodes * 2 : 256;
        tg_node *nodes = realloc(ctx->nodes, cap * sizeof *nodes);
        if (!nodes) {
            tg_fail(TG_ERR_NOMEM, func, "cannot grow the tape to %zu nodes", cap);
            return NULL;
        }
        ctx->nodes = nodes;
        ctx->cap_nodes = cap;
    }
    tg_node *nd = &ctx->nodes[ctx->n_nodes++];
    memset(nd, 0, sizeof *nd);
    nd->backward = fn;
    nd->kind = kind;
    nd->out = out;
    for (int i = 0; i < n_in && i < TG_NODE_MAX_IN; i++) nd->in[i] = in[i];
    out->requires_grad = true;
    return nd;
}

/* A gradient buffer that cannot be allocated fails the whole backward pass (reported by
 * run_tape), instead of silently dropping that tensor's gradient. */
static float *grad_alloc_failed(tg_ctx *ctx, const tg_tensor *t) {
    char b[64];
    ctx->bw_status = tg_fail(TG_ERR_NOMEM, "tg_backward", "cannot allocate a gradient of shape %s",
                             tg_shape_str(t, b, sizeof b));
    return NULL;
}

/* t's gradient buffer, allocated on first use (contents undefined until grad_valid) */
static tg_tensor *grad_buffer(tg_ctx *ctx, tg_tensor *t) {
    if (t->grad) return t->grad;
    tg_tensor *g;
    if (t->is_leaf) {
        g = calloc(1, sizeof *g);
        if (!g) return (void)grad_alloc_failed(ctx, t), NULL;
        g->data = ctx->be->alloc(ctx, (size_t)t->numel * sizeof(float));
        if (!g->data) {
            free(g);
            return (void)grad_alloc_failed(ctx, t), NULL;
        }
        g->ctx = ctx;
        g->ndim = t->ndim;
        memcpy(g->shape, t->shape, sizeof g->shape);
        g->numel = t->numel;
    } else {
        g = tg_result(ctx, t->ndim, t->shape, "tg_backward");
        if (!g) return (void)grad_alloc_failed(ctx, t), NULL;
    }
    t->grad = g;
    t->grad_valid = false;
    return g;
}

float *tg_grad_of(tg_ctx *ctx, tg_tensor *t) {
    if (!t || !t->requires_grad || !grad_buffer(ctx, t)) return NULL;
    if (!t->grad_valid) {
        ctx->be->fill(ctx, tg_mem_of(t->grad), 0.0f);
        t->grad_valid = true;
    }
    return t->grad->data;
}

float *tg_grad_write(tg_ctx *ctx, tg_tensor *t, int *acc) {
    *acc = 1;
    if (!t || !t->requires_grad || !grad_buffer(ctx, t)) return NULL;
    if (!t->grad_valid) { /* nothing in it yet: the caller writes every element */
        *acc = 0;
        t->grad_valid = true;
    }
    return t->grad->data;
}

/* Each backward pass starts the gradients of op results from zero (as PyTorch does with a
 * retained graph); only leaves accumulate across passes. */
static void reset_results(tg_ctx *ctx) {
    for (size_t i = 0; i < ctx->n_nodes; i++) ctx->nodes[i].out->grad_valid = false;
}

/* With a grad hook: marks each leaf the tape reads with the index of the first node that reads
 * it; the walk below visits that node last, so after its backward the leaf's gradient is final. */
static void mark_leaves(tg_ctx *ctx) {
    for (size_t i = ctx->n_nodes; i-- > 0;)
        for (int k = 0; k < TG_NODE_MAX_IN; k++) {
            tg_tensor *t = ctx->nodes[i].in[k];
            if (t && t->is_leaf && t->requires_grad) t->bw_last = i;
        }
}

static void leaves_done(tg_ctx *ctx, size_t i) {
    for (int k = 0; k < TG_NODE_MAX_IN; k++) {
        tg_tensor *t = ctx->nodes[i].in[k];
        if (t && t->is_leaf && t->requires_grad && t->bw_last == i) {
            t->bw_last = SIZE_MAX; /* once, also when a node reads it twice */
            ctx->grad_hook(ctx->grad_hook_user, t);
        }
    }
}

static tg_status run_tape(tg_ctx *ctx) {
    ctx->bw_status = TG_OK;
    void (*hook)(void *, tg_tensor *) = ctx->grad_hook;
    if (hook) mark_leaves(ctx);
    for (size_t i = ctx->n_nodes; i-- > 0 && ctx->bw_status == TG_OK;) {
        tg_node *nd = &ctx->nodes[i];
        if (nd->out->grad && nd->out->grad_valid) nd->backward(ctx, nd);
        if (hook) leaves_done(ctx, i);
    }
    ctx->grad_hook = NULL; /* armed for one pass */
    tg_status s = ctx->be->check(ctx, "tg_backward");
    return ctx->bw_status ? ctx->bw_status : s; /* the first failure's message is kept */
}

static tg_status check_root(tg_ctx *ctx, tg_tensor *y, const char *fn, const char *what) {
    if (!ctx) return tg_fail(TG_ERR_INVALID, fn, "ctx is NULL");
    if (ctx->closing) return tg_fail(TG_ERR_INVALID, fn, "ctx was freed (tg_ctx_free)");
    if (!y) {
        if (tg_error_pending()) return tg_last_status(); /* keep the failed op's message */
        return tg_fail(TG_ERR_INVALID, fn, "%s is NULL", what);
    }
    if (y->ctx != ctx) return tg_fail(TG_ERR_DEVICE, fn, "%s belongs to another context", what);
    if (!y->requires_grad)
        return tg_fail(TG_ERR_INVALID, fn,
                       "%s does not require a gradient: nothing on its path requires one, "
                       "or it was computed with grad mode off", what);
    return TG_OK;
}

tg_status tg_backward(tg_ctx *ctx, tg_tensor *loss) {
    static const char *fn = "tg_backward";
    TG_API_SCOPE(fn);
    tg_status s = check_root(ctx, loss, fn, "loss");
    if (s) return s;
    if (loss->numel != 1) {
        char b[64];
        return tg_fail(TG_ERR_SHAPE, fn, "loss must have one element, got shape %s",
                       tg_shape_str(loss, b, sizeof b));
    }
    reset_results(ctx);
    float *g = tg_grad_of(ctx, loss);
    if (!g) return tg_fail(TG_ERR_NOMEM, fn, "cannot allocate the seed gradient");
    ctx->be->fill(ctx, tg_mem_f32(g, 1), 1.0f);
    return run_tape(ctx);
}

tg_status tg_backward_with(tg_ctx *ctx, tg_tensor *y, const tg_tensor *dy) {
    static const char *fn = "tg_backward_with";
    TG_API_SCOPE(fn);
    tg_status s = check_root(ctx, y, fn, "y");
    if (s) return s;
    if (!dy) return tg_fail(TG_ERR_INVALID, fn, "dy is NULL");
    if (dy->ctx != ctx) return tg_fail(TG_ERR_DEVICE, fn, "dy belongs to another context than y");
    if (dy->ndim != y->ndim || memcmp(dy->shape, y->shape, sizeof(int64_t) * (size_t)y->ndim) != 0) {
        char a[64], b[64];
        return tg_fail(TG_ERR_SHAPE, fn, "dy %s must have y's shape %s", tg_shape_str(dy, a, sizeof a),
                       tg_shape_str(y, b, sizeof b));
    }
    reset_results(ctx);
    float *g = tg_grad_of(ctx, y);
    if (!g) return tg_fail(TG_ERR_NOMEM, fn, "cannot allocate the seed gradient");
    ctx->be->axpby(ctx, 1.0f, tg_mem_of(dy), 1.0f, tg_mem_f32(g, y->numel));
    return run_tape(ctx);
}

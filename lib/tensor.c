/*
 * tensor.c — leaf tensors (caller-owned) and op results (tape-owned): creation, shape queries,
 * host transfers, fills and the RNG draws.
 */
#include "core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool tg_shape_ok(int ndim, const int64_t *shape, int64_t *numel, const char *func) {
    if (ndim < 1 || ndim > TG_MAX_DIMS) {
        tg_fail(TG_ERR_SHAPE, func, "ndim %d outside 1..%d", ndim, TG_MAX_DIMS);
        return false;
    }
    if (!shape) {
        tg_fail(TG_ERR_INVALID, func, "shape is NULL");
        return false;
    }
    for (int i = 0; i < ndim; i++)
        if (shape[i] <= 0) {
            tg_fail(TG_ERR_SHAPE, func, "dimension %d is %lld (must be >= 1)", i, (long long)shape[i]);
            return false;
        }
    if (!tg_prod_ok(shape, ndim, TG_MAX_NUMEL, numel)) {
        tg_fail(TG_ERR_SHAPE, func, "the shape's %d dimensions multiply to 2^40 elements or more (the limit)", ndim);
        return false;
    }
    return true;
}

static tg_tensor *leaf_new(tg_ctx *ctx, int ndim, const int64_t *shape, bool owned, const char *fn) {
    if (!ctx) {
        tg_fail(TG_ERR_INVALID, fn, "ctx is NULL");
        return NULL;
    }
    if (ctx->closing) {
        tg_fail(TG_ERR_INVALID, fn, "ctx was freed (tg_ctx_free) and waits for its last tensors");
        return NULL;
    }
    int64_t numel;
    if (!tg_shape_ok(ndim, shape, &numel, fn)) return NULL;
    size_t bytes;
    if (!tg_bytes_ok(numel, sizeof(float), &bytes)) {
        tg_fail(TG_ERR_SHAPE, fn, "%lld elements do not fit in memory", (long long)numel);
        return NULL;
    }
    tg_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
        return NULL;
    }
    t->ctx = ctx;
    t->ndim = ndim;
    memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    t->numel = numel;
    t->is_leaf = true;
    t->owned = owned;
    t->refs = 1;
    t->data = ctx->be->alloc(ctx, bytes);
    if (!t->data) {
        free(t);
        tg_fail(TG_ERR_NOMEM, fn, "cannot allocate %lld floats on %s", (long long)numel,
                ctx->be->name);
        return NULL;
    }
    ctx->be->fill(ctx, tg_mem_f32(t->data, numel), 0.0f);
    ctx->live_leaves++;
    return t;
}

tg_tensor *tg_tensor_new(tg_ctx *ctx, int ndim, const int64_t *shape) {
    return leaf_new(ctx, ndim, shape, false, "tg_tensor_new");
}

tg_tensor *tg_tensor_owned(tg_ctx *ctx, int ndim, const int64_t *shape, const char *fn) {
    return leaf_new(ctx, ndim, shape, true, fn);
}

/* 1-4 dims given as arguments, 0 for unused trailing ones: a 0 before a used dimension, or a
 * negative one, is refused rather than cutting the shape short */
tg_tensor *tg_tensor_new4(tg_ctx *ctx, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    static const char *fn = "tg_tensor_new4";
    int64_t s[4] = {d0, d1, d2, d3};
    int nd = 1;
    while (nd < 4 && s[nd] > 0) nd++;
    for (int i = nd; i < 4; i++)
        if (s[i] != 0) {
            tg_fail(TG_ERR_SHAPE, fn, "dimension %d is %lld after an unused (0) dimension %d: dims are "
                    "positive, and only trailing ones may be 0", i, (long long)s[i], nd);
            return NULL;
        }
    return leaf_new(ctx, nd, s, false, fn);
}

static void free_grad(tg_tensor *t) {
    if (t->grad) {
        t->ctx->be->release(t->ctx, t->grad->data);
        free(t->grad);
        t->grad = NULL;
    }
}

void tg_tensor_retain(tg_tensor *t) {
    if (t && t->is_leaf) t->refs++;
}

void tg_tensor_release(tg_tensor *t) {
    if (!t || !t->is_leaf || --t->refs > 0) return;
    tg_ctx *ctx = t->ctx;
    free_grad(t);
    ctx->be->release(ctx, t->data);
    free(t);
    if (--ctx->live_leaves == 0 && ctx->closing) tg_ctx_destroy(ctx);
}

void tg_tensor_free(tg_tensor *t) {
    if (!t) return;
    if (!t->is_leaf) return; /* op results belong to the tape (documented) */
    if (t->owned) {
        tg_fail(TG_ERR_INVALID, "tg_tensor_free", "the tensor belongs to a module or an optimizer, "
                "which frees it (tg_module_free / tg_optim_free)");
        return;
    }
    if (t->caller_freed) { /* still held by an optimizer or a state: a second free is ignored */
        tg_fail(TG_ERR_INVALID, "tg_tensor_free", "the tensor was freed already");
        return;
    }
    t->caller_freed = true;
    tg_tensor_release(t);
}

/* the getters' answer to a NULL tensor: the documented value, with a message */
static bool have(const tg_tensor *t, const char *fn) {
    if (!t) tg_fail(TG_ERR_INVALID, fn, "tensor is NULL");
    return t != NULL;
}

tg_ctx *tg_tensor_ctx(const tg_tensor *t) { return have(t, "tg_tensor_ctx") ? t->ctx : NULL; }
int tg_tensor_ndim(const tg_tensor *t) { return have(t, "tg_tensor_ndim") ? t->ndim : 0; }
int64_t tg_tensor_numel(const tg_tensor *t) { return have(t, "tg_tensor_numel") ? t->numel : 0; }

int64_t tg_tensor_dim(const tg_tensor *t, int axis) {
    static const char *fn = "tg_tensor_dim";
    if (!have(t, fn)) return -1;
    const int a = axis < 0 ? axis + t->ndim : axis;
    if (a < 0 || a >= t->ndim) {
        char b[64];
        tg_fail(TG_ERR_INVALID, fn, "axis %d is outside the %d dimensions of %s", axis, t->ndim, SHP(t, b));
        return -1;
    }
    return t->shape[a];
}

static tg_status check_n(const tg_tensor *t, const void *p, int64_t n, const char *fn, const char *buf) {
    if (!t) return tg_fail(TG_ERR_INVALID, fn, "tensor is NULL");
    if (!p) return tg_fail(TG_ERR_INVALID, fn, "%s (the host buffer) is NULL", buf);
    if (n != t->numel)
        return tg_fail(TG_ERR_SHAPE, fn, "n = %lld but the tensor has %lld elements", (long long)n,
                       (long long)t->numel);
    return TG_OK;
}

tg_status tg_tensor_write(tg_tensor *t, const float *src, int64_t n) {
    tg_status s = check_n(t, src, n, "tg_tensor_write", "src");
    if (s) return s;
    return t->ctx->be->to_device(t->ctx, t->data, src, (size_t)n * sizeof(float));
}

tg_status tg_tensor_read(const tg_tensor *t, float *dst, int64_t n) {
    tg_status s = check_n(t, dst, n, "tg_tensor_read", "dst");
    if (s) return s;
    return t->ctx->be->to_host(t->ctx, dst, t->data, (size_t)n * sizeof(float));
}

/* Counts the non-finite values of n floats in host memory; *first gets the first index. A float
 * is NaN or infinite when its exponent bits are all ones: counted branch-free (the loop
 * vectorises, and runs on every thread for large tensors: it checks each gradient before each
 * optimizer step), then the first one looked for only when there is one. */
static int64_t count_nonfinite(const float *v, int64_t n, int64_t *first) {
    int64_t bad = 0;
#pragma omp parallel for simd reduction(+ : bad) if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, v + i, sizeof u);
        bad += (u & 0x7f800000u) == 0x7f800000u;
    }
    *first = -1;
    for (int64_t i = 0; bad && i < n; i++)
        if (!isfinite(v[i])) {
            *first = i;
            break;
        }
    return bad;
}

tg_status tg_check_finite_named(const tg_tensor *t, const char *fn, const char *what) {
    if (!t) return tg_fail(TG_ERR_INVALID, fn, "tensor is NULL");
    const float *v = t->data;
    float *copy = NULL;
    if (t->ctx->device != TG_CPU) {
        copy = malloc(sizeof(float) * (size_t)t->numel);
        if (!copy) return tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
        tg_status st = tg_tensor_read(t, copy, t->numel);
        if (st) {
            free(copy);
            return st;
        }
        v = copy;
    }
    int64_t first;
    const int64_t bad = count_nonfinite(v, t->numel, &first);
    const float at = bad ? v[first] : 0.0f;
    free(copy);
    if (!bad) return TG_OK;
    char b[64];
    return tg_fail(TG_ERR_NUMERIC, fn, "%s %s holds %lld NaN/Inf value%s (the first, %g, at index %lld)",
                   what, tg_shape_str(t, b, sizeof b), (long long)bad, bad == 1 ? "" : "s",
                   (double)at, (long long)first);
}

tg_status tg_tensor_check_finite(const tg_tensor *t) {
    return tg_check_finite_named(t, "tg_tensor_check_finite", "tensor");
}

float tg_tensor_item(const tg_tensor *t) {
    float v = NAN;
    if (!t) {
        tg_fail(TG_ERR_INVALID, "tg_tensor_item", "tensor is NULL");
        return v;
    }
    if (t->numel != 1) {
        tg_fail(TG_ERR_SHAPE, "tg_tensor_item", "tensor has %lld elements, not 1",
                (long long)t->numel);
        return v;
    }
    if (t->ctx->be->to_host(t->ctx, &v, t->data, sizeof v) != TG_OK) return NAN;
    return v;
}

tg_status tg_tensor_copy(tg_tensor *dst, const tg_tensor *src) {
    static const char *fn = "tg_tensor_copy";
    if (!dst || !src) return tg_fail(TG_ERR_INVALID, fn, "%s is NULL", !dst ? "dst" : "src");
    if (dst->ctx != src->ctx) return tg_fail(TG_ERR_DEVICE, fn, "tensors belong to different contexts");
    if (dst->numel != src->numel)
        return tg_fail(TG_ERR_SHAPE, fn, "%lld vs %lld elements", (long long)dst->numel,
                       (long long)src->numel);
    dst->ctx->be->copy(dst->ctx, tg_mem_of(dst), tg_mem_of(src));
    return TG_OK;
}

tg_status tg_tensor_fill(tg_tensor *t, float value) {
    if (!t) return tg_fail(TG_ERR_INVALID, "tg_tensor_fill", "tensor is NULL");
    t->ctx->be->fill(t->ctx, tg_mem_of(t), value);
    return TG_OK;
}

/* A fill is refused when its parameters are not finite (they would write NaN/Inf everywhere
 * or, for a range, draw from a meaningless one). */
tg_status tg_tensor_fill_normal(tg_tensor *t, float mean, float std) {
    static const char *fn = "tg_tensor_fill_normal";
    if (!t) return tg_fail(TG_ERR_INVALID, fn, "tensor is NULL");
    if (!isfinite(mean) || !(std >= 0.0f) || !isfinite(std))
        return tg_fail(TG_ERR_INVALID, fn, "mean %g must be finite and std %g finite and >= 0", mean, std);
    tg_ctx *c = t->ctx;
    const tg_draw d = {TG_DRAW_NORMAL, mean, std, c->seed, tg_rng_take(c, t->numel), c->rng_stream};
    c->be->draw(c, tg_mem_of(t), &d);
    return TG_OK;
}

tg_status tg_tensor_fill_uniform(tg_tensor *t, float lo, float hi) {
    static const char *fn = "tg_tensor_fill_uniform";
    if (!t) return tg_fail(TG_ERR_INVALID, fn, "tensor is NULL");
    if (!isfinite(lo) || !isfinite(hi) || !isfinite(hi - lo) || !(hi >= lo))
        return tg_fail(TG_ERR_INVALID, fn, "lo %g and hi %g must be finite, with lo <= hi and hi - lo finite", lo, hi);
    tg_ctx *c = t->ctx;
    const tg_draw d = {TG_DRAW_UNIFORM, lo, hi, c->seed, tg_rng_take(c, t->numel), c->rng_stream};
    c->be->draw(c, tg_mem_of(t), &d);
    return TG_OK;
}

tg_status tg_tensor_set_requires_grad(tg_tensor *t, bool on) {
    static const char *fn = "tg_tensor_set_requires_grad";
    if (!t) return tg_fail(TG_ERR_INVALID, fn, "tensor is NULL");
    if (!t->is_leaf)
        return tg_fail(TG_ERR_INVALID, fn, "the tensor is an op result: whether it needs a gradient "
                       "follows from its inputs (use tg_detach to cut it from the tape)");
    t->requires_grad = on;
    return TG_OK;
}

bool tg_tensor_requires_grad(const tg_tensor *t) {
    return have(t, "tg_tensor_requires_grad") && t->requires_grad;
}

const tg_tensor *tg_tensor_grad(const tg_tensor *t) {
    if (!have(t, "tg_tensor_grad")) return NULL;
    return (t->grad && t->grad_valid) ? t->grad : NULL;
}

void tg_tensor_zero_grad(tg_tensor *t) {
    if (have(t, "tg_tensor_zero_grad")) t->grad_valid = false;
}

/* ---- op-result helpers -------------------------------------------------------------------- */
tg_tensor *tg_result(tg_ctx *ctx, int ndim, const int64_t *shape, const char *func) {
    return tg_result_typed(ctx, ndim, shape, TG_F32, func);
}

/* (an int32 result takes a float's room: both are 4 bytes) */
tg_tensor *tg_result_typed(tg_ctx *ctx, int ndim, const int64_t *shape, tg_dtype dt, const char *func) {
    int64_t numel;
    if (!tg_shape_ok(ndim, shape, &numel, func)) return NULL;
    tg_tensor *t = tg_arena_alloc(ctx, &ctx->meta, sizeof *t);
    float *d = t ? tg_arena_alloc(ctx, &ctx->data, (size_t)numel * sizeof(float)) : NULL;
    if (!d) {
        tg_fail(TG_ERR_NOMEM, func, "cannot allocate an op result of %lld floats on %s",
                (long long)numel, ctx->be->name);
        return NULL;
    }
    memset(t, 0, sizeof *t);
    t->ctx = ctx;
    t->ndim = ndim;
    memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    t->numel = numel;
    t->data = d;
    t->dtype = dt;
    tg_error_settle();
    return t;
}

tg_tensor *tg_view(tg_ctx *ctx, tg_tensor *x, int ndim, const int64_t *shape, const char *fn) {
    if (!tg_tape_hold(ctx, x, fn)) return NULL; /* the view reads x's data until the tape is cleared */
    tg_tensor *y = tg_arena_alloc(ctx, &ctx->meta, sizeof *y);
    if (!y) {
        tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
        return NULL;
    }
    memset(y, 0, sizeof *y);
    y->ctx = ctx;
    y->ndim = ndim;
    memcpy(y->shape, shape, sizeof(int64_t) * (size_t)ndim);
    y->numel = x->numel;
    y->data = x->data;
    tg_error_settle();
    return y;
}

bool tg_check_in(tg_ctx *ctx, const tg_tensor *t, const char *func, const char *what) {
    if (!t) {
        /* keep the message of the op that failed and produced this NULL */
        if (!tg_error_pending() || !ctx) tg_fail(TG_ERR_INVALID, func, "%s is NULL", what);
        return false;
    }
    if (!ctx) {
        tg_fail(TG_ERR_INVALID, func, "ctx is NULL");
        return false;
    }
    if (ctx->closing) {
        tg_fail(TG_ERR_INVALID, func, "ctx was freed (tg_ctx_free)");
        return false;
    }
    if (t->ctx != ctx) {
        tg_fail(TG_ERR_DEVICE, func, "%s belongs to another context (%s vs %s)", what,
                t->ctx->be->name, ctx->be->name);
        return false;
    }
    return true;
}

bool tg_check_nchw(tg_ctx *ctx, const tg_tensor *x, const char *func) {
    if (!tg_check_in(ctx, x, func, "x")) return false;
    if (x->ndim != 4) {
        char b[64];
        tg_fail(TG_ERR_SHAPE, func, "x must be [N,C,H,W], got %s", SHP(x, b));
        return false;
    }
    return true;
}

/*
 * tensor.c — leaf tensors (caller-owned) and op results (tape-owned): creation, shape queries,
 * host transfers, fills and the RNG draws.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool shape_ok(int ndim, const int64_t *shape, int64_t *numel, const char *func) {
    if (ndim < 1 || ndim > TG_MAX_DIMS) {
        tg_fail(TG_ERR_SHAPE, func, "ndim %d outside 1..%d", ndim, TG_MAX_DIMS);
        return false;
    }
    if (!shape) {
        tg_fail(TG_ERR_INVALID, func, "shape is NULL");
        return false;
    }
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0 || shape[i] > ((int64_t)1 << 40) || n > (((int64_t)1 << 40) / shape[i])) {
            tg_fail(TG_ERR_SHAPE, func, "dimension %d is %lld (must be positive, numel < 2^40)", i,
                    (long long)shape[i]);
            return false;
        }
        n *= shape[i];
    }
    *numel = n;
    return true;
}

tg_tensor *tg_tensor_new(tg_ctx *ctx, int ndim, const int64_t *shape) {
    static const char *fn = "tg_tensor_new";
    if (!ctx) {
        tg_fail(TG_ERR_INVALID, fn, "ctx is NULL");
        return NULL;
    }
    int64_t numel;
    if (!shape_ok(ndim, shape, &numel, fn)) return NULL;
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
    t->data = ctx->be->alloc(ctx, (size_t)numel * sizeof(float));
    if (!t->data) {
        free(t);
        tg_fail(TG_ERR_NOMEM, fn, "cannot allocate %lld floats on %s", (long long)numel,
                ctx->be->name);
        return NULL;
    }
    ctx->be->fill(ctx, t->data, numel, 0.0f);
    return t;
}

tg_tensor *tg_tensor_new4(tg_ctx *ctx, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    int64_t s[4] = {d0, d1, d2, d3};
    int nd = 1;
    while (nd < 4 && s[nd] > 0) nd++;
    return tg_tensor_new(ctx, nd, s);
}

static void free_grad(tg_tensor *t) {
    if (t->grad) {
        t->ctx->be->release(t->ctx, t->grad->data);
        free(t->grad);
        t->grad = NULL;
    }
}

void tg_tensor_free(tg_tensor *t) {
    if (!t || !t->is_leaf) return;
    free_grad(t);
    t->ctx->be->release(t->ctx, t->data);
    free(t);
}

tg_ctx *tg_tensor_ctx(const tg_tensor *t) { return t ? t->ctx : NULL; }
int tg_tensor_ndim(const tg_tensor *t) { return t ? t->ndim : 0; }
int64_t tg_tensor_numel(const tg_tensor *t) { return t ? t->numel : 0; }

int64_t tg_tensor_dim(const tg_tensor *t, int axis) {
    if (!t) return -1;
    if (axis < 0) axis += t->ndim;
    if (axis < 0 || axis >= t->ndim) return -1;
    return t->shape[axis];
}

static tg_status check_n(const tg_tensor *t, const void *p, int64_t n, const char *fn) {
    if (!t) return tg_fail(TG_ERR_INVALID, fn, "tensor is NULL");
    if (!p) return tg_fail(TG_ERR_INVALID, fn, "host buffer is NULL");
    if (n != t->numel)
        return tg_fail(TG_ERR_SHAPE, fn, "n = %lld but the tensor has %lld elements", (long long)n,
                       (long long)t->numel);
    return TG_OK;
}

tg_status tg_tensor_write(tg_tensor *t, const float *src, int64_t n) {
    tg_status s = check_n(t, src, n, "tg_tensor_write");
    if (s) return s;
    return t->ctx->be->to_device(t->ctx, t->data, src, (size_t)n * sizeof(float));
}

tg_status tg_tensor_read(const tg_tensor *t, float *dst, int64_t n) {
    tg_status s = check_n(t, dst, n, "tg_tensor_read");
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
    if (!dst || !src) return tg_fail(TG_ERR_INVALID, fn, "tensor is NULL");
    if (dst->ctx != src->ctx) return tg_fail(TG_ERR_DEVICE, fn, "tensors belong to different contexts");
    if (dst->numel != src->numel)
        return tg_fail(TG_ERR_SHAPE, fn, "%lld vs %lld elements", (long long)dst->numel,
                       (long long)src->numel);
    dst->ctx->be->copy(dst->ctx, dst->data, src->data, src->numel);
    return TG_OK;
}

tg_status tg_tensor_fill(tg_tensor *t, float value) {
    if (!t) return tg_fail(TG_ERR_INVALID, "tg_tensor_fill", "tensor is NULL");
    t->ctx->be->fill(t->ctx, t->data, t->numel, value);
    return TG_OK;
}

tg_status tg_tensor_fill_normal(tg_tensor *t, float mean, float std) {
    if (!t) return tg_fail(TG_ERR_INVALID, "tg_tensor_fill_normal", "tensor is NULL");
    if (!(std >= 0.0f)) return tg_fail(TG_ERR_INVALID, "tg_tensor_fill_normal", "std %g < 0", std);
    tg_ctx *c = t->ctx;
    c->be->rng_normal(c, t->data, t->numel, c->seed, c->rng_stream, tg_rng_take(c, t->numel), mean,
                      std);
    return TG_OK;
}

tg_status tg_tensor_fill_uniform(tg_tensor *t, float lo, float hi) {
    if (!t) return tg_fail(TG_ERR_INVALID, "tg_tensor_fill_uniform", "tensor is NULL");
    if (!(hi >= lo))
        return tg_fail(TG_ERR_INVALID, "tg_tensor_fill_uniform", "hi %g < lo %g", hi, lo);
    tg_ctx *c = t->ctx;
    c->be->rng_uniform(c, t->data, t->numel, c->seed, c->rng_stream, tg_rng_take(c, t->numel), lo,
                       hi);
    return TG_OK;
}

void tg_tensor_set_requires_grad(tg_tensor *t, bool on) {
    if (t && t->is_leaf) t->requires_grad = on;
}

bool tg_tensor_requires_grad(const tg_tensor *t) { return t && t->requires_grad; }

const tg_tensor *tg_tensor_grad(const tg_tensor *t) {
    return (t && t->grad && t->grad_valid) ? t->grad : NULL;
}

void tg_tensor_zero_grad(tg_tensor *t) {
    if (t) t->grad_valid = false;
}

/* ---- op-result helpers -------------------------------------------------------------------- */
tg_tensor *tg_result(tg_ctx *ctx, int ndim, const int64_t *shape, const char *func) {
    int64_t numel;
    if (!shape_ok(ndim, shape, &numel, func)) return NULL;
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
    tg_error_settle();
    return t;
}

tg_tensor *tg_view(tg_ctx *ctx, tg_tensor *x, int ndim, const int64_t *shape, const char *fn) {
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

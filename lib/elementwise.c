/*
 * elementwise.c — tg_add, tg_sub, tg_mul, tg_scale, tg_sum, tg_mean, tg_reshape, tg_flatten,
 * tg_detach.
 */
#include "core.h"

#include <string.h>


static bool same_shape(const tg_tensor *a, const tg_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

enum { BIN_ADD, BIN_SUB, BIN_MUL };

static void binary_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *a = nd->in[0], *b = nd->in[1], *y = nd->out;
    const float *dy = y->grad->data;
    const int64_t n = y->numel;
    const int op = nd->p.binary.op;
    const tg_mem g = tg_mem_f32(dy, n);
    float *da = tg_grad_of(ctx, a);
    if (da) {
        if (op == BIN_MUL)
            ctx->be->mul(ctx, g, tg_mem_of(b), tg_mem_f32(da, n), 1);
        else
            ctx->be->axpby(ctx, 1.0f, g, 1.0f, tg_mem_f32(da, n));
    }
    /* a second pointer to the same tensor picks up its second contribution here */
    float *db = tg_grad_of(ctx, b);
    if (db) {
        if (op == BIN_MUL)
            ctx->be->mul(ctx, g, tg_mem_of(a), tg_mem_f32(db, n), 1);
        else
            ctx->be->axpby(ctx, op == BIN_SUB ? -1.0f : 1.0f, g, 1.0f, tg_mem_f32(db, n));
    }
}

static tg_tensor *binary(tg_ctx *ctx, tg_tensor *a, tg_tensor *b, int op, const char *fn) {
    if (!tg_check_in(ctx, a, fn, "a") || !tg_check_in(ctx, b, fn, "b")) return NULL;
    if (!same_shape(a, b)) {
        char ba[64], bb[64];
        tg_fail(TG_ERR_SHAPE, fn, "shapes %s and %s differ", SHP(a, ba), SHP(b, bb));
        return NULL;
    }
    tg_tensor *y = tg_result(ctx, a->ndim, a->shape, fn);
    if (!y) return NULL;
    const struct tg_backend_ops *be = ctx->be;
    if (op == BIN_MUL) {
        be->mul(ctx, tg_mem_of(a), tg_mem_of(b), tg_mem_of(y), 0);
    } else {
        be->copy(ctx, tg_mem_of(y), tg_mem_of(a));
        be->axpby(ctx, op == BIN_SUB ? -1.0f : 1.0f, tg_mem_of(b), 1.0f, tg_mem_of(y));
    }
    tg_tensor *in[2] = {a, b};
    if (tg_needs_grad(ctx, in, 2)) {
        tg_node *nd = tg_record(ctx, TG_OP_BINARY, binary_backward, y, in, 2, fn);
        if (!nd) return NULL;
        nd->p.binary.op = op;
    }
    return y;
}

tg_tensor *tg_add(tg_ctx *ctx, tg_tensor *a, tg_tensor *b) { return binary(ctx, a, b, BIN_ADD, "tg_add"); }
tg_tensor *tg_sub(tg_ctx *ctx, tg_tensor *a, tg_tensor *b) { return binary(ctx, a, b, BIN_SUB, "tg_sub"); }
tg_tensor *tg_mul(tg_ctx *ctx, tg_tensor *a, tg_tensor *b) { return binary(ctx, a, b, BIN_MUL, "tg_mul"); }

static void scale_backward(tg_ctx *ctx, tg_node *nd) {
    float *dx = tg_grad_of(ctx, nd->in[0]);
    if (dx) ctx->be->axpby(ctx, nd->p.scale.s, tg_mem_of(nd->out->grad), 1.0f, tg_mem_f32(dx, nd->out->numel));
}

tg_tensor *tg_scale(tg_ctx *ctx, tg_tensor *x, float s) {
    static const char *fn = "tg_scale";
    if (!tg_check_in(ctx, x, fn, "x")) return NULL;
    tg_tensor *y = tg_result(ctx, x->ndim, x->shape, fn);
    if (!y) return NULL;
    ctx->be->axpby(ctx, s, tg_mem_of(x), 0.0f, tg_mem_of(y));
    if (tg_needs_grad(ctx, &x, 1)) {
        tg_node *nd = tg_record(ctx, TG_OP_SCALE, scale_backward, y, &x, 1, fn);
        if (!nd) return NULL;
        nd->p.scale.s = s;
    }
    return y;
}

/* sum and mean: y = s * sum(x); dx += s * dy[0] */
static void reduce_backward(tg_ctx *ctx, tg_node *nd) {
    float *dx = tg_grad_of(ctx, nd->in[0]);
    if (dx) ctx->be->fill_scalar(ctx, tg_mem_f32(dx, nd->in[0]->numel), tg_mem_of(nd->out->grad), nd->p.scale.s, 1);
}

static tg_tensor *reduce(tg_ctx *ctx, tg_tensor *x, bool mean, const char *fn) {
    if (!tg_check_in(ctx, x, fn, "x")) return NULL;
    int64_t one = 1;
    tg_tensor *y = tg_result(ctx, 1, &one, fn);
    if (!y) return NULL;
    const float s = mean ? 1.0f / (float)x->numel : 1.0f;
    ctx->be->sum(ctx, tg_mem_of(x), s, tg_mem_of(y));
    if (tg_needs_grad(ctx, &x, 1)) {
        tg_node *nd = tg_record(ctx, TG_OP_REDUCE, reduce_backward, y, &x, 1, fn);
        if (!nd) return NULL;
        nd->p.scale.s = s;
    }
    return y;
}

tg_tensor *tg_sum(tg_ctx *ctx, tg_tensor *x) { return reduce(ctx, x, false, "tg_sum"); }
tg_tensor *tg_mean(tg_ctx *ctx, tg_tensor *x) { return reduce(ctx, x, true, "tg_mean"); }

static void reshape_backward(tg_ctx *ctx, tg_node *nd) {
    float *dx = tg_grad_of(ctx, nd->in[0]);
    if (dx) ctx->be->axpby(ctx, 1.0f, tg_mem_of(nd->out->grad), 1.0f, tg_mem_f32(dx, nd->out->numel));
}

tg_tensor *tg_detach(tg_ctx *ctx, tg_tensor *x) {
    if (!tg_check_in(ctx, x, "tg_detach", "x")) return NULL;
    return tg_view(ctx, x, x->ndim, x->shape, "tg_detach");
}

tg_tensor *tg_reshape(tg_ctx *ctx, tg_tensor *x, int ndim, const int64_t *shape) {
    static const char *fn = "tg_reshape";
    if (!tg_check_in(ctx, x, fn, "x")) return NULL;
    if (!shape) {
        tg_fail(TG_ERR_INVALID, fn, "shape is NULL");
        return NULL;
    }
    if (ndim < 1 || ndim > TG_MAX_DIMS) {
        tg_fail(TG_ERR_SHAPE, fn, "ndim %d outside 1..%d", ndim, TG_MAX_DIMS);
        return NULL;
    }
    /* the product of the given dims, checked (a wrapped product could match numel) */
    int64_t s[TG_MAX_DIMS], known = 1;
    int infer = -1;
    for (int i = 0; i < ndim; i++) {
        s[i] = shape[i];
        if (s[i] == -1 && infer < 0) {
            infer = i;
        } else if (s[i] <= 0) {
            tg_fail(TG_ERR_SHAPE, fn, "dimension %d is %lld (dims are >= 1, one may be -1)", i, (long long)s[i]);
            return NULL;
        } else if (!tg_mul_ok(known, s[i], &known) || known > x->numel) {
            char b[64];
            tg_fail(TG_ERR_SHAPE, fn, "cannot view %s (%lld elements): the dims given multiply to more",
                    SHP(x, b), (long long)x->numel);
            return NULL;
        }
    }
    if (infer >= 0) {
        if (x->numel % known != 0) {
            char b[64];
            tg_fail(TG_ERR_SHAPE, fn, "cannot view %s (%lld elements) with dims of product %lld and one -1",
                    SHP(x, b), (long long)x->numel, (long long)known);
            return NULL;
        }
        s[infer] = x->numel / known;
        known = x->numel;
    }
    if (known != x->numel) {
        char b[64];
        tg_fail(TG_ERR_SHAPE, fn, "cannot view %s (%lld elements) with %d dims of product %lld",
                SHP(x, b), (long long)x->numel, ndim, (long long)known);
        return NULL;
    }
    tg_tensor *y = tg_view(ctx, x, ndim, s, fn); /* no copy */
    if (!y) return NULL;
    if (tg_needs_grad(ctx, &x, 1) && !tg_record(ctx, TG_OP_RESHAPE, reshape_backward, y, &x, 1, fn)) return NULL;
    return y;
}

tg_tensor *tg_flatten(tg_ctx *ctx, tg_tensor *x) {
    TG_API_SCOPE("tg_flatten");
    if (!tg_check_in(ctx, x, "tg_flatten", "x")) return NULL;
    int64_t s[2] = {x->shape[0], x->numel / x->shape[0]};
    return tg_reshape(ctx, x, 2, s);
}

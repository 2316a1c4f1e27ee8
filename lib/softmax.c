/*
 * softmax.c — tg_softmax and tg_log_softmax over dimension 1 (channels) of [N,C] or [N,C,H,W],
 * and tg_cross_entropy against integer class labels (mean over the rows, optional label
 * smoothing), as torch.nn.functional's. The row math is in tg_math.h; kernels in lib/cpu/pool.c
 * and cuda/pool.cu.
 */
#include "core.h"

#include <stdio.h>

/* N, C and P (the product of the dimensions after C) of x, [N,C,...] */
static bool rows_of(tg_ctx *ctx, tg_tensor *x, const char *fn, const char *what, int64_t *N, int64_t *C, int64_t *P) {
    if (!tg_check_in(ctx, x, fn, what)) return false;
    if (x->ndim < 2) {
        char b[64];
        tg_fail(TG_ERR_SHAPE, fn, "%s must be [N,C] or [N,C,...], got %s", what, SHP(x, b));
        return false;
    }
    *N = x->shape[0], *C = x->shape[1], *P = x->numel / (x->shape[0] * x->shape[1]);
    return true;
}

static void softmax_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *x = nd->in[0], *y = nd->out;
    float *dx = tg_grad_of(ctx, x);
    if (!dx) return;
    const tg_ncp s = {x->shape[0], x->shape[1], x->numel / (x->shape[0] * x->shape[1])};
    ctx->be->softmax_bwd(ctx, s, nd->p.softmax.is_log, tg_mem_of(y), tg_mem_of(y->grad), tg_mem_f32(dx, x->numel));
}

static tg_tensor *softmax(tg_ctx *ctx, tg_tensor *x, int is_log, const char *fn) {
    int64_t N, C, P;
    if (!rows_of(ctx, x, fn, "x", &N, &C, &P)) return NULL;
    tg_tensor *y = tg_result(ctx, x->ndim, x->shape, fn);
    if (!y) return NULL;
    const tg_ncp s = {N, C, P};
    ctx->be->softmax_fwd(ctx, s, is_log, tg_mem_of(x), tg_mem_of(y));
    if (tg_needs_grad(ctx, &x, 1)) {
        tg_node *nd = tg_record(ctx, TG_OP_SOFTMAX, softmax_backward, y, &x, 1, fn);
        if (!nd) return NULL;
        nd->p.softmax.is_log = is_log;
    }
    return y;
}

tg_tensor *tg_softmax(tg_ctx *ctx, tg_tensor *x) { return softmax(ctx, x, 0, "tg_softmax"); }
tg_tensor *tg_log_softmax(tg_ctx *ctx, tg_tensor *x) { return softmax(ctx, x, 1, "tg_log_softmax"); }

static void xent_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *x = nd->in[0];
    float *dx = tg_grad_of(ctx, x);
    if (!dx) return;
    const int64_t N = x->shape[0], C = x->shape[1], P = x->numel / (N * C);
    const tg_xent e = {{N, C, P}, tg_mem_of(x), tg_mem_of(nd->saved[0]), nd->p.xent.smoothing};
    ctx->be->xent_bwd(ctx, &e, tg_mem_of(nd->out->grad), 1.0f / (float)(N * P), tg_mem_f32(dx, x->numel));
}

tg_tensor *tg_cross_entropy(tg_ctx *ctx, tg_tensor *logits, const int32_t *labels, float label_smoothing) {
    static const char *fn = "tg_cross_entropy";
    int64_t N, C, P;
    if (!rows_of(ctx, logits, fn, "logits", &N, &C, &P)) return NULL;
    if (logits->ndim != 2 && logits->ndim != 4) { /* the label count the caller passes follows from it */
        char b[64];
        tg_fail(TG_ERR_SHAPE, fn, "logits must be [N,C] or [N,C,H,W], got %s", SHP(logits, b));
        return NULL;
    }
    if (!labels) {
        tg_fail(TG_ERR_INVALID, fn, "labels is NULL");
        return NULL;
    }
    if (!(label_smoothing >= 0.0f && label_smoothing <= 1.0f)) {
        tg_fail(TG_ERR_INVALID, fn, "label_smoothing %g is not in [0, 1]", label_smoothing);
        return NULL;
    }
    for (int64_t i = 0; i < N * P; i++)
        if (labels[i] < 0 || labels[i] >= C) {
            tg_fail(TG_ERR_INVALID, fn, "label %lld is %d, outside the %lld classes 0..%lld", (long long)i, labels[i],
                    (long long)C, (long long)C - 1);
            return NULL;
        }
    const int64_t rows = N * P, one = 1;
    tg_tensor *lab = tg_result_typed(ctx, 1, &rows, TG_I32, fn), *per = tg_result(ctx, 1, &rows, fn);
    tg_tensor *y = tg_result(ctx, 1, &one, fn);
    if (!lab || !per || !y) return NULL;
    if (ctx->be->to_device(ctx, lab->data, labels, sizeof(int32_t) * (size_t)rows) != TG_OK) return NULL;
    const tg_xent e = {{N, C, P}, tg_mem_of(logits), tg_mem_of(lab), label_smoothing};
    ctx->be->xent_fwd(ctx, &e, tg_mem_of(per));
    ctx->be->sum(ctx, tg_mem_of(per), 1.0f / (float)rows, tg_mem_of(y));
    if (tg_needs_grad(ctx, &logits, 1)) {
        tg_node *nd = tg_record(ctx, TG_OP_XENT, xent_backward, y, &logits, 1, fn);
        if (!nd) return NULL;
        nd->saved[0] = lab;
        nd->p.xent.smoothing = label_smoothing;
    }
    return y;
}

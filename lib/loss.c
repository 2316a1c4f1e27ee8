/*
 * loss.c — tg_bce_with_logits (torch.nn.functional.binary_cross_entropy_with_logits, mean
 * reduction, stable for any logit) and tg_mse_loss (mean reduction).
 */
#include "core.h"

#include <string.h>


static void bce_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *x = nd->in[0], *t = nd->in[1];
    float *dx = tg_grad_of(ctx, x), *dt = tg_grad_of(ctx, t);
    if (dx || dt)
        ctx->be->bce_bwd(ctx, tg_mem_of(x), tg_mem_of(t), tg_mem_of(nd->out->grad), tg_mem_f32(dx, x->numel),
                         tg_mem_f32(dt, t->numel));
}

tg_tensor *tg_bce_with_logits(tg_ctx *ctx, tg_tensor *logits, tg_tensor *targets) {
    static const char *fn = "tg_bce_with_logits";
    if (!tg_check_in(ctx, logits, fn, "logits") || !tg_check_in(ctx, targets, fn, "targets"))
        return NULL;
    if (logits->ndim != targets->ndim ||
        memcmp(logits->shape, targets->shape, sizeof(int64_t) * (size_t)logits->ndim) != 0) {
        char a[64], b[64];
        tg_fail(TG_ERR_SHAPE, fn, "logits %s and targets %s must have the same shape",
                SHP(logits, a), SHP(targets, b));
        return NULL;
    }
    int64_t one = 1;
    tg_tensor *y = tg_result(ctx, 1, &one, fn);
    if (!y) return NULL;
    ctx->be->bce_fwd(ctx, tg_mem_of(logits), tg_mem_of(targets), tg_mem_of(y));
    tg_tensor *in[2] = {logits, targets};
    if (tg_needs_grad(ctx, in, 2) && !tg_record(ctx, TG_OP_BCE, bce_backward, y, in, 2, fn)) return NULL;
    return y;
}

tg_tensor *tg_mse_loss(tg_ctx *ctx, tg_tensor *a, tg_tensor *b) {
    static const char *fn = "tg_mse_loss";
    TG_API_SCOPE(fn);
    if (!tg_check_in(ctx, a, fn, "a") || !tg_check_in(ctx, b, fn, "b")) return NULL;
    if (a->ndim != b->ndim || memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim) != 0) {
        char sa[64], sb[64];
        tg_fail(TG_ERR_SHAPE, fn, "a %s and b %s must have the same shape", SHP(a, sa), SHP(b, sb));
        return NULL;
    }
    tg_tensor *d = tg_sub(ctx, a, b);
    return tg_mean(ctx, tg_mul(ctx, d, d));
}

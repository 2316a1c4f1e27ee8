/*
 * dropout.c — tg_dropout: in training, each element is kept with probability 1 - p and scaled by
 * 1 / (1 - p) (torch.nn.functional.dropout); the mask comes from the context's Philox stream, so
 * the CPU and CUDA draw the same mask from the same RNG position. In evaluation it is the input.
 */
#include "core.h"

static void dropout_backward(tg_ctx *ctx, tg_node *nd) {
    float *dx = tg_grad_of(ctx, nd->in[0]);
    if (dx) ctx->be->mul(ctx, tg_mem_of(nd->out->grad), tg_mem_of(nd->saved[0]), tg_mem_f32(dx, nd->out->numel), 1);
}

tg_tensor *tg_dropout(tg_ctx *ctx, tg_tensor *x, float p, bool training) {
    static const char *fn = "tg_dropout";
    if (!tg_check_in(ctx, x, fn, "x")) return NULL;
    if (!(p >= 0.0f && p < 1.0f)) {
        tg_fail(TG_ERR_INVALID, fn, "p %g is not in [0, 1)", p);
        return NULL;
    }
    if (!training || p == 0.0f) return x; /* the identity: x itself, its gradient path intact */
    tg_tensor *mask = tg_result(ctx, x->ndim, x->shape, fn), *y = tg_result(ctx, x->ndim, x->shape, fn);
    if (!mask || !y) return NULL;
    const tg_draw d = {TG_DRAW_DROPOUT, p, 0.0f, ctx->seed, tg_rng_take(ctx, x->numel), ctx->rng_stream};
    ctx->be->draw(ctx, tg_mem_of(mask), &d);
    ctx->be->mul(ctx, tg_mem_of(x), tg_mem_of(mask), tg_mem_of(y), 0);
    if (tg_needs_grad(ctx, &x, 1)) {
        tg_node *nd = tg_record(ctx, TG_OP_DROPOUT, dropout_backward, y, &x, 1, fn);
        if (!nd) return NULL;
        nd->saved[0] = mask;
    }
    return y;
}

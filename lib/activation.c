/*
 * activation.c — tg_leaky_relu, tg_relu, tg_tanh, tg_sigmoid (torch.nn.functional semantics).
 * One op body for all four; the per-element math is tg_unary_fwd1/bwd1 in tg_math.h.
 */
#include "core.h"

#include <math.h>

static void unary_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *x = nd->in[0], *y = nd->out;
    int acc;
    float *dx = tg_grad_write(ctx, x, &acc);
    if (dx) ctx->be->unary_bwd(ctx, nd->p.act, tg_mem_of(x), tg_mem_of(y), tg_mem_of(y->grad), tg_mem_f32(dx, x->numel), acc);
}

/* y = f(x) into y (a new result, or x's own storage), and the node with backward bw */
static tg_tensor *apply_unary(tg_ctx *ctx, tg_tensor *x, tg_tensor *y, int op, float a,
                              tg_backward_fn bw, const char *fn) {
    if (!y) return NULL;
    const tg_unary u = {op, a};
    ctx->be->unary_fwd(ctx, u, tg_mem_of(x), tg_mem_of(y));
    if (tg_needs_grad(ctx, &x, 1)) {
        tg_node *nd = tg_record(ctx, TG_OP_UNARY, bw, y, &x, 1, fn);
        if (!nd) return NULL;
        nd->p.act = u;
    }
    return y;
}

static tg_tensor *unary(tg_ctx *ctx, tg_tensor *x, int op, float a, const char *fn) {
    if (!tg_check_in(ctx, x, fn, "x")) return NULL;
    return apply_unary(ctx, x, tg_result(ctx, x->ndim, x->shape, fn), op, a, unary_backward, fn);
}

tg_tensor *tg_leaky_relu(tg_ctx *ctx, tg_tensor *x, float slope) {
    if (!isfinite(slope)) {
        if (tg_check_in(ctx, x, "tg_leaky_relu", "x")) tg_fail(TG_ERR_INVALID, "tg_leaky_relu", "slope %g is not finite", slope);
        return NULL;
    }
    return unary(ctx, x, TG_UN_LEAKY_RELU, slope, "tg_leaky_relu");
}
tg_tensor *tg_relu(tg_ctx *ctx, tg_tensor *x) { return unary(ctx, x, TG_UN_RELU, 0.0f, "tg_relu"); }
tg_tensor *tg_tanh(tg_ctx *ctx, tg_tensor *x) { return unary(ctx, x, TG_UN_TANH, 0.0f, "tg_tanh"); }
tg_tensor *tg_sigmoid(tg_ctx *ctx, tg_tensor *x) {
    return unary(ctx, x, TG_UN_SIGMOID, 0.0f, "tg_sigmoid");
}

/* ---- in place (see internal.h) ---------------------------------------------------------------
 * The sequential container applies an activation that follows a convolution or a dense layer in
 * place: that layer's output is read by nothing else (its own backward needs its input, not its
 * output), so one tensor per such layer is saved. The derivative is taken from the output alone:
 * tanh' = 1-y^2, sigmoid' = y(1-y), and for (leaky) ReLU with slope >= 0, y > 0 exactly when
 * x > 0 — the same formula tg_unary_bwd1 evaluates, with y passed as x. */
static void unary_inplace_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *x = nd->in[0], *y = nd->out;
    int acc;
    float *dx = tg_grad_write(ctx, x, &acc);
    if (dx) ctx->be->unary_bwd(ctx, nd->p.act, tg_mem_of(y), tg_mem_of(y), tg_mem_of(y->grad), tg_mem_f32(dx, x->numel), acc);
}

tg_tensor *tg_activation_inplace(tg_ctx *ctx, tg_tensor *x, int op, float a) {
    static const char *fn = "tg_activation";
    if (!tg_check_in(ctx, x, fn, "x")) return NULL;
    if ((op == TG_UN_LEAKY_RELU || op == TG_UN_RELU) && !(a >= 0.0f)) return unary(ctx, x, op, a, fn);
    return apply_unary(ctx, x, tg_view(ctx, x, x->ndim, x->shape, fn), op, a,
                       unary_inplace_backward, fn);
}

/*
 * batchnorm.c — tg_batch_norm, matching torch.nn.functional.batch_norm: training mode normalizes
 * with the batch's biased variance and (when running buffers are given) moves them with
 * `momentum` as the new value's weight, using the unbiased variance for running_var. Evaluation
 * mode normalizes with the running statistics.
 */
#include "internal.h"

#include <math.h>


static void bn_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *x = nd->in[0], *gamma = nd->in[1], *beta = nd->in[2];
    const int64_t N = x->shape[0], C = x->shape[1], P = x->numel / (N * C);
    int acc;
    float *dx = tg_grad_write(ctx, x, &acc);
    float *dg = gamma ? tg_grad_of(ctx, gamma) : NULL;
    float *db = beta ? tg_grad_of(ctx, beta) : NULL;
    if (!dx && !dg && !db) return;
    ctx->be->bn_bwd(ctx, x->data, nd->out->grad->data, N, C, P, gamma ? gamma->data : NULL,
                    nd->saved[0]->data, nd->saved[1]->data, nd->p.bn.training, dx, dg, db, acc);
}

static bool vec_ok(tg_ctx *ctx, tg_tensor *v, int64_t C, const char *fn, const char *what) {
    if (!v) return true;
    if (!tg_check_in(ctx, v, fn, what)) return false;
    if (v->ndim != 1 || v->shape[0] != C) {
        char b[64];
        tg_fail(TG_ERR_SHAPE, fn, "%s %s must be [%lld]", what, SHP(v, b), (long long)C);
        return false;
    }
    return true;
}

/* The argument checks shared by tg_batch_norm and the fused op. */
static bool bn_args_ok(tg_ctx *ctx, tg_tensor *x, tg_tensor *gamma, tg_tensor *beta,
                       tg_tensor *running_mean, tg_tensor *running_var, bool training,
                       float momentum, float eps, const char *fn) {
    if (!tg_check_in(ctx, x, fn, "x")) return false;
    char bx[64];
    if (x->ndim != 2 && x->ndim != 4) {
        tg_fail(TG_ERR_SHAPE, fn, "x %s must be [N,C] or [N,C,H,W]", SHP(x, bx));
        return false;
    }
    const int64_t N = x->shape[0], C = x->shape[1], P = x->numel / (N * C);
    if (!vec_ok(ctx, gamma, C, fn, "gamma") || !vec_ok(ctx, beta, C, fn, "beta") ||
        !vec_ok(ctx, running_mean, C, fn, "running_mean") ||
        !vec_ok(ctx, running_var, C, fn, "running_var"))
        return false;
    if (!running_mean != !running_var) {
        tg_fail(TG_ERR_INVALID, fn, "give both running_mean and running_var, or neither");
        return false;
    }
    if (!training && !running_mean) {
        tg_fail(TG_ERR_INVALID, fn, "evaluation mode needs running_mean and running_var");
        return false;
    }
    if (training && N * P < 2) {
        tg_fail(TG_ERR_SHAPE, fn, "x %s: training needs more than one value per channel",
                SHP(x, bx));
        return false;
    }
    if (!(eps > 0.0f) || !isfinite(eps) || !(momentum >= 0.0f && momentum <= 1.0f)) {
        tg_fail(TG_ERR_INVALID, fn, "eps %g must be > 0 and momentum %g in [0,1]", eps, momentum);
        return false;
    }
    return true;
}

/* The op result (x's shape) and the per-channel mean and invstd a backward needs; in evaluation
 * mode those two are filled from the running buffers. false (message set) on allocation failure. */
static bool bn_outputs(tg_ctx *ctx, tg_tensor *x, tg_tensor *running_mean, tg_tensor *running_var,
                       bool training, float eps, const char *fn, tg_tensor **y, tg_tensor **mean,
                       tg_tensor **invstd) {
    const int64_t C = x->shape[1];
    int64_t cs[1] = {C};
    *y = tg_result(ctx, x->ndim, x->shape, fn);
    *mean = *y ? tg_result(ctx, 1, cs, fn) : NULL;
    *invstd = *mean ? tg_result(ctx, 1, cs, fn) : NULL;
    if (!*invstd) return false;
    if (!training) {
        ctx->be->copy(ctx, (*mean)->data, running_mean->data, C);
        ctx->be->bn_invstd(ctx, running_var->data, C, eps, (*invstd)->data);
    }
    return true;
}

/* Records the backward of either form (the statistics are saved; slope only for the fused one). */
static bool bn_record(tg_ctx *ctx, tg_backward_fn fn_bw, tg_tensor *y, tg_tensor *x,
                      tg_tensor *gamma, tg_tensor *beta, tg_tensor *mean, tg_tensor *invstd,
                      bool training, float eps, float slope, const char *fn) {
    tg_tensor *in[3] = {x, gamma, beta};
    if (!tg_needs_grad(ctx, in, 3)) return true;
    tg_node *nd = tg_record(ctx, fn_bw, y, in, 3, fn);
    if (!nd) return false;
    nd->saved[0] = mean;
    nd->saved[1] = invstd;
    nd->p.bn.training = training;
    nd->p.bn.eps = eps;
    nd->p.bn.slope = slope;
    return true;
}

tg_tensor *tg_batch_norm(tg_ctx *ctx, tg_tensor *x, tg_tensor *gamma, tg_tensor *beta,
                         tg_tensor *running_mean, tg_tensor *running_var, bool training,
                         float momentum, float eps) {
    static const char *fn = "tg_batch_norm";
    if (!bn_args_ok(ctx, x, gamma, beta, running_mean, running_var, training, momentum, eps, fn))
        return NULL;
    const int64_t N = x->shape[0], C = x->shape[1], P = x->numel / (N * C);
    tg_tensor *y, *mean, *invstd;
    if (!bn_outputs(ctx, x, running_mean, running_var, training, eps, fn, &y, &mean, &invstd))
        return NULL;
    const struct tg_backend_ops *be = ctx->be;
    const float *g = gamma ? gamma->data : NULL, *b = beta ? beta->data : NULL;
    if (training)
        be->bn_fwd_train(ctx, x->data, N, C, P, g, b, eps, momentum,
                         running_mean ? running_mean->data : NULL,
                         running_var ? running_var->data : NULL, mean->data, invstd->data,
                         y->data);
    else
        be->bn_fwd_apply(ctx, x->data, N, C, P, mean->data, invstd->data, g, b, y->data);
    if (!bn_record(ctx, bn_backward, y, x, gamma, beta, mean, invstd, training, eps, 0.0f, fn))
        return NULL;
    return y;
}

/* ---- BatchNorm + (leaky) ReLU, fused ---------------------------------------------------------
 * The sequential container calls this for a BatchNorm module followed by a ReLU or a LeakyReLU
 * with a slope >= 0. On a backend with the fused primitives the BN output is never stored (one
 * tensor and one gradient fewer per layer, one pass fewer each way); the results are those of
 * the two ops, bit for bit. Elsewhere it is the two ops. */
static void bn_act_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *x = nd->in[0], *gamma = nd->in[1], *beta = nd->in[2], *z = nd->out;
    const int64_t N = x->shape[0], C = x->shape[1], P = x->numel / (N * C);
    int acc;
    float *dx = tg_grad_write(ctx, x, &acc);
    float *dg = gamma ? tg_grad_of(ctx, gamma) : NULL;
    float *db = beta ? tg_grad_of(ctx, beta) : NULL;
    if (!dx && !dg && !db) return;
    ctx->be->bn_act_bwd(ctx, x->data, beta ? beta->data : NULL, z->grad->data, N, C, P,
                        gamma ? gamma->data : NULL,
                        nd->saved[0]->data, nd->saved[1]->data, nd->p.bn.training,
                        nd->p.bn.slope, dx, dg, db, acc);
}

tg_tensor *tg_batch_norm_act(tg_ctx *ctx, tg_tensor *x, tg_tensor *gamma, tg_tensor *beta,
                             tg_tensor *running_mean, tg_tensor *running_var, bool training,
                             float momentum, float eps, float slope) {
    static const char *fn = "tg_batch_norm";
    if (!ctx || !ctx->be->bn_act_fwd || !(slope >= 0.0f)) {
        tg_tensor *y = tg_batch_norm(ctx, x, gamma, beta, running_mean, running_var, training,
                                     momentum, eps);
        return slope == 0.0f ? tg_relu(ctx, y) : tg_leaky_relu(ctx, y, slope);
    }
    if (!bn_args_ok(ctx, x, gamma, beta, running_mean, running_var, training, momentum, eps, fn))
        return NULL;
    const int64_t N = x->shape[0], C = x->shape[1], P = x->numel / (N * C);
    tg_tensor *z, *mean, *invstd;
    if (!bn_outputs(ctx, x, running_mean, running_var, training, eps, fn, &z, &mean, &invstd))
        return NULL;
    const struct tg_backend_ops *be = ctx->be;
    be->bn_act_fwd(ctx, x->data, N, C, P, gamma ? gamma->data : NULL, beta ? beta->data : NULL,
                   eps, momentum, training && running_mean ? running_mean->data : NULL,
                   training && running_var ? running_var->data : NULL, training, mean->data,
                   invstd->data, slope, z->data);
    if (!bn_record(ctx, bn_act_backward, z, x, gamma, beta, mean, invstd, training, eps, slope, fn))
        return NULL;
    return z;
}

/*
 * batchnorm.c — tg_batch_norm, matching torch.nn.functional.batch_norm: training mode normalizes
 * with the batch's biased variance and (when running buffers are given) moves them with
 * `momentum` as the new value's weight, using the unbiased variance for running_var. Evaluation
 * mode normalizes with the running statistics. tg_batch_norm_act (core.h) is the same op
 * followed by a (leaky) ReLU, as one: the BN output is never stored, and the backward
 * recomputes what it needs (results bit for bit those of the two ops).
 */
#include "core.h"

#include <math.h>

/* The backend's description of the op: shapes, tensors and settings (gamma, beta and the
 * running buffers may be absent). */
static tg_bn bn_desc(tg_tensor *x, tg_tensor *gamma, tg_tensor *beta, tg_tensor *rm, tg_tensor *rv, tg_tensor *mean,
                     tg_tensor *invstd, bool training, float momentum, float eps, int act, float slope) {
    const int64_t N = x->shape[0], C = x->shape[1];
    tg_bn b = {{N, C, x->numel / (N * C)}, tg_mem_of(x), tg_mem_of(gamma), tg_mem_of(beta), tg_mem_of(rm),
               tg_mem_of(rv), tg_mem_of(mean), tg_mem_of(invstd), eps, momentum, training, act, slope};
    return b;
}

static void bn_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *x = nd->in[0], *gamma = nd->in[1], *beta = nd->in[2], *y = nd->out;
    int acc;
    float *dx = tg_grad_write(ctx, x, &acc);
    float *dg = gamma ? tg_grad_of(ctx, gamma) : NULL;
    float *db = beta ? tg_grad_of(ctx, beta) : NULL;
    if (!dx && !dg && !db) return;
    const tg_bn b = bn_desc(x, gamma, beta, NULL, NULL, nd->saved[0], nd->saved[1], nd->p.bn.training, 0.0f,
                            nd->p.bn.eps, nd->p.bn.act, nd->p.bn.slope);
    ctx->be->bn_bwd(ctx, &b, tg_mem_of(y), tg_mem_of(y->grad), tg_mem_f32(dx, x->numel),
                    tg_mem_f32(dg, gamma ? gamma->numel : 0), tg_mem_f32(db, beta ? beta->numel : 0), acc);
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

/* The op, plain (act 0) or fused with a (leaky) ReLU (act 1, slope >= 0). */
static tg_tensor *bn_op(tg_ctx *ctx, tg_tensor *x, tg_tensor *gamma, tg_tensor *beta, tg_tensor *running_mean,
                        tg_tensor *running_var, bool training, float momentum, float eps, int act, float slope,
                        const char *fn) {
    if (!bn_args_ok(ctx, x, gamma, beta, running_mean, running_var, training, momentum, eps, fn)) return NULL;
    int64_t cs[1] = {x->shape[1]};
    tg_tensor *y = tg_result(ctx, x->ndim, x->shape, fn);
    tg_tensor *mean = y ? tg_result(ctx, 1, cs, fn) : NULL;
    tg_tensor *invstd = mean ? tg_result(ctx, 1, cs, fn) : NULL;
    if (!invstd) return NULL;
    const tg_bn b = bn_desc(x, gamma, beta, running_mean, running_var, mean, invstd, training, momentum, eps, act, slope);
    ctx->be->bn_fwd(ctx, &b, tg_mem_of(y));
    tg_tensor *in[3] = {x, gamma, beta};
    if (tg_needs_grad(ctx, in, 3)) {
        tg_node *nd = tg_record(ctx, TG_OP_BN, bn_backward, y, in, 3, fn);
        if (!nd) return NULL;
        nd->saved[0] = mean;
        nd->saved[1] = invstd;
        nd->p.bn.training = training;
        nd->p.bn.eps = eps;
        nd->p.bn.act = act;
        nd->p.bn.slope = slope;
        nd->p.bn.running_mean = running_mean;
        nd->p.bn.running_var = running_var;
    }
    return y;
}

tg_tensor *tg_batch_norm(tg_ctx *ctx, tg_tensor *x, tg_tensor *gamma, tg_tensor *beta,
                         tg_tensor *running_mean, tg_tensor *running_var, bool training,
                         float momentum, float eps) {
    return bn_op(ctx, x, gamma, beta, running_mean, running_var, training, momentum, eps, 0, 0.0f, "tg_batch_norm");
}

/* Public, and what a sequential (or tg_module_forward_act) runs for a BatchNorm module followed by
 * a ReLU or a LeakyReLU with a slope >= 0 (a negative slope runs the two ops). */
tg_tensor *tg_batch_norm_act(tg_ctx *ctx, tg_tensor *x, tg_tensor *gamma, tg_tensor *beta,
                             tg_tensor *running_mean, tg_tensor *running_var, bool training,
                             float momentum, float eps, float slope) {
    TG_API_SCOPE("tg_batch_norm_act");
    if (!isfinite(slope)) return tg_fail(TG_ERR_INVALID, "tg_batch_norm_act", "slope %g is not finite", slope), NULL;
    if (!(slope >= 0.0f)) {
        tg_tensor *y = tg_batch_norm(ctx, x, gamma, beta, running_mean, running_var, training, momentum, eps);
        return tg_leaky_relu(ctx, y, slope);
    }
    return bn_op(ctx, x, gamma, beta, running_mean, running_var, training, momentum, eps, 1, slope, "tg_batch_norm_act");
}

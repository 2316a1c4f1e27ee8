/*
 * module.c — the layers (conv, conv-transpose, dense, batch norm, activations, pooling, dropout,
 * upsampling, embedding, flatten, reshape): construction and forward; and running any module —
 * a layer, a sequential (children in order, with the BatchNorm + activation fusions) or a module
 * of the user's own (its forward function) — with tg_module_forward, tg_module_call and
 * tg_module_forward_act. Trees, names and flags are in module_tree.c; what changes weights
 * (initializers, moving average, spectral normalisation) in module_weights.c.
 */
#include "module.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


tg_module *tg_module_alloc(tg_ctx *ctx, mkind kind, const char *fn) {
    if (!ctx || ctx->closing) {
        tg_fail(TG_ERR_INVALID, fn, "ctx is %s", ctx ? "freed (tg_ctx_free)" : "NULL");
        return NULL;
    }
    tg_module *m = calloc(1, sizeof *m);
    if (!m) {
        tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
        return NULL;
    }
    m->ctx = ctx;
    m->kind = kind;
    m->training = true;
    return m;
}

/* a tensor the module owns (tg_tensor_free refuses it; tg_module_free frees it) */
static tg_tensor *owned(tg_ctx *ctx, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, const char *fn) {
    int64_t s[4] = {d0, d1, d2, d3};
    return tg_tensor_owned(ctx, ndim, s, fn);
}
static tg_tensor *param(tg_ctx *ctx, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3, const char *fn) {
    tg_tensor *t = owned(ctx, ndim, d0, d1, d2, d3, fn);
    if (t) t->requires_grad = true;
    return t;
}

static tg_module *conv_like(tg_ctx *ctx, mkind kind, int in_ch, int out_ch, int kernel,
                            int stride, int pad, bool bias, const char *fn) {
    TG_API_SCOPE(fn);
    if (in_ch < 1 || out_ch < 1 || kernel < 1 || stride < 1 || pad < 0) {
        tg_fail(TG_ERR_INVALID, fn, "in %d, out %d, kernel %d, stride %d, pad %d out of range",
                in_ch, out_ch, kernel, stride, pad);
        return NULL;
    }
    tg_module *m = tg_module_alloc(ctx, kind, fn);
    if (!m) return NULL;
    m->cfg.conv.stride = stride;
    m->cfg.conv.pad = pad;
    if (kind == M_CONV)
        m->weight = param(ctx, 4, out_ch, in_ch, kernel, kernel, fn);
    else
        m->weight = param(ctx, 4, in_ch, out_ch, kernel, kernel, fn);
    if (m->weight && bias) m->bias = param(ctx, 1, out_ch, 0, 0, 0, fn);
    if (!m->weight || (bias && !m->bias) || tg_module_default_init(m) != TG_OK) {
        tg_module_free(m);
        return NULL;
    }
    return m;
}

tg_module *tg_layer_conv2d(tg_ctx *ctx, int in_ch, int out_ch, int kernel, int stride, int pad,
                           bool bias) {
    return conv_like(ctx, M_CONV, in_ch, out_ch, kernel, stride, pad, bias, "tg_layer_conv2d");
}

tg_module *tg_layer_conv_transpose2d(tg_ctx *ctx, int in_ch, int out_ch, int kernel, int stride,
                                     int pad, bool bias) {
    return conv_like(ctx, M_CONVT, in_ch, out_ch, kernel, stride, pad, bias,
                     "tg_layer_conv_transpose2d");
}

tg_module *tg_layer_dense(tg_ctx *ctx, int in_features, int out_features, bool bias) {
    static const char *fn = "tg_layer_dense";
    TG_API_SCOPE(fn);
    if (in_features < 1 || out_features < 1) {
        tg_fail(TG_ERR_INVALID, fn, "in %d and out %d must be positive", in_features, out_features);
        return NULL;
    }
    tg_module *m = tg_module_alloc(ctx, M_DENSE, fn);
    if (!m) return NULL;
    m->weight = param(ctx, 2, out_features, in_features, 0, 0, fn);
    if (m->weight && bias) m->bias = param(ctx, 1, out_features, 0, 0, 0, fn);
    if (!m->weight || (bias && !m->bias) || tg_module_default_init(m) != TG_OK) {
        tg_module_free(m);
        return NULL;
    }
    return m;
}

tg_module *tg_layer_batch_norm(tg_ctx *ctx, int channels, float momentum, float eps) {
    static const char *fn = "tg_layer_batch_norm";
    TG_API_SCOPE(fn);
    if (channels < 1 || !(eps > 0.0f) || !isfinite(eps) || !(momentum >= 0.0f && momentum <= 1.0f)) {
        tg_fail(TG_ERR_INVALID, fn, "channels %d, momentum %g (0..1), eps %g (> 0)", channels,
                momentum, eps);
        return NULL;
    }
    tg_module *m = tg_module_alloc(ctx, M_BN, fn);
    if (!m) return NULL;
    m->cfg.bn.momentum = momentum;
    m->cfg.bn.eps = eps;
    m->weight = param(ctx, 1, channels, 0, 0, 0, fn);
    m->bias = param(ctx, 1, channels, 0, 0, 0, fn);
    m->running_mean = owned(ctx, 1, channels, 0, 0, 0, fn);
    m->running_var = owned(ctx, 1, channels, 0, 0, 0, fn);
    if (!m->weight || !m->bias || !m->running_mean || !m->running_var) {
        tg_module_free(m);
        return NULL;
    }
    tg_tensor_fill(m->weight, 1.0f);
    tg_tensor_fill(m->running_var, 1.0f);
    return m;
}

static tg_module *act(tg_ctx *ctx, int op, float slope, const char *fn) {
    if (!isfinite(slope)) {
        tg_fail(TG_ERR_INVALID, fn, "slope %g is not finite", slope);
        return NULL;
    }
    tg_module *m = tg_module_alloc(ctx, M_ACT, fn);
    if (m) {
        m->cfg.act.op = op;
        m->cfg.act.slope = slope;
    }
    return m;
}

tg_module *tg_layer_leaky_relu(tg_ctx *ctx, float slope) {
    return act(ctx, TG_UN_LEAKY_RELU, slope, "tg_layer_leaky_relu");
}
tg_module *tg_layer_relu(tg_ctx *ctx) { return act(ctx, TG_UN_RELU, 0.0f, "tg_layer_relu"); }
tg_module *tg_layer_tanh(tg_ctx *ctx) { return act(ctx, TG_UN_TANH, 0.0f, "tg_layer_tanh"); }
tg_module *tg_layer_sigmoid(tg_ctx *ctx) {
    return act(ctx, TG_UN_SIGMOID, 0.0f, "tg_layer_sigmoid");
}
tg_module *tg_layer_flatten(tg_ctx *ctx) { return tg_module_alloc(ctx, M_FLATTEN, "tg_layer_flatten"); }

tg_module *tg_layer_reshape(tg_ctx *ctx, int c, int h, int w) {
    if (c < 1 || h < 1 || w < 1) {
        tg_fail(TG_ERR_INVALID, "tg_layer_reshape", "c %d, h %d, w %d must be positive", c, h, w);
        return NULL;
    }
    tg_module *m = tg_module_alloc(ctx, M_RESHAPE, "tg_layer_reshape");
    if (m) {
        m->cfg.reshape.c = c;
        m->cfg.reshape.h = h;
        m->cfg.reshape.w = w;
    }
    return m;
}

static tg_module *pool_layer(tg_ctx *ctx, mkind kind, int kernel, int stride, int pad, const char *fn) {
    if (kernel < 1 || stride < 1 || pad < 0 || pad > kernel / 2) {
        tg_fail(TG_ERR_INVALID, fn, "kernel %d, stride %d, padding %d: kernel and stride >= 1, padding >= 0 and at most half the kernel",
                kernel, stride, pad);
        return NULL;
    }
    tg_module *m = tg_module_alloc(ctx, kind, fn);
    if (m) m->cfg.pool.kernel = kernel, m->cfg.pool.stride = stride, m->cfg.pool.pad = pad;
    return m;
}
tg_module *tg_layer_max_pool2d(tg_ctx *ctx, int kernel, int stride, int pad) {
    return pool_layer(ctx, M_MAXPOOL, kernel, stride, pad, "tg_layer_max_pool2d");
}
tg_module *tg_layer_avg_pool2d(tg_ctx *ctx, int kernel, int stride, int pad) {
    return pool_layer(ctx, M_AVGPOOL, kernel, stride, pad, "tg_layer_avg_pool2d");
}
tg_module *tg_layer_global_avg_pool2d(tg_ctx *ctx) { return tg_module_alloc(ctx, M_GAP, "tg_layer_global_avg_pool2d"); }
tg_module *tg_layer_dropout(tg_ctx *ctx, float p) {
    if (!(p >= 0.0f && p < 1.0f)) {
        tg_fail(TG_ERR_INVALID, "tg_layer_dropout", "p %g is not in [0, 1)", p);
        return NULL;
    }
    tg_module *m = tg_module_alloc(ctx, M_DROPOUT, "tg_layer_dropout");
    if (m) m->cfg.dropout.p = p;
    return m;
}

tg_module *tg_layer_upsample2(tg_ctx *ctx, bool bilinear) {
    tg_module *m = tg_module_alloc(ctx, M_UP2, "tg_layer_upsample2");
    if (m) m->cfg.up.bilinear = bilinear;
    return m;
}

tg_module *tg_layer_embedding(tg_ctx *ctx, int num, int dim) {
    static const char *fn = "tg_layer_embedding";
    TG_API_SCOPE(fn);
    if (num < 1 || dim < 1) {
        tg_fail(TG_ERR_INVALID, fn, "num %d and dim %d must be >= 1", num, dim);
        return NULL;
    }
    tg_module *m = tg_module_alloc(ctx, M_EMBED, fn);
    if (!m) return NULL;
    m->weight = param(ctx, 2, num, dim, 0, 0, fn);
    if (!m->weight || tg_init_normal(m->weight, 0.0f, 1.0f) != TG_OK) { /* PyTorch's N(0, 1) */
        tg_module_free(m);
        return NULL;
    }
    return m;
}

tg_tensor *tg_module_embed(tg_module *m, const int32_t *idx, int64_t n) {
    TG_API_SCOPE("tg_module_embed");
    if (!m || m->kind != M_EMBED) {
        tg_fail(TG_ERR_INVALID, "tg_module_embed", "the module is %s, not an embedding layer", m ? tg_module_kind_name(m) : "NULL");
        return NULL;
    }
    return tg_embedding(m->ctx, m->weight, idx, n);
}

/* A BatchNorm module on x; slope >= 0 fuses a following (leaky) ReLU (see tg_batch_norm_act). */
tg_tensor *tg_module_bn_forward(tg_module *m, tg_tensor *x, float slope) {
    tg_ctx *ctx = m->ctx;
    /* training: batch statistics; frozen: running buffers untouched */
    const bool train = m->training;
    tg_tensor *rm = train && m->frozen ? NULL : m->running_mean;
    tg_tensor *rv = train && m->frozen ? NULL : m->running_var;
    const float mom = m->cfg.bn.momentum, eps = m->cfg.bn.eps;
    if (slope < 0.0f) return tg_batch_norm(ctx, x, m->weight, m->bias, rm, rv, train, mom, eps);
    return tg_batch_norm_act(ctx, x, m->weight, m->bias, rm, rv, train, mom, eps, slope);
}

/* ---- forward, one function per kind ------------------------------------------------------ */
/* the weight a conv/dense layer computes with: spectrally normalised when asked (training mode
 * moves u and v first) */
static tg_tensor *layer_weight(tg_module *m) {
    if (!m->sn_u) return m->weight;
    return tg_spectral_norm(m->ctx, m->weight, m->sn_u, m->sn_v, m->training ? m->sn_iters : 0, m->sn_eps);
}
static tg_tensor *fwd_conv(tg_module *m, tg_tensor *x) {
    tg_tensor *w = layer_weight(m);
    return w ? tg_conv2d(m->ctx, x, w, m->bias, m->cfg.conv.stride, m->cfg.conv.pad) : NULL;
}
static tg_tensor *fwd_convt(tg_module *m, tg_tensor *x) {
    tg_tensor *w = layer_weight(m);
    return w ? tg_conv_transpose2d(m->ctx, x, w, m->bias, m->cfg.conv.stride, m->cfg.conv.pad) : NULL;
}
static tg_tensor *fwd_dense(tg_module *m, tg_tensor *x) {
    tg_tensor *w = layer_weight(m);
    return w ? tg_linear(m->ctx, x, w, m->bias) : NULL;
}
static tg_tensor *fwd_bn(tg_module *m, tg_tensor *x) { return tg_module_bn_forward(m, x, -1.0f); }
static tg_tensor *fwd_act(tg_module *m, tg_tensor *x) {
    switch (m->cfg.act.op) {
    case TG_UN_LEAKY_RELU: return tg_leaky_relu(m->ctx, x, m->cfg.act.slope);
    case TG_UN_RELU: return tg_relu(m->ctx, x);
    case TG_UN_TANH: return tg_tanh(m->ctx, x);
    default: return tg_sigmoid(m->ctx, x);
    }
}
static tg_tensor *fwd_flatten(tg_module *m, tg_tensor *x) { return tg_flatten(m->ctx, x); }
static tg_tensor *fwd_reshape(tg_module *m, tg_tensor *x) {
    int64_t s[4] = {x->shape[0], m->cfg.reshape.c, m->cfg.reshape.h, m->cfg.reshape.w};
    return tg_reshape(m->ctx, x, 4, s);
}
static tg_tensor *fwd_maxpool(tg_module *m, tg_tensor *x) {
    return tg_max_pool2d(m->ctx, x, m->cfg.pool.kernel, m->cfg.pool.stride, m->cfg.pool.pad);
}
static tg_tensor *fwd_avgpool(tg_module *m, tg_tensor *x) {
    return tg_avg_pool2d(m->ctx, x, m->cfg.pool.kernel, m->cfg.pool.stride, m->cfg.pool.pad);
}
static tg_tensor *fwd_gap(tg_module *m, tg_tensor *x) { return tg_global_avg_pool2d(m->ctx, x); }
static tg_tensor *fwd_dropout(tg_module *m, tg_tensor *x) { return tg_dropout(m->ctx, x, m->cfg.dropout.p, m->training); }
static tg_tensor *fwd_up2(tg_module *m, tg_tensor *x) { return tg_upsample2(m->ctx, x, m->cfg.up.bilinear != 0); }
static tg_tensor *fwd_embed(tg_module *m, tg_tensor *x) {
    (void)m, (void)x;
    tg_fail(TG_ERR_INVALID, "tg_module_forward", "an embedding layer takes indices: use tg_module_embed");
    return NULL;
}

/* Whether act (an activation layer) fuses with the layer before it: a BatchNorm with a ReLU or a
 * LeakyReLU of slope >= 0 runs as one op (the BatchNorm's output is never stored); a conv, conv-
 * transpose or dense layer's output is overwritten by a ReLU, a LeakyReLU of slope >= 0, a tanh
 * or a sigmoid (nothing else reads it). 1: the BatchNorm fusion, 2: in place, 0: neither. */
static int fusion(const tg_module *layer, const tg_module *act) {
    if (!act || act->kind != M_ACT) return 0;
    const int op = act->cfg.act.op;
    const float slope = act->cfg.act.slope;
    if (layer->kind == M_BN && (op == TG_UN_RELU || (op == TG_UN_LEAKY_RELU && slope >= 0.0f))) return 1;
    if ((layer->kind == M_CONV || layer->kind == M_CONVT || layer->kind == M_DENSE) &&
        (op == TG_UN_TANH || op == TG_UN_SIGMOID || slope >= 0.0f))
        return 2;
    return 0;
}

/* layer, then act, fused as fusion() says; each on the message path under its own name */
static tg_tensor *run_pair(tg_module *layer, tg_tensor *x, tg_module *act) {
    const int f = fusion(layer, act);
    if (f == 1) {
        tg_path_push(tg_module_name(layer), tg_module_kind_name(layer));
        tg_tensor *y = tg_module_bn_forward(layer, x, act->cfg.act.op == TG_UN_RELU ? 0.0f : act->cfg.act.slope);
        tg_path_pop();
        return y;
    }
    tg_tensor *y = tg_module_run(layer, &x, 1);
    if (!y) return NULL;
    if (f == 2) {
        tg_path_push(tg_module_name(act), tg_module_kind_name(act));
        y = tg_activation_inplace(act->ctx, y, act->cfg.act.op, act->cfg.act.slope);
        tg_path_pop();
        return y;
    }
    return tg_module_run(act, &y, 1);
}

/* A sequential runs its children in order; a layer followed by an activation it fuses with
 * (fusion()) runs as that pair. */
static tg_tensor *fwd_seq(tg_module *m, tg_tensor *x) {
    for (int i = 0; i < m->n_child && x; i++) {
        tg_module *c = m->child[i], *next = i + 1 < m->n_child ? m->child[i + 1] : NULL;
        if (fusion(c, next)) {
            x = run_pair(c, x, next);
            i++; /* the activation ran with it */
        } else {
            x = tg_module_run(c, &x, 1);
        }
    }
    return x;
}

static const struct {
    const char *name;
    tg_tensor *(*forward)(tg_module *m, tg_tensor *x); /* one input; NULL: M_USER (tg_module_run) */
} KINDS[] = {
    [M_CONV] = {"conv2d", fwd_conv},           [M_CONVT] = {"conv_transpose2d", fwd_convt},
    [M_DENSE] = {"dense", fwd_dense},          [M_BN] = {"batch_norm", fwd_bn},
    [M_ACT] = {"activation", fwd_act},         [M_FLATTEN] = {"flatten", fwd_flatten},
    [M_RESHAPE] = {"reshape", fwd_reshape},    [M_SEQ] = {"sequential", fwd_seq},
    [M_MAXPOOL] = {"max_pool2d", fwd_maxpool}, [M_AVGPOOL] = {"avg_pool2d", fwd_avgpool},
    [M_GAP] = {"global_avg_pool2d", fwd_gap},  [M_DROPOUT] = {"dropout", fwd_dropout},
    [M_UP2] = {"upsample2", fwd_up2},          [M_EMBED] = {"embedding", fwd_embed},
    [M_USER] = {"module", NULL},
};
_Static_assert(sizeof KINDS / sizeof KINDS[0] == M_USER + 1, "every module kind has a row in KINDS");

const char *tg_module_kind_name(const tg_module *m) { return KINDS[m->kind].name; }

tg_tensor *tg_module_run(tg_module *m, tg_tensor *const *in, int n) {
    if (m->parent) tg_path_push(tg_module_name(m), tg_module_kind_name(m));
    tg_tensor *y = NULL;
    if (m->kind == M_USER) {
        tg_error_settle(); /* so that a NULL with no failure behind it is told apart */
        y = m->cfg.user.fn(m, in, n, m->cfg.user.user);
        if (!y && !tg_error_pending())
            tg_fail(TG_ERR_INVALID, tg_api_current("tg_module_call"), "the module's forward function returned NULL "
                    "without a failure of the library behind it");
    } else if (tg_check_in(m->ctx, in[0], "tg_module_forward", "x")) { /* a layer or a sequential: n is 1 */
        y = KINDS[m->kind].forward(m, in[0]);
    }
    if (m->parent) tg_path_pop();
    return y;
}

/* A NULL module that a failed call just returned (tg_module_child inside a forward function)
 * keeps that call's message, as a NULL op input does (tg_check_in). */
static bool module_in(const tg_module *m, const char *fn, const char *what) {
    if (!m && !tg_error_pending()) tg_fail(TG_ERR_INVALID, fn, "%s is NULL", what);
    return m != NULL;
}

tg_tensor *tg_module_call(tg_module *m, tg_tensor *const *in, int n_in) {
    static const char *fn = "tg_module_call";
    TG_API_SCOPE(fn);
    if (!module_in(m, fn, "module")) return NULL;
    if (n_in < 1 || !in) return tg_fail(TG_ERR_INVALID, fn, "%s", !in ? "in is NULL" : "n_in must be at least 1"), NULL;
    if (m->kind != M_USER && n_in != 1)
        return tg_fail(TG_ERR_INVALID, fn, "a %s takes 1 input, not %d", tg_module_kind_name(m), n_in), NULL;
    for (int i = 0; i < n_in; i++) {
        char what[32];
        snprintf(what, sizeof what, "in[%d]", i);
        if (!tg_check_in(m->ctx, in[i], fn, what)) return NULL;
    }
    return tg_module_run(m, in, n_in);
}

tg_tensor *tg_module_forward(tg_module *m, tg_tensor *x) {
    static const char *fn = "tg_module_forward";
    TG_API_SCOPE(fn);
    if (!module_in(m, fn, "module")) return NULL;
    if (!tg_check_in(m->ctx, x, fn, "x")) return NULL;
    return tg_module_run(m, &x, 1);
}

tg_tensor *tg_module_forward_act(tg_module *layer, tg_tensor *x, tg_module *act) {
    static const char *fn = "tg_module_forward_act";
    TG_API_SCOPE(fn);
    if (!module_in(layer, fn, "layer") || !module_in(act, fn, "act")) return NULL;
    if (act->kind != M_ACT)
        return tg_fail(TG_ERR_INVALID, fn, "act is a %s, not an activation layer", tg_module_kind_name(act)), NULL;
    if (layer->ctx != act->ctx) return tg_fail(TG_ERR_DEVICE, fn, "layer and act belong to different contexts"), NULL;
    if (!tg_check_in(layer->ctx, x, fn, "x")) return NULL;
    return run_pair(layer, x, act);
}

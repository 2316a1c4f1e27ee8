/*
 * module.c — layers (conv, conv-transpose, dense, batch norm, activations, pooling, dropout,
 * upsampling, embedding, flatten, reshape) and the sequential container: construction, forward,
 * freeze and training flags, parameter and state enumeration with PyTorch-style names, freeing.
 * What changes a module's weights (initializers, moving average, spectral normalisation) is in
 * module_weights.c; struct tg_module in module.h.
 */
#include "module.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static tg_module *mod_new(tg_ctx *ctx, mkind kind, const char *fn) {
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
    tg_module *m = mod_new(ctx, kind, fn);
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
    tg_module *m = mod_new(ctx, M_DENSE, fn);
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
    tg_module *m = mod_new(ctx, M_BN, fn);
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
    tg_module *m = mod_new(ctx, M_ACT, fn);
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
tg_module *tg_layer_flatten(tg_ctx *ctx) { return mod_new(ctx, M_FLATTEN, "tg_layer_flatten"); }

tg_module *tg_layer_reshape(tg_ctx *ctx, int c, int h, int w) {
    if (c < 1 || h < 1 || w < 1) {
        tg_fail(TG_ERR_INVALID, "tg_layer_reshape", "c %d, h %d, w %d must be positive", c, h, w);
        return NULL;
    }
    tg_module *m = mod_new(ctx, M_RESHAPE, "tg_layer_reshape");
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
    tg_module *m = mod_new(ctx, kind, fn);
    if (m) m->cfg.pool.kernel = kernel, m->cfg.pool.stride = stride, m->cfg.pool.pad = pad;
    return m;
}
tg_module *tg_layer_max_pool2d(tg_ctx *ctx, int kernel, int stride, int pad) {
    return pool_layer(ctx, M_MAXPOOL, kernel, stride, pad, "tg_layer_max_pool2d");
}
tg_module *tg_layer_avg_pool2d(tg_ctx *ctx, int kernel, int stride, int pad) {
    return pool_layer(ctx, M_AVGPOOL, kernel, stride, pad, "tg_layer_avg_pool2d");
}
tg_module *tg_layer_global_avg_pool2d(tg_ctx *ctx) { return mod_new(ctx, M_GAP, "tg_layer_global_avg_pool2d"); }
tg_module *tg_layer_dropout(tg_ctx *ctx, float p) {
    if (!(p >= 0.0f && p < 1.0f)) {
        tg_fail(TG_ERR_INVALID, "tg_layer_dropout", "p %g is not in [0, 1)", p);
        return NULL;
    }
    tg_module *m = mod_new(ctx, M_DROPOUT, "tg_layer_dropout");
    if (m) m->cfg.dropout.p = p;
    return m;
}

tg_module *tg_layer_upsample2(tg_ctx *ctx, bool bilinear) {
    tg_module *m = mod_new(ctx, M_UP2, "tg_layer_upsample2");
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
    tg_module *m = mod_new(ctx, M_EMBED, fn);
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

tg_module *tg_sequential(tg_ctx *ctx) { return mod_new(ctx, M_SEQ, "tg_sequential"); }

/* whether a is m or one of m's ancestors */
static bool is_self_or_ancestor(const tg_module *a, const tg_module *m) {
    for (; m; m = m->parent)
        if (m == a) return true;
    return false;
}

tg_status tg_sequential_add(tg_module *seq, tg_module *layer) {
    static const char *fn = "tg_sequential_add";
    /* a module that belongs elsewhere (or would make a cycle) is refused and left as it is:
     * freeing it would pull it out of its owner */
    if (layer && layer->parent)
        return tg_fail(TG_ERR_INVALID, fn, "layer (%s) already belongs to a sequential: a module has one owner",
                       tg_module_kind_name(layer));
    if (layer && seq && is_self_or_ancestor(layer, seq))
        return tg_fail(TG_ERR_INVALID, fn, "adding the sequential to %s would make a cycle",
                       layer == seq ? "itself" : "one of its own children");
    if (!seq || seq->kind != M_SEQ) {
        tg_status st = tg_fail(TG_ERR_INVALID, fn, "seq is %s", seq ? "not a sequential" : "NULL");
        tg_module_free(layer);
        return st;
    }
    if (!layer) return tg_fail(TG_ERR_INVALID, fn, "layer is NULL (did its constructor fail?)");
    if (layer->ctx != seq->ctx) {
        tg_module_free(layer);
        return tg_fail(TG_ERR_DEVICE, fn, "layer belongs to another context");
    }
    if (seq->n_child == INT32_MAX) {
        tg_module_free(layer);
        return tg_fail(TG_ERR_INVALID, fn, "the sequential is full");
    }
    if (seq->n_child == seq->cap_child) {
        int cap = seq->cap_child ? seq->cap_child * 2 : 8;
        tg_module **c = realloc(seq->child, sizeof *c * (size_t)cap);
        if (!c) {
            tg_module_free(layer);
            return tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
        }
        seq->child = c;
        seq->cap_child = cap;
    }
    seq->child[seq->n_child++] = layer;
    layer->parent = seq;
    return TG_OK;
}

static bool is_seq(const tg_module *seq, const char *fn) {
    if (!seq || seq->kind != M_SEQ)
        tg_fail(TG_ERR_INVALID, fn, "seq is %s", seq ? "not a sequential" : "NULL");
    return seq && seq->kind == M_SEQ;
}

int tg_sequential_len(const tg_module *seq) {
    return is_seq(seq, "tg_sequential_len") ? seq->n_child : 0;
}

tg_module *tg_sequential_get(tg_module *seq, int i) {
    static const char *fn = "tg_sequential_get";
    if (!is_seq(seq, fn)) return NULL;
    if (i < 0 || i >= seq->n_child) {
        tg_fail(TG_ERR_INVALID, fn, "index %d is outside the sequential's %d children", i, seq->n_child);
        return NULL;
    }
    return seq->child[i];
}

/* A BatchNorm module on x; slope >= 0 fuses a following (leaky) ReLU (see tg_batch_norm_act). */
static tg_tensor *bn_forward(tg_module *m, tg_tensor *x, float slope) {
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
static tg_tensor *fwd_bn(tg_module *m, tg_tensor *x) { return bn_forward(m, x, -1.0f); }
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
    if (!tg_check_in(m->ctx, x, "tg_module_forward", "x")) return NULL;
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

/* A sequential runs its children in order, with two fusions: BatchNorm followed by a (leaky)
 * ReLU runs as one op, and an activation right after a conv/dense layer overwrites that layer's
 * output (nothing else reads it). */
static tg_tensor *module_forward(tg_module *m, tg_tensor *x);

/* (the messages of a failing child name it: tg_path_push) */
static tg_tensor *fwd_seq(tg_module *m, tg_tensor *x) {
    if (!tg_check_in(m->ctx, x, "tg_module_forward", "x")) return NULL;
    for (int i = 0; i < m->n_child && x; i++) {
        tg_module *c = m->child[i], *next = i + 1 < m->n_child ? m->child[i + 1] : NULL;
        const int nop = next && next->kind == M_ACT ? next->cfg.act.op : -1;
        const float nslope = next && next->kind == M_ACT ? next->cfg.act.slope : 0.0f;
        tg_path_push(i, tg_module_kind_name(c));
        if (c->kind == M_BN && (nop == TG_UN_RELU || (nop == TG_UN_LEAKY_RELU && nslope >= 0.0f))) {
            x = bn_forward(c, x, nop == TG_UN_RELU ? 0.0f : nslope);
            tg_path_pop();
            i++; /* the activation ran inside */
            continue;
        }
        x = module_forward(c, x);
        tg_path_pop();
        if (x && nop >= 0 && (c->kind == M_CONV || c->kind == M_CONVT || c->kind == M_DENSE) &&
            (nop == TG_UN_TANH || nop == TG_UN_SIGMOID || nslope >= 0.0f)) {
            tg_path_push(i + 1, tg_module_kind_name(next));
            x = tg_activation_inplace(m->ctx, x, nop, nslope);
            tg_path_pop();
            i++;
        }
    }
    return x;
}

static const struct {
    const char *name;
    tg_tensor *(*forward)(tg_module *m, tg_tensor *x);
} KINDS[] = {
    [M_CONV] = {"conv2d", fwd_conv},           [M_CONVT] = {"conv_transpose2d", fwd_convt},
    [M_DENSE] = {"dense", fwd_dense},          [M_BN] = {"batch_norm", fwd_bn},
    [M_ACT] = {"activation", fwd_act},         [M_FLATTEN] = {"flatten", fwd_flatten},
    [M_RESHAPE] = {"reshape", fwd_reshape},    [M_SEQ] = {"sequential", fwd_seq},
    [M_MAXPOOL] = {"max_pool2d", fwd_maxpool}, [M_AVGPOOL] = {"avg_pool2d", fwd_avgpool},
    [M_GAP] = {"global_avg_pool2d", fwd_gap},  [M_DROPOUT] = {"dropout", fwd_dropout},
    [M_UP2] = {"upsample2", fwd_up2},          [M_EMBED] = {"embedding", fwd_embed},
};
_Static_assert(sizeof KINDS / sizeof KINDS[0] == M_EMBED + 1, "every module kind has a row in KINDS");

const char *tg_module_kind_name(const tg_module *m) { return KINDS[m->kind].name; }

static tg_tensor *module_forward(tg_module *m, tg_tensor *x) { return KINDS[m->kind].forward(m, x); }

tg_tensor *tg_module_forward(tg_module *m, tg_tensor *x) {
    static const char *fn = "tg_module_forward";
    TG_API_SCOPE(fn);
    if (!m) {
        tg_fail(TG_ERR_INVALID, fn, "module is NULL");
        return NULL;
    }
    if (!tg_check_in(m->ctx, x, fn, "x")) return NULL;
    return module_forward(m, x);
}

/* Visits (name, tensor, is_param) in the fixed order. */
typedef void (*visit_fn)(void *u, const char *name, tg_tensor *t, bool is_param);

static void walk(tg_module *m, const char *prefix, visit_fn f, void *u) {
    char name[96];
    if (m->kind == M_SEQ) {
        for (int i = 0; i < m->n_child; i++) {
            snprintf(name, sizeof name, "%s%d.", prefix, i);
            walk(m->child[i], name, f, u);
        }
        return;
    }
    if (m->weight) {
        snprintf(name, sizeof name, m->sn_u ? "%sweight_orig" : "%sweight", prefix);
        f(u, name, m->weight, true);
    }
    if (m->bias) {
        snprintf(name, sizeof name, "%sbias", prefix);
        f(u, name, m->bias, true);
    }
    if (m->sn_u) { /* torch.nn.utils.spectral_norm's names */
        snprintf(name, sizeof name, "%sweight_u", prefix);
        f(u, name, m->sn_u, false);
        snprintf(name, sizeof name, "%sweight_v", prefix);
        f(u, name, m->sn_v, false);
    }
    if (m->running_mean) {
        snprintf(name, sizeof name, "%srunning_mean", prefix);
        f(u, name, m->running_mean, false);
        snprintf(name, sizeof name, "%srunning_var", prefix);
        f(u, name, m->running_var, false);
    }
}

typedef struct {
    tg_module *root;
    tg_tensor **out;
    const char **names;
    int max, count;
    bool params_only;
} collect_t;

static void collect(void *u, const char *name, tg_tensor *t, bool is_param) {
    collect_t *c = u;
    if (c->params_only && !is_param) return;
    if (c->count < c->max) {
        if (c->out) c->out[c->count] = t;
        if (c->names && c->root->names) {
            snprintf(c->root->names[c->count], sizeof c->root->names[0], "%s", name);
            c->names[c->count] = c->root->names[c->count];
        }
    }
    c->count++;
}

/* the shared checks of the two listings: -1 (with a message) for a NULL module, a negative max,
 * or no array for a positive max */
static bool listing_ok(const tg_module *m, const void *out, const void *names, int max, const char *fn) {
    if (!m) return tg_fail(TG_ERR_INVALID, fn, "module is NULL"), false;
    if (max < 0) return tg_fail(TG_ERR_INVALID, fn, "max %d is negative", max), false;
    if (max > 0 && !out && !names)
        return tg_fail(TG_ERR_INVALID, fn, "max is %d but there is no array to write into", max), false;
    return true;
}

int tg_module_params(tg_module *m, tg_tensor **out, int max) {
    if (!listing_ok(m, out, NULL, max, "tg_module_params")) return -1;
    collect_t c = {m, out, NULL, out ? max : 0, 0, true};
    walk(m, "", collect, &c);
    return c.count;
}

int tg_module_state(tg_module *m, const char **names, tg_tensor **out, int max) {
    if (!listing_ok(m, out, names, max, "tg_module_state")) return -1;
    collect_t c = {m, NULL, NULL, 0, 0, false};
    walk(m, "", collect, &c); /* count first, to size the name storage */
    if (c.count > m->n_names) {
        void *p = realloc(m->names, sizeof *m->names * (size_t)c.count);
        if (!p) {
            tg_fail(TG_ERR_NOMEM, "tg_module_state", "out of host memory");
            return -1;
        }
        m->names = p;
        m->n_names = c.count;
    }
    collect_t d = {m, out, names, max, 0, false};
    walk(m, "", collect, &d);
    return d.count;
}

/* every BatchNorm's running mean and variance, in the tree's order */
static int bn_stats(const tg_module *m, tg_tensor **out, int max, int n) {
    if (m->running_mean) {
        if (n < max) out[n] = m->running_mean;
        if (n + 1 < max) out[n + 1] = m->running_var;
        n += 2;
    }
    for (int i = 0; i < m->n_child; i++) n = bn_stats(m->child[i], out, max, n);
    return n;
}

int tg_module_batch_norm_stats(tg_module *m, tg_tensor **out, int max) {
    if (!listing_ok(m, out, NULL, max, "tg_module_batch_norm_stats")) return -1;
    return bn_stats(m, out, out ? max : 0, 0);
}

void tg_module_set_frozen(tg_module *m, bool frozen) {
    if (!m) {
        tg_fail(TG_ERR_INVALID, "tg_module_set_frozen", "module is NULL");
        return;
    }
    m->frozen = frozen;
    if (m->weight) m->weight->requires_grad = !frozen;
    if (m->bias) m->bias->requires_grad = !frozen;
    for (int i = 0; i < m->n_child; i++) tg_module_set_frozen(m->child[i], frozen);
}

bool tg_module_frozen(const tg_module *m) {
    if (!m) tg_fail(TG_ERR_INVALID, "tg_module_frozen", "module is NULL");
    return m && m->frozen;
}

void tg_module_set_training(tg_module *m, bool training) {
    if (!m) {
        tg_fail(TG_ERR_INVALID, "tg_module_set_training", "module is NULL");
        return;
    }
    m->training = training;
    for (int i = 0; i < m->n_child; i++) tg_module_set_training(m->child[i], training);
}

static void module_destroy(tg_module *m) {
    for (int i = 0; i < m->n_child; i++) module_destroy(m->child[i]);
    free(m->child);
    tg_tensor_release(m->weight);
    tg_tensor_release(m->bias);
    tg_tensor_release(m->running_mean);
    tg_tensor_release(m->running_var);
    tg_tensor_release(m->sn_u);
    tg_tensor_release(m->sn_v);
    free(m->names);
    free(m);
}

void tg_module_free(tg_module *m) {
    if (!m) return;
    if (m->parent) {
        tg_fail(TG_ERR_INVALID, "tg_module_free", "the module (%s) belongs to a sequential, which frees it",
                tg_module_kind_name(m));
        return;
    }
    module_destroy(m);
}

/*
 * module_weights.c — what changes a module's weights rather than computing with them:
 * initializers (PyTorch's default, Glorot, normal, zeros), the exponential moving average of
 * one module's parameters into another's, and setting up spectral normalisation (the per-forward
 * power iteration is in module.c's layer_weight).
 */
#include "module.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* PyTorch's default: weight kaiming_uniform(a=sqrt(5)) == U(+-1/sqrt(fan_in)), bias the same. */
tg_status tg_module_default_init(tg_module *m) {
    tg_tensor *w = m->weight;
    int64_t rf = w->ndim == 4 ? w->shape[2] * w->shape[3] : 1;
    float bound = 1.0f / sqrtf((float)(w->shape[1] * rf));
    tg_status s = tg_tensor_fill_uniform(w, -bound, bound);
    if (!s && m->bias) s = tg_tensor_fill_uniform(m->bias, -bound, bound);
    return s;
}

/* ---- initializers ------------------------------------------------------------------------- */
static void fans(const tg_tensor *t, double *fan_in, double *fan_out) {
    double rf = 1.0;
    for (int i = 2; i < t->ndim; i++) rf *= (double)t->shape[i];
    *fan_in = (t->ndim >= 2 ? (double)t->shape[1] : (double)t->shape[0]) * rf;
    *fan_out = (double)t->shape[0] * rf;
}

tg_status tg_init_normal(tg_tensor *t, float mean, float std) {
    TG_API_SCOPE("tg_init_normal");
    return tg_tensor_fill_normal(t, mean, std);
}

tg_status tg_init_glorot_uniform(tg_tensor *t) {
    TG_API_SCOPE("tg_init_glorot_uniform");
    if (!t) return tg_fail(TG_ERR_INVALID, "tg_init_glorot_uniform", "tensor is NULL");
    double fi, fo;
    fans(t, &fi, &fo);
    float limit = (float)sqrt(6.0 / (fi + fo));
    return tg_tensor_fill_uniform(t, -limit, limit);
}

tg_status tg_init_zeros(tg_tensor *t) {
    TG_API_SCOPE("tg_init_zeros");
    return tg_tensor_fill(t, 0.0f);
}

tg_status tg_module_init(tg_module *m, tg_init_kind weights, float std, float bn_std) {
    static const char *fn = "tg_module_init";
    TG_API_SCOPE(fn);
    if (!m) return tg_fail(TG_ERR_INVALID, fn, "module is NULL");
    if (weights != TG_INIT_DEFAULT && weights != TG_INIT_GLOROT_UNIFORM && weights != TG_INIT_NORMAL)
        return tg_fail(TG_ERR_INVALID, fn, "unknown init %d", (int)weights);
    if (!(std >= 0.0f) || !isfinite(std) || !(bn_std >= 0.0f) || !isfinite(bn_std))
        return tg_fail(TG_ERR_INVALID, fn, "std %g and bn_std %g must be finite and >= 0", std, bn_std);
    tg_status s = TG_OK;
    for (int i = 0; i < m->n_child && !s; i++) s = tg_module_init(m->child[i], weights, std, bn_std);
    if (s) return s;
    if (m->kind == M_CONV || m->kind == M_CONVT || m->kind == M_DENSE) {
        switch (weights) {
        case TG_INIT_DEFAULT: return tg_module_default_init(m);
        case TG_INIT_GLOROT_UNIFORM: s = tg_init_glorot_uniform(m->weight); break;
        case TG_INIT_NORMAL: s = tg_init_normal(m->weight, 0.0f, std); break;
        default: return tg_fail(TG_ERR_INVALID, "tg_module_init", "unknown init %d", (int)weights);
        }
        if (!s && m->bias) s = tg_init_zeros(m->bias);
    } else if (m->kind == M_BN) {
        s = bn_std > 0.0f ? tg_init_normal(m->weight, 1.0f, bn_std) : tg_tensor_fill(m->weight, 1.0f);
        if (!s) s = tg_init_zeros(m->bias);
    }
    return s;
}

/* ---- averaging ----------------------------------------------------------------------------- */
tg_status tg_module_ema(tg_module *avg, tg_module *src, float decay) {
    static const char *fn = "tg_module_ema";
    TG_API_SCOPE(fn);
    if (!avg || !src) return tg_fail(TG_ERR_INVALID, fn, "%s is NULL", avg ? "src" : "avg");
    if (!(decay >= 0.0f && decay <= 1.0f)) return tg_fail(TG_ERR_INVALID, fn, "decay %g is not in [0, 1]", decay);
    if (avg->ctx != src->ctx) return tg_fail(TG_ERR_DEVICE, fn, "the two modules belong to different contexts");
    const int n = tg_module_params(src, NULL, 0);
    if (tg_module_params(avg, NULL, 0) != n)
        return tg_fail(TG_ERR_SHAPE, fn, "the modules have %d and %d parameters", tg_module_params(avg, NULL, 0), n);
    tg_tensor **a = malloc(sizeof *a * (size_t)(n ? n : 1) * 2);
    if (!a) return tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
    tg_tensor **s = a + n;
    tg_module_params(avg, a, n);
    tg_module_params(src, s, n);
    for (int i = 0; i < n; i++)
        if (a[i]->ndim != s[i]->ndim || memcmp(a[i]->shape, s[i]->shape, sizeof(int64_t) * (size_t)a[i]->ndim)) {
            char b1[64], b2[64];
            tg_status st = tg_fail(TG_ERR_SHAPE, fn, "parameter %d is %s in the average and %s in the source", i,
                                   SHP(a[i], b1), SHP(s[i], b2));
            free(a);
            return st;
        }
    tg_ctx *ctx = avg->ctx;
    for (int i = 0; i < n; i++) ctx->be->axpby(ctx, 1.0f - decay, tg_mem_of(s[i]), decay, tg_mem_of(a[i]));
    free(a);
    return ctx->be->check(ctx, fn);
}

/* ---- spectral normalisation ----------------------------------------------------------------- */
/* a random unit vector of n elements */
static tg_tensor *unit_random(tg_ctx *ctx, int64_t n) {
    tg_tensor *t = tg_tensor_owned(ctx, 1, &n, "tg_module_spectral_norm");
    float *h = t ? malloc(sizeof(float) * (size_t)n) : NULL;
    if (!h || tg_tensor_fill_normal(t, 0.0f, 1.0f) || tg_tensor_read(t, h, n)) {
        if (!h && t) tg_fail(TG_ERR_NOMEM, "tg_module_spectral_norm", "out of host memory");
        free(h);
        tg_tensor_release(t);
        return NULL;
    }
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)h[i] * h[i];
    const double inv = 1.0 / fmax(sqrt(s), 1e-12);
    for (int64_t i = 0; i < n; i++) h[i] = (float)(h[i] * inv);
    tg_status st = tg_tensor_write(t, h, n);
    free(h);
    if (st) {
        tg_tensor_release(t);
        return NULL;
    }
    return t;
}

/* conv2d and dense layers in m's tree (those already spectrally normalised when `done`) */
static int sn_count(const tg_module *m, bool done) {
    int n = 0;
    if ((m->kind == M_CONV || m->kind == M_DENSE) && (!done || m->sn_u)) n++;
    for (int i = 0; i < m->n_child; i++) n += sn_count(m->child[i], done);
    return n;
}

tg_status tg_module_spectral_norm(tg_module *m, int power_iters, float eps) {
    static const char *fn = "tg_module_spectral_norm";
    TG_API_SCOPE(fn);
    if (!m) return tg_fail(TG_ERR_INVALID, fn, "module is NULL");
    if (power_iters < 1 || !(eps > 0.0f) || !isfinite(eps))
        return tg_fail(TG_ERR_INVALID, fn, "power_iters %d must be >= 1 and eps %g > 0", power_iters, eps);
    if (m->kind == M_SEQ || m->kind == M_USER) {
        /* checked first, so that a refusal leaves no layer half-done */
        if (sn_count(m, true) > 0)
            return tg_fail(TG_ERR_INVALID, fn, "a layer of the %s is already spectrally normalised", tg_module_kind_name(m));
        if (sn_count(m, false) == 0) return tg_fail(TG_ERR_INVALID, fn, "the %s holds no conv2d or dense layer", tg_module_kind_name(m));
        for (int i = 0; i < m->n_child; i++) {
            if (sn_count(m->child[i], false) == 0) continue; /* nothing to normalise there */
            tg_status st = tg_module_spectral_norm(m->child[i], power_iters, eps);
            if (st) return st; /* out of memory only */
        }
        return TG_OK;
    }
    if (m->kind != M_CONV && m->kind != M_DENSE)
        return tg_fail(TG_ERR_INVALID, fn, "only conv2d and dense layers (and modules holding them) are supported, not %s",
                       tg_module_kind_name(m));
    if (m->sn_u) return tg_fail(TG_ERR_INVALID, fn, "the layer is already spectrally normalised");
    const int64_t rows = m->weight->shape[0], cols = m->weight->numel / rows;
    tg_tensor *u = unit_random(m->ctx, rows), *v = u ? unit_random(m->ctx, cols) : NULL;
    if (!u || !v) {
        tg_tensor_release(u);
        return tg_last_status();
    }
    m->sn_u = u, m->sn_v = v;
    m->sn_iters = power_iters, m->sn_eps = eps;
    return TG_OK;
}

/*
 * optim.c — Adam (torch.optim.Adam, with a Keras epsilon option) and SGD with momentum
 * (torch.optim.SGD, dampening 0). Each parameter has its own step count; a parameter that does
 * not require a gradient (frozen) or has none since zero_grad is skipped and nothing of its
 * state changes. The element updates are tg_adam1/tg_sgd1 in tg_math.h; the backend applies them
 * to all parameters in one call (one fused kernel on CUDA).
 */
#include "core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OPT_ADAM, OPT_SGD } okind;

struct tg_optim {
    tg_ctx *ctx;
    okind kind;
    int n;
    tg_tensor **params;
    tg_tensor **m, **v;   /* Adam moments; SGD: m = momentum buffers (NULL when momentum 0) */
    int64_t *steps;
    float lr, beta1, beta2, eps, momentum;
    int keras_eps;
    bool check_finite;    /* tg_optim_set_check_finite */
    void *items;          /* scratch for the backend call, n entries */
    int refs;             /* the creator's, and each state that registered it (tg_state_add_optim) */
    bool caller_freed;
};

static tg_optim *optim_new(tg_ctx *ctx, tg_tensor **params, int n, okind kind, const char *fn) {
    if (!ctx || (!params && n > 0) || n < 0) {
        tg_fail(TG_ERR_INVALID, fn, "ctx or params is NULL, or n %d < 0", n);
        return NULL;
    }
    if (ctx->closing) {
        tg_fail(TG_ERR_INVALID, fn, "ctx was freed (tg_ctx_free)");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (!params[i]) {
            tg_fail(TG_ERR_INVALID, fn, "params[%d] is NULL", i);
            return NULL;
        }
        for (int j = 0; j < i; j++)
            if (params[j] == params[i]) { /* it would be stepped twice per step */
                tg_fail(TG_ERR_INVALID, fn, "params[%d] and params[%d] are the same tensor", j, i);
                return NULL;
            }
        if (params[i]->ctx != ctx) {
            tg_fail(TG_ERR_DEVICE, fn, "params[%d] belongs to another context", i);
            return NULL;
        }
        if (!params[i]->is_leaf) {
            tg_fail(TG_ERR_INVALID, fn, "params[%d] is an op result, not a leaf tensor", i);
            return NULL;
        }
    }
    tg_optim *o = calloc(1, sizeof *o);
    if (!o) goto nomem;
    o->ctx = ctx;
    o->kind = kind;
    o->n = n;
    o->refs = 1;
    size_t k = n ? (size_t)n : 1;
    o->params = calloc(k, sizeof *o->params);
    o->m = calloc(k, sizeof *o->m);
    o->v = calloc(k, sizeof *o->v);
    o->steps = calloc(k, sizeof *o->steps);
    o->items = calloc(k, sizeof(tg_adam_item) > sizeof(tg_sgd_item) ? sizeof(tg_adam_item)
                                                                    : sizeof(tg_sgd_item));
    if (!o->params || !o->m || !o->v || !o->steps || !o->items) goto nomem;
    if (n) memcpy(o->params, params, sizeof *params * (size_t)n);
    for (int i = 0; i < n; i++) tg_tensor_retain(params[i]); /* they stay while o does */
    return o;
nomem:
    tg_optim_free(o);
    tg_fail(TG_ERR_NOMEM, fn, "out of memory");
    return NULL;
}

static bool alloc_state(tg_optim *o, tg_tensor **arr, const char *fn) {
    for (int i = 0; i < o->n; i++) {
        arr[i] = tg_tensor_owned(o->ctx, o->params[i]->ndim, o->params[i]->shape, fn);
        if (!arr[i]) {
            tg_fail(TG_ERR_NOMEM, fn, "cannot allocate optimizer state for params[%d]", i);
            return false;
        }
    }
    return true;
}

tg_optim *tg_adam(tg_ctx *ctx, tg_tensor **params, int n, float lr, float beta1, float beta2,
                  float eps) {
    static const char *fn = "tg_adam";
    if (!(lr >= 0.0f) || !isfinite(lr) || !(beta1 >= 0.0f && beta1 < 1.0f) ||
        !(beta2 >= 0.0f && beta2 < 1.0f) || !(eps >= 0.0f) || !isfinite(eps)) {
        tg_fail(TG_ERR_INVALID, fn, "lr %g, beta1 %g, beta2 %g, eps %g out of range", lr, beta1,
                beta2, eps);
        return NULL;
    }
    tg_optim *o = optim_new(ctx, params, n, OPT_ADAM, fn);
    if (!o) return NULL;
    o->lr = lr;
    o->beta1 = beta1;
    o->beta2 = beta2;
    o->eps = eps;
    if (!alloc_state(o, o->m, fn) || !alloc_state(o, o->v, fn)) {
        tg_optim_free(o);
        return NULL;
    }
    return o;
}

tg_status tg_adam_set_eps_mode(tg_optim *o, tg_adam_eps_mode mode) {
    static const char *fn = "tg_adam_set_eps_mode";
    if (!o) return tg_fail(TG_ERR_INVALID, fn, "optimizer is NULL");
    if (o->kind != OPT_ADAM) return tg_fail(TG_ERR_INVALID, fn, "the optimizer is SGD, not Adam");
    if (mode != TG_ADAM_EPS_PYTORCH && mode != TG_ADAM_EPS_KERAS)
        return tg_fail(TG_ERR_INVALID, fn, "unknown mode %d (TG_ADAM_EPS_PYTORCH or TG_ADAM_EPS_KERAS)", (int)mode);
    o->keras_eps = mode == TG_ADAM_EPS_KERAS;
    return TG_OK;
}

tg_optim *tg_sgd(tg_ctx *ctx, tg_tensor **params, int n, float lr, float momentum) {
    static const char *fn = "tg_sgd";
    if (!(lr >= 0.0f) || !isfinite(lr) || !(momentum >= 0.0f) || !isfinite(momentum)) {
        tg_fail(TG_ERR_INVALID, fn, "lr %g and momentum %g must be finite and >= 0", lr, momentum);
        return NULL;
    }
    tg_optim *o = optim_new(ctx, params, n, OPT_SGD, fn);
    if (!o) return NULL;
    o->lr = lr;
    o->momentum = momentum;
    if (momentum != 0.0f && !alloc_state(o, o->m, fn)) {
        tg_optim_free(o);
        return NULL;
    }
    return o;
}

void tg_optim_set_check_finite(tg_optim *o, bool on) {
    if (!o) tg_fail(TG_ERR_INVALID, "tg_optim_set_check_finite", "optimizer is NULL");
    else o->check_finite = on;
}

tg_status tg_optim_step(tg_optim *o) {
    static const char *fn = "tg_optim_step";
    if (!o) return tg_fail(TG_ERR_INVALID, fn, "optimizer is NULL");
    for (int i = 0; i < o->n && o->check_finite; i++) { /* before anything changes */
        tg_tensor *p = o->params[i];
        if (!p->requires_grad || !p->grad || !p->grad_valid) continue;
        char what[48];
        snprintf(what, sizeof what, "the gradient of params[%d]", i);
        tg_status st = tg_check_finite_named(p->grad, fn, what);
        if (st) return st;
    }
    int count = 0;
    if (o->kind == OPT_ADAM) {
        tg_adam_item *it = o->items;
        for (int i = 0; i < o->n; i++) {
            tg_tensor *p = o->params[i];
            if (!p->requires_grad || !p->grad || !p->grad_valid) continue;
            int64_t t = ++o->steps[i];
            it[count] = (tg_adam_item){p->data, p->grad->data, o->m[i]->data, o->v[i]->data,
                                       p->numel, (float)(1.0 - pow(o->beta1, (double)t)),
                                       (float)(1.0 - pow(o->beta2, (double)t))};
            count++;
        }
        tg_adam_hyper h = {o->lr, o->beta1, o->beta2, o->eps, 0.0f, 0.0f, o->keras_eps};
        if (count) {
            tg_status s = o->ctx->be->adam(o->ctx, it, count, &h);
            if (s) return s;
        }
    } else {
        tg_sgd_item *it = o->items;
        for (int i = 0; i < o->n; i++) {
            tg_tensor *p = o->params[i];
            if (!p->requires_grad || !p->grad || !p->grad_valid) continue;
            it[count] = (tg_sgd_item){p->data, p->grad->data, o->m[i] ? o->m[i]->data : NULL,
                                      p->numel, o->steps[i] == 0};
            o->steps[i]++;
            count++;
        }
        if (count) {
            tg_status s = o->ctx->be->sgd(o->ctx, it, count, o->lr, o->momentum);
            if (s) return s;
        }
    }
    return o->ctx->be->check(o->ctx, fn);
}

void tg_optim_zero_grad(tg_optim *o) {
    if (!o) {
        tg_fail(TG_ERR_INVALID, "tg_optim_zero_grad", "optimizer is NULL");
        return;
    }
    for (int i = 0; i < o->n; i++) o->params[i]->grad_valid = false;
}

tg_status tg_optim_set_lr(tg_optim *o, float lr) {
    static const char *fn = "tg_optim_set_lr";
    if (!o) return tg_fail(TG_ERR_INVALID, fn, "optimizer is NULL");
    if (!(lr >= 0.0f) || !isfinite(lr)) return tg_fail(TG_ERR_INVALID, fn, "lr %g must be finite and >= 0", lr);
    o->lr = lr;
    return TG_OK;
}
float tg_optim_lr(const tg_optim *o) {
    if (!o) tg_fail(TG_ERR_INVALID, "tg_optim_lr", "optimizer is NULL");
    return o ? o->lr : 0.0f;
}

void tg_optim_retain(tg_optim *o) { o->refs++; }

void tg_optim_release(tg_optim *o) {
    if (!o || --o->refs > 0) return;
    for (int i = 0; i < o->n; i++) {
        if (o->m) tg_tensor_release(o->m[i]);
        if (o->v) tg_tensor_release(o->v[i]);
        if (o->params) tg_tensor_release(o->params[i]);
    }
    free(o->params);
    free(o->m);
    free(o->v);
    free(o->steps);
    free(o->items);
    free(o);
}

void tg_optim_free(tg_optim *o) {
    if (!o) return;
    if (o->caller_freed) {
        tg_fail(TG_ERR_INVALID, "tg_optim_free", "the optimizer was freed already");
        return;
    }
    o->caller_freed = true;
    tg_optim_release(o);
}

int tg_optim_count(const tg_optim *o) { return o ? o->n : 0; }

/* Named state tensors ("3.exp_avg", "3.exp_avg_sq" / "3.momentum_buffer", as in PyTorch's
 * optimizer state_dict) and a pointer to the step counts. */
int tg_optim_state(tg_optim *o, char names[][64], tg_tensor **out, int max, int64_t **steps) {
    int c = 0;
    for (int i = 0; i < o->n; i++) {
        tg_tensor *a = o->m[i], *b = o->kind == OPT_ADAM ? o->v[i] : NULL;
        const char *na = o->kind == OPT_ADAM ? "exp_avg" : "momentum_buffer";
        if (a) {
            if (c < max) {
                snprintf(names[c], 64, "%d.%s", i, na);
                out[c] = a;
            }
            c++;
        }
        if (b) {
            if (c < max) {
                snprintf(names[c], 64, "%d.exp_avg_sq", i);
                out[c] = b;
            }
            c++;
        }
    }
    if (steps) *steps = o->steps;
    return c;
}

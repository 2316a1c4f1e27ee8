/*
 * pool.c — tg_max_pool2d, tg_avg_pool2d (PyTorch's count_include_pad=True) and
 * tg_global_avg_pool2d on [N,C,H,W], with their backward passes. The kernels sit in
 * lib/cpu/pool.c and cuda/pool.cu; the window arithmetic in tg_math.h.
 */
#include "internal.h"

typedef struct {
    int kh, kw, sh, sw, ph, pw;
} pool_geom;

static void pool_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *x = nd->in[0], *y = nd->out;
    float *dx = tg_grad_of(ctx, x);
    if (!dx) return;
    const int is_max = nd->p.pool.is_max;
    ctx->be->pool_bwd(ctx, is_max, y->grad->data, is_max ? (const int32_t *)nd->saved[0]->data : NULL,
                      x->shape[0] * x->shape[1], (int)x->shape[2], (int)x->shape[3], nd->p.pool.kh,
                      nd->p.pool.kw, nd->p.pool.sh, nd->p.pool.sw, nd->p.pool.ph, nd->p.pool.pw,
                      (int)y->shape[2], (int)y->shape[3], dx);
}

static tg_tensor *pool(tg_ctx *ctx, tg_tensor *x, int is_max, pool_geom g, const char *fn) {
    if (!tg_check_nchw(ctx, x, fn)) return NULL;
    char b[64];
    if (g.kh < 1 || g.kw < 1 || g.sh < 1 || g.sw < 1 || g.ph < 0 || g.pw < 0 || g.ph > g.kh / 2 || g.pw > g.kw / 2) {
        tg_fail(TG_ERR_INVALID, fn, "kernel %dx%d, stride %dx%d, padding %dx%d: kernel and stride >= 1, "
                "padding >= 0 and at most half the kernel", g.kh, g.kw, g.sh, g.sw, g.ph, g.pw);
        return NULL;
    }
    /* 64-bit sizes (checked.h): a plane's positions are int32 (the argmax), and the padded
     * input must hold the window */
    const int64_t H = x->shape[2], W = x->shape[3];
    if (H * W > TG_MAX_SIDE) {
        tg_fail(TG_ERR_SHAPE, fn, "x %s: a plane of %lld values is over the %d pooling indexes", SHP(x, b),
                (long long)(H * W), TG_MAX_SIDE);
        return NULL;
    }
    const int64_t Hp = H + 2 * (int64_t)g.ph, Wp = W + 2 * (int64_t)g.pw;
    if (Hp > TG_MAX_SIDE || Wp > TG_MAX_SIDE) {
        tg_fail(TG_ERR_INVALID, fn, "padding %dx%d: the padded input %s must stay at most %d on a side", g.ph, g.pw,
                SHP(x, b), TG_MAX_SIDE);
        return NULL;
    }
    if (Hp < g.kh || Wp < g.kw) {
        tg_fail(TG_ERR_SHAPE, fn, "a %dx%d window does not fit x %s with padding %dx%d", g.kh, g.kw, SHP(x, b), g.ph, g.pw);
        return NULL;
    }
    const int64_t Ho = (Hp - g.kh) / g.sh + 1, Wo = (Wp - g.kw) / g.sw + 1;
    int64_t ys[4] = {x->shape[0], x->shape[1], Ho, Wo};
    tg_tensor *y = tg_result(ctx, 4, ys, fn);
    tg_tensor *idx = is_max ? tg_result(ctx, 4, ys, fn) : NULL; /* int32 argmax in float-sized slots */
    if (!y || (is_max && !idx)) return NULL;
    ctx->be->pool_fwd(ctx, is_max, x->data, x->shape[0] * x->shape[1], (int)H, (int)W, g.kh, g.kw, g.sh, g.sw,
                      g.ph, g.pw, (int)Ho, (int)Wo, y->data, is_max ? (int32_t *)idx->data : NULL);
    if (tg_needs_grad(ctx, &x, 1)) {
        tg_node *nd = tg_record(ctx, pool_backward, y, &x, 1, fn);
        if (!nd) return NULL;
        nd->saved[0] = idx;
        nd->p.pool.kh = g.kh, nd->p.pool.kw = g.kw, nd->p.pool.sh = g.sh, nd->p.pool.sw = g.sw;
        nd->p.pool.ph = g.ph, nd->p.pool.pw = g.pw, nd->p.pool.is_max = is_max;
    }
    return y;
}

tg_tensor *tg_max_pool2d(tg_ctx *ctx, tg_tensor *x, int kernel, int stride, int pad) {
    pool_geom g = {kernel, kernel, stride, stride, pad, pad};
    return pool(ctx, x, 1, g, "tg_max_pool2d");
}

tg_tensor *tg_avg_pool2d(tg_ctx *ctx, tg_tensor *x, int kernel, int stride, int pad) {
    pool_geom g = {kernel, kernel, stride, stride, pad, pad};
    return pool(ctx, x, 0, g, "tg_avg_pool2d");
}

tg_tensor *tg_global_avg_pool2d(tg_ctx *ctx, tg_tensor *x) {
    static const char *fn = "tg_global_avg_pool2d";
    if (!tg_check_nchw(ctx, x, fn)) return NULL;
    if (x->shape[2] * x->shape[3] > TG_MAX_SIDE) {
        char b[64];
        tg_fail(TG_ERR_SHAPE, fn, "x %s: a plane of %lld values is over %d", SHP(x, b),
                (long long)(x->shape[2] * x->shape[3]), TG_MAX_SIDE);
        return NULL;
    }
    pool_geom g = {(int)x->shape[2], (int)x->shape[3], 1, 1, 0, 0};
    return pool(ctx, x, 0, g, fn);
}

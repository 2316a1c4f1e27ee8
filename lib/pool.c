/*
 * pool.c — tg_max_pool2d, tg_avg_pool2d (PyTorch's count_include_pad=True) and
 * tg_global_avg_pool2d on [N,C,H,W], with their backward passes. The kernels sit in
 * lib/cpu/pool.c and cuda/pool.cu; the window arithmetic in tg_math.h.
 */
#include "core.h"

static void pool_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *x = nd->in[0], *y = nd->out;
    float *dx = tg_grad_of(ctx, x);
    if (dx) ctx->be->pool_bwd(ctx, &nd->p.pool, tg_mem_of(y->grad), tg_mem_of(nd->saved[0]), tg_mem_f32(dx, x->numel));
}

/* the caller's window (kernel, stride, padding per axis) in g; the rest is filled here */
static tg_tensor *pool(tg_ctx *ctx, tg_tensor *x, tg_pool_geom g, const char *fn) {
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
    g.planes = x->shape[0] * x->shape[1];
    g.H = (int)H, g.W = (int)W, g.Ho = (int)Ho, g.Wo = (int)Wo;
    int64_t ys[4] = {x->shape[0], x->shape[1], Ho, Wo};
    tg_tensor *y = tg_result(ctx, 4, ys, fn);
    tg_tensor *idx = g.is_max ? tg_result_typed(ctx, 4, ys, TG_I32, fn) : NULL; /* the argmax */
    if (!y || (g.is_max && !idx)) return NULL;
    ctx->be->pool_fwd(ctx, &g, tg_mem_of(x), tg_mem_of(y), tg_mem_of(idx));
    if (tg_needs_grad(ctx, &x, 1)) {
        tg_node *nd = tg_record(ctx, TG_OP_POOL, pool_backward, y, &x, 1, fn);
        if (!nd) return NULL;
        nd->saved[0] = idx;
        nd->p.pool = g;
    }
    return y;
}

/* a square window of the caller's */
static tg_pool_geom window(int kernel, int stride, int pad, int is_max) {
    tg_pool_geom g = {0};
    g.kh = g.kw = kernel, g.sh = g.sw = stride, g.ph = g.pw = pad, g.is_max = is_max;
    return g;
}

tg_tensor *tg_max_pool2d(tg_ctx *ctx, tg_tensor *x, int kernel, int stride, int pad) {
    return pool(ctx, x, window(kernel, stride, pad, 1), "tg_max_pool2d");
}

tg_tensor *tg_avg_pool2d(tg_ctx *ctx, tg_tensor *x, int kernel, int stride, int pad) {
    return pool(ctx, x, window(kernel, stride, pad, 0), "tg_avg_pool2d");
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
    tg_pool_geom g = {0};
    g.kh = (int)x->shape[2], g.kw = (int)x->shape[3], g.sh = g.sw = 1;
    return pool(ctx, x, g, fn);
}

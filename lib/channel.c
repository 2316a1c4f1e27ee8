/*
 * channel.c — ops that move values between tensors without arithmetic on them (or with one
 * broadcast term): concatenation and slicing along dimension 1, per-channel (and per-sample)
 * broadcasting add and multiply, upsampling by 2 (nearest, bilinear), and embedding lookups.
 * Kernels in lib/cpu/channel.c and cuda/channel.cu; index math in tg_math.h.
 */
#include "core.h"

#include <stdio.h>
#include <string.h>

/* N, C, P of a tensor seen as [N, C, rest] */
static void ncp(const tg_tensor *x, int64_t *N, int64_t *C, int64_t *P) {
    *N = x->shape[0];
    *C = x->ndim > 1 ? x->shape[1] : 1;
    *P = x->numel / (*N * *C);
}

/* the block move between big [N, Cbig, P] (channels off..) and small [N, Csmall, P] */
static tg_chan_block block(tg_tensor *big, float *big_data, int64_t off, float *small, int64_t Csmall, int to_big, int acc) {
    int64_t N, Cbig, P;
    ncp(big, &N, &Cbig, &P);
    tg_chan_block b = {tg_mem_f32(big_data, big->numel), tg_mem_f32(small, N * Csmall * P), N, P, Cbig, Csmall, off, to_big, acc};
    return b;
}

/* ---- concatenation and slicing ------------------------------------------------------------- */
static void cat_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *y = nd->out;
    int64_t off = 0;
    for (int i = 0; i < TG_NODE_MAX_IN && nd->in[i]; i++) {
        const int64_t Cb = nd->in[i]->shape[1];
        float *dx = tg_grad_of(ctx, nd->in[i]);
        if (dx) {
            const tg_chan_block b = block(y, y->grad->data, off, dx, Cb, 0, 1);
            ctx->be->chan_block(ctx, &b);
        }
        off += Cb;
    }
}

tg_tensor *tg_cat_channels(tg_ctx *ctx, tg_tensor *const *xs, int n) {
    static const char *fn = "tg_cat_channels";
    if (!xs) {
        tg_fail(TG_ERR_INVALID, fn, "xs is NULL");
        return NULL;
    }
    if (n < 1 || n > TG_NODE_MAX_IN) {
        tg_fail(TG_ERR_INVALID, fn, "n is %d: give 1 to %d tensors", n, TG_NODE_MAX_IN);
        return NULL;
    }
    int64_t C = 0;
    for (int i = 0; i < n; i++) {
        char what[16];
        snprintf(what, sizeof what, "xs[%d]", i);
        if (!tg_check_in(ctx, xs[i], fn, what)) return NULL;
        bool same = xs[i]->ndim == xs[0]->ndim && xs[i]->ndim >= 2;
        for (int d = 0; same && d < xs[0]->ndim; d++) same = d == 1 || xs[i]->shape[d] == xs[0]->shape[d];
        if (!same) {
            char a[64], b[64];
            tg_fail(TG_ERR_SHAPE, fn, "tensor %d %s does not match tensor 0 %s outside dimension 1", i, SHP(xs[i], a),
                    SHP(xs[0], b));
            return NULL;
        }
        C += xs[i]->shape[1];
    }
    int64_t s[TG_MAX_DIMS];
    memcpy(s, xs[0]->shape, sizeof s);
    s[1] = C;
    tg_tensor *y = tg_result(ctx, xs[0]->ndim, s, fn);
    if (!y) return NULL;
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        const tg_chan_block b = block(y, y->data, off, xs[i]->data, xs[i]->shape[1], 1, 0);
        ctx->be->chan_block(ctx, &b);
        off += xs[i]->shape[1];
    }
    if (tg_needs_grad(ctx, xs, n) && !tg_record(ctx, TG_OP_CAT, cat_backward, y, xs, n, fn)) return NULL;
    return y;
}

static void slice_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *x = nd->in[0], *y = nd->out;
    float *dx = tg_grad_of(ctx, x);
    if (!dx) return;
    const tg_chan_block b = block(x, dx, nd->p.slice.start, y->grad->data, y->shape[1], 1, 1);
    ctx->be->chan_block(ctx, &b);
}

tg_tensor *tg_slice_channels(tg_ctx *ctx, tg_tensor *x, int start, int count) {
    static const char *fn = "tg_slice_channels";
    if (!tg_check_in(ctx, x, fn, "x")) return NULL;
    if (x->ndim < 2 || start < 0 || count < 1 || start + (int64_t)count > x->shape[1]) {
        char b[64];
        tg_fail(TG_ERR_SHAPE, fn, "channels %d..%lld (start %d, count %d) are not within the channels of x %s", start,
                (long long)start + count - 1, start, count, SHP(x, b));
        return NULL;
    }
    int64_t s[TG_MAX_DIMS];
    memcpy(s, x->shape, sizeof s);
    s[1] = count;
    tg_tensor *y = tg_result(ctx, x->ndim, s, fn);
    if (!y) return NULL;
    const tg_chan_block b = block(x, x->data, start, y->data, count, 0, 0);
    ctx->be->chan_block(ctx, &b);
    if (tg_needs_grad(ctx, &x, 1)) {
        tg_node *nd = tg_record(ctx, TG_OP_SLICE, slice_backward, y, &x, 1, fn);
        if (!nd) return NULL;
        nd->p.slice.start = start;
    }
    return y;
}

/* ---- per-channel broadcasting ------------------------------------------------------------ */
/* whether b is [C] / [1,C,1..] (per channel: 0) or [N,C] / [N,C,1..] (per sample: 1); -1: neither */
static int bcast_kind(const tg_tensor *x, const tg_tensor *b) {
    const int64_t N = x->shape[0], C = x->ndim > 1 ? x->shape[1] : 1;
    if (x->ndim < 2 || b->ndim > x->ndim) return -1;
    if (b->ndim == 1) return b->shape[0] == C ? 0 : -1;
    for (int d = 2; d < b->ndim; d++)
        if (b->shape[d] != 1) return -1;
    if (b->shape[1] != C) return -1;
    return b->shape[0] == 1 ? 0 : b->shape[0] == N ? 1 : -1;
}

static void bcast_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *x = nd->in[0], *b = nd->in[1], *y = nd->out;
    const tg_bcast *c = &nd->p.bcast;
    float *dx = tg_grad_of(ctx, x);
    if (dx) {
        if (c->op) ctx->be->chan_bcast(ctx, c, tg_mem_of(y->grad), tg_mem_of(b), tg_mem_f32(dx, x->numel), 1);
        else ctx->be->axpby(ctx, 1.0f, tg_mem_of(y->grad), 1.0f, tg_mem_f32(dx, x->numel));
    }
    float *db = tg_grad_of(ctx, b);
    if (db) ctx->be->chan_reduce(ctx, c, tg_mem_of(y->grad), c->op ? tg_mem_of(x) : tg_mem_none(), tg_mem_f32(db, b->numel), 1);
}

static tg_tensor *bcast(tg_ctx *ctx, tg_tensor *x, tg_tensor *b, int op, const char *fn) {
    if (!tg_check_in(ctx, x, fn, "x") || !tg_check_in(ctx, b, fn, "b")) return NULL;
    const int per = bcast_kind(x, b);
    if (per < 0) {
        char a[64], c[64];
        tg_fail(TG_ERR_SHAPE, fn, "b %s is neither [C], [1,C,1,...] nor [N,C], [N,C,1,...] for x %s", SHP(b, a), SHP(x, c));
        return NULL;
    }
    tg_tensor *y = tg_result(ctx, x->ndim, x->shape, fn);
    if (!y) return NULL;
    tg_bcast c = {{0, 0, 0}, op, per};
    ncp(x, &c.s.N, &c.s.C, &c.s.P);
    ctx->be->chan_bcast(ctx, &c, tg_mem_of(x), tg_mem_of(b), tg_mem_of(y), 0);
    tg_tensor *in[2] = {x, b};
    if (tg_needs_grad(ctx, in, 2)) {
        tg_node *nd = tg_record(ctx, TG_OP_BCAST, bcast_backward, y, in, 2, fn);
        if (!nd) return NULL;
        nd->p.bcast = c;
    }
    return y;
}

tg_tensor *tg_add_channels(tg_ctx *ctx, tg_tensor *x, tg_tensor *b) { return bcast(ctx, x, b, 0, "tg_add_channels"); }
tg_tensor *tg_mul_channels(tg_ctx *ctx, tg_tensor *x, tg_tensor *b) { return bcast(ctx, x, b, 1, "tg_mul_channels"); }

/* ---- upsampling by 2 ------------------------------------------------------------------------ */
static void up2_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *x = nd->in[0];
    float *dx = tg_grad_of(ctx, x);
    const tg_up2 u = {x->shape[0] * x->shape[1], (int)x->shape[2], (int)x->shape[3], nd->p.up2.bilinear};
    if (dx) ctx->be->up2_bwd(ctx, &u, tg_mem_of(nd->out->grad), tg_mem_f32(dx, x->numel));
}

tg_tensor *tg_upsample2(tg_ctx *ctx, tg_tensor *x, bool bilinear) {
    static const char *fn = "tg_upsample2";
    if (!tg_check_nchw(ctx, x, fn)) return NULL;
    if (x->shape[2] > TG_MAX_SIDE / 2 || x->shape[3] > TG_MAX_SIDE / 2) {
        char b[64];
        tg_fail(TG_ERR_SHAPE, fn, "x %s: doubled, a side would be over %d", SHP(x, b), TG_MAX_SIDE);
        return NULL;
    }
    int64_t s[4] = {x->shape[0], x->shape[1], 2 * x->shape[2], 2 * x->shape[3]};
    tg_tensor *y = tg_result(ctx, 4, s, fn);
    if (!y) return NULL;
    const tg_up2 u = {x->shape[0] * x->shape[1], (int)x->shape[2], (int)x->shape[3], bilinear};
    ctx->be->up2_fwd(ctx, &u, tg_mem_of(x), tg_mem_of(y));
    if (tg_needs_grad(ctx, &x, 1)) {
        tg_node *nd = tg_record(ctx, TG_OP_UP2, up2_backward, y, &x, 1, fn);
        if (!nd) return NULL;
        nd->p.up2.bilinear = bilinear;
    }
    return y;
}

/* ---- embedding ------------------------------------------------------------------------------ */
static void embed_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *t = nd->in[0], *y = nd->out;
    float *dt = tg_grad_of(ctx, t);
    if (dt) ctx->be->embed_bwd(ctx, tg_mem_of(y->grad), tg_mem_of(nd->saved[0]), t->shape[1], tg_mem_f32(dt, t->numel));
}

tg_tensor *tg_embedding(tg_ctx *ctx, tg_tensor *table, const int32_t *idx, int64_t n) {
    static const char *fn = "tg_embedding";
    if (!tg_check_in(ctx, table, fn, "table")) return NULL;
    if (table->ndim != 2) {
        char b[64];
        tg_fail(TG_ERR_SHAPE, fn, "table must be [V,D], got %s", SHP(table, b));
        return NULL;
    }
    if (!idx || n < 1 || n > TG_MAX_NUMEL) {
        tg_fail(TG_ERR_INVALID, fn, "%s", !idx ? "idx is NULL" : "n must be in 1..2^40-1");
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= table->shape[0]) {
            tg_fail(TG_ERR_INVALID, fn, "index %lld is %d, outside the %lld rows", (long long)i, idx[i],
                    (long long)table->shape[0]);
            return NULL;
        }
    int64_t s[2] = {n, table->shape[1]};
    tg_tensor *ix = tg_result_typed(ctx, 1, &n, TG_I32, fn), *y = tg_result(ctx, 2, s, fn);
    if (!ix || !y) return NULL;
    if (ctx->be->to_device(ctx, ix->data, idx, sizeof(int32_t) * (size_t)n) != TG_OK) return NULL;
    ctx->be->embed_fwd(ctx, tg_mem_of(table), table->shape[1], tg_mem_of(ix), tg_mem_of(y));
    if (tg_needs_grad(ctx, &table, 1)) {
        tg_node *nd = tg_record(ctx, TG_OP_EMBED, embed_backward, y, &table, 1, fn);
        if (!nd) return NULL;
        nd->saved[0] = ix;
    }
    return y;
}

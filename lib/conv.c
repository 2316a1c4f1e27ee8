/*
 * conv.c — tg_conv2d and tg_conv_transpose2d: im2col + one GEMM over the whole batch, and their
 * backward passes. ConvTranspose2D's forward is Conv2D's data gradient (GEMM + col2im) and its
 * backward is Conv2D's forward (im2col + GEMM), as in Darknet and Caffe.
 * Semantics: torch.nn.functional.conv2d / conv_transpose2d (groups 1, dilation 1, output_padding 0).
 * A backend with whole convolution passes (conv_fwd/conv_bwd_data/conv_wgrad: the CPU's, in
 * lib/cpu/conv.c) runs those; the rest (CUDA, or sizes the passes refuse) uses im2col + GEMM,
 * whose column buffer holds the whole batch, [C*kh*kw, N*Ho*Wo], so each GEMM is one call.
 */
#include "internal.h"


typedef struct {
    int N, Cin, H, W, Cout, kh, kw, Ho, Wo;
} conv_dims;

/* Shared argument checks, all sizes in checked 64-bit arithmetic (checked.h): every dimension
 * and the padded input fit an int (the kernels' spatial math), the output is not empty, and the
 * im2col fallback's column buffer has a size. transposed: w is [Cin,Cout,kh,kw] and the output
 * grows. */
static bool conv_check(tg_ctx *ctx, tg_tensor *x, tg_tensor *w, tg_tensor *b, int stride, int pad,
                       bool transposed, const char *fn, conv_dims *d) {
    if (!tg_check_in(ctx, x, fn, "x") || !tg_check_in(ctx, w, fn, "w")) return false;
    if (b && !tg_check_in(ctx, b, fn, "b")) return false;
    char bx[64], bw[64], bb[64];
    if (x->ndim != 4 || w->ndim != 4) {
        tg_fail(TG_ERR_SHAPE, fn, "x %s and w %s must both be 4-D", SHP(x, bx), SHP(w, bw));
        return false;
    }
    if (stride < 1 || pad < 0) {
        tg_fail(TG_ERR_INVALID, fn, "stride %d must be >= 1 and pad %d >= 0", stride, pad);
        return false;
    }
    for (int i = 0; i < 4; i++)
        if (!tg_fits_int(x->shape[i]) || !tg_fits_int(w->shape[i])) {
            tg_fail(TG_ERR_SHAPE, fn, "x %s and w %s: every dimension must be at most %d", SHP(x, bx),
                    SHP(w, bw), TG_MAX_SIDE);
            return false;
        }
    d->N = (int)x->shape[0];
    d->Cin = (int)x->shape[1];
    d->H = (int)x->shape[2];
    d->W = (int)x->shape[3];
    d->kh = (int)w->shape[2];
    d->kw = (int)w->shape[3];
    int64_t w_in = transposed ? w->shape[0] : w->shape[1];
    d->Cout = (int)(transposed ? w->shape[1] : w->shape[0]);
    if (w_in != d->Cin) {
        tg_fail(TG_ERR_SHAPE, fn, "x %s has %d channels but w %s expects %lld (w is %s)",
                SHP(x, bx), d->Cin, SHP(w, bw), (long long)w_in,
                transposed ? "[Cin,Cout,kh,kw]" : "[Cout,Cin,kh,kw]");
        return false;
    }
    if (b && (b->ndim != 1 || b->shape[0] != d->Cout)) {
        tg_fail(TG_ERR_SHAPE, fn, "bias %s must be [%d]", SHP(b, bb), d->Cout);
        return false;
    }
    /* the padded input (forward) or the output before cropping (transposed), in 64 bits */
    const int64_t p2 = 2 * (int64_t)pad;
    int64_t Ho, Wo;
    if (transposed) {
        Ho = ((int64_t)d->H - 1) * stride - p2 + d->kh;
        Wo = ((int64_t)d->W - 1) * stride - p2 + d->kw;
    } else {
        if ((int64_t)d->H + p2 > TG_MAX_SIDE || (int64_t)d->W + p2 > TG_MAX_SIDE) {
            tg_fail(TG_ERR_INVALID, fn, "pad %d: the padded input %s must stay at most %d on a side", pad,
                    SHP(x, bx), TG_MAX_SIDE);
            return false;
        }
        Ho = (int64_t)d->H + p2 - d->kh >= 0 ? ((int64_t)d->H + p2 - d->kh) / stride + 1 : 0;
        Wo = (int64_t)d->W + p2 - d->kw >= 0 ? ((int64_t)d->W + p2 - d->kw) / stride + 1 : 0;
    }
    if (Ho < 1 || Wo < 1) {
        tg_fail(TG_ERR_SHAPE, fn, "x %s with w %s, stride %d, pad %d gives an empty output",
                SHP(x, bx), SHP(w, bw), stride, pad);
        return false;
    }
    if (Ho > TG_MAX_SIDE || Wo > TG_MAX_SIDE) {
        tg_fail(TG_ERR_SHAPE, fn, "x %s with w %s, stride %d, pad %d gives a %lldx%lld output, over %d on a side",
                SHP(x, bx), SHP(w, bw), stride, pad, (long long)Ho, (long long)Wo, TG_MAX_SIDE);
        return false;
    }
    d->Ho = (int)Ho;
    d->Wo = (int)Wo;
    /* the largest column buffer either pass may need: (Cout + C*kh*kw) x N*Ho*Wo floats, with the
     * input's and the output's roles swapped for the transposed op (both ways bounded) */
    int64_t k1, k2, np1, np2, c1, c2;
    size_t bytes;
    const bool sizes_ok = tg_mul_ok((int64_t)d->Cin * d->kh, d->kw, &k1) && tg_mul_ok((int64_t)d->Cout * d->kh, d->kw, &k2) &&
                          tg_mul_ok((int64_t)d->N * d->H, d->W, &np1) && tg_mul_ok((int64_t)d->N * Ho, Wo, &np2) &&
                          tg_mul_ok(k1 + k2 + d->Cin + d->Cout, np1, &c1) && tg_mul_ok(k1 + k2 + d->Cin + d->Cout, np2, &c2) &&
                          tg_bytes_ok(c1 > c2 ? c1 : c2, sizeof(float), &bytes);
    if (!sizes_ok) {
        tg_fail(TG_ERR_SHAPE, fn, "x %s with w %s, stride %d, pad %d: the work buffers' sizes overflow",
                SHP(x, bx), SHP(w, bw), stride, pad);
        return false;
    }
    return true;
}

static float *ws_or_fail(tg_ctx *ctx, size_t floats, const char *fn) {
    float *ws = tg_workspace(ctx, floats * sizeof(float));
    if (!ws) tg_fail(TG_ERR_NOMEM, fn, "cannot allocate a %zu-float workspace", floats);
    return ws;
}

/* ---- Conv2D ------------------------------------------------------------------------------- */
static void conv2d_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->in[2], *y = nd->out;
    const int s = nd->p.conv.stride, pad = nd->p.conv.pad;
    const int N = (int)x->shape[0], Cin = (int)x->shape[1], H = (int)x->shape[2],
              W = (int)x->shape[3];
    const int Cout = (int)w->shape[0], kh = (int)w->shape[2], kw = (int)w->shape[3];
    const int Ho = (int)y->shape[2], Wo = (int)y->shape[3];
    const int64_t K = (int64_t)Cin * kh * kw, P = (int64_t)Ho * Wo, NP = N * P;
    const float *dy = y->grad->data;
    const struct tg_backend_ops *be = ctx->be;

    float *db = b ? tg_grad_of(ctx, b) : NULL;
    if (db) be->channel_sum(ctx, dy, N, Cout, P, db, 1);
    if (be->conv_wgrad) { /* direct passes: they write a fresh gradient instead of zero + add */
        int accw = 1, accx = 1;
        float *gw = tg_grad_write(ctx, w, &accw), *gx = tg_grad_write(ctx, x, &accx);
        tg_status st = TG_OK;
        if (gw) st = be->conv_wgrad(ctx, x->data, N, Cin, H, W, dy, Cout, Ho, Wo, kh, kw, s, pad, gw, accw);
        if (!st && gx)
            st = be->conv_bwd_data(ctx, dy, N, Cout, Ho, Wo, w->data, Cin, kh, kw, s, pad, H, W, gx, accx);
        if (st != TG_ERR_UNSUPPORTED) {
            if (st) ctx->bw_status = st;
            return;
        }
        /* too large for the direct passes (both test the same sizes, so neither wrote): the
         * fresh buffers get zeros and the im2col path below adds into them */
        if (gw && !accw) be->fill(ctx, gw, w->numel, 0.0f);
        if (gx && !accx) be->fill(ctx, gx, x->numel, 0.0f);
    }
    float *dw = tg_grad_of(ctx, w), *dx = tg_grad_of(ctx, x);
    if (!dw && !dx) return;
    float *ws = tg_workspace(ctx, (size_t)(Cout + K) * (size_t)NP * sizeof(float));
    if (!ws) return;
    float *dyt = ws, *col = ws + Cout * NP; /* dyt [Cout, NP], col [K, NP] */
    if (N == 1)
        dyt = (float *)dy; /* [1,Cout,P] is already [Cout, NP] */
    else
        be->nc_to_cn(ctx, dy, N, Cout, P, dyt);
    if (dw) {
        be->im2col(ctx, x->data, N, Cin, H, W, kh, kw, s, pad, Ho, Wo, col);
        be->gemm(ctx, 0, 1, Cout, K, NP, 1.0f, dyt, NP, col, NP, 1.0f, dw, K);
    }
    if (dx) {
        be->gemm(ctx, 1, 0, K, NP, Cout, 1.0f, w->data, K, dyt, NP, 0.0f, col, NP);
        be->col2im(ctx, col, N, Cin, H, W, kh, kw, s, pad, Ho, Wo, dx, 1);
    }
}

tg_tensor *tg_conv2d(tg_ctx *ctx, tg_tensor *x, tg_tensor *w, tg_tensor *b, int stride, int pad) {
    static const char *fn = "tg_conv2d";
    conv_dims d;
    if (!conv_check(ctx, x, w, b, stride, pad, false, fn, &d)) return NULL;
    int64_t shape[4] = {d.N, d.Cout, d.Ho, d.Wo};
    tg_tensor *y = tg_result(ctx, 4, shape, fn);
    if (!y) return NULL;
    const int64_t K = (int64_t)d.Cin * d.kh * d.kw, P = (int64_t)d.Ho * d.Wo, NP = d.N * P;
    const struct tg_backend_ops *be = ctx->be;
    tg_status st = be->conv_fwd ? be->conv_fwd(ctx, x->data, d.N, d.Cin, d.H, d.W, w->data, d.Cout,
                                               d.kh, d.kw, stride, pad, d.Ho, d.Wo,
                                               b ? b->data : NULL, y->data, 0)
                                : TG_ERR_UNSUPPORTED;
    if (st != TG_OK && st != TG_ERR_UNSUPPORTED) return NULL;
    if (st == TG_OK) goto record;
    const bool direct = d.N == 1; /* GEMM output [Cout, P] is already NCHW */
    float *ws = ws_or_fail(ctx, (size_t)K * NP + (direct ? 0 : (size_t)d.Cout * NP), fn);
    if (!ws) return NULL;
    float *col = ws, *yt = direct ? y->data : ws + K * NP;
    be->im2col(ctx, x->data, d.N, d.Cin, d.H, d.W, d.kh, d.kw, stride, pad, d.Ho, d.Wo, col);
    be->gemm(ctx, 0, 0, d.Cout, NP, K, 1.0f, w->data, K, col, NP, 0.0f, yt, NP);
    if (direct) {
        if (b) be->bias_add(ctx, y->data, b->data, 1, d.Cout, P);
    } else {
        be->cn_to_nc(ctx, yt, d.N, d.Cout, P, b ? b->data : NULL, y->data, 0);
    }
record:;
    tg_tensor *in[3] = {x, w, b};
    if (tg_needs_grad(ctx, in, 3)) {
        tg_node *nd = tg_record(ctx, conv2d_backward, y, in, 3, fn);
        if (!nd) return NULL;
        nd->p.conv.stride = stride;
        nd->p.conv.pad = pad;
    }
    return y;
}

/* ---- ConvTranspose2D ---------------------------------------------------------------------- */
static void conv_t_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->in[2], *y = nd->out;
    const int s = nd->p.conv.stride, pad = nd->p.conv.pad;
    const int N = (int)x->shape[0], Cin = (int)x->shape[1], H = (int)x->shape[2],
              W = (int)x->shape[3];
    const int Cout = (int)w->shape[1], kh = (int)w->shape[2], kw = (int)w->shape[3];
    const int Ho = (int)y->shape[2], Wo = (int)y->shape[3];
    const int64_t KK = (int64_t)Cout * kh * kw, Pin = (int64_t)H * W, NP = N * Pin;
    const float *dy = y->grad->data;
    const struct tg_backend_ops *be = ctx->be;

    float *db = b ? tg_grad_of(ctx, b) : NULL;
    if (db) be->channel_sum(ctx, dy, N, Cout, (int64_t)Ho * Wo, db, 1);
    if (be->conv_wgrad) { /* the conv passes with x and dy swapped (see the file comment) */
        int accw = 1, accx = 1;
        float *gw = tg_grad_write(ctx, w, &accw), *gx = tg_grad_write(ctx, x, &accx);
        tg_status st = TG_OK;
        if (gw) st = be->conv_wgrad(ctx, dy, N, Cout, Ho, Wo, x->data, Cin, H, W, kh, kw, s, pad, gw, accw);
        if (!st && gx)
            st = be->conv_fwd(ctx, dy, N, Cout, Ho, Wo, w->data, Cin, kh, kw, s, pad, H, W, NULL, gx, accx);
        if (st != TG_ERR_UNSUPPORTED) {
            if (st) ctx->bw_status = st;
            return;
        }
        if (gw && !accw) be->fill(ctx, gw, w->numel, 0.0f); /* as in conv2d_backward */
        if (gx && !accx) be->fill(ctx, gx, x->numel, 0.0f);
    }
    float *dw = tg_grad_of(ctx, w), *dx = tg_grad_of(ctx, x);
    if (!dw && !dx) return;
    float *ws = tg_workspace(ctx, (size_t)(KK + Cin) * (size_t)NP * sizeof(float));
    if (!ws) return;
    float *dcol = ws, *xt = ws + KK * NP; /* dcol [KK, NP], xt [Cin, NP] */
    be->im2col(ctx, dy, N, Cout, Ho, Wo, kh, kw, s, pad, H, W, dcol);
    if (dx) {
        if (N == 1) {
            be->gemm(ctx, 0, 0, Cin, NP, KK, 1.0f, w->data, KK, dcol, NP, 1.0f, dx, NP);
        } else {
            be->gemm(ctx, 0, 0, Cin, NP, KK, 1.0f, w->data, KK, dcol, NP, 0.0f, xt, NP);
            be->cn_to_nc(ctx, xt, N, Cin, Pin, NULL, dx, 1);
        }
    }
    if (dw) {
        const float *xs = x->data;
        if (N != 1) {
            be->nc_to_cn(ctx, x->data, N, Cin, Pin, xt);
            xs = xt;
        }
        be->gemm(ctx, 0, 1, Cin, KK, NP, 1.0f, xs, NP, dcol, NP, 1.0f, dw, KK);
    }
}

tg_tensor *tg_conv_transpose2d(tg_ctx *ctx, tg_tensor *x, tg_tensor *w, tg_tensor *b, int stride,
                               int pad) {
    static const char *fn = "tg_conv_transpose2d";
    conv_dims d;
    if (!conv_check(ctx, x, w, b, stride, pad, true, fn, &d)) return NULL;
    int64_t shape[4] = {d.N, d.Cout, d.Ho, d.Wo};
    tg_tensor *y = tg_result(ctx, 4, shape, fn);
    if (!y) return NULL;
    const int64_t KK = (int64_t)d.Cout * d.kh * d.kw, Pin = (int64_t)d.H * d.W, NP = d.N * Pin;
    const struct tg_backend_ops *be = ctx->be;
    tg_status st = be->conv_bwd_data ? be->conv_bwd_data(ctx, x->data, d.N, d.Cin, d.H, d.W, w->data,
                                                         d.Cout, d.kh, d.kw, stride, pad, d.Ho,
                                                         d.Wo, y->data, 0)
                                     : TG_ERR_UNSUPPORTED;
    if (st != TG_OK && st != TG_ERR_UNSUPPORTED) return NULL;
    if (st == TG_OK) {
        if (b) be->bias_add(ctx, y->data, b->data, d.N, d.Cout, (int64_t)d.Ho * d.Wo);
        goto record;
    }
    const bool direct = d.N == 1;
    float *ws = ws_or_fail(ctx, (size_t)KK * NP + (direct ? 0 : (size_t)d.Cin * NP), fn);
    if (!ws) return NULL;
    float *col = ws;
    const float *xt = x->data;
    if (!direct) {
        be->nc_to_cn(ctx, x->data, d.N, d.Cin, Pin, ws + KK * NP);
        xt = ws + KK * NP;
    }
    be->gemm(ctx, 1, 0, KK, NP, d.Cin, 1.0f, w->data, KK, xt, NP, 0.0f, col, NP);
    be->col2im(ctx, col, d.N, d.Cout, d.Ho, d.Wo, d.kh, d.kw, stride, pad, d.H, d.W, y->data, 0);
    if (b) be->bias_add(ctx, y->data, b->data, d.N, d.Cout, (int64_t)d.Ho * d.Wo);
record:;
    tg_tensor *in[3] = {x, w, b};
    if (tg_needs_grad(ctx, in, 3)) {
        tg_node *nd = tg_record(ctx, conv_t_backward, y, in, 3, fn);
        if (!nd) return NULL;
        nd->p.conv.stride = stride;
        nd->p.conv.pad = pad;
    }
    return y;
}

/* ---- Linear ------------------------------------------------------------------------------- */
static void linear_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->in[2], *y = nd->out;
    const int64_t N = x->shape[0], in = x->shape[1], out = w->shape[0];
    const float *dy = y->grad->data;
    const struct tg_backend_ops *be = ctx->be;
    float *dx = tg_grad_of(ctx, x), *dw = tg_grad_of(ctx, w), *db = b ? tg_grad_of(ctx, b) : NULL;
    if (dx) be->gemm(ctx, 0, 0, N, in, out, 1.0f, dy, out, w->data, in, 1.0f, dx, in);
    if (dw) be->gemm(ctx, 1, 0, out, in, N, 1.0f, dy, out, x->data, in, 1.0f, dw, in);
    if (db) be->channel_sum(ctx, dy, N, out, 1, db, 1);
}

tg_tensor *tg_linear(tg_ctx *ctx, tg_tensor *x, tg_tensor *w, tg_tensor *b) {
    static const char *fn = "tg_linear";
    if (!tg_check_in(ctx, x, fn, "x") || !tg_check_in(ctx, w, fn, "w")) return NULL;
    if (b && !tg_check_in(ctx, b, fn, "b")) return NULL;
    char bx[64], bw[64], bb[64];
    if (x->ndim != 2 || w->ndim != 2 || x->shape[1] != w->shape[1]) {
        tg_fail(TG_ERR_SHAPE, fn, "x %s must be [N,in] and w %s [out,in] with the same in",
                SHP(x, bx), SHP(w, bw));
        return NULL;
    }
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0])) {
        tg_fail(TG_ERR_SHAPE, fn, "bias %s must be [%lld]", SHP(b, bb), (long long)w->shape[0]);
        return NULL;
    }
    const int64_t N = x->shape[0], in = x->shape[1], out = w->shape[0];
    int64_t shape[2] = {N, out};
    tg_tensor *y = tg_result(ctx, 2, shape, fn);
    if (!y) return NULL;
    ctx->be->gemm(ctx, 0, 1, N, out, in, 1.0f, x->data, in, w->data, in, 0.0f, y->data, out);
    if (b) ctx->be->bias_add(ctx, y->data, b->data, N, out, 1);
    tg_tensor *ins[3] = {x, w, b};
    if (tg_needs_grad(ctx, ins, 3) && !tg_record(ctx, linear_backward, y, ins, 3, fn)) return NULL;
    return y;
}

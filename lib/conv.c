/*
 * conv.c — tg_conv2d, tg_conv_transpose2d and tg_linear: validate, call the backend, record.
 * Semantics: torch.nn.functional.conv2d / conv_transpose2d (groups 1, dilation 1, output_padding
 * 0) and linear. How a pass is computed is the backend's (the CPU's table-driven GEMM and
 * Winograd, CUDA's im2col + cuBLAS); every pass is one slot call.
 *
 * ConvTranspose2D is a convolution run the other way: tg_conv_transpose2d(x, w) is the data
 * gradient of the convolution whose input is the result y_t and whose output is x (same w,
 * stride and padding). Its three passes are that convolution's (transpose_geom below):
 *   forward          y_t = conv_bwd_data(dy = x)
 *   data gradient    dx  = conv_fwd(x = dy_t)
 *   weight gradient  dw  = conv_wgrad(x = dy_t, dy = x)
 */
#include "core.h"

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

/* ---- Conv2D ------------------------------------------------------------------------------- */
static tg_conv_geom conv_geom(const tg_ctx *ctx, const conv_dims *d, int stride, int pad) {
    const tg_conv_geom g = {d->N, d->Cin, d->H, d->W, d->Cout, d->kh, d->kw, stride, pad, d->Ho, d->Wo, ctx->precision};
    return g;
}

/* The weight and data gradients write a fresh buffer instead of zero-filling it and adding
 * (tg_grad_write says which); the bias gradient is a per-channel sum of dy. */
static void conv2d_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->in[2], *y = nd->out;
    const tg_conv_geom *g = &nd->p.conv;
    const tg_mem dy = tg_mem_of(y->grad);
    float *db = b ? tg_grad_of(ctx, b) : NULL;
    if (db) ctx->be->channel_sum(ctx, (tg_ncp){g->N, g->Co, (int64_t)g->Ho * g->Wo}, dy, tg_mem_f32(db, b->numel), 1);
    int accw = 1, accx = 1;
    float *gw = tg_grad_write(ctx, w, &accw), *gx = tg_grad_write(ctx, x, &accx);
    tg_status st = TG_OK;
    if (gw) st = ctx->be->conv_wgrad(ctx, g, tg_mem_of(x), dy, tg_mem_f32(gw, w->numel), accw);
    if (!st && gx) st = ctx->be->conv_bwd_data(ctx, g, dy, tg_mem_of(w), tg_mem_f32(gx, x->numel), accx);
    if (st) ctx->bw_status = st;
}

tg_tensor *tg_conv2d(tg_ctx *ctx, tg_tensor *x, tg_tensor *w, tg_tensor *b, int stride, int pad) {
    static const char *fn = "tg_conv2d";
    TG_API_SCOPE(fn);
    conv_dims d;
    if (!conv_check(ctx, x, w, b, stride, pad, false, fn, &d)) return NULL;
    int64_t shape[4] = {d.N, d.Cout, d.Ho, d.Wo};
    tg_tensor *y = tg_result(ctx, 4, shape, fn);
    if (!y) return NULL;
    const tg_conv_geom g = conv_geom(ctx, &d, stride, pad);
    if (ctx->be->conv_fwd(ctx, &g, tg_mem_of(x), tg_mem_of(w), tg_mem_of(b), tg_mem_of(y), 0)) return NULL;
    tg_tensor *in[3] = {x, w, b};
    if (tg_needs_grad(ctx, in, 3)) {
        tg_node *nd = tg_record(ctx, TG_OP_CONV, conv2d_backward, y, in, 3, fn);
        if (!nd) return NULL;
        nd->p.conv = g;
    }
    return y;
}

/* ---- ConvTranspose2D ---------------------------------------------------------------------- */
/* the convolution tg_conv_transpose2d(x [N,Cin,H,W], w [Cin,Cout,kh,kw]) -> y [N,Cout,Ho,Wo] is
 * the transpose of: its input is y (Cout channels, Ho x Wo), its output x (Cin, H x W), its
 * weight w as [Co = Cin, C = Cout, kh, kw] */
static tg_conv_geom transpose_geom(const tg_ctx *ctx, const conv_dims *d, int stride, int pad) {
    const tg_conv_geom g = {d->N, d->Cout, d->Ho, d->Wo, d->Cin, d->kh, d->kw, stride, pad, d->H, d->W, ctx->precision};
    return g;
}

static void conv_t_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->in[2], *y = nd->out;
    const tg_conv_geom *g = &nd->p.conv; /* the convolution this one transposes */
    const tg_mem dy = tg_mem_of(y->grad);
    float *db = b ? tg_grad_of(ctx, b) : NULL;
    if (db) ctx->be->channel_sum(ctx, (tg_ncp){g->N, g->C, (int64_t)g->H * g->W}, dy, tg_mem_f32(db, b->numel), 1);
    int accw = 1, accx = 1;
    float *gw = tg_grad_write(ctx, w, &accw), *gx = tg_grad_write(ctx, x, &accx);
    tg_status st = TG_OK;
    if (gw) st = ctx->be->conv_wgrad(ctx, g, dy, tg_mem_of(x), tg_mem_f32(gw, w->numel), accw);
    if (!st && gx) st = ctx->be->conv_fwd(ctx, g, dy, tg_mem_of(w), tg_mem_none(), tg_mem_f32(gx, x->numel), accx);
    if (st) ctx->bw_status = st;
}

tg_tensor *tg_conv_transpose2d(tg_ctx *ctx, tg_tensor *x, tg_tensor *w, tg_tensor *b, int stride,
                               int pad) {
    static const char *fn = "tg_conv_transpose2d";
    TG_API_SCOPE(fn);
    conv_dims d;
    if (!conv_check(ctx, x, w, b, stride, pad, true, fn, &d)) return NULL;
    int64_t shape[4] = {d.N, d.Cout, d.Ho, d.Wo};
    tg_tensor *y = tg_result(ctx, 4, shape, fn);
    if (!y) return NULL;
    const tg_conv_geom g = transpose_geom(ctx, &d, stride, pad);
    if (ctx->be->conv_bwd_data(ctx, &g, tg_mem_of(x), tg_mem_of(w), tg_mem_of(y), 0)) return NULL;
    if (b) ctx->be->bias_add(ctx, (tg_ncp){d.N, d.Cout, (int64_t)d.Ho * d.Wo}, tg_mem_of(y), tg_mem_of(b));
    tg_tensor *in[3] = {x, w, b};
    if (tg_needs_grad(ctx, in, 3)) {
        tg_node *nd = tg_record(ctx, TG_OP_CONV_T, conv_t_backward, y, in, 3, fn);
        if (!nd) return NULL;
        nd->p.conv = g;
    }
    return y;
}

/* ---- Linear ------------------------------------------------------------------------------- */
/* y [N,out] = x [N,in] w^T; dx += dy w; dw += dy^T x; db += the column sums of dy */
static void linear_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->in[2], *y = nd->out;
    const int64_t N = x->shape[0], in = x->shape[1], out = w->shape[0];
    const tg_precision prec = nd->p.linear.prec;
    const tg_mem dy = tg_mem_of(y->grad);
    float *dx = tg_grad_of(ctx, x), *dw = tg_grad_of(ctx, w), *db = b ? tg_grad_of(ctx, b) : NULL;
    if (dx) {
        const tg_gemm_args g = {0, 0, N, in, out, 1.0f, 1.0f, dy, tg_mem_of(w), tg_mem_f32(dx, x->numel), out, in, in, prec};
        ctx->be->gemm(ctx, &g);
    }
    if (dw) {
        const tg_gemm_args g = {1, 0, out, in, N, 1.0f, 1.0f, dy, tg_mem_of(x), tg_mem_f32(dw, w->numel), out, in, in, prec};
        ctx->be->gemm(ctx, &g);
    }
    if (db) ctx->be->channel_sum(ctx, (tg_ncp){N, out, 1}, dy, tg_mem_f32(db, b->numel), 1);
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
    const tg_gemm_args g = {0, 1, N, out, in, 1.0f, 0.0f, tg_mem_of(x), tg_mem_of(w), tg_mem_of(y), in, in, out,
                            ctx->precision};
    ctx->be->gemm(ctx, &g);
    if (b) ctx->be->bias_add(ctx, (tg_ncp){N, out, 1}, tg_mem_of(y), tg_mem_of(b));
    tg_tensor *ins[3] = {x, w, b};
    if (tg_needs_grad(ctx, ins, 3)) {
        tg_node *nd = tg_record(ctx, TG_OP_LINEAR, linear_backward, y, ins, 3, fn);
        if (!nd) return NULL;
        nd->p.linear.prec = ctx->precision;
    }
    return y;
}

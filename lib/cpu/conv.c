/*
 * conv.c (CPU) — the three convolution passes on the CPU, each one table-driven GEMM (gemm.c),
 * with no column matrix and no reorder around it:
 *   forward      y[n,co,oh,ow]  = sum_{c,i,j} w[co,c,i,j] x[n,c,oh*s-p+i,ow*s-p+j]  (+ bias)
 *   data grad    dx = the transposed convolution of dy, split into s*s phases: the outputs
 *                h = s*m - p + rho (rho fixed) only see the taps i = rho + s*t, and each phase
 *                is a stride-1 correlation of dy, so every dx element is written once (no
 *                col2im scatter-add)
 *   weight grad  dw[co,c,i,j]   = sum_{n,oh,ow} dy[n,co,oh,ow] x[n,c,oh*s-p+i,ow*s-p+j]
 * ConvTranspose2D runs the same convolution the other way (lib/conv.c).
 * 4x4, stride-2 forward passes and data gradients with enough channels go to winograd.c instead
 * (F(2x2, 2x2), 9/16 of the multiply-adds), in float32 only: in bf16 (g->prec) every pass is a
 * GEMM on bf16-rounded operands (cpu.h). The GEMM's gathers index with int32: a pass whose
 * input or output has 2^31 elements or more is refused with a message (16 GiB tensors; the
 * CUDA backend has no such bound). Pairs with cuda/conv.cu (im2col + cuBLAS).
 */
#include "cpu.h"

#include <string.h>

static const char *const FN = "convolution (CPU)";

#define PAD_INVALID (-(1 << 29)) /* a lane past N: fails every bounds test */

typedef struct {
    int64_t *a_off, *d_off;
    int32_t *roff, *rh, *rw, *loff, *lh, *lw;
    float *gemm_ws;
} tables;

/* table lengths: rounded to 16, plus two slivers of padding (pack_b reads the next sliver's) */
static int64_t padded(int64_t n) { return (n + 15) / 16 * 16 + 2 * TG_NR_MAX; }

/* Carves count sets of tables (K rows each, N[i] lanes), then the GEMM's own workspace for
 * count GEMMs, out of the context's workspace. */
static tg_status get_tables_n(tg_ctx *ctx, int64_t M, const int64_t *N, int count, int64_t K,
                              tables *t, const char *fn) {
    const int64_t Kp = padded(K ? K : 1);
    size_t bytes = tg_cpu_gemm_ws(M, K, count, omp_get_max_threads()) + 64;
    for (int i = 0; i < count; i++)
        bytes += (size_t)(Kp * 8 + N[i] * 8 + Kp * 12 + padded(N[i]) * 12) + 256;
    char *ws = (char *)tg_workspace(ctx, bytes);
    if (!ws) return tg_fail(TG_ERR_NOMEM, fn, "cannot allocate a %zu-byte workspace", bytes);
    for (int i = 0; i < count; i++) {
        const int64_t Np = padded(N[i]);
        t[i].a_off = (int64_t *)tg_align_ptr(ws, 64);
        t[i].d_off = t[i].a_off + Kp;
        t[i].roff = (int32_t *)(t[i].d_off + N[i]);
        t[i].rh = t[i].roff + Kp;
        t[i].rw = t[i].rh + Kp;
        t[i].loff = t[i].rw + Kp;
        t[i].lh = t[i].loff + Np;
        t[i].lw = t[i].lh + Np;
        ws = (char *)(t[i].lw + Np);
        for (int64_t q = N[i]; q < Np; q++)
            t[i].loff[q] = 0, t[i].lh[q] = PAD_INVALID, t[i].lw[q] = PAD_INVALID;
    }
    for (int i = 0; i < count; i++) t[i].gemm_ws = (float *)tg_align_ptr(ws, 64);
    return TG_OK;
}

static tg_status get_tables(tg_ctx *ctx, int64_t M, int64_t N, int64_t K, tables *t,
                            const char *fn) {
    return get_tables_n(ctx, M, &N, 1, K, t, fn);
}

/* int32 gather indices: the input and the output must each have fewer than 2^31 elements */
static tg_status sizes_ok(const tg_conv_geom *g) {
    const int64_t in = (int64_t)g->N * g->C * g->H * g->W, out = (int64_t)g->N * g->Co * g->Ho * g->Wo;
    const int64_t lim = (int64_t)1 << 31;
    if (in < lim && out < lim) return TG_OK;
    return tg_fail(TG_ERR_UNSUPPORTED, FN, "a convolution with %lld input and %lld output elements: the CPU "
                   "backend convolves tensors of fewer than 2^31 elements", (long long)in, (long long)out);
}

tg_status tg_cpu_conv_fwd(tg_ctx *ctx, const tg_conv_geom *g, tg_mem xm, tg_mem wm, tg_mem bm, tg_mem ym, int acc) {
    const int N = g->N, C = g->C, H = g->H, W = g->W, Co = g->Co, kh = g->kh, kw = g->kw, s = g->stride,
              p = g->pad, Ho = g->Ho, Wo = g->Wo;
    const float *x = tg_f(xm), *w = tg_f(wm), *bias = tg_f(bm);
    float *y = tg_f(ym);
    const int64_t P = (int64_t)Ho * Wo, NP = N * P, K = (int64_t)C * kh * kw;
    tg_status st = sizes_ok(g);
    if (st) return st;
    const int bf16 = g->prec == TG_PRECISION_BF16;
    if (!bf16 && tg_cpu_winograd_applies(C, Co, kh, kw, s, N * (int64_t)((Ho + 1) / 2) * ((Wo + 1) / 2)))
        return tg_cpu_conv_fwd_wino(ctx, x, N, C, H, W, w, Co, p, Ho, Wo, bias, y, acc);
    if (!bf16 && tg_cpu_wino3_applies(C, Co, kh, kw, s, p, N * (int64_t)((Ho + 1) / 2) * ((Wo + 1) / 2)))
        return tg_cpu_conv3_wino(ctx, x, N, C, H, W, w, Co, p, Ho, Wo, bias, y, acc, 0);
    tables t;
    st = get_tables(ctx, Co, NP, K, &t, FN);
    if (st) return st;
    for (int64_t k = 0; k < K; k++) {
        const int j = (int)(k % kw), i = (int)(k / kw % kh);
        const int64_t c = k / ((int64_t)kh * kw);
        t.a_off[k] = k;
        t.roff[k] = (int32_t)(c * H * W + (int64_t)(i - p) * W + (j - p));
        t.rh[k] = i - p;
        t.rw[k] = j - p;
    }
#pragma omp parallel for collapse(2) if (NP > PAR_MIN)
    for (int64_t n = 0; n < N; n++)
        for (int64_t oh = 0; oh < Ho; oh++)
            for (int64_t ow = 0; ow < Wo; ow++) {
                const int64_t r = oh * Wo + ow, q = n * P + r;
                t.loff[q] = (int32_t)(n * C * H * W + oh * s * W + ow * s);
                t.lh[q] = (int32_t)(oh * s);
                t.lw[q] = (int32_t)(ow * s);
                t.d_off[q] = n * Co * P + r;
            }
    tg_gemm_tab gt = {.a_src = w, .a_ms = K, .a_off = t.a_off,
                      .b_src = x, .b_H = H, .b_W = W, .b_roff = t.roff, .b_rh = t.rh, .b_rw = t.rw,
                      .b_loff = t.loff, .b_lh = t.lh, .b_lw = t.lw,
                      .dst = y, .d_ms = P, .d_off = t.d_off, .bias = bias, .acc = acc, .M = Co, .N = NP, .K = K,
                      .bf16 = bf16};
    tg_cpu_gemm_run(&gt, t.gemm_ws);
    return TG_OK;
}

/* Phases first..first+count-1 (phase = rho*s + rw) of the data gradient below, as one batch of
 * GEMMs (they must share K: count 1, or kh and kw multiples of s). Empty phases are skipped. */
static tg_status bwd_data_phases(tg_ctx *ctx, const float *dy, int N, int Co, int Ho, int Wo,
                                 const float *w, int C, int kh, int kw, int s, int p, int H, int W,
                                 float *dx, int acc, int64_t first, int count, int bf16) {
    const int64_t HW = (int64_t)H * W, P = (int64_t)Ho * Wo, KK = (int64_t)kh * kw;
    int rho_[16], rw[16], Ti[16], Tj[16];
    int64_t mlo[16], wlo[16], Mh[16], Mw[16], Nq[16];
    int n = 0;
    for (int64_t ph = first; ph < first + count; ph++) {
        const int r = (int)(ph / s), c = (int)(ph % s); /* 64-bit: s*s phases exceed an int for big strides */
        const int ti = r < kh ? (int)(((int64_t)kh - r + s - 1) / s) : 0, tj = c < kw ? (int)(((int64_t)kw - c + s - 1) / s) : 0;
        int64_t ml, mh, wl, wh;
        tg_phase_range(H, s, p, r, &ml, &mh);
        tg_phase_range(W, s, p, c, &wl, &wh);
        if (mh < ml || wh < wl) continue;
        rho_[n] = r, rw[n] = c, Ti[n] = ti, Tj[n] = tj, mlo[n] = ml, wlo[n] = wl;
        Mh[n] = mh - ml + 1, Mw[n] = wh - wl + 1, Nq[n] = N * Mh[n] * Mw[n];
        n++;
    }
    if (!n) return TG_OK;
    const int64_t K = (int64_t)Co * Ti[0] * Tj[0];
    tables t[16];
    tg_status st = get_tables_n(ctx, C, Nq, n, K, t, FN);
    if (st) return st;
    tg_gemm_tab g[16];
    for (int i = 0; i < n; i++) {
        for (int64_t k = 0; k < K; k++) {
            const int u = (int)(k % Tj[i]), tt = (int)(k / Tj[i] % Ti[i]);
            const int64_t co = k / ((int64_t)Ti[i] * Tj[i]);
            t[i].a_off[k] = co * C * KK + (int64_t)(rho_[i] + s * tt) * kw + (rw[i] + s * u);
            t[i].roff[k] = (int32_t)(co * P - (int64_t)tt * Wo - u);
            t[i].rh[k] = -tt;
            t[i].rw[k] = -u;
        }
        tables *tb = &t[i];
        const int64_t mh = Mh[i], mwn = Mw[i], ml = mlo[i], wl = wlo[i];
        const int r0 = rho_[i], c0 = rw[i];
#pragma omp parallel for collapse(2) if (Nq[i] > PAR_MIN)
        for (int64_t nn = 0; nn < N; nn++)
            for (int64_t a = 0; a < mh; a++)
                for (int64_t b = 0; b < mwn; b++) {
                    const int64_t q = (nn * mh + a) * mwn + b, m = ml + a, mw = wl + b;
                    tb->loff[q] = (int32_t)(nn * Co * P + m * Wo + mw);
                    tb->lh[q] = (int32_t)m;
                    tb->lw[q] = (int32_t)mw;
                    tb->d_off[q] = nn * C * HW + (s * m - p + r0) * W + (s * mw - p + c0);
                }
        g[i] = (tg_gemm_tab){.a_src = w, .a_ms = KK, .a_off = t[i].a_off,
                             .b_src = dy, .b_H = Ho, .b_W = Wo, .b_roff = t[i].roff, .b_rh = t[i].rh, .b_rw = t[i].rw,
                             .b_loff = t[i].loff, .b_lh = t[i].lh, .b_lw = t[i].lw,
                             .dst = dx, .d_ms = HW, .d_off = t[i].d_off, .bias = NULL, .acc = acc, .M = C, .N = Nq[i], .K = K,
                             .bf16 = bf16};
    }
    tg_cpu_gemm_batch(g, n, t[0].gemm_ws);
    return TG_OK;
}

/* dx [N,C,H,W] (=|+=) data gradient of a conv with w [Co,C,kh,kw] given dy [N,Co,Ho,Wo]: one
 * GEMM per phase (rho, rw); when every phase has the same K (kh and kw multiples of s, s <= 4)
 * the phases run as one batch, which reads dy and writes dx once instead of s*s times */
tg_status tg_cpu_conv_bwd_data(tg_ctx *ctx, const tg_conv_geom *g, tg_mem dym, tg_mem wm, tg_mem dxm, int acc) {
    const int N = g->N, C = g->C, H = g->H, W = g->W, Co = g->Co, kh = g->kh, kw = g->kw, s = g->stride,
              p = g->pad, Ho = g->Ho, Wo = g->Wo;
    const float *dy = tg_f(dym), *w = tg_f(wm);
    float *dx = tg_f(dxm);
    const tg_status sz = sizes_ok(g);
    if (sz) return sz;
    const int bf16 = g->prec == TG_PRECISION_BF16; /* Winograd's transforms would round other numbers */
    if (!bf16 && tg_cpu_winograd_applies(C, Co, kh, kw, s, N * (int64_t)((H + 3) / 4) * ((W + 3) / 4)))
        return tg_cpu_conv_bwd_data_wino(ctx, dy, N, Co, Ho, Wo, w, C, p, H, W, dx, acc);
    if (!bf16 && tg_cpu_wino3_applies(C, Co, kh, kw, s, p, N * (int64_t)((H + 1) / 2) * ((W + 1) / 2)))
        return tg_cpu_conv3_wino(ctx, dy, N, Co, Ho, Wo, w, C, 2 - p, H, W, NULL, dx, acc, 1);
    if (s <= 4 && kh % s == 0 && kw % s == 0)
        return bwd_data_phases(ctx, dy, N, Co, Ho, Wo, w, C, kh, kw, s, p, H, W, dx, acc, 0, s * s, bf16);
    /* one phase at a time, only those with outputs: output h is in phase (h + p) mod s, so the
     * first min(H, s) rows (and columns) name every phase there is (a stride of 2^31 - 1 has two
     * to the 62 phases, nearly all empty) */
    tg_status st = TG_OK;
    const int nr = H < s ? H : s, nc = W < s ? W : s;
    for (int a = 0; a < nr && !st; a++)
        for (int b = 0; b < nc && !st; b++) {
            const int64_t r = ((int64_t)a + p) % s, c = ((int64_t)b + p) % s;
            st = bwd_data_phases(ctx, dy, N, Co, Ho, Wo, w, C, kh, kw, s, p, H, W, dx, acc, r * s + c, 1, bf16);
        }
    return st;
}

/* dw [Co,C,kh,kw] (=|+=) weight gradient from x [N,C,H,W] and dy [N,Co,Ho,Wo] */
tg_status tg_cpu_conv_wgrad(tg_ctx *ctx, const tg_conv_geom *g, tg_mem xm, tg_mem dym, tg_mem dwm, int acc) {
    const int N = g->N, C = g->C, H = g->H, W = g->W, Co = g->Co, kh = g->kh, kw = g->kw, s = g->stride,
              p = g->pad, Ho = g->Ho, Wo = g->Wo;
    const float *x = tg_f(xm), *dy = tg_f(dym);
    float *dw = tg_f(dwm);
    tg_status st = sizes_ok(g);
    if (st) return st;
    const int64_t P = (int64_t)Ho * Wo, NP = N * P, Kc = (int64_t)C * kh * kw;
    tables t;
    st = get_tables(ctx, Co, Kc, NP, &t, FN);
    if (st) return st;
#pragma omp parallel for collapse(2) if (NP > PAR_MIN)
    for (int64_t n = 0; n < N; n++) /* GEMM rows: output pixels */
        for (int64_t oh = 0; oh < Ho; oh++)
            for (int64_t ow = 0; ow < Wo; ow++) {
                const int64_t r = oh * Wo + ow, q = n * P + r;
                t.a_off[q] = n * Co * P + r;
                t.roff[q] = (int32_t)(n * C * H * W + oh * s * W + ow * s);
                t.rh[q] = (int32_t)(oh * s);
                t.rw[q] = (int32_t)(ow * s);
            }
    for (int64_t l = 0; l < Kc; l++) { /* GEMM lanes: kernel taps */
        const int j = (int)(l % kw), i = (int)(l / kw % kh);
        const int64_t c = l / ((int64_t)kh * kw);
        t.loff[l] = (int32_t)(c * H * W + (int64_t)(i - p) * W + (j - p));
        t.lh[l] = i - p;
        t.lw[l] = j - p;
        t.d_off[l] = l;
    }
    tg_gemm_tab gt = {.a_src = dy, .a_ms = P, .a_off = t.a_off,
                      .b_src = x, .b_H = H, .b_W = W, .b_roff = t.roff, .b_rh = t.rh, .b_rw = t.rw,
                      .b_loff = t.loff, .b_lh = t.lh, .b_lw = t.lw,
                      .dst = dw, .d_ms = Kc, .d_off = t.d_off, .bias = NULL, .acc = acc, .M = Co, .N = Kc, .K = NP,
                      .bf16 = g->prec == TG_PRECISION_BF16};
    tg_cpu_gemm_run(&gt, t.gemm_ws);
    return TG_OK;
}

/* y[n,c,p] += b[c] (dense layers' bias; ConvTranspose2D's, after its data-gradient pass) */
void tg_cpu_bias_add(tg_ctx *ctx, tg_ncp sh, tg_mem ym, tg_mem bm) {
    const int64_t N = sh.N, C = sh.C, P = sh.P;
    float *y = tg_f(ym);
    const float *b = tg_f(bm);
#pragma omp parallel for collapse(2) if (N * C * P > PAR_MIN)
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            float *d = y + (n * C + c) * P;
            const float bc = b[c];
            for (int64_t p = 0; p < P; p++) d[p] += bc;
        }
}

/* A dense layer's GEMM in bf16 (tg_cpu_gemm, g->prec): row-major C = op(A) op(B) (+ C when beta
 * is 1) through the table-driven GEMM, whose packing rounds A and B to bf16. B's lanes are read as
 * runs (B not transposed) or gathered. false when it does not apply (alpha not 1, beta not 0 or
 * 1, B spanning 2^31 elements or more, no workspace): the caller then multiplies the rounded
 * operands with plain loops. */
bool tg_cpu_gemm_bf16(tg_ctx *ctx, const tg_gemm_args *a) {
    const int64_t M = a->M, N = a->N, K = a->K;
    const int64_t span = a->tb ? (N - 1) * a->ldb + K : (K - 1) * a->ldb + N;
    if (a->alpha != 1.0f || (a->beta != 0.0f && a->beta != 1.0f) || span >= ((int64_t)1 << 31) || M < 1 || N < 1 ||
        K < 1 || N >= INT32_MAX || K >= INT32_MAX)
        return false;
    tables t;
    if (get_tables(ctx, M, N, K, &t, "tg_linear (CPU, bf16)")) return false;
    for (int64_t k = 0; k < K; k++) {
        t.a_off[k] = a->ta ? k * a->lda : k;
        t.roff[k] = (int32_t)(a->tb ? k : k * a->ldb);
        t.rh[k] = 0;
        t.rw[k] = a->tb ? (int32_t)k : 0; /* transposed B: rows k run along a source row */
    }
    for (int64_t n = 0; n < N; n++) {
        t.loff[n] = (int32_t)(a->tb ? n * a->ldb : n);
        t.lh[n] = 0;
        t.lw[n] = a->tb ? 0 : (int32_t)n; /* B as is: lanes n run along a source row */
        t.d_off[n] = n;
    }
    const tg_gemm_tab gt = {.a_src = tg_f(a->A), .a_ms = a->ta ? 1 : a->lda, .a_off = t.a_off,
                            .b_src = tg_f(a->B), .b_H = 1, .b_W = (int32_t)(a->tb ? K : N),
                            .b_roff = t.roff, .b_rh = t.rh, .b_rw = t.rw, .b_loff = t.loff, .b_lh = t.lh, .b_lw = t.lw,
                            .dst = tg_f(a->C), .d_ms = a->ldc, .d_off = t.d_off, .acc = a->beta == 1.0f,
                            .M = M, .N = N, .K = K, .bf16 = 1};
    tg_cpu_gemm_run(&gt, t.gemm_ws);
    return true;
}

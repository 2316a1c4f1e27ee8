/*
 * conv.c (CPU) — the three convolution passes on the CPU, each one table-driven GEMM (gemm.c),
 * with no column matrix and no reorder around it:
 *   forward      y[n,co,oh,ow]  = sum_{c,i,j} w[co,c,i,j] x[n,c,oh*s-p+i,ow*s-p+j]  (+ bias)
 *   data grad    dx = the transposed convolution of dy, split into s*s phases: the outputs
 *                h = s*m - p + rho (rho fixed) only see the taps i = rho + s*t, and each phase
 *                is a stride-1 correlation of dy, so every dx element is written once (no
 *                col2im scatter-add)
 *   weight grad  dw[co,c,i,j]   = sum_{n,oh,ow} dy[n,co,oh,ow] x[n,c,oh*s-p+i,ow*s-p+j]
 * ConvTranspose2D uses the same three with the roles of x and dy swapped (lib/conv.c).
 * Pairs with cuda/conv.cu (which keeps im2col + cuBLAS).
 */
#include "cpu.h"

#include "../tg_omp.h"
#include <string.h>

#define PAD_INVALID (-(1 << 29)) /* a lane past N: fails every bounds test */

typedef struct {
    int64_t *a_off, *d_off;
    int32_t *roff, *rh, *rw, *loff, *lh, *lw;
    float *gemm_ws;
} tables;

/* table lengths: rounded to 16, plus two slivers of padding (pack_b reads the next sliver's) */
static int64_t padded(int64_t n) { return (n + 15) / 16 * 16 + 2 * TG_NR_MAX; }

/* Carves the tables for K rows and N lanes, then the GEMM's own workspace, out of the
 * context's workspace. */
static tg_status get_tables(tg_ctx *ctx, int64_t M, int64_t N, int64_t K, tables *t,
                            const char *fn) {
    const int64_t Np = padded(N), Kp = padded(K ? K : 1);
    const size_t tab = (size_t)(Kp * 8 + N * 8 + Kp * 12 + Np * 12) + 256;
    const size_t bytes = tab + tg_cpu_gemm_ws(M, K, omp_get_max_threads());
    char *ws = (char *)tg_workspace(ctx, bytes);
    if (!ws) return tg_fail(TG_ERR_NOMEM, fn, "cannot allocate a %zu-byte workspace", bytes);
    t->a_off = (int64_t *)ws;
    t->d_off = t->a_off + Kp;
    t->roff = (int32_t *)(t->d_off + N);
    t->rh = t->roff + Kp;
    t->rw = t->rh + Kp;
    t->loff = t->rw + Kp;
    t->lh = t->loff + Np;
    t->lw = t->lh + Np;
    t->gemm_ws = (float *)(((uintptr_t)(t->lw + Np) + 63) & ~(uintptr_t)63);
    for (int64_t q = N; q < Np; q++) t->loff[q] = 0, t->lh[q] = PAD_INVALID, t->lw[q] = PAD_INVALID;
    return TG_OK;
}

/* int32 gather indices: every source must have fewer than 2^31 elements */
static bool small(int64_t a, int64_t b) { return a < ((int64_t)1 << 31) && b < ((int64_t)1 << 31); }

tg_status tg_cpu_conv_fwd(tg_ctx *ctx, const float *x, int N, int C, int H, int W,
                              const float *w, int Co, int kh, int kw, int s, int p, int Ho, int Wo,
                              const float *bias, float *y, int acc) {
    const int64_t P = (int64_t)Ho * Wo, NP = N * P, K = (int64_t)C * kh * kw;
    if (!small((int64_t)N * C * H * W, NP * Co)) return TG_ERR_UNSUPPORTED;
    tables t;
    tg_status st = get_tables(ctx, Co, NP, K, &t, "tg_conv2d");
    if (st) return st;
    for (int64_t k = 0; k < K; k++) {
        const int j = (int)(k % kw), i = (int)(k / kw % kh);
        const int64_t c = k / ((int64_t)kh * kw);
        t.a_off[k] = k;
        t.roff[k] = (int32_t)(c * H * W + (int64_t)(i - p) * W + (j - p));
        t.rh[k] = i - p;
        t.rw[k] = j - p;
    }
    for (int64_t q = 0; q < NP; q++) {
        const int64_t n = q / P, r = q % P, oh = r / Wo, ow = r % Wo;
        t.loff[q] = (int32_t)(n * C * H * W + oh * s * W + ow * s);
        t.lh[q] = (int32_t)(oh * s);
        t.lw[q] = (int32_t)(ow * s);
        t.d_off[q] = n * Co * P + r;
    }
    tg_gemm_tab g = {w, K, t.a_off, x, H, W, t.roff, t.rh, t.rw, t.loff, t.lh, t.lw,
                     y, P, t.d_off, bias, acc, Co, NP, K};
    tg_cpu_gemm(&g, t.gemm_ws);
    return TG_OK;
}

static int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* dx [N,C,H,W] (=|+=) data gradient of a conv with w [Co,C,kh,kw] given dy [N,Co,Ho,Wo] */
tg_status tg_cpu_conv_bwd_data(tg_ctx *ctx, const float *dy, int N, int Co, int Ho, int Wo,
                                   const float *w, int C, int kh, int kw, int s, int p, int H,
                                   int W, float *dx, int acc) {
    if (!small((int64_t)N * Co * Ho * Wo, (int64_t)N * C * H * W)) return TG_ERR_UNSUPPORTED;
    const int64_t HW = (int64_t)H * W, P = (int64_t)Ho * Wo, KK = (int64_t)kh * kw;
    for (int rho = 0; rho < s; rho++) {
        for (int rw_ = 0; rw_ < s; rw_++) {
            const int Ti = rho < kh ? (kh - rho + s - 1) / s : 0;
            const int Tj = rw_ < kw ? (kw - rw_ + s - 1) / s : 0;
            const int64_t mlo = ceil_div(p - rho, s), mhi = floor_div(H - 1 + p - rho, s);
            const int64_t wlo = ceil_div(p - rw_, s), whi = floor_div(W - 1 + p - rw_, s);
            const int64_t Mh = mhi - mlo + 1, Mw = whi - wlo + 1;
            if (Mh <= 0 || Mw <= 0) continue;
            const int64_t Nq = N * Mh * Mw, K = (int64_t)Co * Ti * Tj;
            tables t;
            tg_status st = get_tables(ctx, C, Nq, K, &t, "tg_conv_backward");
            if (st) return st;
            for (int64_t k = 0; k < K; k++) {
                const int u = (int)(k % Tj), tt = (int)(k / Tj % Ti);
                const int64_t co = k / ((int64_t)Ti * Tj);
                t.a_off[k] = co * C * KK + (int64_t)(rho + s * tt) * kw + (rw_ + s * u);
                t.roff[k] = (int32_t)(co * P - (int64_t)tt * Wo - u);
                t.rh[k] = -tt;
                t.rw[k] = -u;
            }
            for (int64_t q = 0; q < Nq; q++) {
                const int64_t n = q / (Mh * Mw), r = q % (Mh * Mw);
                const int64_t m = mlo + r / Mw, mw = wlo + r % Mw;
                t.loff[q] = (int32_t)(n * Co * P + m * Wo + mw);
                t.lh[q] = (int32_t)m;
                t.lw[q] = (int32_t)mw;
                t.d_off[q] = n * C * HW + (s * m - p + rho) * W + (s * mw - p + rw_);
            }
            tg_gemm_tab g = {w, KK, t.a_off, dy, Ho, Wo, t.roff, t.rh, t.rw, t.loff, t.lh, t.lw,
                             dx, HW, t.d_off, NULL, acc, C, Nq, K};
            tg_cpu_gemm(&g, t.gemm_ws);
        }
    }
    return TG_OK;
}

/* dw [Co,C,kh,kw] (=|+=) weight gradient from x [N,C,H,W] and dy [N,Co,Ho,Wo] */
tg_status tg_cpu_conv_wgrad(tg_ctx *ctx, const float *x, int N, int C, int H, int W,
                                const float *dy, int Co, int Ho, int Wo, int kh, int kw, int s,
                                int p, float *dw, int acc) {
    if (!small((int64_t)N * C * H * W, (int64_t)N * Co * Ho * Wo)) return TG_ERR_UNSUPPORTED;
    const int64_t P = (int64_t)Ho * Wo, NP = N * P, Kc = (int64_t)C * kh * kw;
    tables t;
    tg_status st = get_tables(ctx, Co, Kc, NP, &t, "tg_conv_backward");
    if (st) return st;
    for (int64_t q = 0; q < NP; q++) { /* GEMM rows: output pixels */
        const int64_t n = q / P, r = q % P, oh = r / Wo, ow = r % Wo;
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
    tg_gemm_tab g = {dy, P, t.a_off, x, H, W, t.roff, t.rh, t.rw, t.loff, t.lh, t.lw,
                     dw, Kc, t.d_off, NULL, acc, Co, Kc, NP};
    tg_cpu_gemm(&g, t.gemm_ws);
    return TG_OK;
}

/* ---- the column-matrix path and layout moves (the CUDA backend's convolution, and tests) ---- */
void tg_cpu_im2col(tg_ctx *ctx, const float *x, int N, int C, int H, int W, int kh, int kw,
                       int stride, int pad, int Ho, int Wo, float *col) {
    (void)ctx;
    const int64_t P = (int64_t)Ho * Wo, NP = (int64_t)N * P, K = (int64_t)C * kh * kw;
#pragma omp parallel for collapse(2) if (K * NP > PAR_MIN)
    for (int64_t r = 0; r < K; r++) {
        for (int n = 0; n < N; n++) {
            int i, j;
            int64_t c;
            tg_im2col_tap(r, kh, kw, &c, &i, &j);
            const float *xp = x + ((int64_t)n * C + c) * H * W;
            float *dst = col + r * NP + (int64_t)n * P;
            for (int oh = 0; oh < Ho; oh++) {
                const int h = tg_conv_in(oh, stride, pad, i);
                float *d = dst + (int64_t)oh * Wo;
                if (h < 0 || h >= H) {
                    memset(d, 0, sizeof(float) * (size_t)Wo);
                    continue;
                }
                const float *xr = xp + (int64_t)h * W;
                for (int ow = 0; ow < Wo; ow++) {
                    const int w = tg_conv_in(ow, stride, pad, j);
                    d[ow] = (w >= 0 && w < W) ? xr[w] : 0.0f;
                }
            }
        }
    }
}

void tg_cpu_col2im(tg_ctx *ctx, const float *col, int N, int C, int H, int W, int kh, int kw,
                       int stride, int pad, int Ho, int Wo, float *x, int acc) {
    (void)ctx;
    const int64_t P = (int64_t)Ho * Wo, NP = (int64_t)N * P;
    /* each (n, c) plane of x receives from its own rows and columns only: no races */
#pragma omp parallel for collapse(2) if ((int64_t)N * C * H * W > PAR_MIN / 4)
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++) {
            float *xp = x + ((int64_t)n * C + c) * H * W;
            if (!acc) memset(xp, 0, sizeof(float) * (size_t)H * W);
            for (int i = 0; i < kh; i++) {
                for (int j = 0; j < kw; j++) {
                    const int64_t r = ((int64_t)c * kh + i) * kw + j;
                    const float *src = col + r * NP + (int64_t)n * P;
                    for (int oh = 0; oh < Ho; oh++) {
                        const int h = oh * stride - pad + i;
                        if (h < 0 || h >= H) continue;
                        float *xr = xp + (int64_t)h * W;
                        const float *s = src + (int64_t)oh * Wo;
                        for (int ow = 0; ow < Wo; ow++) {
                            const int w = ow * stride - pad + j;
                            if (w >= 0 && w < W) xr[w] += s[ow];
                        }
                    }
                }
            }
        }
    }
}

void tg_cpu_nc_to_cn(tg_ctx *ctx, const float *src, int64_t N, int64_t C, int64_t P,
                         float *dst) {
    (void)ctx;
#pragma omp parallel for collapse(2) if (N * C * P > PAR_MIN)
    for (int64_t c = 0; c < C; c++)
        for (int64_t n = 0; n < N; n++)
            memcpy(dst + c * N * P + n * P, src + (n * C + c) * P, sizeof(float) * (size_t)P);
}

void tg_cpu_cn_to_nc(tg_ctx *ctx, const float *src, int64_t N, int64_t C, int64_t P,
                         const float *bias, float *dst, int acc) {
    (void)ctx;
#pragma omp parallel for collapse(2) if (N * C * P > PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        for (int64_t c = 0; c < C; c++) {
            const float *s = src + c * N * P + n * P;
            float *d = dst + (n * C + c) * P;
            const float b = bias ? bias[c] : 0.0f;
            if (acc)
                for (int64_t p = 0; p < P; p++) d[p] += s[p] + b;
            else
                for (int64_t p = 0; p < P; p++) d[p] = s[p] + b;
        }
    }
}

void tg_cpu_bias_add(tg_ctx *ctx, float *y, const float *b, int64_t N, int64_t C, int64_t P) {
    (void)ctx;
#pragma omp parallel for collapse(2) if (N * C * P > PAR_MIN)
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            float *d = y + (n * C + c) * P;
            const float bc = b[c];
            for (int64_t p = 0; p < P; p++) d[p] += bc;
        }
}

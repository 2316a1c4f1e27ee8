/*
 * winograd.c (CPU) — the data gradient of a 4x4, stride-2 convolution (DCGAN's; it is also the
 * forward pass of ConvTranspose2D) as Winograd F(2x2, 2x2) on each of its four phases.
 *
 * Phase (r, c) of dx (rows h = 2m - p + r, columns 2mw - p + c; conv.c) is a stride-1 2x2
 * correlation of dy with g[a][b] = w[co][ch][r + 2(1-a)][c + 2(1-b)]:
 *   dx(m, mw) = sum_{co,a,b} g[a][b] dy[m - 1 + a][mw - 1 + b].
 * A tile of 2x2 outputs reads a 3x3 patch d of dy; F(2x2, 2x2) computes it as
 *   Y = A^T [ sum_co (G g G^T) . (B^T d B) ] A,
 *   B^T = [1 -1 0; 0 1 0; 0 -1 1],  G = [1 0; 1 1; 0 1],  A^T = [1 1 0; 0 1 1],
 * i.e. 9 GEMMs per phase (element e of the 3x3 transforms: M_e[ch][tile] = sum_co U_e[ch][co]
 * V_e[co][tile]) of K = Co instead of one of K = 4 Co with four times the lanes: 9/16 of the
 * multiply-adds. The transforms only add and subtract, so the rounding stays close to the direct
 * sum's (test_cpu_conv compares both with double-precision loops).
 *
 * The transformed input V is never materialised: each thread transforms KC rows of its sliver of
 * tiles into nine packed planes (the ISA's wino_pack, or the plain C one here), multiplies them
 * into nine C tiles per sliver of A with the GEMM's own micro-kernel, and after the last row
 * block turns the nine tiles into the 2x2 outputs (wino_out). Each output is computed by one
 * thread in a fixed order: results do not depend on the thread count.
 *
 * Used when the ISA has vector transforms (AVX-512) and both channel counts are at least 16;
 * TG_CPU_WINOGRAD=0 turns it off, =1 forces it on every path (tests run both).
 */
#include "cpu.h"

#include "../tg_omp.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define KC TG_WINO_KC
#define PAD_INVALID (-(1 << 29))

/* ---- the plain C transforms ------------------------------------------------------------------ */
void tg_wino_pack_scalar(const tg_wino_phase *ph, int64_t k0, int kc, int64_t q0, int nlanes,
                         int nr, float *out) {
    const uint32_t Ho = (uint32_t)ph->Ho, Wo = (uint32_t)ph->Wo;
    for (int k = 0; k < kc; k++) {
        const float *src = ph->dy + (k0 + k) * ph->P;
        for (int l = 0; l < nr; l++) {
            float d[3][3] = {{0}};
            if (l < nlanes) {
                const int64_t q = q0 + l;
                const int32_t h = ph->in_h[q], w = ph->in_w[q], o = ph->in_off[q];
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++)
                        if ((uint32_t)(h + i) < Ho && (uint32_t)(w + j) < Wo)
                            d[i][j] = src[(int64_t)o + i * ph->Wo + j];
            }
            float x[3][3]; /* B^T d */
            for (int j = 0; j < 3; j++) {
                x[0][j] = d[0][j] - d[1][j];
                x[1][j] = d[1][j];
                x[2][j] = d[2][j] - d[1][j];
            }
            for (int i = 0; i < 3; i++) { /* (B^T d) B */
                out[(3 * i + 0) * TG_WINO_PLANE(nr) + k * nr + l] = x[i][0] - x[i][1];
                out[(3 * i + 1) * TG_WINO_PLANE(nr) + k * nr + l] = x[i][1];
                out[(3 * i + 2) * TG_WINO_PLANE(nr) + k * nr + l] = x[i][2] - x[i][1];
            }
        }
    }
}

void tg_wino_out_scalar(const tg_wino_phase *ph, int64_t ch0, int mc, int64_t q0, int nl,
                        const float *tiles, int mr, int nr) {
    const int64_t W2 = 2 * (int64_t)ph->W;
    for (int m = 0; m < mc; m++) {
        float *d = ph->dx + (ch0 + m) * ph->HW;
        for (int l = 0; l < nl; l++) {
            float M[9];
            for (int e = 0; e < 9; e++) M[e] = tiles[(e * mr + m) * nr + l];
            float t[2][3]; /* A^T M */
            for (int j = 0; j < 3; j++) {
                t[0][j] = M[j] + M[3 + j];
                t[1][j] = M[3 + j] + M[6 + j];
            }
            const int64_t q = q0 + l;
            const int mask = ph->out_mask[q];
            float *o = d + ph->out_off[q];
            for (int a = 0; a < 2; a++) { /* (A^T M) A */
                const float y0 = t[a][0] + t[a][1], y1 = t[a][1] + t[a][2];
                if (mask & (1 << (2 * a))) o[a * W2] = ph->acc ? o[a * W2] + y0 : y0;
                if (mask & (2 << (2 * a))) o[a * W2 + 2] = ph->acc ? o[a * W2 + 2] + y1 : y1;
            }
        }
    }
}

/* ---- when to use it -------------------------------------------------------------------------- */
static pthread_once_t mode_once = PTHREAD_ONCE_INIT;
static int mode = -1; /* -1 automatic, 0 off, 1 on */

static void mode_read(void) {
    const char *env = getenv("TG_CPU_WINOGRAD");
    if (env && *env) mode = atoi(env) ? 1 : 0;
}

void tg_cpu_winograd_force(int on) {
    pthread_once(&mode_once, mode_read);
    mode = on;
}

bool tg_cpu_winograd_applies(int C, int Co, int kh, int kw, int s) {
    pthread_once(&mode_once, mode_read);
    if (kh != 4 || kw != 4 || s != 2 || C < 16 || Co < 16) return false;
    return mode == 1 || (mode == -1 && tg_cpu_isa_get()->wino_pack != NULL);
}

/* ---- the driver ------------------------------------------------------------------------------ */
static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
static int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* One phase's tiles and where its sums go */
typedef struct {
    int r, c;
    int64_t ml, wl, mh, wh, th, tw, T, nsl;
    tg_wino_phase ph;
    float *Ap; /* 9 packed transformed weight matrices, each [ns][K][mr] */
} phase;

/* Sliver j of one phase: KC rows of dy at a time transformed and multiplied into 9 tiles per A
 * sliver, then written through the output transform. */
static void wino_sliver(const phase *P, const tg_cpu_isa *isa, int64_t K, int64_t M, int64_t apk,
                        int64_t j, float *Bs, float *tiles) {
    const int mr = isa->mr, nr = isa->nr;
    const int64_t ns = (M + mr - 1) / mr, q0 = j * nr, tsz = (int64_t)mr * nr;
    const int nl = (int)(P->T - q0 < nr ? P->T - q0 : nr);
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
        const int kc = (int)(K - k0 < KC ? K - k0 : KC);
        if (isa->wino_pack) isa->wino_pack(&P->ph, k0, kc, q0, nl, Bs);
        else tg_wino_pack_scalar(&P->ph, k0, kc, q0, nl, nr, Bs);
        for (int e = 0; e < 9; e++) /* plane e (in L1) against every A sliver */
            for (int64_t s = 0; s < ns; s++)
                isa->kernel(kc, P->Ap + e * apk + (s * K + k0) * mr, Bs + e * TG_WINO_PLANE(nr),
                            tiles + (s * 9 + e) * tsz, k0 > 0);
    }
    for (int64_t s = 0; s < ns; s++) {
        const int mc = (int)(M - s * mr < mr ? M - s * mr : mr);
        if (isa->wino_out) isa->wino_out(&P->ph, s * mr, mc, q0, nl, tiles + s * 9 * tsz);
        else tg_wino_out_scalar(&P->ph, s * mr, mc, q0, nl, tiles + s * 9 * tsz, mr, nr);
    }
}

/* The mr channels of A sliver s and output channel k: their 16 taps transposed to [tap][mr]
 * (so the sums below run along channels, which the compiler vectorises), then U_e = G g G^T for
 * every phase, stored where the kernel reads them. */
static inline void wino_weights_mr(const float *w, int C, int64_t K, const int mr, int64_t s,
                                   int64_t k, int64_t apk, const phase *ph, int nph) {
    float gt[16][TG_MR_MAX];
    for (int m = 0; m < mr; m++) {
        const int64_t ch = s * mr + m;
        for (int t = 0; t < 16; t++) gt[t][m] = ch < C ? w[(k * C + ch) * 16 + t] : 0.0f;
    }
    for (int i = 0; i < nph; i++) {
        const int r = ph[i].r, c = ph[i].c;
        /* g[a][b] = tap (r + 2(1-a), c + 2(1-b)) */
        const float *g00 = gt[(r + 2) * 4 + c + 2], *g01 = gt[(r + 2) * 4 + c];
        const float *g10 = gt[r * 4 + c + 2], *g11 = gt[r * 4 + c];
        float *o = ph[i].Ap + (s * K + k) * mr;
        for (int m = 0; m < mr; m++) {
            const float a0 = g00[m], a1 = g00[m] + g10[m], a2 = g10[m]; /* G g, column 0 */
            const float b0 = g01[m], b1 = g01[m] + g11[m], b2 = g11[m]; /* column 1 */
            o[0 * apk + m] = a0, o[1 * apk + m] = a0 + b0, o[2 * apk + m] = b0;
            o[3 * apk + m] = a1, o[4 * apk + m] = a1 + b1, o[5 * apk + m] = b1;
            o[6 * apk + m] = a2, o[7 * apk + m] = a2 + b2, o[8 * apk + m] = b2;
        }
    }
}

static void wino_weights(const float *w, int C, int64_t K, int mr, int64_t s, int64_t k,
                         int64_t apk, const phase *ph, int nph) {
    switch (mr) { /* the kernels' row counts as constants */
    case 8: wino_weights_mr(w, C, K, 8, s, k, apk, ph, nph); break;
    case 6: wino_weights_mr(w, C, K, 6, s, k, apk, ph, nph); break;
    case 4: wino_weights_mr(w, C, K, 4, s, k, apk, ph, nph); break;
    default: wino_weights_mr(w, C, K, mr, s, k, apk, ph, nph); break;
    }
}

tg_status tg_cpu_conv_bwd_data_wino(tg_ctx *ctx, const float *dy, int N, int Co, int Ho, int Wo,
                                    const float *w, int C, int p, int H, int W, float *dx,
                                    int acc) {
    const tg_cpu_isa *isa = tg_cpu_isa_get();
    const int mr = isa->mr, nr = isa->nr, nt = omp_get_max_threads();
    const int64_t M = C, K = Co, ns = (M + mr - 1) / mr, P = (int64_t)Ho * Wo, HW = (int64_t)H * W;
    /* floats of one packed transformed matrix, plus a cache line: the 36 matrices are written
     * together, and at a multiple of 4 KiB apart they would all fall in the same L1 sets */
    const int64_t apk = round_up(ns * mr * K, 16) + 16;
    phase ph[4];
    int nph = 0;
    int64_t lanes = 0, nsl_max = 0;
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 2; c++) {
            phase *f = &ph[nph];
            f->r = r, f->c = c;
            f->ml = ceil_div(p - r, 2), f->mh = floor_div(H - 1 + p - r, 2);
            f->wl = ceil_div(p - c, 2), f->wh = floor_div(W - 1 + p - c, 2);
            if (f->mh < f->ml || f->wh < f->wl) continue;
            f->th = (f->mh - f->ml + 2) / 2, f->tw = (f->wh - f->wl + 2) / 2;
            f->T = N * f->th * f->tw;
            f->nsl = (f->T + nr - 1) / nr;
            nsl_max = f->nsl > nsl_max ? f->nsl : nsl_max;
            lanes += round_up(f->T, 16) + 2 * TG_NR_MAX;
            nph++;
        }
    if (!nph) return TG_OK;
    const int64_t per_thread = round_up(9 * TG_WINO_PLANE(nr), 16) + ns * 9 * mr * nr + 16;
    const size_t bytes = (size_t)(lanes * 17 + 256 * nph) +
                         (size_t)(nph * 9 * apk + (int64_t)nt * per_thread + 32) * sizeof(float);
    char *ws = (char *)tg_workspace(ctx, bytes);
    if (!ws) return tg_fail(TG_ERR_NOMEM, "tg_conv_backward", "cannot allocate a %zu-byte workspace", bytes);
    float *fws = (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    float *Ap0 = fws, *thread_ws = fws + nph * 9 * apk;
    char *tab = (char *)(thread_ws + (int64_t)nt * per_thread + 16);
    for (int i = 0; i < nph; i++) {
        phase *f = &ph[i];
        const int64_t Tp = round_up(f->T, 16) + 2 * TG_NR_MAX;
        int32_t *t32 = (int32_t *)(((uintptr_t)tab + 63) & ~(uintptr_t)63);
        int32_t *in_off = t32, *in_h = t32 + Tp, *in_w = t32 + 2 * Tp, *out_off = t32 + 3 * Tp;
        uint8_t *out_mask = (uint8_t *)(t32 + 4 * Tp);
        tab = (char *)(out_mask + Tp);
        const int64_t th = f->th, tw = f->tw, ml = f->ml, wl = f->wl, mh = f->mh, wh = f->wh;
        const int r = f->r, c = f->c;
#pragma omp parallel for collapse(2) if (f->T > PAR_MIN)
        for (int64_t n = 0; n < N; n++)
            for (int64_t a = 0; a < th; a++)
                for (int64_t b = 0; b < tw; b++) {
                    const int64_t q = (n * th + a) * tw + b, m0 = ml + 2 * a, w0 = wl + 2 * b;
                    in_h[q] = (int32_t)(m0 - 1);
                    in_w[q] = (int32_t)(w0 - 1);
                    in_off[q] = (int32_t)(n * Co * P + (m0 - 1) * Wo + (w0 - 1));
                    out_off[q] = (int32_t)(n * C * HW + (2 * m0 - p + r) * W + (2 * w0 - p + c));
                    out_mask[q] = (uint8_t)(1 | (w0 + 1 <= wh ? 2 : 0) | (m0 + 1 <= mh ? 4 : 0) |
                                            (m0 + 1 <= mh && w0 + 1 <= wh ? 8 : 0));
                }
        for (int64_t q = f->T; q < Tp; q++)
            in_off[q] = 0, in_h[q] = PAD_INVALID, in_w[q] = PAD_INVALID, out_off[q] = 0, out_mask[q] = 0;
        f->ph = (tg_wino_phase){dy, Ho, Wo, P, in_off, in_h, in_w, dx, HW, W, out_off, out_mask, acc};
        f->Ap = Ap0 + i * 9 * apk;
    }
    /* U_e = G g G^T for each phase, channel and output channel, packed as the kernel reads A:
     * sliver s of matrix e holds rows (channels) s*mr.. as [K][mr], zero past C */
#pragma omp parallel for schedule(static) if (ns * K * mr > 4096)
    for (int64_t sk = 0; sk < ns * K; sk++)
        wino_weights(w, C, K, mr, sk / K, sk % K, apk, ph, nph);
    /* items: sliver j of every phase in turn (the phases of one sliver read overlapping dy) */
    const int64_t nitems = nsl_max * nph;
#pragma omp parallel if (M * K * nsl_max * nr * nph > ((int64_t)1 << 18))
    {
        float *Bs = thread_ws + (int64_t)omp_get_thread_num() * per_thread;
        Bs = (float *)(((uintptr_t)Bs + 63) & ~(uintptr_t)63);
        float *tiles = Bs + round_up(9 * TG_WINO_PLANE(nr), 16);
        /* static blocks, the last eighth one at a time (as in tg_cpu_gemm_batch) */
        const int64_t nstat = omp_get_num_threads() > 1 ? nitems - nitems / 8 : nitems;
#pragma omp for schedule(static) nowait
        for (int64_t it = 0; it < nstat; it++)
            if (it / nph < ph[it % nph].nsl) wino_sliver(&ph[it % nph], isa, K, M, apk, it / nph, Bs, tiles);
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = nstat; it < nitems; it++)
            if (it / nph < ph[it % nph].nsl) wino_sliver(&ph[it % nph], isa, K, M, apk, it / nph, Bs, tiles);
    }
    return TG_OK;
}

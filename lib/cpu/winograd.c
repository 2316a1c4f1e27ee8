/*
 * winograd.c (CPU) — 4x4, stride-2 convolutions (DCGAN's) as Winograd F(2x2, 2x2): the data
 * gradient (which is also ConvTranspose2D's forward) and the forward pass (which is also
 * ConvTranspose2D's data gradient).
 *
 * Both are sums of stride-1 2x2 correlations. The data gradient's phase (r, c) of dx (rows
 * h = 2m - p + r, columns 2mw - p + c; conv.c) correlates dy with g[a][b] = w[co][ch][r + 2(1-a)]
 * [c + 2(1-b)]: dx(m, mw) = sum_{co,a,b} g[a][b] dy[m - 1 + a][mw - 1 + b]. The forward pass
 * splits x into its four input phases x_rs[c][u][v] = x[c][2u + r - p][2v + s - p]:
 * y(oh, ow) = sum_{c,r,s,a,b} w[co][c][2a + r][2b + s] x_rs[c][oh + a][ow + b], one correlation
 * over K = 4C rows. A tile of 2x2 outputs reads a 3x3 patch d; F(2x2, 2x2) computes it as
 *   Y = A^T [ sum_k (G g G^T) . (B^T d B) ] A,
 *   B^T = [1 -1 0; 0 1 0; 0 -1 1],  G = [1 0; 1 1; 0 1],  A^T = [1 1 0; 0 1 1],
 * i.e. 9 GEMMs (element e of the 3x3 transforms: M_e[row][tile] = sum_k U_e[row][k] V_e[k][tile])
 * instead of one with four times the lanes and K: 9/16 of the multiply-adds. The transforms
 * only add and subtract, so the rounding stays close to the direct sum's (test_cpu_conv compares
 * both with double-precision loops).
 *
 * The transformed input V is never materialised: each thread transforms KC rows of its sliver of
 * tiles into nine packed planes (the ISA's wino_pack, or the plain C one here), multiplies them
 * into nine C tiles per sliver of A with the GEMM's own micro-kernel, and after the last row
 * block turns the nine tiles into the 2x2 outputs (wino_out). Each output is computed by one
 * thread in a fixed order: results do not depend on the thread count.
 *
 * Used on every instruction-set path (AVX-512 has vector transforms, AVX2 and plain C use the
 * C ones here) when both channel counts are at least 16 and there are at least MIN_TILES tiles
 * per problem; TG_CPU_WINOGRAD=0 turns it off, =1 forces it on wherever the shape allows (tests
 * run both).
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
    const uint32_t H = (uint32_t)ph->H, W = (uint32_t)ph->W;
    const int ds = ph->ds;
    for (int k = 0; k < kc; k++) {
        const float *src = ph->src + ph->roff[k0 + k];
        const int32_t rh = ph->rh[k0 + k], rw = ph->rw[k0 + k];
        for (int l = 0; l < nr; l++) {
            float d[3][3] = {{0}};
            if (l < nlanes) {
                const int64_t q = q0 + l;
                const int32_t h = rh + ph->in_h[q], w = rw + ph->in_w[q], o = ph->in_off[q];
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++)
                        if ((uint32_t)(h + ds * i) < H && (uint32_t)(w + ds * j) < W)
                            d[i][j] = src[(int64_t)o + ds * (i * ph->W + j)];
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
    for (int m = 0; m < mc; m++) {
        float *d = ph->dst + (ch0 + m) * ph->d_cs;
        const float bias = ph->bias ? ph->bias[ch0 + m] : 0.0f;
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
            for (int a = 0; a < 2; a++) /* (A^T M) A, plus the bias, into dst */
                for (int b = 0; b < 2; b++) {
                    if (!(mask & (1 << (2 * a + b)))) continue;
                    float *o = d + ph->out_off[q] + a * ph->orow + b * ph->ocol;
                    const float y = (t[a][b] + t[a][b + 1]) + bias;
                    *o = ph->acc ? *o + y : y;
                }
        }
    }
}

/* ---- F(2x2, 3x3): the 4x4-patch transforms ------------------------------------------------- */
/* V = B^T d B of 4x4 patches, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], into the 16 planes.
 * Tiles go in runs: consecutive lanes whose patches are 2 columns apart in one row (in_off and
 * in_h tell; F(2x2, 3x3) problems have the same rh, rw for every row k). A run of R tiles reads
 * 2R + 2 columns of each of its 4 patch rows (zeros outside the plane), transforms along the
 * rows (d B), then across them (B^T .), each step a loop over the run's tiles that the compiler
 * vectorises, and stores each plane's R values contiguously. */
static void wino3_pack(const tg_wino_phase *ph, int64_t k0, int kc, int64_t q0, int nlanes, int nr, float *out) {
    const int32_t H = ph->H, W = ph->W;
    const int64_t PL = TG_WINO_PLANE(nr);
    if (nlanes < nr)
        for (int e = 0; e < 16; e++)
            for (int k = 0; k < kc; k++) memset(out + e * PL + (int64_t)k * nr + nlanes, 0, sizeof(float) * (size_t)(nr - nlanes));
    float rows[4][2 * TG_NR_MAX + 4], hz[4][4][TG_NR_MAX];
    for (int l0 = 0; l0 < nlanes;) {
        const int64_t q = q0 + l0;
        int R = 1;
        while (l0 + R < nlanes && ph->in_h[q + R] == ph->in_h[q] && ph->in_off[q + R] == ph->in_off[q] + 2 * R) R++;
        const int32_t h0 = ph->rh[k0] + ph->in_h[q], w0 = ph->rw[k0] + ph->in_w[q];
        const int L = 2 * R + 2; /* columns w0 .. w0 + L - 1; those inside the plane: lo .. hi - 1 */
        const int lo = w0 < 0 ? (-w0 < L ? -w0 : L) : 0, hi = W - w0 < L ? (W - w0 > lo ? W - w0 : lo) : L;
        for (int k = 0; k < kc; k++) {
            const float *src = ph->src + ph->roff[k0 + k] + ph->in_off[q];
            for (int i = 0; i < 4; i++) {
                float *rb = rows[i];
                if ((uint32_t)(h0 + i) >= (uint32_t)H) {
                    memset(rb, 0, sizeof(float) * (size_t)L);
                    continue;
                }
                for (int c = 0; c < lo; c++) rb[c] = 0.0f;
                memcpy(rb + lo, src + (int64_t)i * W + lo, sizeof(float) * (size_t)(hi - lo));
                for (int c = hi; c < L; c++) rb[c] = 0.0f;
            }
            for (int i = 0; i < 4; i++) { /* d B along each patch row */
                const float *rb = rows[i];
                for (int r = 0; r < R; r++) {
                    const float x0 = rb[2 * r], x1 = rb[2 * r + 1], x2 = rb[2 * r + 2], x3 = rb[2 * r + 3];
                    hz[i][0][r] = x0 - x2;
                    hz[i][1][r] = x1 + x2;
                    hz[i][2][r] = x2 - x1;
                    hz[i][3][r] = x1 - x3;
                }
            }
            float *o = out + (int64_t)k * nr + l0;
            for (int j = 0; j < 4; j++) /* B^T (d B) across the rows */
                for (int r = 0; r < R; r++) {
                    o[(0 + j) * PL + r] = hz[0][j][r] - hz[2][j][r];
                    o[(4 + j) * PL + r] = hz[1][j][r] + hz[2][j][r];
                    o[(8 + j) * PL + r] = hz[2][j][r] - hz[1][j][r];
                    o[(12 + j) * PL + r] = hz[1][j][r] - hz[3][j][r];
                }
        }
        l0 += R;
    }
}

/* Y = A^T M A of the 16 tiles, A^T = [1 1 1 0; 0 1 -1 -1], plus the bias, into dst: the sums as
 * loops over the lanes (vectorised), then each tile's 2x2 outputs stored */
static void wino3_out(const tg_wino_phase *ph, int64_t ch0, int mc, int64_t q0, int nl, const float *tiles,
                      int mr, int nr) {
    float y[4][TG_NR_MAX];
    for (int m = 0; m < mc; m++) {
        float *d = ph->dst + (ch0 + m) * ph->d_cs;
        const float bias = ph->bias ? ph->bias[ch0 + m] : 0.0f;
        const float *M = tiles + (int64_t)m * nr;
        const int64_t es = (int64_t)mr * nr; /* from plane e to e + 1 */
        for (int l = 0; l < nl; l++) {
            float t[2][4]; /* A^T M */
            for (int j = 0; j < 4; j++) {
                t[0][j] = M[j * es + l] + M[(4 + j) * es + l] + M[(8 + j) * es + l];
                t[1][j] = M[(4 + j) * es + l] - M[(8 + j) * es + l] - M[(12 + j) * es + l];
            }
            for (int a = 0; a < 2; a++) {
                y[2 * a][l] = t[a][0] + t[a][1] + t[a][2] + bias;
                y[2 * a + 1][l] = t[a][1] - t[a][2] - t[a][3] + bias;
            }
        }
        for (int l0 = 0; l0 < nl;) {
            const int64_t q = q0 + l0;
            int R = 0; /* a run of whole tiles side by side: two rows of 2R outputs, stored in turn */
            while (l0 + R < nl && ph->out_mask[q + R] == 15 && ph->out_off[q + R] == ph->out_off[q] + 2 * R) R++;
            if (R > 1 && ph->ocol == 1) {
                for (int a = 0; a < 2; a++) {
                    float *o = d + ph->out_off[q] + a * ph->orow;
                    const float *y0 = y[2 * a] + l0, *y1 = y[2 * a + 1] + l0;
                    if (ph->acc)
                        for (int r = 0; r < R; r++) o[2 * r] += y0[r], o[2 * r + 1] += y1[r];
                    else
                        for (int r = 0; r < R; r++) o[2 * r] = y0[r], o[2 * r + 1] = y1[r];
                }
                l0 += R;
                continue;
            }
            const int mask = ph->out_mask[q];
            float *o = d + ph->out_off[q];
            for (int v = 0; v < 4; v++) {
                if (!(mask & (1 << v))) continue;
                float *ov = o + (v >> 1) * ph->orow + (v & 1) * ph->ocol;
                *ov = ph->acc ? *ov + y[v][l0] : y[v][l0];
            }
            l0++;
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

/* Below this many tiles per problem (phase, or forward pass) the weight transform — 9 matrices
 * of C x Co per problem, whatever the batch — outweighs what the GEMMs save. 256 is about the
 * break-even (make bench-conv, batch 64: the 256-channel layers, 256 tiles per problem, gain
 * 2-10% on AVX-512 and lose 2-7% on AVX2 with the plain C transforms; the 64- and 128-channel
 * ones, 1024-4096 tiles, gain 1.5-1.9x on both). */
#define MIN_TILES 256

bool tg_cpu_winograd_applies(int C, int Co, int kh, int kw, int s, int64_t tiles) {
    pthread_once(&mode_once, mode_read);
    if (kh != 4 || kw != 4 || s != 2 || C < 16 || Co < 16) return false;
    return mode == 1 || (mode == -1 && tiles >= MIN_TILES);
}

/* ---- the driver ------------------------------------------------------------------------------ */
/* One problem's tiles (a data gradient phase, or the whole forward pass) */
typedef struct {
    int r, c;             /* data gradient: the phase */
    int64_t T, nsl;       /* tiles, slivers of them */
    tg_wino_phase ph;
    float *Ap;            /* ne packed transformed weight matrices, apk floats apart */
    int ne;               /* 9: F(2x2, 2x2) on 3x3 patches; 16: F(2x2, 3x3) on 4x4 patches */
} phase;

/* Memory of one call: the problems' tables, their packed A, per-thread planes and tiles */
typedef struct {
    int64_t apk, per_thread;
    float *Ap0, *thread_ws;
    char *tab;
} wino_ws;

static tg_status ws_get(tg_ctx *ctx, const tg_cpu_isa *isa, int ne, int nph, const int64_t *T, int64_t M,
                        int64_t K, wino_ws *ws, const char *fn) {
    const int mr = isa->mr, nr = isa->nr, nt = omp_get_max_threads();
    const int64_t ns = (M + mr - 1) / mr;
    /* floats of one packed transformed matrix, plus a cache line: the matrices are written
     * together, and at a multiple of 4 KiB apart they would all fall in the same L1 sets */
    ws->apk = tg_round_up(ns * mr * K, 16) + 16;
    ws->per_thread = tg_round_up(ne * TG_WINO_PLANE(nr), 16) + ns * ne * mr * nr + 16;
    size_t tab = (size_t)K * 12 + 256; /* up to three row tables, each aligned */
    for (int i = 0; i < nph; i++) tab += (size_t)(tg_round_up(T[i], 16) + 2 * TG_NR_MAX) * 17 + 64;
    const size_t bytes = tab + (size_t)(nph * ne * ws->apk + (int64_t)nt * ws->per_thread + 32) * sizeof(float);
    char *p = (char *)tg_workspace(ctx, bytes);
    if (!p) return tg_fail(TG_ERR_NOMEM, fn, "cannot allocate a %zu-byte workspace", bytes);
    ws->Ap0 = (float *)tg_align_ptr(p, 64);
    ws->thread_ws = ws->Ap0 + nph * ne * ws->apk;
    ws->tab = (char *)(ws->thread_ws + (int64_t)nt * ws->per_thread + 16);
    return TG_OK;
}

/* 64-byte aligned int32 tables out of the call's table memory */
static int32_t *tab_i32(wino_ws *ws, int64_t n) {
    int32_t *t = (int32_t *)tg_align_ptr(ws->tab, 64);
    ws->tab = (char *)(t + n);
    return t;
}

/* A problem's lane tables: T tiles padded by two slivers of invalid lanes */
static void lanes_get(wino_ws *ws, int64_t T, int32_t **in_off, int32_t **in_h, int32_t **in_w,
                      int32_t **out_off, uint8_t **out_mask) {
    const int64_t Tp = tg_round_up(T, 16) + 2 * TG_NR_MAX;
    *in_off = tab_i32(ws, Tp), *in_h = tab_i32(ws, Tp), *in_w = tab_i32(ws, Tp);
    *out_off = tab_i32(ws, Tp);
    *out_mask = (uint8_t *)ws->tab;
    ws->tab += Tp;
    for (int64_t q = T; q < Tp; q++)
        (*in_off)[q] = 0, (*in_h)[q] = PAD_INVALID, (*in_w)[q] = PAD_INVALID, (*out_off)[q] = 0,
        (*out_mask)[q] = 0;
}

/* The lane tables of a forward-shaped problem (one over the whole batch): tile (n, a, b) writes
 * outputs (2a.., 2b..) of image n (out_img floats apart, rows Wo) and reads its patch from input
 * pixel (step*a, step*b) of image n (in_img floats apart, rows W) */
static void fwd_lanes(wino_ws *ws, int64_t N, int64_t th, int64_t tw, int step, int64_t in_img, int W,
                      int64_t out_img, int Ho, int Wo, int32_t **in_off, int32_t **in_h, int32_t **in_w,
                      int32_t **out_off, uint8_t **out_mask) {
    lanes_get(ws, N * th * tw, in_off, in_h, in_w, out_off, out_mask);
    int32_t *io = *in_off, *ih = *in_h, *iw = *in_w, *oo = *out_off;
    uint8_t *om = *out_mask;
#pragma omp parallel for collapse(2) if (N * th * tw > PAR_MIN)
    for (int64_t n = 0; n < N; n++)
        for (int64_t a = 0; a < th; a++)
            for (int64_t b = 0; b < tw; b++) {
                const int64_t q = (n * th + a) * tw + b;
                ih[q] = (int32_t)(step * a);
                iw[q] = (int32_t)(step * b);
                io[q] = (int32_t)(n * in_img + step * a * W + step * b);
                oo[q] = (int32_t)(n * out_img + 2 * a * Wo + 2 * b);
                om[q] = (uint8_t)(1 | (2 * b + 1 < Wo ? 2 : 0) | (2 * a + 1 < Ho ? 4 : 0) |
                                  (2 * a + 1 < Ho && 2 * b + 1 < Wo ? 8 : 0));
            }
}

/* Sliver j of one problem: KC rows at a time transformed and multiplied into ne tiles per A
 * sliver, then written through the output transform. */
static void wino_sliver(const phase *P, const tg_cpu_isa *isa, int64_t K, int64_t M, int64_t apk,
                        int64_t j, float *Bs, float *tiles) {
    const int mr = isa->mr, nr = isa->nr, ne = P->ne;
    const int64_t ns = (M + mr - 1) / mr, q0 = j * nr, tsz = (int64_t)mr * nr;
    const int nl = (int)(P->T - q0 < nr ? P->T - q0 : nr);
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
        const int kc = (int)(K - k0 < KC ? K - k0 : KC);
        if (ne == 16) wino3_pack(&P->ph, k0, kc, q0, nl, nr, Bs);
        else if (isa->wino_pack) isa->wino_pack(&P->ph, k0, kc, q0, nl, Bs);
        else tg_wino_pack_scalar(&P->ph, k0, kc, q0, nl, nr, Bs);
        for (int e = 0; e < ne; e++) /* plane e (in L1) against every A sliver */
            for (int64_t s = 0; s < ns; s++)
                isa->kernel(kc, P->Ap + e * apk + (s * K + k0) * mr, Bs + e * TG_WINO_PLANE(nr),
                            tiles + (s * ne + e) * tsz, k0 > 0);
    }
    for (int64_t s = 0; s < ns; s++) {
        const int mc = (int)(M - s * mr < mr ? M - s * mr : mr);
        if (ne == 16) wino3_out(&P->ph, s * mr, mc, q0, nl, tiles + s * ne * tsz, mr, nr);
        else if (isa->wino_out) isa->wino_out(&P->ph, s * mr, mc, q0, nl, tiles + s * ne * tsz);
        else tg_wino_out_scalar(&P->ph, s * mr, mc, q0, nl, tiles + s * ne * tsz, mr, nr);
    }
}

/* The GEMMs of nph problems with packed A: sliver j of every problem in turn (a data gradient's
 * phases of one sliver read overlapping dy), static blocks, the last eighth one at a time (as in
 * tg_cpu_gemm_batch) */
static void wino_multiply(const phase *ph, int nph, const tg_cpu_isa *isa, int64_t M, int64_t K,
                          const wino_ws *ws) {
    const int nr = isa->nr;
    int64_t nsl_max = 0;
    for (int i = 0; i < nph; i++) nsl_max = ph[i].nsl > nsl_max ? ph[i].nsl : nsl_max;
    const int64_t nitems = nsl_max * nph;
#pragma omp parallel if (M * K * nsl_max * nr * nph > ((int64_t)1 << 18))
    {
        float *Bs = ws->thread_ws + (int64_t)omp_get_thread_num() * ws->per_thread;
        float *tiles = Bs + tg_round_up(ph[0].ne * TG_WINO_PLANE(nr), 16);
        const int64_t nstat = tg_cpu_static_items(nitems, omp_get_num_threads()); /* as gemm.c */
#pragma omp for schedule(static) nowait
        for (int64_t it = 0; it < nstat; it++)
            if (it / nph < ph[it % nph].nsl) wino_sliver(&ph[it % nph], isa, K, M, ws->apk, it / nph, Bs, tiles);
#pragma omp for schedule(dynamic, 1)
        for (int64_t it = nstat; it < nitems; it++)
            if (it / nph < ph[it % nph].nsl) wino_sliver(&ph[it % nph], isa, K, M, ws->apk, it / nph, Bs, tiles);
    }
}

/* U = G g G^T of mr weight rows for one GEMM row k: g00..g11 [mr] each are g[a][b] of the
 * rows, the nine results go to o[e*apk + m] */
static inline void u_store(const float *g00, const float *g01, const float *g10, const float *g11,
                           const int mr, int64_t apk, float *o) {
    for (int m = 0; m < mr; m++) {
        const float a0 = g00[m], a1 = g00[m] + g10[m], a2 = g10[m]; /* G g, column 0 */
        const float b0 = g01[m], b1 = g01[m] + g11[m], b2 = g11[m]; /* column 1 */
        o[0 * apk + m] = a0, o[1 * apk + m] = a0 + b0, o[2 * apk + m] = b0;
        o[3 * apk + m] = a1, o[4 * apk + m] = a1 + b1, o[5 * apk + m] = b1;
        o[6 * apk + m] = a2, o[7 * apk + m] = a2 + b2, o[8 * apk + m] = b2;
    }
}

/* The data gradient's A: GEMM rows are input channels ch (sliver s), K its output channels k.
 * The 16 taps of the mr channels are transposed to [tap][mr] (so the sums run along channels,
 * which the compiler vectorises), then U_e for every phase goes where the kernel reads it. */
static inline void bwd_weights_mr(const float *w, int C, int64_t K, const int mr, int64_t s,
                                  int64_t k, int64_t apk, const phase *ph, int nph) {
    float gt[16][TG_MR_MAX];
    for (int m = 0; m < mr; m++) {
        const int64_t ch = s * mr + m;
        for (int t = 0; t < 16; t++) gt[t][m] = ch < C ? w[(k * C + ch) * 16 + t] : 0.0f;
    }
    for (int i = 0; i < nph; i++) { /* g[a][b] = tap (r + 2(1-a), c + 2(1-b)) */
        const int r = ph[i].r, c = ph[i].c;
        u_store(gt[(r + 2) * 4 + c + 2], gt[(r + 2) * 4 + c], gt[r * 4 + c + 2], gt[r * 4 + c], mr, apk,
                ph[i].Ap + (s * K + k) * mr);
    }
}

static void bwd_weights(const float *w, int C, int64_t K, int mr, int64_t s, int64_t k, int64_t apk,
                        const phase *ph, int nph) {
    switch (mr) { /* the kernels' row counts as constants */
    case 8: bwd_weights_mr(w, C, K, 8, s, k, apk, ph, nph); break;
    case 6: bwd_weights_mr(w, C, K, 6, s, k, apk, ph, nph); break;
    case 4: bwd_weights_mr(w, C, K, 4, s, k, apk, ph, nph); break;
    default: bwd_weights_mr(w, C, K, mr, s, k, apk, ph, nph); break;
    }
}

tg_status tg_cpu_conv_bwd_data_wino(tg_ctx *ctx, const float *dy, int N, int Co, int Ho, int Wo,
                                    const float *w, int C, int p, int H, int W, float *dx,
                                    int acc) {
    const tg_cpu_isa *isa = tg_cpu_isa_get();
    const int mr = isa->mr, nr = isa->nr;
    const int64_t M = C, K = Co, ns = (M + mr - 1) / mr, P = (int64_t)Ho * Wo, HW = (int64_t)H * W;
    phase ph[4];
    int64_t ml[4], wl[4], mh[4], wh[4], th[4], tw[4], T[4];
    int nph = 0;
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 2; c++) {
            const int i = nph;
            tg_phase_range(H, 2, p, r, &ml[i], &mh[i]);
            tg_phase_range(W, 2, p, c, &wl[i], &wh[i]);
            if (mh[i] < ml[i] || wh[i] < wl[i]) continue;
            th[i] = (mh[i] - ml[i] + 2) / 2, tw[i] = (wh[i] - wl[i] + 2) / 2;
            T[i] = N * th[i] * tw[i];
            ph[i].r = r, ph[i].c = c, ph[i].T = T[i], ph[i].nsl = (T[i] + nr - 1) / nr, ph[i].ne = 9;
            nph++;
        }
    if (!nph) return TG_OK;
    wino_ws ws;
    tg_status st = ws_get(ctx, isa, 9, nph, T, M, K, &ws, "convolution (CPU)");
    if (st) return st;
    int32_t *roff = tab_i32(&ws, K), *rzero = tab_i32(&ws, K); /* row k: channel k of dy */
    for (int64_t k = 0; k < K; k++) roff[k] = (int32_t)(k * P), rzero[k] = 0;
    for (int i = 0; i < nph; i++) {
        int32_t *in_off, *in_h, *in_w, *out_off;
        uint8_t *out_mask;
        lanes_get(&ws, T[i], &in_off, &in_h, &in_w, &out_off, &out_mask);
        const int64_t th_ = th[i], tw_ = tw[i], ml_ = ml[i], wl_ = wl[i], mh_ = mh[i], wh_ = wh[i];
        const int r = ph[i].r, c = ph[i].c;
#pragma omp parallel for collapse(2) if (T[i] > PAR_MIN)
        for (int64_t n = 0; n < N; n++)
            for (int64_t a = 0; a < th_; a++)
                for (int64_t b = 0; b < tw_; b++) {
                    const int64_t q = (n * th_ + a) * tw_ + b, m0 = ml_ + 2 * a, w0 = wl_ + 2 * b;
                    in_h[q] = (int32_t)(m0 - 1);
                    in_w[q] = (int32_t)(w0 - 1);
                    in_off[q] = (int32_t)(n * Co * P + (m0 - 1) * Wo + (w0 - 1));
                    out_off[q] = (int32_t)(n * C * HW + (2 * m0 - p + r) * W + (2 * w0 - p + c));
                    out_mask[q] = (uint8_t)(1 | (w0 + 1 <= wh_ ? 2 : 0) | (m0 + 1 <= mh_ ? 4 : 0) |
                                            (m0 + 1 <= mh_ && w0 + 1 <= wh_ ? 8 : 0));
                }
        ph[i].ph = (tg_wino_phase){dy, Ho, Wo, 1, roff, rzero, rzero, in_off, in_h, in_w,
                                   dx, HW, 2 * W, 2, out_off, out_mask, NULL, acc};
        ph[i].Ap = ws.Ap0 + i * 9 * ws.apk;
    }
#pragma omp parallel for schedule(static) if (ns * K * mr > 4096)
    for (int64_t sk = 0; sk < ns * K; sk++) bwd_weights(w, C, K, mr, sk / K, sk % K, ws.apk, ph, nph);
    wino_multiply(ph, nph, isa, M, K, &ws);
    return TG_OK;
}

/* The forward pass's A: GEMM rows are output channels co (sliver s), K runs over (c, r, s) of the
 * input channels and their four input phases; g[a][b] = tap (2a + r, 2b + s). */
static inline void fwd_weights_mr(const float *w, int C, int64_t Co, const int mr, int64_t s,
                                  int64_t c, int64_t K, int64_t apk, float *Ap) {
    float gt[16][TG_MR_MAX];
    for (int m = 0; m < mr; m++) {
        const int64_t co = s * mr + m;
        for (int t = 0; t < 16; t++) gt[t][m] = co < Co ? w[(co * C + c) * 16 + t] : 0.0f;
    }
    for (int r = 0; r < 2; r++)
        for (int sc = 0; sc < 2; sc++)
            u_store(gt[r * 4 + sc], gt[r * 4 + 2 + sc], gt[(2 + r) * 4 + sc], gt[(2 + r) * 4 + 2 + sc], mr,
                    apk, Ap + (s * K + 4 * c + 2 * r + sc) * mr);
}

static void fwd_weights(const float *w, int C, int64_t Co, int mr, int64_t s, int64_t c, int64_t K,
                        int64_t apk, float *Ap) {
    switch (mr) {
    case 8: fwd_weights_mr(w, C, Co, 8, s, c, K, apk, Ap); break;
    case 6: fwd_weights_mr(w, C, Co, 6, s, c, K, apk, Ap); break;
    case 4: fwd_weights_mr(w, C, Co, 4, s, c, K, apk, Ap); break;
    default: fwd_weights_mr(w, C, Co, mr, s, c, K, apk, Ap); break;
    }
}

tg_status tg_cpu_conv_fwd_wino(tg_ctx *ctx, const float *x, int N, int C, int H, int W,
                               const float *w, int Co, int p, int Ho, int Wo, const float *bias,
                               float *y, int acc) {
    const tg_cpu_isa *isa = tg_cpu_isa_get();
    const int mr = isa->mr, nr = isa->nr;
    const int64_t M = Co, K = 4 * (int64_t)C, ns = (M + mr - 1) / mr, HW = (int64_t)H * W,
                  P = (int64_t)Ho * Wo, th = (Ho + 1) / 2, tw = (Wo + 1) / 2, T = N * th * tw;
    phase ph = {0, 0, T, (T + nr - 1) / nr, {0}, NULL, 9};
    wino_ws ws;
    tg_status st = ws_get(ctx, isa, 9, 1, &T, M, K, &ws, "convolution (CPU)");
    if (st) return st;
    /* row (c, r, s): input phase (r, s) of channel c, pixel (2u + r - p, 2v + s - p) */
    int32_t *roff = tab_i32(&ws, K), *rh = tab_i32(&ws, K), *rw = tab_i32(&ws, K);
    for (int64_t k = 0; k < K; k++) {
        const int r = (int)(k / 2 % 2), sc = (int)(k % 2);
        rh[k] = r - p, rw[k] = sc - p;
        roff[k] = (int32_t)(k / 4 * HW + (int64_t)(r - p) * W + (sc - p));
    }
    /* tile: outputs (2a.., 2b..), patch rows 2(2a + i) */
    int32_t *in_off, *in_h, *in_w, *out_off;
    uint8_t *out_mask;
    fwd_lanes(&ws, N, th, tw, 4, C * HW, W, Co * P, Ho, Wo, &in_off, &in_h, &in_w, &out_off, &out_mask);
    ph.ph = (tg_wino_phase){x, H, W, 2, roff, rh, rw, in_off, in_h, in_w,
                            y, P, Wo, 1, out_off, out_mask, bias, acc};
    ph.Ap = ws.Ap0;
#pragma omp parallel for schedule(static) if (ns * C * mr > 1024)
    for (int64_t sc = 0; sc < ns * C; sc++) fwd_weights(w, C, Co, mr, sc / C, sc % C, K, ws.apk, ph.Ap);
    wino_multiply(&ph, 1, isa, M, K, &ws);
    return TG_OK;
}

/* ---- F(2x2, 3x3): 3x3 stride-1 convolutions ------------------------------------------------ */
/* U = G g G^T of a 3x3 kernel for mr rows (g[t][m], tap t = 3i + j), G = [1 0 0; 1/2 1/2 1/2;
 * 1/2 -1/2 1/2; 0 0 1]: the 16 results of row m go to o[e*apk + m] */
static inline void u3_store(float g[9][TG_MR_MAX], const int mr, int64_t apk, float *o) {
    for (int m = 0; m < mr; m++) {
        float r[4][3]; /* G g */
        for (int j = 0; j < 3; j++) {
            const float a = g[j][m], b = g[3 + j][m], c = g[6 + j][m];
            r[0][j] = a, r[1][j] = 0.5f * (a + b + c), r[2][j] = 0.5f * (a - b + c), r[3][j] = c;
        }
        for (int i = 0; i < 4; i++) { /* (G g) G^T */
            const float a = r[i][0], b = r[i][1], c = r[i][2];
            o[(4 * i + 0) * apk + m] = a;
            o[(4 * i + 1) * apk + m] = 0.5f * (a + b + c);
            o[(4 * i + 2) * apk + m] = 0.5f * (a - b + c);
            o[(4 * i + 3) * apk + m] = c;
        }
    }
}

/* GEMM rows s*mr.. of A for row k: the forward pass's rows are output channels (w[row][k]), the
 * data gradient's input channels, with the kernel turned half a turn (w[k][row], flipped) */
static void wino3_weights(const float *w, int64_t M, int64_t K, int flip, int mr, int64_t s, int64_t k,
                          int64_t apk, float *Ap) {
    float g[9][TG_MR_MAX];
    for (int m = 0; m < mr; m++) {
        const int64_t row = s * mr + m;
        for (int t = 0; t < 9; t++)
            g[t][m] = row >= M ? 0.0f : flip ? w[(k * M + row) * 9 + 8 - t] : w[(row * K + k) * 9 + t];
    }
    u3_store(g, mr, apk, Ap + (s * K + k) * mr);
}

bool tg_cpu_wino3_applies(int C, int Co, int kh, int kw, int s, int p, int64_t tiles) {
    pthread_once(&mode_once, mode_read);
    if (kh != 3 || kw != 3 || s != 1 || C < 16 || Co < 16 || p < 0 || p > 2) return false;
    return mode == 1 || (mode == -1 && tiles >= MIN_TILES);
}

/* y [N,M,Ho,Wo] (=|+=) the 3x3 stride-1 correlation of x [N,K,H,W] padded by p, Ho = H + 2p - 2:
 * the forward pass (w [M,K,3,3], flip 0) or, run on dy with p' = 2 - p, the data gradient
 * (w [K,M,3,3] turned, flip 1). Tile (a, b) of image n: outputs (2a.., 2b..), patch rows 2a - p.. */
tg_status tg_cpu_conv3_wino(tg_ctx *ctx, const float *x, int N, int K_, int H, int W, const float *w, int M_,
                            int p, int Ho, int Wo, const float *bias, float *y, int acc, int flip) {
    const tg_cpu_isa *isa = tg_cpu_isa_get();
    const int mr = isa->mr, nr = isa->nr;
    const int64_t M = M_, K = K_, ns = (M + mr - 1) / mr, HW = (int64_t)H * W, P = (int64_t)Ho * Wo,
                  th = (Ho + 1) / 2, tw = (Wo + 1) / 2, T = N * th * tw;
    phase ph = {0, 0, T, (T + nr - 1) / nr, {0}, NULL, 16};
    wino_ws ws;
    tg_status st = ws_get(ctx, isa, 16, 1, &T, M, K, &ws, "convolution (CPU)");
    if (st) return st;
    int32_t *roff = tab_i32(&ws, K), *rh = tab_i32(&ws, K), *rw = tab_i32(&ws, K);
    for (int64_t k = 0; k < K; k++) roff[k] = (int32_t)(k * HW - (int64_t)p * W - p), rh[k] = -p, rw[k] = -p;
    int32_t *in_off, *in_h, *in_w, *out_off;
    uint8_t *out_mask;
    fwd_lanes(&ws, N, th, tw, 2, K * HW, W, M * P, Ho, Wo, &in_off, &in_h, &in_w, &out_off, &out_mask);
    ph.ph = (tg_wino_phase){x, H, W, 1, roff, rh, rw, in_off, in_h, in_w, y, P, Wo, 1, out_off, out_mask, bias, acc};
    ph.Ap = ws.Ap0;
#pragma omp parallel for schedule(static) if (ns * K * mr > 1024)
    for (int64_t sk = 0; sk < ns * K; sk++) wino3_weights(w, M, K, flip, mr, sk / K, sk % K, ws.apk, ph.Ap);
    wino_multiply(&ph, 1, isa, M, K, &ws);
    return TG_OK;
}

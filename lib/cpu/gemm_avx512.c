/*
 * gemm_avx512.c — the AVX-512 path of the CPU GEMM (cpu.h): an 8x48 micro-kernel (24 zmm
 * accumulators, B in three vectors, A broadcast: 11 loads per 24 FMAs, and 64..512 channels
 * are whole multiples of 8), a B packer that reads each group of 16 lanes as row runs (masked
 * loads) or gathers, and an epilogue storing runs with step 1 or 2 as vectors. Compiled with -mavx512f -mavx512vl -mfma (Makefile); only called after
 * cpuid said the CPU and OS support it.
 */
#include "cpu.h"

#if defined(__AVX512F__) && defined(__FMA__)
#include <immintrin.h>

enum { MR = TG_AVX512_MR, NR = TG_AVX512_NR };

static void kernel(int64_t kc, const float *a, const float *b, float *c, int load) {
    __m512 c0[MR], c1[MR], c2[MR];
    if (load) {
#pragma GCC unroll 8
        for (int m = 0; m < MR; m++) {
            c0[m] = _mm512_load_ps(c + m * NR);
            c1[m] = _mm512_load_ps(c + m * NR + 16);
            c2[m] = _mm512_load_ps(c + m * NR + 32);
        }
    } else {
#pragma GCC unroll 8
        for (int m = 0; m < MR; m++) c0[m] = c1[m] = c2[m] = _mm512_setzero_ps();
    }
    for (int64_t k = 0; k < kc; k++) {
        const __m512 b0 = _mm512_load_ps(b + k * NR), b1 = _mm512_load_ps(b + k * NR + 16);
        const __m512 b2 = _mm512_load_ps(b + k * NR + 32);
        const float *ak = a + k * MR;
#pragma GCC unroll 8
        for (int m = 0; m < MR; m++) {
            const __m512 am = _mm512_set1_ps(ak[m]);
            c0[m] = _mm512_fmadd_ps(am, b0, c0[m]);
            c1[m] = _mm512_fmadd_ps(am, b1, c1[m]);
            c2[m] = _mm512_fmadd_ps(am, b2, c2[m]);
        }
    }
#pragma GCC unroll 8
    for (int m = 0; m < MR; m++) {
        _mm512_store_ps(c + m * NR, c0[m]);
        _mm512_store_ps(c + m * NR + 16, c1[m]);
        _mm512_store_ps(c + m * NR + 32, c2[m]);
    }
}

/* How one group of 16 lanes reads its source row: 0 gather each lane; 1 one run of 16 with a
 * fixed step d (1 or 2) along a source row; 2 two runs of 8 (e.g. two output rows of 8 pixels);
 * 3 four runs of 4 with step 1 (a weight gradient's 4x4 taps: four rows of four pixels).
 * A run has one row offset (lh) and w = lw[0] + d*l. */
typedef struct {
    int kind, d;
} group_shape;

static group_shape shape_of(const int32_t *loff, const int32_t *lh, const int32_t *lw) {
    group_shape gs = {0, 0};
    for (int run = 16; run >= 4; run /= 2) {
        const int d = lw[1] - lw[0];
        if (d != 1 && d != 2) return gs;
        if (run == 4 && d != 1) return gs;
        int ok = 1;
        for (int r0 = 0; r0 < 16 && ok; r0 += run)
            for (int l = 1; l < run && ok; l++)
                ok = lh[r0 + l] == lh[r0] && lw[r0 + l] == lw[r0] + d * l &&
                     loff[r0 + l] == loff[r0] + d * l && lw[r0 + 1] - lw[r0] == d;
        if (ok) {
            gs.kind = run == 16 ? 1 : run == 8 ? 2 : 3;
            gs.d = d;
            return gs;
        }
    }
    return gs;
}

/* lanes whose source pixel (row rh + lh, column rw + lw) lies inside the H x W image */
static inline __mmask16 in_image(__m512i lhv, __m512i lwv, __m512i rh, __m512i rw, __m512i H, __m512i W) {
    return _mm512_cmplt_epu32_mask(_mm512_add_epi32(lhv, rh), H) & _mm512_cmplt_epu32_mask(_mm512_add_epi32(lwv, rw), W);
}

/* n (8 or 16) values src[base + d*l] for the lanes in mask (others 0), into a zmm's low lanes */
static inline __m512 run_load(const float *p, __mmask16 mask, int d, int n) {
    if (d == 1) return _mm512_maskz_loadu_ps(mask, p);
    /* step 2: the even lanes of the 2n floats from p */
    const uint32_t m2 = _pdep_u32(mask, 0x55555555u);
    const __m512 lo = _mm512_maskz_loadu_ps((__mmask16)m2, p);
    const __m512 hi = n == 16 ? _mm512_maskz_loadu_ps((__mmask16)(m2 >> 16), p + 16) : _mm512_setzero_ps();
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    return _mm512_permutex2var_ps(lo, even, hi);
}

/* Rows k..k+15 of B read one source run: the same tap row, consecutive columns and offsets (a
 * stride-1 weight gradient's 16 consecutive output pixels in one row) */
static bool rows_run16(const tg_gemm_tab *g, int64_t k) {
    const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __mmask16 h = _mm512_cmpeq_epi32_mask(_mm512_loadu_si512(g->b_rh + k), _mm512_set1_epi32(g->b_rh[k]));
    const __mmask16 w = _mm512_cmpeq_epi32_mask(_mm512_loadu_si512(g->b_rw + k),
                                                _mm512_add_epi32(_mm512_set1_epi32(g->b_rw[k]), iota));
    const __mmask16 o = _mm512_cmpeq_epi32_mask(_mm512_loadu_si512(g->b_roff + k),
                                                _mm512_add_epi32(_mm512_set1_epi32(g->b_roff[k]), iota));
    return (h & w & o) == 0xffff;
}

/* 16 rows (k..k+15, one run: rows_run16) x 16 lanes of B by transposing: each lane's 16 values
 * are contiguous in the source, so one masked load per lane and a 16x16 transpose replace 16
 * gathers (a 3x3 weight gradient's lanes, taps in runs of 3, otherwise gather). */
static void pack_block_t(const tg_gemm_tab *g, int64_t k, const int32_t *loff, const int32_t *lh,
                         const int32_t *lw, float *out) {
    const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i W = _mm512_set1_epi32(g->b_W);
    const float *p = g->b_src + g->b_roff[k];
    const int32_t rh = g->b_rh[k], rw = g->b_rw[k];
    __m512 r[16], t[16], u[16];
    for (int l = 0; l < 16; l++) {
        const __mmask16 m = (uint32_t)(rh + lh[l]) < (uint32_t)g->b_H
                                ? _mm512_cmplt_epu32_mask(_mm512_add_epi32(iota, _mm512_set1_epi32(rw + lw[l])), W)
                                : 0;
        r[l] = _mm512_maskz_loadu_ps(m, p + loff[l]);
    }
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) { /* u[4i+c], 128-bit lane j: column 4j+c of rows 4i..4i+3 */
        u[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        const __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
        const __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88), v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
        _mm512_store_ps(out + (c + 0) * NR, _mm512_shuffle_f32x4(v0, v2, 0x88));
        _mm512_store_ps(out + (c + 8) * NR, _mm512_shuffle_f32x4(v0, v2, 0xDD));
        _mm512_store_ps(out + (c + 4) * NR, _mm512_shuffle_f32x4(v1, v3, 0x88));
        _mm512_store_ps(out + (c + 12) * NR, _mm512_shuffle_f32x4(v1, v3, 0xDD));
    }
}

/* Lane tables are padded past N by two slivers (invalid lanes fail the bounds test; the next
 * sliver's entries are read for prefetching). */
static void pack_b(const tg_gemm_tab *g, int64_t k0, int64_t kc, const int32_t *loff,
                   const int32_t *lh, const int32_t *lw, int nlanes, float *out) {
    (void)nlanes;
    const __m512i H = _mm512_set1_epi32(g->b_H), W = _mm512_set1_epi32(g->b_W);
    const __m512 zero = _mm512_setzero_ps();
    const float *src = g->b_src;
    for (int v = 0; v < NR / 16; v++) {
        const int32_t *lo_ = loff + 16 * v, *lh_ = lh + 16 * v, *lw_ = lw + 16 * v;
        const group_shape gs = shape_of(lo_, lh_, lw_);
        const __m512i lov = _mm512_loadu_si512(lo_), lhv = _mm512_loadu_si512(lh_);
        const __m512i lwv = _mm512_loadu_si512(lw_);
        float *o = out + 16 * v;
        if (gs.kind == 0) {
            for (int64_t k = 0; k < kc; k++) {
                if ((k & 15) == 0 && k + 16 <= kc && rows_run16(g, k0 + k)) {
                    pack_block_t(g, k0 + k, lo_, lh_, lw_, o + k * NR);
                    k += 15;
                    continue;
                }
                /* the next sliver: four of its lanes (a 4x4 tap block spans four rows) */
                const float *nx = src + g->b_roff[k0 + k];
                _mm_prefetch((const char *)(nx + lo_[NR]), _MM_HINT_T0);
                _mm_prefetch((const char *)(nx + lo_[NR + 4]), _MM_HINT_T0);
                _mm_prefetch((const char *)(nx + lo_[NR + 8]), _MM_HINT_T0);
                _mm_prefetch((const char *)(nx + lo_[NR + 12]), _MM_HINT_T0);
                const __m512i rh = _mm512_set1_epi32(g->b_rh[k0 + k]), rw = _mm512_set1_epi32(g->b_rw[k0 + k]);
                const __mmask16 m = in_image(lhv, lwv, rh, rw, H, W);
                const __m512i idx = _mm512_add_epi32(lov, _mm512_set1_epi32(g->b_roff[k0 + k]));
                _mm512_store_ps(o + k * NR, _mm512_mask_i32gather_ps(zero, m, idx, src, 4));
            }
            continue;
        }
        /* the next sliver's lanes read the same rows further along: prefetch them, the loads
         * here are otherwise latency-bound (one stream per channel and tap row) */
        const int32_t next = lo_[NR];
        for (int64_t k = 0; k < kc; k++) {
            const int32_t ro = g->b_roff[k0 + k];
            _mm_prefetch((const char *)(src + ro + next), _MM_HINT_T0);
            if (gs.d == 2) _mm_prefetch((const char *)(src + ro + next + 16), _MM_HINT_T0);
            if (gs.kind == 3) {
                _mm_prefetch((const char *)(src + ro + lo_[NR + 4]), _MM_HINT_T0);
                _mm_prefetch((const char *)(src + ro + lo_[NR + 8]), _MM_HINT_T0);
                _mm_prefetch((const char *)(src + ro + lo_[NR + 12]), _MM_HINT_T0);
            }
            const __m512i rh = _mm512_set1_epi32(g->b_rh[k0 + k]), rw = _mm512_set1_epi32(g->b_rw[k0 + k]);
            const __mmask16 m = in_image(lhv, lwv, rh, rw, H, W);
            __m512 x;
            if (gs.kind == 1) {
                x = m ? run_load(src + ro + lo_[0], m, gs.d, 16) : zero;
            } else if (gs.kind == 3) {
                const float *p0 = src + ro;
                x = _mm512_castps128_ps512(_mm_maskz_loadu_ps(m & 0xf, p0 + lo_[0]));
                x = _mm512_insertf32x4(x, _mm_maskz_loadu_ps((m >> 4) & 0xf, p0 + lo_[4]), 1);
                x = _mm512_insertf32x4(x, _mm_maskz_loadu_ps((m >> 8) & 0xf, p0 + lo_[8]), 2);
                x = _mm512_insertf32x4(x, _mm_maskz_loadu_ps((m >> 12) & 0xf, p0 + lo_[12]), 3);
            } else {
                const __m512 a = (m & 0xff) ? run_load(src + ro + lo_[0], m & 0xff, gs.d, 8) : zero;
                const __m512 b = (m >> 8) ? run_load(src + ro + lo_[8], m >> 8, gs.d, 8) : zero;
                x = _mm512_insertf32x8(a, _mm512_castps512_ps256(b), 1);
            }
            _mm512_store_ps(o + k * NR, x);
        }
    }
}

/* Per group of 16 lanes whose outputs are evenly spaced (step 1, or step 2: the data gradient's
 * stride-2 phases): vector stores, the step-2 ones as even-lane masked stores over 32 floats. */
static void epilogue(const tg_gemm_tab *g, int64_t m0, int mc, int64_t n0, int nl,
                     const float *tile, int acc, const float *bias) {
    const int64_t *off = g->d_off + n0;
    int step[NR / 16] = {0};
    for (int v = 0; v < NR / 16; v++) {
        if (nl < 16 * (v + 1)) break;
        const int64_t *o = off + 16 * v;
        const int64_t d = o[1] - o[0];
        if (d != 1 && d != 2) continue;
        int ok = 1;
        for (int l = 2; l < 16 && ok; l++) ok = o[l] == o[0] + d * l;
        if (ok) step[v] = (int)d;
    }
    if (!step[0] && !step[1] && !step[2]) {
        tg_epilogue_scalar(g, m0, mc, n0, nl, tile, NR, acc, bias);
        return;
    }
    /* element 2j of lo/hi takes x[j] / x[8+j] (odd elements are masked off) */
    const __m512i lo_idx = _mm512_set_epi32(0, 7, 0, 6, 0, 5, 0, 4, 0, 3, 0, 2, 0, 1, 0, 0);
    const __m512i hi_idx = _mm512_set_epi32(0, 15, 0, 14, 0, 13, 0, 12, 0, 11, 0, 10, 0, 9, 0, 8);
    for (int m = 0; m < mc; m++) {
        float *d = g->dst + (m0 + m) * g->d_ms;
        const __m512 b = _mm512_set1_ps(bias ? bias[m0 + m] : 0.0f);
        for (int v = 0; v < NR / 16; v++) {
            const float *t = tile + m * NR + 16 * v;
            if (nl <= 16 * v) break;
            if (!step[v]) { /* this group through the tables, one lane at a time */
                const int64_t *o = off + 16 * v;
                const int n = nl - 16 * v < 16 ? nl - 16 * v : 16;
                for (int l = 0; l < n; l++) d[o[l]] = (acc ? d[o[l]] : 0.0f) + t[l] + (bias ? bias[m0 + m] : 0.0f);
                continue;
            }
            const __m512 x = _mm512_add_ps(_mm512_load_ps(t), b);
            float *p = d + off[16 * v];
            if (step[v] == 1) {
                _mm512_storeu_ps(p, acc ? _mm512_add_ps(_mm512_loadu_ps(p), x) : x);
            } else {
                const __m512 a0 = _mm512_permutexvar_ps(lo_idx, x), a1 = _mm512_permutexvar_ps(hi_idx, x);
                const __mmask16 even = 0x5555;
                if (acc) {
                    _mm512_mask_storeu_ps(p, even, _mm512_add_ps(_mm512_maskz_loadu_ps(even, p), a0));
                    _mm512_mask_storeu_ps(p + 16, even, _mm512_add_ps(_mm512_maskz_loadu_ps(even, p + 16), a1));
                } else {
                    _mm512_mask_storeu_ps(p, even, a0);
                    _mm512_mask_storeu_ps(p + 16, even, a1);
                }
            }
        }
    }
}

/* GEMMs of MS <= 4 rows (G's 3-channel output layer): when each group of 16 lanes is one run
 * with step 1 along a source row (shape_of kind 1), every row k of B is loaded, masked at the
 * image's edges, exactly as pack_b would pack it and multiplied at once, into MS x 3 accumulators
 * in k order: the kernel's sums (fused multiply-adds from zero, k ascending) without the packed
 * copy. Rows MS..MR-1 of the tile are left alone (the epilogue writes MS rows). */
#define SMALL_M_FN(name, MS)                                                                    \
    static void name(const tg_gemm_tab *g, const float *ap, int64_t n0, const int32_t *lo,     \
                     const __m512i *lhv, const __m512i *lwv, float *tile) {                     \
        const __m512i H = _mm512_set1_epi32(g->b_H), W = _mm512_set1_epi32(g->b_W);            \
        const float *src = g->b_src;                                                            \
        const int32_t next = g->b_loff[n0 + NR];                                                \
        __m512 c[MS][3];                                                                        \
        for (int m = 0; m < MS; m++) c[m][0] = c[m][1] = c[m][2] = _mm512_setzero_ps();         \
        for (int64_t k = 0; k < g->K; k++) {                                                    \
            const int32_t ro = g->b_roff[k];                                                    \
            _mm_prefetch((const char *)(src + ro + next), _MM_HINT_T0);                         \
            const __m512i rh = _mm512_set1_epi32(g->b_rh[k]), rw = _mm512_set1_epi32(g->b_rw[k]); \
            __m512 b[3];                                                                        \
            for (int v = 0; v < 3; v++) {                                                       \
                const __mmask16 mk = in_image(lhv[v], lwv[v], rh, rw, H, W);                    \
                b[v] = _mm512_maskz_loadu_ps(mk, src + ro + lo[16 * v]);                        \
            }                                                                                   \
            const float *ak = ap + k * MR;                                                      \
            for (int m = 0; m < MS; m++) {                                                      \
                const __m512 am = _mm512_set1_ps(ak[m]);                                        \
                c[m][0] = _mm512_fmadd_ps(am, b[0], c[m][0]);                                   \
                c[m][1] = _mm512_fmadd_ps(am, b[1], c[m][1]);                                   \
                c[m][2] = _mm512_fmadd_ps(am, b[2], c[m][2]);                                   \
            }                                                                                   \
        }                                                                                       \
        for (int m = 0; m < MS; m++)                                                            \
            for (int v = 0; v < 3; v++) _mm512_store_ps(tile + m * NR + 16 * v, c[m][v]);       \
    }
SMALL_M_FN(small_m1, 1)
SMALL_M_FN(small_m2, 2)
SMALL_M_FN(small_m3, 3)
SMALL_M_FN(small_m4, 4)

static bool small_m(const tg_gemm_tab *g, const float *ap, int64_t n0, float *tile) {
    const int32_t *lo = g->b_loff + n0, *lh = g->b_lh + n0, *lw = g->b_lw + n0;
    __m512i lhv[3], lwv[3];
    for (int v = 0; v < 3; v++) {
        const group_shape gs = shape_of(lo + 16 * v, lh + 16 * v, lw + 16 * v);
        if (gs.kind != 1 || gs.d != 1) return false;
        lhv[v] = _mm512_loadu_si512(lh + 16 * v);
        lwv[v] = _mm512_loadu_si512(lw + 16 * v);
    }
    switch (g->M) {
    case 1: small_m1(g, ap, n0, lo, lhv, lwv, tile); break;
    case 2: small_m2(g, ap, n0, lo, lhv, lwv, tile); break;
    case 3: small_m3(g, ap, n0, lo, lhv, lwv, tile); break;
    default: small_m4(g, ap, n0, lo, lhv, lwv, tile); break;
    }
    return true;
}

/* ---- bf16 (cpu.h) ---------------------------------------------------------------------------
 * x's bits rounded to bf16 in their upper half (tg_bf16_of's rounding: to nearest, ties to even,
 * a NaN made quiet); the lower half is garbage */
static inline __m512i bf16_hi(__m512 x) {
    const __m512i u = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                  _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x00400000));
}

/* kc packed rows of NR floats -> pair rows: lane l of pair row k/2 is the word
 * bf16(row k+1) << 16 | bf16(row k) */
static void pair_b(const float *rows, int64_t kc, tg_bf16 *out) {
    const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
    for (int64_t k = 0; k < kc; k += 2) {
        const float *r0 = rows + k * NR, *r1 = r0 + NR;
        tg_bf16 *o = out + k * NR;
        for (int v = 0; v < NR / 16; v++) {
            const __m512i lo = _mm512_srli_epi32(bf16_hi(_mm512_load_ps(r0 + 16 * v)), 16);
            const __m512i up = k + 1 < kc ? _mm512_and_si512(bf16_hi(_mm512_load_ps(r1 + 16 * v)), hi)
                                          : _mm512_setzero_si512();
            _mm512_store_si512((void *)(o + 32 * v), _mm512_or_si512(up, lo));
        }
    }
}

/* The 8x48 tile over kc2 pair rows on a CPU without AVX512-BF16: each bf16 widened to a float
 * (a shift or a mask), two FMAs per pair, the odd row's first: vdpbf16ps's sums. */
static void kernel_bf16_fma(int64_t kc2, const tg_bf16 *a, const tg_bf16 *b, float *c, int load) {
    __m512 c0[MR], c1[MR], c2[MR];
    for (int m = 0; m < MR; m++) {
        c0[m] = load ? _mm512_load_ps(c + m * NR) : _mm512_setzero_ps();
        c1[m] = load ? _mm512_load_ps(c + m * NR + 16) : _mm512_setzero_ps();
        c2[m] = load ? _mm512_load_ps(c + m * NR + 32) : _mm512_setzero_ps();
    }
    const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
    for (int64_t k = 0; k < kc2; k++) {
        const tg_bf16 *bk = b + k * NR * 2;
        const __m512i w0 = _mm512_load_si512((const void *)bk), w1 = _mm512_load_si512((const void *)(bk + 32));
        const __m512i w2 = _mm512_load_si512((const void *)(bk + 64));
        const __m512 b0o = _mm512_castsi512_ps(_mm512_and_si512(w0, hi)), b0e = _mm512_castsi512_ps(_mm512_slli_epi32(w0, 16));
        const __m512 b1o = _mm512_castsi512_ps(_mm512_and_si512(w1, hi)), b1e = _mm512_castsi512_ps(_mm512_slli_epi32(w1, 16));
        const __m512 b2o = _mm512_castsi512_ps(_mm512_and_si512(w2, hi)), b2e = _mm512_castsi512_ps(_mm512_slli_epi32(w2, 16));
        const uint32_t *ak = (const uint32_t *)(a + k * MR * 2);
#pragma GCC unroll 8
        for (int m = 0; m < MR; m++) {
            const __m512 ao = _mm512_castsi512_ps(_mm512_set1_epi32((int)(ak[m] & 0xffff0000u)));
            const __m512 ae = _mm512_castsi512_ps(_mm512_set1_epi32((int)(ak[m] << 16)));
            c0[m] = _mm512_fmadd_ps(ae, b0e, _mm512_fmadd_ps(ao, b0o, c0[m]));
            c1[m] = _mm512_fmadd_ps(ae, b1e, _mm512_fmadd_ps(ao, b1o, c1[m]));
            c2[m] = _mm512_fmadd_ps(ae, b2e, _mm512_fmadd_ps(ao, b2o, c2[m]));
        }
    }
    for (int m = 0; m < MR; m++) {
        _mm512_store_ps(c + m * NR, c0[m]);
        _mm512_store_ps(c + m * NR + 16, c1[m]);
        _mm512_store_ps(c + m * NR + 32, c2[m]);
    }
}

/* The same tile with vdpbf16ps: 24 instructions of 32 multiply-adds per pair row, twice the
 * multiply-adds of the float32 kernel's 24 FMAs per row. */
__attribute__((target("avx512bf16"))) static void kernel_bf16_dp(int64_t kc2, const tg_bf16 *a, const tg_bf16 *b,
                                                                 float *c, int load) {
    __m512 c0[MR], c1[MR], c2[MR];
    for (int m = 0; m < MR; m++) {
        c0[m] = load ? _mm512_load_ps(c + m * NR) : _mm512_setzero_ps();
        c1[m] = load ? _mm512_load_ps(c + m * NR + 16) : _mm512_setzero_ps();
        c2[m] = load ? _mm512_load_ps(c + m * NR + 32) : _mm512_setzero_ps();
    }
    for (int64_t k = 0; k < kc2; k++) {
        const tg_bf16 *bk = b + k * NR * 2;
        const __m512bh b0 = (__m512bh)_mm512_load_si512((const void *)bk);
        const __m512bh b1 = (__m512bh)_mm512_load_si512((const void *)(bk + 32));
        const __m512bh b2 = (__m512bh)_mm512_load_si512((const void *)(bk + 64));
        const uint32_t *ak = (const uint32_t *)(a + k * MR * 2);
#pragma GCC unroll 8
        for (int m = 0; m < MR; m++) {
            const __m512bh am = (__m512bh)_mm512_set1_epi32((int)ak[m]);
            c0[m] = _mm512_dpbf16_ps(c0[m], am, b0);
            c1[m] = _mm512_dpbf16_ps(c1[m], am, b1);
            c2[m] = _mm512_dpbf16_ps(c2[m], am, b2);
        }
    }
    for (int m = 0; m < MR; m++) {
        _mm512_store_ps(c + m * NR, c0[m]);
        _mm512_store_ps(c + m * NR + 16, c1[m]);
        _mm512_store_ps(c + m * NR + 32, c2[m]);
    }
}

static const tg_cpu_isa isa = {.name = "avx512", .mr = MR, .nr = NR, .kernel = kernel, .pack_b = pack_b,
                               .epilogue = epilogue, .small_m = small_m, .wino_pack = tg_wino_pack_avx512,
                               .wino_out = tg_wino_out_avx512, .kernel_bf16 = kernel_bf16_fma, .pair_b = pair_b,
                               .bf16_how = "bf16 operands, float32 FMAs (AVX-512 without AVX512-BF16)"};
/* the same, with vdpbf16ps for bf16 products */
static const tg_cpu_isa isa_bf16 = {.name = "avx512bf16", .mr = MR, .nr = NR, .kernel = kernel, .pack_b = pack_b,
                                    .epilogue = epilogue, .small_m = small_m, .wino_pack = tg_wino_pack_avx512,
                                    .wino_out = tg_wino_out_avx512, .kernel_bf16 = kernel_bf16_dp, .pair_b = pair_b,
                                    .bf16_how = "AVX512-BF16 (vdpbf16ps)"};
const tg_cpu_isa *tg_cpu_isa_avx512(void) { return &isa; }
const tg_cpu_isa *tg_cpu_isa_avx512bf16(void) { return &isa_bf16; }
#else
const tg_cpu_isa *tg_cpu_isa_avx512(void) { return NULL; }
const tg_cpu_isa *tg_cpu_isa_avx512bf16(void) { return NULL; }
#endif

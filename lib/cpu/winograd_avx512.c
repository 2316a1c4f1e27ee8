/*
 * winograd_avx512.c — the AVX-512 transforms of the Winograd F(2x2, 2x2) convolutions
 * (winograd.c; the ISA table's wino_pack and wino_out, installed by gemm_avx512.c): 3x3 patches
 * of 16 tiles into the nine packed planes, and the nine C tiles into 2x2 outputs. Compiled with
 * -mavx512f -mavx512vl -mavx512dq -mbmi2 (Makefile); only called after cpuid said the CPU and OS
 * support them.
 */
#include "cpu.h"

#if defined(__AVX512F__) && defined(__FMA__)
#include <immintrin.h>

enum { MR = TG_AVX512_MR, NR = TG_AVX512_NR }; /* the AVX-512 micro-kernel's tile */

/* B^T d B of 16 tiles (d: their 3x3 patches, row-major) into row k of the nine planes */
static inline void wino_store_v(const __m512 *d, float *o, int k) {
    __m512 x[9];
    for (int j = 0; j < 3; j++) { /* B^T d */
        x[j] = _mm512_sub_ps(d[j], d[3 + j]);
        x[3 + j] = d[3 + j];
        x[6 + j] = _mm512_sub_ps(d[6 + j], d[3 + j]);
    }
    for (int i = 0; i < 3; i++) { /* (B^T d) B */
        _mm512_store_ps(o + (3 * i + 0) * TG_WINO_PLANE(NR) + k * NR, _mm512_sub_ps(x[3 * i], x[3 * i + 1]));
        _mm512_store_ps(o + (3 * i + 1) * TG_WINO_PLANE(NR) + k * NR, x[3 * i + 1]);
        _mm512_store_ps(o + (3 * i + 2) * TG_WINO_PLANE(NR) + k * NR, _mm512_sub_ps(x[3 * i + 2], x[3 * i + 1]));
    }
}

/* Lanes l0..l0+7 are 8 neighbouring tiles of one tile row: each reads the next one's patch two
 * columns further on. t: in_off, in_h or in_w; step: 2 for in_off and in_w, 0 for in_h. */
static bool run8(const int32_t *t, int l0, int step) {
    for (int l = 1; l < 8; l++)
        if (t[l0 + l] != t[l0] + step * l) return false;
    return true;
}

/* The 16 lanes are four runs of 4 neighbouring tiles along tile rows (data gradient phases
 * whose tile rows are 4 to 7 tiles wide) */
static bool run4x4(const int32_t *io, const int32_t *ih, const int32_t *iw) {
    for (int l0 = 0; l0 < 16; l0 += 4)
        for (int l = 1; l < 4; l++)
            if (io[l0 + l] != io[l0] + 2 * l || ih[l0 + l] != ih[l0] || iw[l0 + l] != iw[l0] + 2 * l) return false;
    return true;
}

/* Data gradient patches (ds 1) of four runs of 4 tiles: a patch row of a run is 9 consecutive
 * floats of dy; two masked 8-float loads per run (at columns 0 and 2), joined in pairs of runs,
 * and three permutes give the three columns of all 16 tiles. */
static void pack_runs4_ds1(const tg_wino_phase *ph, int64_t k0, int kc, const int32_t *io,
                           const int32_t *ih, const int32_t *iw, float *o) {
    const __m256i iota = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
    const __m256i Wv = _mm256_set1_epi32(ph->W);
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    __mmask8 m[4][3][2]; /* run, patch row, load at column 0 or 2 (rh = rw = 0 for ds 1) */
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < 3; i++) {
            const bool row_in = (uint32_t)(ih[4 * r] + i) < (uint32_t)ph->H;
            for (int c = 0; c < 2; c++)
                m[r][i][c] = row_in ? _mm256_cmplt_epu32_mask(_mm256_add_epi32(iota, _mm256_set1_epi32(iw[4 * r] + 2 * c)), Wv) : 0;
        }
    for (int k = 0; k < kc; k++) {
        const float *src = ph->src + ph->roff[k0 + k];
        __m512 d[9];
        for (int i = 0; i < 3; i++) {
            __m512 x[2][2]; /* pair of runs, column 0 or 2 */
            for (int pr = 0; pr < 2; pr++)
                for (int c = 0; c < 2; c++) {
                    const float *pa = src + io[8 * pr] + i * ph->W + 2 * c, *pb = src + io[8 * pr + 4] + i * ph->W + 2 * c;
                    x[pr][c] = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_maskz_loadu_ps(m[2 * pr][i][c], pa)),
                                                  _mm256_maskz_loadu_ps(m[2 * pr + 1][i][c], pb), 1);
                }
            d[3 * i] = _mm512_permutex2var_ps(x[0][0], even, x[1][0]);
            d[3 * i + 1] = _mm512_permutex2var_ps(x[0][0], odd, x[1][0]);
            d[3 * i + 2] = _mm512_permutex2var_ps(x[0][1], even, x[1][1]);
        }
        wino_store_v(d, o, k);
    }
}

/* The forward pass's patches (ds 2) for 16 tiles that are two runs of 8 neighbouring tiles along
 * a tile row: a patch row of run t reads every other pixel of 33 consecutive floats of x (tile
 * u of the run: columns 4u, 4u + 2, 4u + 4). Two masked loads of 16 and one float per half and
 * patch row; the three columns are picked by permutes and the halves joined. The row's input
 * phase (rh, rw) changes the masks from row to row. */
static void pack_runs_ds2(const tg_wino_phase *ph, int64_t k0, int kc, const int32_t *io,
                          const int32_t *ih, const int32_t *iw, float *o) {
    const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i Wv = _mm512_set1_epi32(ph->W);
    /* low 8 lanes: elements 4u (j 0), 4u + 2 (j 1), 4u + 4 (j 2; u = 7 takes the extra float) */
    const __m512i j0 = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 28, 24, 20, 16, 12, 8, 4, 0);
    const __m512i j1 = _mm512_add_epi32(j0, _mm512_set1_epi32(2));
    const __m512i j2 = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 28, 24, 20, 16, 12, 8, 4);
    for (int k = 0; k < kc; k++) {
        const int32_t rh = ph->rh[k0 + k], rw = ph->rw[k0 + k];
        const float *src = ph->src + ph->roff[k0 + k];
        __m512 half[2][9];
        for (int hf = 0; hf < 2; hf++) {
            const int32_t cb = iw[8 * hf] + rw;
            const __mmask16 c0 = _mm512_cmplt_epu32_mask(_mm512_add_epi32(iota, _mm512_set1_epi32(cb)), Wv);
            const __mmask16 c1 = _mm512_cmplt_epu32_mask(_mm512_add_epi32(iota, _mm512_set1_epi32(cb + 16)), Wv);
            const bool last = (uint32_t)(cb + 32) < (uint32_t)ph->W;
            for (int i = 0; i < 3; i++) {
                __m512 *d = half[hf] + 3 * i;
                if ((uint32_t)(ih[8 * hf] + rh + 2 * i) >= (uint32_t)ph->H) {
                    d[0] = d[1] = d[2] = _mm512_setzero_ps();
                    continue;
                }
                const float *p = src + io[8 * hf] + 2 * i * ph->W;
                const __m512 lo = _mm512_maskz_loadu_ps(c0, p), hi = _mm512_maskz_loadu_ps(c1, p + 16);
                d[0] = _mm512_permutex2var_ps(lo, j0, hi);
                d[1] = _mm512_permutex2var_ps(lo, j1, hi);
                d[2] = _mm512_mask_mov_ps(_mm512_permutex2var_ps(lo, j2, hi), 0x80,
                                          _mm512_set1_ps(last ? p[32] : 0.0f));
            }
        }
        __m512 d[9];
        for (int e = 0; e < 9; e++) /* tiles 0..7 from the first half, 8..15 from the second */
            d[e] = _mm512_insertf32x8(half[0][e], _mm512_castps512_ps256(half[1][e]), 1);
        wino_store_v(d, o, k);
    }
}

/* Winograd input transform (winograd.c). Data gradient phases (ds 1): where each half of a
 * group of 16 tiles is a run of 8 tiles along one tile row (tile rows of 8 or more: the 32x32
 * and larger outputs), a patch row of the run is 17 consecutive floats of dy: two masked loads
 * (at columns 0 and 2) per half and three permutes give its three columns for all 16 tiles;
 * four runs of 4 go through pack_runs4_ds1, the forward pass's runs of 8 (ds 2) through
 * pack_runs_ds2. The run paths for ds 1 take rh = rw = 0, as the phases' tables have.
 * Otherwise each of the 9 patch elements of 16 tiles is one masked gather (for ds 1 the masks
 * and offsets do not depend on the row, so they are made once per group). Then B^T d B in
 * registers. */
void tg_wino_pack_avx512(const tg_wino_phase *ph, int64_t k0, int kc, int64_t q0, int nlanes, float *out) {
    (void)nlanes; /* lanes past the last tile are invalid in the tables: read as zero */
    const __m512i Hv = _mm512_set1_epi32(ph->H), Wv = _mm512_set1_epi32(ph->W);
    const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512 zero = _mm512_setzero_ps();
    const int ds = ph->ds;
    for (int v = 0; v < NR / 16; v++) {
        const int64_t q = q0 + 16 * v;
        const int32_t *io = ph->in_off + q, *ih = ph->in_h + q, *iw = ph->in_w + q;
        float *o = out + 16 * v;
        if (ds == 1 && run8(io, 0, 2) && run8(io, 8, 2) && run8(ih, 0, 0) && run8(ih, 8, 0) &&
            run8(iw, 0, 2) && run8(iw, 8, 2)) {
            __mmask16 m[2][3][2]; /* half, patch row, load at column 0 or 2 */
            for (int hf = 0; hf < 2; hf++)
                for (int i = 0; i < 3; i++) {
                    const bool row_in = (uint32_t)(ih[8 * hf] + i) < (uint32_t)ph->H;
                    for (int c = 0; c < 2; c++)
                        m[hf][i][c] = row_in ? _mm512_cmplt_epu32_mask(_mm512_add_epi32(iota, _mm512_set1_epi32(iw[8 * hf] + 2 * c)), Wv) : 0;
                }
            for (int k = 0; k < kc; k++) {
                const float *src = ph->src + ph->roff[k0 + k];
                __m512 d[9];
                for (int i = 0; i < 3; i++) {
                    const float *p0 = src + io[0] + i * ph->W, *p1 = src + io[8] + i * ph->W;
                    const __m512 a = _mm512_maskz_loadu_ps(m[0][i][0], p0), b = _mm512_maskz_loadu_ps(m[1][i][0], p1);
                    const __m512 a2 = _mm512_maskz_loadu_ps(m[0][i][1], p0 + 2), b2 = _mm512_maskz_loadu_ps(m[1][i][1], p1 + 2);
                    d[3 * i] = _mm512_permutex2var_ps(a, even, b);
                    d[3 * i + 1] = _mm512_permutex2var_ps(a, odd, b);
                    d[3 * i + 2] = _mm512_permutex2var_ps(a2, even, b2);
                }
                wino_store_v(d, o, k);
            }
            continue;
        }
        if (ds == 1 && run4x4(io, ih, iw)) {
            pack_runs4_ds1(ph, k0, kc, io, ih, iw, o);
            continue;
        }
        if (ds == 2 && run8(io, 0, 4) && run8(io, 8, 4) && run8(ih, 0, 0) && run8(ih, 8, 0) &&
            run8(iw, 0, 4) && run8(iw, 8, 4)) {
            pack_runs_ds2(ph, k0, kc, io, ih, iw, o);
            continue;
        }
        const __m512i off = _mm512_loadu_si512(io), h = _mm512_loadu_si512(ih), w = _mm512_loadu_si512(iw);
        __m512i idx[9];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) idx[3 * i + j] = _mm512_add_epi32(off, _mm512_set1_epi32(ds * (i * ph->W + j)));
        __mmask16 rows[3] = {0, 0, 0}, cols[3] = {0, 0, 0};
        int32_t rh_last = 0, rw_last = 0;
        for (int k = 0; k < kc; k++) {
            const int32_t rh = ph->rh[k0 + k], rw = ph->rw[k0 + k];
            if (k == 0 || rh != rh_last || rw != rw_last) { /* rows in or out of the image */
                for (int i = 0; i < 3; i++) {
                    rows[i] = _mm512_cmplt_epu32_mask(_mm512_add_epi32(h, _mm512_set1_epi32(rh + ds * i)), Hv);
                    cols[i] = _mm512_cmplt_epu32_mask(_mm512_add_epi32(w, _mm512_set1_epi32(rw + ds * i)), Wv);
                }
                rh_last = rh, rw_last = rw;
            }
            const float *src = ph->src + ph->roff[k0 + k];
            __m512 d[9];
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                    d[3 * i + j] = _mm512_mask_i32gather_ps(zero, rows[i] & cols[j], idx[3 * i + j], src, 4);
            wino_store_v(d, o, k);
        }
    }
}

/* Winograd output transform: A^T M A of 16 tiles in registers, plus the bias. Where each quarter
 * of the group is a run of 4 tiles along a tile row, a run's two outputs per tile row interleave
 * into 8 values ocol apart in dst: ymm-sized masked stores (ocol 1, the forward pass) or
 * even-lane masked stores over 16 floats (ocol 2, a data gradient phase). Other groups store
 * each of the 4 outputs with one masked scatter. */
void tg_wino_out_avx512(const tg_wino_phase *ph, int64_t ch0, int mc, int64_t q0, int nl, const float *tiles) {
    const int32_t orow = ph->orow, ocol = ph->ocol;
    const __m512i il0 = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i il1 = _mm512_add_epi32(il0, _mm512_set1_epi32(8)); /* lanes 8..15 */
    const __m512i lo_idx = _mm512_set_epi32(0, 7, 0, 6, 0, 5, 0, 4, 0, 3, 0, 2, 0, 1, 0, 0);
    const __m512i hi_idx = _mm512_set_epi32(0, 15, 0, 14, 0, 13, 0, 12, 0, 11, 0, 10, 0, 9, 0, 8);
    for (int v = 0; v < NR / 16 && 16 * v < nl; v++) {
        const int64_t q = q0 + 16 * v;
        const int32_t *oo = ph->out_off + q;
        const __m512i bits = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(ph->out_mask + q)));
        __mmask16 mk[4];
        for (int ab = 0; ab < 4; ab++) mk[ab] = _mm512_test_epi32_mask(bits, _mm512_set1_epi32(1 << ab));
        bool runs = ocol == 1 || ocol == 2;
        for (int l0 = 0; l0 < 16 && runs; l0 += 4)
            for (int l = 1; l < 4 && runs; l++) runs = oo[l0 + l] == oo[l0] + 2 * ocol * l;
        __m512i idx[4];
        uint32_t zm[2][2] = {{0}}; /* runs: lanes 8hf.., tile row a -> mask of the 16 interleaved outputs */
        for (int ab = 0; ab < 4; ab++) idx[ab] = _mm512_add_epi32(_mm512_loadu_si512(oo), _mm512_set1_epi32((ab >> 1) * orow + (ab & 1) * ocol));
        for (int hf = 0; hf < 2; hf++)
            for (int a = 0; a < 2; a++)
                zm[hf][a] = _pdep_u32((mk[2 * a] >> (8 * hf)) & 0xff, 0x5555) | _pdep_u32((mk[2 * a + 1] >> (8 * hf)) & 0xff, 0xAAAA);
        for (int m = 0; m < mc; m++) {
            float *d = ph->dst + (ch0 + m) * ph->d_cs;
            const __m512 bias = _mm512_set1_ps(ph->bias ? ph->bias[ch0 + m] : 0.0f);
            __m512 M[9], t[6], y[4];
            for (int e = 0; e < 9; e++) M[e] = _mm512_load_ps(tiles + (e * MR + m) * NR + 16 * v);
            for (int j = 0; j < 3; j++) { /* A^T M */
                t[j] = _mm512_add_ps(M[j], M[3 + j]);
                t[3 + j] = _mm512_add_ps(M[3 + j], M[6 + j]);
            }
            for (int a = 0; a < 2; a++) { /* (A^T M) A + bias */
                y[2 * a] = _mm512_add_ps(_mm512_add_ps(t[3 * a], t[3 * a + 1]), bias);
                y[2 * a + 1] = _mm512_add_ps(_mm512_add_ps(t[3 * a + 1], t[3 * a + 2]), bias);
            }
            if (!runs) {
                for (int ab = 0; ab < 4; ab++) {
                    if (ph->acc)
                        y[ab] = _mm512_add_ps(_mm512_mask_i32gather_ps(_mm512_setzero_ps(), mk[ab], idx[ab], d, 4), y[ab]);
                    _mm512_mask_i32scatter_ps(d, mk[ab], idx[ab], y[ab], 4);
                }
                continue;
            }
            for (int hf = 0; hf < 2; hf++)
                for (int a = 0; a < 2; a++) {
                    /* z: the outputs of lanes 8hf..8hf+7, (y0, y1) of each tile in turn; its two
                     * halves belong to the runs of lanes 8hf.. and 8hf+4.. */
                    const __m512 z = _mm512_permutex2var_ps(y[2 * a], hf ? il1 : il0, y[2 * a + 1]);
                    float *p0 = d + oo[8 * hf] + a * orow, *p1 = d + oo[8 * hf + 4] + a * orow;
                    const uint32_t m0 = zm[hf][a] & 0xff, m1 = zm[hf][a] >> 8;
                    if (ocol == 1) {
                        __m256 z0 = _mm512_castps512_ps256(z), z1 = _mm512_extractf32x8_ps(z, 1);
                        if (ph->acc) {
                            z0 = _mm256_add_ps(_mm256_maskz_loadu_ps((__mmask8)m0, p0), z0);
                            z1 = _mm256_add_ps(_mm256_maskz_loadu_ps((__mmask8)m1, p1), z1);
                        }
                        _mm256_mask_storeu_ps(p0, (__mmask8)m0, z0);
                        _mm256_mask_storeu_ps(p1, (__mmask8)m1, z1);
                        continue;
                    }
                    const __mmask16 mlo = (__mmask16)_pdep_u32(m0, 0x5555), mhi = (__mmask16)_pdep_u32(m1, 0x5555);
                    __m512 lo = _mm512_permutexvar_ps(lo_idx, z), hi = _mm512_permutexvar_ps(hi_idx, z);
                    if (ph->acc) {
                        lo = _mm512_add_ps(_mm512_maskz_loadu_ps(mlo, p0), lo);
                        hi = _mm512_add_ps(_mm512_maskz_loadu_ps(mhi, p1), hi);
                    }
                    _mm512_mask_storeu_ps(p0, mlo, lo);
                    _mm512_mask_storeu_ps(p1, mhi, hi);
                }
        }
    }
}
#endif

/*
 * gemm_avx2.c — the AVX2+FMA path of the CPU GEMM (cpu.h): a 6x16 micro-kernel (12 ymm
 * accumulators) and a B packer gathering 8 lanes at a time. Compiled with -mavx2 -mfma
 * (Makefile); only called after cpuid said the CPU supports it.
 */
#include "cpu.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

enum { MR = 6, NR = 16 };

static void kernel(int64_t kc, const float *a, const float *b, float *c, int load) {
    __m256 c0[MR], c1[MR];
    if (load) {
#pragma GCC unroll 6
        for (int m = 0; m < MR; m++) {
            c0[m] = _mm256_load_ps(c + m * NR);
            c1[m] = _mm256_load_ps(c + m * NR + 8);
        }
    } else {
#pragma GCC unroll 6
        for (int m = 0; m < MR; m++) c0[m] = c1[m] = _mm256_setzero_ps();
    }
    for (int64_t k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_load_ps(b + k * NR), b1 = _mm256_load_ps(b + k * NR + 8);
        const float *ak = a + k * MR;
#pragma GCC unroll 6
        for (int m = 0; m < MR; m++) {
            const __m256 am = _mm256_broadcast_ss(ak + m);
            c0[m] = _mm256_fmadd_ps(am, b0, c0[m]);
            c1[m] = _mm256_fmadd_ps(am, b1, c1[m]);
        }
    }
#pragma GCC unroll 6
    for (int m = 0; m < MR; m++) {
        _mm256_store_ps(c + m * NR, c0[m]);
        _mm256_store_ps(c + m * NR + 8, c1[m]);
    }
}

static void pack_b(const tg_gemm_tab *g, int64_t k0, int64_t kc, const int32_t *loff,
                   const int32_t *lh, const int32_t *lw, int nlanes, float *out) {
    (void)nlanes;
    __m256i lo[2], lhv[2], lwv[2];
    for (int v = 0; v < 2; v++) {
        lo[v] = _mm256_loadu_si256((const __m256i *)(loff + 8 * v));
        lhv[v] = _mm256_loadu_si256((const __m256i *)(lh + 8 * v));
        lwv[v] = _mm256_loadu_si256((const __m256i *)(lw + 8 * v));
    }
    /* unsigned a < b as signed compares after flipping the sign bit */
    const __m256i flip = _mm256_set1_epi32((int)0x80000000u);
    const __m256i H = _mm256_xor_si256(_mm256_set1_epi32(g->b_H), flip);
    const __m256i W = _mm256_xor_si256(_mm256_set1_epi32(g->b_W), flip);
    const float *src = g->b_src;
    for (int64_t k = 0; k < kc; k++) {
        const __m256i ro = _mm256_set1_epi32(g->b_roff[k0 + k]);
        const __m256i rh = _mm256_set1_epi32(g->b_rh[k0 + k]), rw = _mm256_set1_epi32(g->b_rw[k0 + k]);
        for (int v = 0; v < 2; v++) {
            const __m256i h = _mm256_xor_si256(_mm256_add_epi32(lhv[v], rh), flip);
            const __m256i w = _mm256_xor_si256(_mm256_add_epi32(lwv[v], rw), flip);
            const __m256i ok = _mm256_and_si256(_mm256_cmpgt_epi32(H, h), _mm256_cmpgt_epi32(W, w));
            const __m256 x = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), src,
                                                      _mm256_add_epi32(lo[v], ro),
                                                      _mm256_castsi256_ps(ok), 4);
            _mm256_store_ps(out + k * NR + 8 * v, x);
        }
    }
}

static const tg_cpu_isa isa = {.name = "avx2", .mr = MR, .nr = NR, .kernel = kernel, .pack_b = pack_b,
                               .bf16_how = "bf16 operands, float32 multiply-adds in plain C"};
const tg_cpu_isa *tg_cpu_isa_avx2(void) { return &isa; }
#else
const tg_cpu_isa *tg_cpu_isa_avx2(void) { return NULL; }
#endif

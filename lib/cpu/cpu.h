/*
 * cpu.h — what the files of the CPU backend share (nothing here leaves lib/cpu/): the ISA table
 * chosen at run time, and the table-driven GEMM that every convolution is built on.
 *
 * The GEMM computes C[M,N] = A[M,K] * B[K,N] without materialising A, B or C as matrices:
 *   A(m,k) = a_src[m*a_ms + a_off[k]]                     (weights, or an output gradient)
 *   B(k,n) = b_src[b_roff[k] + b_loff[n]] when 0 <= b_rh[k]+b_lh[n] < b_H and
 *                                           0 <= b_rw[k]+b_lw[n] < b_W, else 0
 *            (an image read through im2col's index math: rows k carry the kernel tap, lanes n
 *             the output pixel, or the other way round for weight gradients)
 *   C(m,n) -> dst[m*d_ms + d_off[n]]  (= or +=, plus bias[m] on the first write when given)
 * Packing gathers B straight from the image into per-thread slivers of NR columns that stay in
 * L2; each MR x NR tile of C accumulates over all of K in registers and an L1 buffer, then is
 * written once. Each element of C is computed by one thread in a fixed order, so results do not
 * depend on the thread count.
 */
#ifndef TG_CPU_H
#define TG_CPU_H

#include "../backend.h"
#include "../tg_omp.h"

/* The table's slots: tg_cpu_<slot> for every slot of lib/backend.h's list. */
#define TG_CPU_DECL(ret, name, params) TG_INTERNAL ret tg_cpu_##name params;
TG_BACKEND_SLOTS(TG_CPU_DECL)
#undef TG_CPU_DECL

/* A dense layer's GEMM in bf16 through the table-driven GEMM (conv.c); false when it does not
 * apply (see there). */
TG_INTERNAL bool tg_cpu_gemm_bf16(tg_ctx *ctx, const tg_gemm_args *g);

/* The CBLAS sgemm the CPU backend loads (lib/cpu/blas.c) for dense layers, or NULL. */
typedef void (*tg_sgemm_fn)(int order, int ta, int tb, int M, int N, int K, float alpha,
                            const float *A, int lda, const float *B, int ldb, float beta,
                            float *C, int ldc);
TG_INTERNAL tg_sgemm_fn tg_blas_sgemm(void);

/* Phase r of a stride-s data gradient (conv.c, winograd.c) holds the outputs h = s*m - p + r
 * with 0 <= h < H: m runs over [*lo, *hi], none when *hi < *lo. */
static inline void tg_phase_range(int64_t H, int64_t s, int64_t p, int64_t r, int64_t *lo,
                                  int64_t *hi) {
    const int64_t a = p - r, b = H - 1 + p - r; /* lo = ceil(a / s), hi = floor(b / s) */
    *lo = a >= 0 ? (a + s - 1) / s : -((-a) / s);
    *hi = b >= 0 ? b / s : -((-b + s - 1) / s);
}

#define TG_NR_MAX 48
#define TG_MR_MAX 16
#define TG_AVX512_MR 8  /* the AVX-512 micro-kernel's tile (gemm_avx512.c, winograd_avx512.c) */
#define TG_AVX512_NR 48

typedef struct {
    const float *a_src;
    int64_t a_ms;
    const int64_t *a_off;   /* [K] */
    const float *b_src;
    int32_t b_H, b_W;
    const int32_t *b_roff, *b_rh, *b_rw; /* [K] */
    const int32_t *b_loff, *b_lh, *b_lw; /* [N] */
    float *dst;
    int64_t d_ms;
    const int64_t *d_off;   /* [N] */
    const float *bias;      /* [M] or NULL */
    int acc;                /* add into dst instead of overwriting it */
    int64_t M, N, K;
    int bf16;               /* products of A and B rounded to bf16 (TG_PRECISION_BF16; below) */
} tg_gemm_tab;

/* bf16 GEMMs (tg_gemm_tab.bf16): A and B are rounded to bf16 as they are packed (tg_bf16_of) and
 * packed as pairs of K rows: K2 = ceil(K/2) pair rows, element (k, lane) at [k/2][lane][k%2]
 * (a zero row pads an odd K). A tile accumulates each pair as AVX512-BF16's vdpbf16ps does: the
 * odd row's product, then the even row's, each product exact in float32 and added with one
 * rounding. Every path (vdpbf16ps, or float32 FMAs on the same bf16 values) gives the same bits,
 * except that vdpbf16ps reads subnormal bf16 values as zero. */
typedef uint16_t tg_bf16;

/* One Winograd F(2x2, 2x2) problem (winograd.c): where each tile of 2x2 outputs reads its 3x3
 * patch for each row k of the GEMM, and where it writes its outputs. Patch element (i, j) of
 * lane l in row k: src[roff[k] + in_off[l] + ds*(i*W + j)], 0 unless row rh[k] + in_h[l] + ds*i
 * and column rw[k] + in_w[l] + ds*j lie inside H x W. Lane tables are padded past the last
 * tile by two slivers (in_h, in_w invalid, out_mask 0). */
#define TG_WINO_KC 256 /* rows per transformed block: 9 planes of TG_WINO_KC x NR */
/* floats from one plane to the next: a cache line more than a plane, so that the nine stores of
 * a transformed row do not all fall in the same L1 set (planes are 48 KiB on AVX-512) */
#define TG_WINO_PLANE(nr) ((int64_t)TG_WINO_KC * (nr) + 16)
typedef struct {
    const float *src;
    int32_t H, W;                         /* the source plane's bounds */
    int32_t ds;                           /* 1: patch elements adjacent (data gradient phases,
                                           * rh = rw = 0); 2: every other pixel (forward) */
    const int32_t *roff, *rh, *rw;        /* [K] */
    const int32_t *in_off, *in_h, *in_w;  /* [tiles] the patch's element (0, 0) */
    float *dst;
    int64_t d_cs;                         /* dst's channel (GEMM row) stride */
    int32_t orow, ocol;                   /* output (a, b) of a tile: out_off + a*orow + b*ocol */
    const int32_t *out_off;               /* [tiles] offset in dst (channel 0) of output (0, 0) */
    const uint8_t *out_mask;              /* [tiles] bit 2a+b: output (a, b) exists */
    const float *bias;                    /* [M] or NULL */
    int acc;                              /* add into dst instead of overwriting it */
} tg_wino_phase;

/* One instruction-set path: micro-kernel shape and its two hot loops. */
typedef struct {
    const char *name;
    int mr, nr;
    /* c[MR][NR] = (load ? c : 0) + sum_k a[k*MR+m] * b[k*NR+n] */
    void (*kernel)(int64_t kc, const float *a, const float *b, float *c, int load);
    /* rows k0..k0+kc of B for the NR lanes whose tables start at loff/lh/lw (nlanes valid,
     * the rest zero) into out[(k-k0)*NR + lane] */
    void (*pack_b)(const tg_gemm_tab *g, int64_t k0, int64_t kc, const int32_t *loff,
                   const int32_t *lh, const int32_t *lw, int nlanes, float *out);
    /* tile rows m0..m0+mc, lanes n0..n0+nl into dst through the tables (NULL: the plain C one) */
    void (*epilogue)(const tg_gemm_tab *g, int64_t m0, int mc, int64_t n0, int nl,
                     const float *tile, int acc, const float *bias);
    /* GEMMs of at most 4 rows (NULL: none): tile[MR][NR] for lanes n0.. over all K rows, reading
     * B straight from the source instead of packing it (each packed element would serve at
     * most 4 multiply-adds), with the kernel's sums in the kernel's order; returns false, having
     * written nothing, when these lanes' shape is not one it reads directly */
    bool (*small_m)(const tg_gemm_tab *g, const float *ap, int64_t n0, float *tile);
    /* Winograd transforms (NULL: the plain C ones in winograd.c): rows
     * k0..k0+kc for tiles q0..q0+NR (nlanes valid, the rest zero) as the nine planes
     * V_e = (B^T d B)_e, out[e*TG_WINO_PLANE(NR) + k*NR + lane]; and the output transform of the
     * nine tiles[e][MR][NR] of rows ch0..ch0+mc, tiles q0..q0+nl, into dst */
    void (*wino_pack)(const tg_wino_phase *ph, int64_t k0, int kc, int64_t q0, int nlanes,
                      float *out);
    void (*wino_out)(const tg_wino_phase *ph, int64_t ch0, int mc, int64_t q0, int nl,
                     const float *tiles);
    /* bf16 (NULL: the plain C ones, tg_kernel_bf16_scalar and tg_pair_b_scalar): the kernel over
     * kc2 pair rows, c[MR][NR] = (load ? c : 0) + the pairs' products as above; and kc packed
     * float32 rows of B (NR lanes each) into kc2 = ceil(kc/2) pair rows */
    void (*kernel_bf16)(int64_t kc2, const tg_bf16 *a, const tg_bf16 *b, float *c, int load);
    void (*pair_b)(const float *rows, int64_t kc, tg_bf16 *out);
    const char *bf16_how; /* how its bf16 products are computed, for tg_ctx_describe */
} tg_cpu_isa;

/* What cpuid and xgetbv say this x86 CPU and OS support (0 elsewhere): the one reading of them,
 * shared by the kernel choice here and OpenBLAS's kernel choice in blas.c. */
enum {
    TG_X86_AVX2_FMA = 1,
    TG_X86_AVX512F = 2,
    TG_X86_AVX512_KERNEL = 4, /* +VL, DQ, BMI2 */
    TG_X86_AVX512_BF16 = 8,   /* AVX512-BF16 (vdpbf16ps), with the above */
};
TG_INTERNAL unsigned tg_cpu_x86_features(void);

/* The path in use: the best this CPU supports, or TG_CPU_ISA=avx512bf16|avx512|avx2|simd128|generic. */
TG_INTERNAL const tg_cpu_isa *tg_cpu_isa_get(void);
TG_INTERNAL const tg_cpu_isa *tg_cpu_isa_generic(void);
TG_INTERNAL const tg_cpu_isa *tg_cpu_isa_avx2(void);   /* NULL when not compiled in */
TG_INTERNAL const tg_cpu_isa *tg_cpu_isa_avx512(void); /* NULL when not compiled in */
TG_INTERNAL const tg_cpu_isa *tg_cpu_isa_avx512bf16(void); /* avx512 + vdpbf16ps (NULL: not compiled in) */
TG_INTERNAL const tg_cpu_isa *tg_cpu_isa_simd128(void); /* WebAssembly SIMD128 (NULL: not compiled in) */
/* which paths this CPU can run (for tests): bit 0 generic, 1 avx2, 2 avx512, 3 avx512bf16,
 * 4 simd128 */
TG_INTERNAL unsigned tg_cpu_isa_supported(void);
/* force a path (tests); returns false if the CPU cannot run it */
TG_INTERNAL bool tg_cpu_isa_force(const char *name);

/* Bytes of workspace tg_cpu_gemm_batch needs for count GEMMs of these sizes with nthreads threads. */
TG_INTERNAL size_t tg_cpu_gemm_ws(int64_t M, int64_t K, int count, int nthreads);
/* Runs the GEMM; ws from tg_cpu_gemm_ws(M, K, 1, threads). */
TG_INTERNAL void tg_cpu_gemm_run(const tg_gemm_tab *g, float *ws);
/* Runs count GEMMs with the same M and K (N may differ) as one: column sliver j of each in turn,
 * so GEMMs over the same source and destination (the s*s phases of a strided data gradient)
 * share its cache lines instead of streaming it count times. Each result is computed exactly
 * as tg_cpu_gemm_run computes it alone. ws from tg_cpu_gemm_ws(M, K, count, threads). */
TG_INTERNAL void tg_cpu_gemm_batch(const tg_gemm_tab *g, int count, float *ws);

/* The plain C epilogue (cpu.h's tg_cpu_isa.epilogue), for lanes an ISA does not vectorise. */
TG_INTERNAL void tg_epilogue_scalar(const tg_gemm_tab *g, int64_t m0, int mc, int64_t n0, int nl,
                                    const float *tile, int nr, int acc, const float *bias);
/* The plain C bf16 kernel and B pair packer (tile mr x nr), for ISAs without their own. */
TG_INTERNAL void tg_kernel_bf16_scalar(int64_t kc2, const tg_bf16 *a, const tg_bf16 *b, float *c, int load,
                                       int mr, int nr);
TG_INTERNAL void tg_pair_b_scalar(const float *rows, int64_t kc, int nr, tg_bf16 *out);
/* The generic B packer, shared by the ISA files for the rows/lanes they do not vectorise. */
TG_INTERNAL void tg_pack_b_scalar(const tg_gemm_tab *g, int64_t k0, int64_t kc,
                                  const int32_t *loff, const int32_t *lh, const int32_t *lw,
                                  int nlanes, int nr, float *out);

/* 4x4, stride-2 convolution passes as Winograd F(2x2, 2x2) (winograd.c), when
 * tg_cpu_winograd_applies says so; conv.c's tg_cpu_conv_fwd and tg_cpu_conv_bwd_data call them. */
TG_INTERNAL bool tg_cpu_winograd_applies(int C, int Co, int kh, int kw, int s, int64_t tiles);
TG_INTERNAL tg_status tg_cpu_conv_bwd_data_wino(tg_ctx *ctx, const float *dy, int N, int Co,
                                                int Ho, int Wo, const float *w, int C, int p,
                                                int H, int W, float *dx, int acc);
TG_INTERNAL tg_status tg_cpu_conv_fwd_wino(tg_ctx *ctx, const float *x, int N, int C, int H,
                                           int W, const float *w, int Co, int p, int Ho, int Wo,
                                           const float *bias, float *y, int acc);
/* 3x3 stride-1 convolutions as Winograd F(2x2, 3x3) (winograd.c): the forward pass (flip 0) and,
 * run on dy with padding 2 - p and the kernel turned (flip 1), the data gradient; when
 * tg_cpu_wino3_applies says so (3x3, stride 1, both channel counts >= 16, p <= 2, enough tiles) */
TG_INTERNAL bool tg_cpu_wino3_applies(int C, int Co, int kh, int kw, int s, int p, int64_t tiles);
TG_INTERNAL tg_status tg_cpu_conv3_wino(tg_ctx *ctx, const float *x, int N, int K, int H, int W, const float *w,
                                        int M, int p, int Ho, int Wo, const float *bias, float *y, int acc, int flip);
/* tests: 1 use Winograd wherever the shape allows, 0 never, -1 as TG_CPU_WINOGRAD / the tile
 * count decide */
TG_INTERNAL void tg_cpu_winograd_force(int on);
/* the AVX-512 transforms (winograd_avx512.c; not compiled in without AVX-512 support) */
TG_INTERNAL void tg_wino_pack_avx512(const tg_wino_phase *ph, int64_t k0, int kc, int64_t q0,
                                     int nlanes, float *out);
TG_INTERNAL void tg_wino_out_avx512(const tg_wino_phase *ph, int64_t ch0, int mc, int64_t q0,
                                    int nl, const float *tiles);
/* the plain C transforms, shared by the ISA files for what they do not vectorise */
TG_INTERNAL void tg_wino_pack_scalar(const tg_wino_phase *ph, int64_t k0, int kc, int64_t q0,
                                     int nlanes, int nr, float *out);
TG_INTERNAL void tg_wino_out_scalar(const tg_wino_phase *ph, int64_t ch0, int mc, int64_t q0,
                                    int nl, const float *tiles, int mr, int nr);

/* The work schedule of the GEMMs (gemm.c, winograd.c), inside a parallel region: of n items,
 * the first this many go to the threads in static blocks (a thread's next item is its own, which
 * the B packer prefetches), the rest one at a time, so a thread slowed by its neighbours does not
 * leave the others waiting at the end (that wait was 5% of a two-thread GAN step). Which thread
 * computes an item never changes its values. */
static inline int64_t tg_cpu_static_items(int64_t n, int nthreads) { return nthreads > 1 ? n - n / 8 : n; }

/* ---- the backend table's kernels, one file per family as in cuda/ ------------------------------ */
/* below this many elements a loop runs on one thread */
#define PAR_MIN 16384

/* Elementwise loops: the body runs on [lo, hi) ranges with restrict pointers (so GCC vectorises
 * it; an `omp simd` loop around a formula with a branch did not), split into one contiguous
 * range per thread. */
#define PAR_RANGES(n, call)                                                                     \
    do {                                                                                        \
        if ((n) <= PAR_MIN) {                                                                   \
            const int64_t lo = 0, hi = (n);                                                     \
            call;                                                                               \
        } else {                                                                                \
            _Pragma("omp parallel") {                                                           \
                const int64_t nt_ = omp_get_num_threads(), t_ = omp_get_thread_num();           \
                const int64_t lo = (n) * t_ / nt_, hi = (n) * (t_ + 1) / nt_;                   \
                call;                                                                           \
            }                                                                                   \
        }                                                                                       \
    } while (0)

#endif

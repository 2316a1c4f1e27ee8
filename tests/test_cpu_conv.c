/*
 * test_cpu_conv.c — the CPU convolution passes (lib/cpu/conv.c on the GEMM of lib/cpu/gemm.c) on
 * every instruction-set path this machine can run (plain C, AVX2, AVX-512, and WebAssembly's
 * SIMD128 in make test-wasm; each forced in turn),
 * against naive double-precision loops written here. The shapes are large enough to reach what
 * the tiny op tests cannot: several slivers of lanes, K split into micro-kernel and packing
 * blocks, row runs of 16, 8 and 4 lanes, strided runs, gathers, padding at every edge, phases
 * with no taps (kernel smaller than the stride), phases batched into one GEMM call (kernel a
 * multiple of the stride) with unequal pixel counts, and both "write" and "add into" outputs.
 * Every shape runs twice: with the direct passes, and with Winograd F(2x2, 2x2) forced on for
 * the 4x4 stride-2 forward passes and data gradients it applies to (winograd.c) — tile rows of
 * 2 to 16 tiles, half tiles at odd edges, several row blocks. Then once more in bf16 (operands
 * rounded to bf16 as they are packed, products summed in float32), against the same loops on
 * bf16-rounded operands with float32 tolerances; and the bf16 results must be the same bits on
 * one thread and two, and with AVX512-BF16's vdpbf16ps and without it (float32 FMAs).
 */
#include "testutil.h"

#include "cpu/cpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int N, C, H, W, Co, k, s, p;
} shape;

static const shape SHAPES[] = {
    {2, 5, 32, 32, 7, 4, 2, 1},   /* DCGAN 4x4/2: Wo 16 (runs of 16, step 2) */
    {3, 6, 16, 16, 13, 4, 2, 1},  /* Wo 8: runs of 8 */
    {2, 17, 8, 8, 20, 4, 2, 1},   /* Wo 4: gathers; wgrad taps as runs of 4 */
    {2, 9, 19, 23, 5, 3, 1, 1},   /* 3x3 "same", odd sizes */
    /* 3x3 stride 1 with 16 channels or more (Winograd F(2x2, 3x3) when forced): odd sizes (half
     * tiles at the right and bottom), no padding, padding 2, and K over one row block (256) in
     * the forward pass and in the data gradient */
    {2, 16, 13, 11, 17, 3, 1, 1}, {1, 18, 6, 30, 16, 3, 1, 0}, {2, 16, 9, 7, 20, 3, 1, 2},
    {1, 260, 6, 5, 16, 3, 1, 1},  {1, 16, 5, 6, 260, 3, 1, 1},
    {3, 4, 4, 4, 14, 4, 1, 0},    /* 1x1 output: its data gradient is the first G layer */
    {2, 3, 11, 9, 6, 1, 2, 0},    /* 1x1 kernel, stride 2: phases with no taps */
    {1, 4, 21, 17, 3, 5, 3, 2},   /* stride 3, kernel 5 */
    {2, 3, 3, 4, 5, 2, 7, 1},     /* stride 7 > H, W: phases named by the rows and columns there are */
    {1, 2, 2, 2, 3, 3, 1000, 1},  /* stride 1000 (its data gradient once looped over s*s phases) */
    /* data gradients whose s*s phases run as one batch of GEMMs (kernel a multiple of the
     * stride) while the phases cover different numbers of pixels */
    {2, 5, 13, 11, 6, 4, 2, 1},   /* 4x4/2, odd sizes */
    {1, 3, 9, 7, 20, 2, 2, 0},    /* 2x2/2, no padding, odd sizes */
    {1, 2, 14, 10, 3, 6, 3, 2},   /* 6x6/3 */
    {2, 3, 64, 64, 4, 4, 2, 1},   /* 3 input channels (the first D layer), Wo 32; its data
                                   * gradient (3 rows) reads B in place on AVX-512 */
    {2, 6, 32, 40, 2, 3, 1, 1},   /* 2 output rows, Wo 40: slivers read in place and slivers
                                   * whose lanes cross a row, packed, in one GEMM */
    {1, 300, 6, 6, 9, 3, 1, 1},   /* K = 2700: more than one packing block in wgrad's K */
    /* wgrad with one or two slivers of columns and K >= 32768: split into chunks of K (on
     * every path for 16 columns, on AVX-512's 48-lane slivers for 48), the last one partial */
    {6, 1, 128, 200, 3, 4, 2, 1}, /* 16 columns, K = 6 x 64 x 100 = 38400 */
    {8, 3, 128, 128, 5, 4, 2, 1}, /* 48 columns (the first D layer's), K = 32768 */
    /* packed A over 2 MiB: the slivers go through K a panel at a time */
    {10, 8, 128, 128, 16, 4, 2, 1}, /* wgrad: 16 rows, K = 10 x 64 x 64 = 40960, 128 columns */
    {1, 256, 8, 8, 256, 3, 1, 1},   /* forward and data grad: 256 rows, K = 2304, panels of
                                     * 2048 rows and 256 */
    /* 4x4/2 convolutions with at least 16 channels each side: Winograd F(2x2, 2x2) where it is
     * on (grids of odd sizes leave half tiles; K > 256 takes two row blocks) */
    {2, 24, 32, 32, 40, 4, 2, 1}, /* phases 16x16: tile rows of 8 (AVX-512 reads them as runs) */
    {1, 16, 64, 62, 16, 4, 2, 1}, /* tile rows of 16 and 15 */
    {2, 16, 16, 16, 24, 4, 2, 1}, /* tile rows of 4 (forward and data gradient) */
    {2, 16, 20, 24, 16, 4, 2, 1}, /* tile rows of 6: runs of 4 cross rows */
    {3, 16, 13, 11, 20, 4, 2, 1}, /* odd sizes: phases of 7x6, 6x5, ... */
    {1, 20, 10, 10, 300, 4, 2, 1},/* K = 300: two row blocks */
    {2, 17, 12, 14, 16, 4, 2, 2}, /* padding 2 */
    {2, 16, 9, 9, 18, 4, 2, 0},   /* no padding */
    {3, 16, 2, 3, 17, 4, 2, 1},   /* 1x1 output, phases of one pixel */
};

static int out_size(int h, int k, int s, int p) { return (h + 2 * p - k) / s + 1; }

static float *rnd(int64_t n) {
    float *v = malloc(sizeof(float) * (size_t)n);
    tu_fill(v, n, -1, 1);
    return v;
}

/* a copy of v rounded to bf16 when bf16, else as it is */
static float *as_multiplied(const float *v, int64_t n, int bf16) {
    float *r = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) r[i] = bf16 ? (float)tu_bf16_round(v[i]) : v[i];
    return r;
}

static void check_shape(tg_ctx *ctx, const shape *sh, const char *isa, int bf16) {
    const int N = sh->N, C = sh->C, H = sh->H, W = sh->W, Co = sh->Co, k = sh->k, s = sh->s,
              p = sh->p;
    const int Ho = out_size(H, k, s, p), Wo = out_size(W, k, s, p);
    const int64_t nx = (int64_t)N * C * H * W, ny = (int64_t)N * Co * Ho * Wo,
                  nw = (int64_t)Co * C * k * k;
    float *x = rnd(nx), *w = rnd(nw), *dy = rnd(ny), *bias = rnd(Co);
    /* the operands as the passes multiply them (the bias is added as it is) */
    float *xm = as_multiplied(x, nx, bf16), *wm = as_multiplied(w, nw, bf16), *dym = as_multiplied(dy, ny, bf16);
    double *ry = calloc((size_t)ny, sizeof(double)), *rdx = calloc((size_t)nx, sizeof(double)),
           *rdw = calloc((size_t)nw, sizeof(double));
    for (int n = 0; n < N; n++)
        for (int co = 0; co < Co; co++)
            for (int oh = 0; oh < Ho; oh++)
                for (int ow = 0; ow < Wo; ow++) {
                    const int64_t yi = (((int64_t)n * Co + co) * Ho + oh) * Wo + ow;
                    double acc = bias[co];
                    for (int c = 0; c < C; c++)
                        for (int i = 0; i < k; i++)
                            for (int j = 0; j < k; j++) {
                                const int h = oh * s - p + i, ww = ow * s - p + j;
                                if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
                                const int64_t xi = (((int64_t)n * C + c) * H + h) * W + ww;
                                const int64_t wi = (((int64_t)co * C + c) * k + i) * k + j;
                                acc += (double)wm[wi] * xm[xi];
                                rdx[xi] += (double)wm[wi] * dym[yi];
                                rdw[wi] += (double)xm[xi] * dym[yi];
                            }
                    ry[yi] = acc;
                }
    char what[160];
    for (int acc = 0; acc < 2; acc++) {
        /* acc: the outputs start at 1 and the pass adds into them */
        float *y = malloc(sizeof(float) * (size_t)ny), *dx = malloc(sizeof(float) * (size_t)nx),
              *dw = malloc(sizeof(float) * (size_t)nw);
        for (int64_t i = 0; i < ny; i++) y[i] = acc ? 1.0f : NAN;
        for (int64_t i = 0; i < nx; i++) dx[i] = acc ? 1.0f : NAN;
        for (int64_t i = 0; i < nw; i++) dw[i] = acc ? 1.0f : NAN;
        const tg_conv_geom g = {N, C, H, W, Co, k, k, s, p, Ho, Wo, bf16 ? TG_PRECISION_BF16 : TG_PRECISION_FP32};
        const tg_mem mx = tg_mem_f32(x, nx), mw = tg_mem_f32(w, nw), my = tg_mem_f32(y, ny), mdy = tg_mem_f32(dy, ny);
        assert_int_equal(tg_cpu_conv_fwd(ctx, &g, mx, mw, tg_mem_f32(bias, Co), my, acc), TG_OK);
        assert_int_equal(tg_cpu_conv_bwd_data(ctx, &g, mdy, mw, tg_mem_f32(dx, nx), acc), TG_OK);
        assert_int_equal(tg_cpu_conv_wgrad(ctx, &g, mx, mdy, tg_mem_f32(dw, nw), acc), TG_OK);
        double *e = malloc(sizeof(double) * (size_t)(nx > ny ? (nx > nw ? nx : nw) : (ny > nw ? ny : nw)));
        for (int64_t i = 0; i < ny; i++) e[i] = ry[i] + acc;
        snprintf(what, sizeof what, "%s forward %dx%d/%d on [%d,%d,%d,%d] acc %d", isa, k, k, s, N, C, H, W, acc);
        tu_close_f(y, e, ny, 1e-4, 1e-4, what);
        for (int64_t i = 0; i < nx; i++) e[i] = rdx[i] + acc;
        snprintf(what, sizeof what, "%s data grad %dx%d/%d on [%d,%d,%d,%d] acc %d", isa, k, k, s, N, C, H, W, acc);
        tu_close_f(dx, e, nx, 1e-4, 1e-4, what);
        for (int64_t i = 0; i < nw; i++) e[i] = rdw[i] + acc;
        snprintf(what, sizeof what, "%s weight grad %dx%d/%d on [%d,%d,%d,%d] acc %d", isa, k, k, s, N, C, H, W, acc);
        tu_close_f(dw, e, nw, 1e-3, 1e-4, what);
        free(e), free(y), free(dx), free(dw);
    }
    free(x), free(w), free(dy), free(bias), free(ry), free(rdx), free(rdw), free(xm), free(wm), free(dym);
}

static void run_isa(const char *name, unsigned bit) {
    if (!(tg_cpu_isa_supported() & bit)) {
        print_message("this CPU cannot run the %s path\n", name);
        skip();
    }
    assert_true(tg_cpu_isa_force(name));
    tg_ctx *ctx = tg_ctx_new(TG_CPU, 1);
    for (int wino = 0; wino < 2; wino++) { /* every pass direct, then Winograd where it applies */
        char what[64];
        snprintf(what, sizeof what, "%s, winograd %s", name, wino ? "on" : "off");
        tg_cpu_winograd_force(wino);
        tu_seed(99);
        for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++) check_shape(ctx, &SHAPES[i], what, 0);
    }
    tg_cpu_winograd_force(-1);
    char what[64];
    snprintf(what, sizeof what, "%s, bf16", name);
    tu_seed(98);
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++) check_shape(ctx, &SHAPES[i], what, 1);
    tg_ctx_free(ctx);
}

/* The three bf16 passes of shape sh (acc 0) on fixed inputs, into one malloc'd block */
static float *bf16_passes(tg_ctx *ctx, const shape *sh, int64_t *total) {
    const int N = sh->N, C = sh->C, H = sh->H, W = sh->W, Co = sh->Co, k = sh->k, s = sh->s, p = sh->p;
    const int Ho = out_size(H, k, s, p), Wo = out_size(W, k, s, p);
    const int64_t nx = (int64_t)N * C * H * W, ny = (int64_t)N * Co * Ho * Wo, nw = (int64_t)Co * C * k * k;
    tu_seed(7);
    float *x = rnd(nx), *w = rnd(nw), *dy = rnd(ny), *bias = rnd(Co);
    float *out = malloc(sizeof(float) * (size_t)(ny + nx + nw));
    const tg_conv_geom g = {N, C, H, W, Co, k, k, s, p, Ho, Wo, TG_PRECISION_BF16};
    assert_int_equal(tg_cpu_conv_fwd(ctx, &g, tg_mem_f32(x, nx), tg_mem_f32(w, nw), tg_mem_f32(bias, Co),
                                     tg_mem_f32(out, ny), 0), TG_OK);
    assert_int_equal(tg_cpu_conv_bwd_data(ctx, &g, tg_mem_f32(dy, ny), tg_mem_f32(w, nw), tg_mem_f32(out + ny, nx), 0),
                     TG_OK);
    assert_int_equal(tg_cpu_conv_wgrad(ctx, &g, tg_mem_f32(x, nx), tg_mem_f32(dy, ny), tg_mem_f32(out + ny + nx, nw), 0),
                     TG_OK);
    free(x), free(w), free(dy), free(bias);
    *total = ny + nx + nw;
    return out;
}

/* bf16 results are the same bits on 1 and 2 threads, and with vdpbf16ps or float32 FMAs */
static void test_bf16_same_bits(void **state) {
    (void)state;
    const unsigned sup = tg_cpu_isa_supported();
    tg_ctx *ctx = tg_ctx_new(TG_CPU, 1);
    const int threads = omp_get_max_threads();
    int compared = 0;
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++) {
        int64_t n = 0, n2 = 0;
        assert_true(tg_cpu_isa_force(sup & 8 ? "avx512bf16" : sup & 4 ? "avx512" : "generic"));
        omp_set_num_threads(1);
        float *one = bf16_passes(ctx, &SHAPES[i], &n);
        omp_set_num_threads(2);
        float *two = bf16_passes(ctx, &SHAPES[i], &n2);
        if (memcmp(one, two, sizeof(float) * (size_t)n)) fail_msg("shape %zu: bf16 results differ on 1 and 2 threads", i);
        if ((sup & 8) && (sup & 4)) {
            assert_true(tg_cpu_isa_force("avx512"));
            float *fma = bf16_passes(ctx, &SHAPES[i], &n2);
            if (memcmp(one, fma, sizeof(float) * (size_t)n))
                fail_msg("shape %zu: bf16 results differ between vdpbf16ps and float32 FMAs", i);
            free(fma);
            compared++;
        }
        free(one), free(two);
    }
    omp_set_num_threads(threads);
    tg_cpu_isa_force(sup & 8 ? "avx512bf16" : sup & 4 ? "avx512" : sup & 2 ? "avx2" : "generic");
    if (!compared) print_message("no AVX512-BF16 here: vdpbf16ps against FMAs not compared\n");
    tg_ctx_free(ctx);
}

static void test_generic(void **state) { (void)state; run_isa("generic", 1); }
static void test_avx2(void **state) { (void)state; run_isa("avx2", 2); }
static void test_avx512(void **state) { (void)state; run_isa("avx512", 4); }
static void test_avx512bf16(void **state) { (void)state; run_isa("avx512bf16", 8); }
#ifdef __wasm_simd128__
static void test_simd128(void **state) { (void)state; run_isa("simd128", 16); } /* make test-wasm */
#endif

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generic),
        cmocka_unit_test(test_avx2),
        cmocka_unit_test(test_avx512),
        cmocka_unit_test(test_avx512bf16),
#ifdef __wasm_simd128__
        cmocka_unit_test(test_simd128),
#endif
        cmocka_unit_test(test_bf16_same_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_metrics.c — tg_swd against a naive double-precision reference written here (a direct 5x5
 * convolution with scipy's mirror borders instead of the separable one, descriptors gathered
 * loop by loop, projections as dot products, qsort), using the same documented random draws
 * (core.h); its behaviour on sets that are or are not alike; its refusals; and
 * tg_module_ema against the formula. Internal: includes lib/ for the draw scheme.
 */
#include "testutil.h"

#include "core.h"
#include "tg_omp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int mirror_ref(int i, int n) {
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
    return i;
}

/* 5x5 binomial (outer product of 1 4 6 4 1 / 16) convolution of an s x s plane, mirror borders */
static void conv5(const double *src, double *dst, int s, double gain) {
    static const double k[5] = {1, 4, 6, 4, 1};
    for (int y = 0; y < s; y++)
        for (int x = 0; x < s; x++) {
            double acc = 0;
            for (int i = 0; i < 5; i++)
                for (int j = 0; j < 5; j++)
                    acc += k[i] * k[j] / 256.0 * src[mirror_ref(y + i - 2, s) * s + mirror_ref(x + j - 2, s)];
            dst[y * s + x] = gain * acc;
        }
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The whole metric, naively, for n images of size s: per-level values into lv, returns the mean */
static double swd_ref(const uint8_t *sets[2], int n, int size, const tg_swd_options *o, double *lv) {
    int levels = 1;
    while ((size >> levels) >= o->min_size) levels++;
    const int nh = o->nhood, per = o->nhoods_per_image, dim = 3 * nh * nh, rows = n * per;
    double *desc[2];
    double total = 0;
    for (int l = 0; l < levels; l++) {
        const int s = size >> l;
        for (int set = 0; set < 2; set++) {
            desc[set] = calloc((size_t)rows * dim, sizeof(double));
            for (int i = 0; i < n; i++) {
                /* Laplacian pyramid of image i down to level l (and l+1 for the difference) */
                double *g[16];
                for (int k = 0; k < levels; k++) g[k] = calloc((size_t)3 * (size >> k) * (size >> k), sizeof(double));
                for (int c = 0; c < 3; c++)
                    for (int p = 0; p < size * size; p++) g[0][c * size * size + p] = sets[set][((size_t)i * size * size + p) * 3 + c];
                for (int k = 1; k < levels; k++) {
                    int hs = size >> (k - 1), ls = hs / 2;
                    double *b = malloc(sizeof(double) * hs * hs);
                    for (int c = 0; c < 3; c++) {
                        conv5(g[k - 1] + c * hs * hs, b, hs, 1.0);
                        for (int y = 0; y < ls; y++)
                            for (int x = 0; x < ls; x++) g[k][c * ls * ls + y * ls + x] = b[2 * y * hs + 2 * x];
                    }
                    free(b);
                }
                double *lap = calloc((size_t)3 * s * s, sizeof(double));
                memcpy(lap, g[l], sizeof(double) * 3 * s * s);
                if (l + 1 < levels) { /* minus the upsampled next level */
                    double *z = calloc((size_t)s * s, sizeof(double)), *u = malloc(sizeof(double) * s * s);
                    for (int c = 0; c < 3; c++) {
                        memset(z, 0, sizeof(double) * s * s);
                        for (int y = 0; y < s / 2; y++)
                            for (int x = 0; x < s / 2; x++) z[2 * y * s + 2 * x] = g[l + 1][c * (s / 2) * (s / 2) + y * (s / 2) + x];
                        conv5(z, u, s, 4.0);
                        for (int p = 0; p < s * s; p++) lap[c * s * s + p] -= u[p];
                    }
                    free(z), free(u);
                }
                for (int j = 0; j < per; j++) {
                    tg_u32x4 r = tg_philox(((uint64_t)i * 16 + (uint64_t)l) * (uint64_t)per + (uint64_t)j,
                                           TG_SWD_STREAM_POS + (uint32_t)set, o->seed);
                    int span = s - nh + 1, y0 = (int)(r.v[0] % (uint32_t)span), x0 = (int)(r.v[1] % (uint32_t)span);
                    for (int c = 0; c < 3; c++)
                        for (int y = 0; y < nh; y++)
                            for (int x = 0; x < nh; x++)
                                desc[set][((size_t)i * per + j) * dim + (c * nh + y) * nh + x] = lap[(c * s + y0 + y) * s + x0 + x];
                }
                free(lap);
                for (int k = 0; k < levels; k++) free(g[k]);
            }
            /* normalise per channel: population mean and standard deviation */
            for (int c = 0; c < 3; c++) {
                double sum = 0, sq = 0, cnt = (double)rows * nh * nh;
                for (int r = 0; r < rows; r++)
                    for (int k = 0; k < nh * nh; k++) sum += desc[set][(size_t)r * dim + c * nh * nh + k];
                double mean = sum / cnt;
                for (int r = 0; r < rows; r++)
                    for (int k = 0; k < nh * nh; k++) {
                        double d = desc[set][(size_t)r * dim + c * nh * nh + k] - mean;
                        sq += d * d;
                    }
                double sd = sqrt(sq / cnt);
                for (int r = 0; r < rows; r++)
                    for (int k = 0; k < nh * nh; k++) {
                        double *d = &desc[set][(size_t)r * dim + c * nh * nh + k];
                        *d = (*d - mean) / sd;
                    }
            }
        }
        double level = 0;
        double *pa = malloc(sizeof(double) * rows), *pb = malloc(sizeof(double) * rows), *dir = malloc(sizeof(double) * dim);
        for (int rep = 0; rep < o->dir_repeats; rep++) {
            double acc = 0;
            for (int d = 0; d < o->dirs_per_repeat; d++) {
                double n2 = 0;
                for (int k = 0; k < dim; k++) {
                    uint64_t idx = (((uint64_t)l * o->dir_repeats + rep) * o->dirs_per_repeat + d) * dim + k;
                    dir[k] = tg_rng_normal1(o->seed, TG_SWD_STREAM_DIR, idx, 0.0f, 1.0f);
                    n2 += dir[k] * dir[k];
                }
                for (int r = 0; r < rows; r++) {
                    double x = 0, y = 0;
                    for (int k = 0; k < dim; k++) x += desc[0][(size_t)r * dim + k] * dir[k], y += desc[1][(size_t)r * dim + k] * dir[k];
                    pa[r] = x / sqrt(n2), pb[r] = y / sqrt(n2);
                }
                qsort(pa, (size_t)rows, sizeof(double), cmp_d);
                qsort(pb, (size_t)rows, sizeof(double), cmp_d);
                double w1 = 0;
                for (int r = 0; r < rows; r++) w1 += fabs(pa[r] - pb[r]);
                acc += w1 / rows;
            }
            level += acc / o->dirs_per_repeat;
        }
        free(pa), free(pb), free(dir), free(desc[0]), free(desc[1]);
        lv[l] = level / o->dir_repeats * 1e3;
        total += lv[l];
    }
    return total / levels;
}

/* n smooth random images: a colour gradient plus blobs, or noise */
static uint8_t *images(int n, int size, int noisy, uint64_t seed) {
    uint8_t *p = malloc((size_t)n * size * size * 3);
    tu_seed(seed);
    for (int i = 0; i < n; i++) {
        double a[3], b[3], cx = tu_uniform(0, size), cy = tu_uniform(0, size), rad = tu_uniform(3, size / 2.0);
        for (int c = 0; c < 3; c++) a[c] = tu_uniform(0, 255), b[c] = tu_uniform(0, 255);
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                for (int c = 0; c < 3; c++) {
                    double v = noisy ? tu_uniform(0, 256)
                                     : ((x - cx) * (x - cx) + (y - cy) * (y - cy) < rad * rad ? a[c] : b[c] * y / size);
                    p[(((size_t)i * size + y) * size + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
    }
    return p;
}

static void test_swd_matches_reference(void **state) {
    (void)state;
    const int n = 5, size = 32;
    uint8_t *a = images(n, size, 0, 1), *b = images(n, size, 0, 2);
    tg_swd_options o;
    tg_swd_defaults(&o);
    assert_int_equal(o.nhood, 7);
    assert_int_equal(o.nhoods_per_image, 128);
    assert_int_equal(o.dir_repeats, 4);
    assert_int_equal(o.dirs_per_repeat, 128);
    assert_int_equal(o.min_size, 16);
    o.nhoods_per_image = 9, o.dir_repeats = 2, o.dirs_per_repeat = 5, o.seed = 77;
    double lv[4] = {0}, mean = 0, ref_lv[4] = {0};
    int nl = 0;
    const uint8_t *sets[2] = {a, b};
    assert_int_equal(tg_swd(a, n, b, n, size, &o, lv, 4, &nl, &mean), TG_OK);
    assert_int_equal(nl, 2); /* 32 and 16 */
    double ref = swd_ref(sets, n, size, &o, ref_lv);
    float got[3] = {(float)lv[0], (float)lv[1], (float)mean};
    double want[3] = {ref_lv[0], ref_lv[1], ref};
    tu_close_f(got, want, 3, 1e-3, 1e-4, "SWD levels and mean");
    assert_true(mean > 0);
    free(a), free(b);
}

/* close sets score lower than far ones; the options change the result; repeatable */
static void test_swd_behaviour(void **state) {
    (void)state;
    const int n = 64, size = 64;
    uint8_t *a = images(n, size, 0, 3), *a2 = images(n, size, 0, 4), *noise = images(n, size, 1, 5);
    double same, far, again, other_seed;
    assert_int_equal(tg_swd(a, n, a2, n, size, NULL, NULL, 0, NULL, &same), TG_OK);
    assert_int_equal(tg_swd(a, n, noise, n, size, NULL, NULL, 0, NULL, &far), TG_OK);
    assert_int_equal(tg_swd(a, n, a2, n, size, NULL, NULL, 0, NULL, &again), TG_OK);
    tg_swd_options o;
    tg_swd_defaults(&o);
    o.seed = 9;
    assert_int_equal(tg_swd(a, n, a2, n, size, &o, NULL, 0, NULL, &other_seed), TG_OK);
    if (!(far > 3 * same)) fail_msg("SWD to noise %.2f is not well above SWD between alike sets %.2f", far, same);
    assert_true(same == again);        /* the seed fixes every draw */
#ifdef _OPENMP
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    double one_thread;
    assert_int_equal(tg_swd(a, n, a2, n, size, NULL, NULL, 0, NULL, &one_thread), TG_OK);
    omp_set_num_threads(threads);
    /* the thread count changes nothing but the BLAS's rounding in the projections */
    if (!(fabs(one_thread - same) <= 1e-6 * same)) fail_msg("1 thread %.9g vs %d: %.9g", one_thread, threads, same);
#endif
    assert_true(other_seed != same);   /* and another seed draws others */
    /* a set against itself: near zero (each set draws its own positions) */
    double self;
    assert_int_equal(tg_swd(a, n, a, n, size, NULL, NULL, 0, NULL, &self), TG_OK);
    if (!(self < same)) fail_msg("a set against itself %.2f is not below two alike sets %.2f", self, same);
    free(a), free(a2), free(noise);
}

static void test_swd_refusals(void **state) {
    (void)state;
    uint8_t *a = images(2, 64, 0, 6);
    double m;
    assert_int_equal(tg_swd(a, 2, a, 1, 64, NULL, NULL, 0, NULL, &m), TG_ERR_INVALID);
    assert_non_null(strstr(tg_last_error(), "same number of images"));
    assert_int_equal(tg_swd(a, 0, a, 0, 64, NULL, NULL, 0, NULL, &m), TG_ERR_INVALID);
    assert_int_equal(tg_swd(NULL, 2, a, 2, 64, NULL, NULL, 0, NULL, &m), TG_ERR_INVALID);
    assert_int_equal(tg_swd(a, 2, a, 2, 64, NULL, NULL, 0, NULL, NULL), TG_ERR_INVALID);
    assert_int_equal(tg_swd(a, 2, a, 2, 48, NULL, NULL, 0, NULL, &m), TG_ERR_INVALID); /* not a power of 2 */
    assert_non_null(strstr(tg_last_error(), "powers of two"));
    assert_int_equal(tg_swd(a, 2, a, 2, 8, NULL, NULL, 0, NULL, &m), TG_ERR_INVALID); /* below min size */
    tg_swd_options o;
    tg_swd_defaults(&o);
    o.nhood = 0;
    assert_int_equal(tg_swd(a, 2, a, 2, 64, &o, NULL, 0, NULL, &m), TG_ERR_INVALID);
    free(a);
}

static void test_module_ema(void **state) {
    (void)state;
    tg_ctx *ctx = tg_ctx_new(TG_CPU, 3);
    assert_non_null(ctx);
    tg_module *src = tg_sequential(ctx), *avg = tg_sequential(ctx), *odd = tg_sequential(ctx);
    assert_int_equal(tg_sequential_add(src, tg_layer_dense(ctx, 4, 3, true)), TG_OK);
    assert_int_equal(tg_sequential_add(src, tg_layer_batch_norm(ctx, 3, 0.1f, 1e-5f)), TG_OK);
    assert_int_equal(tg_sequential_add(avg, tg_layer_dense(ctx, 4, 3, true)), TG_OK);
    assert_int_equal(tg_sequential_add(avg, tg_layer_batch_norm(ctx, 3, 1.0f, 1e-5f)), TG_OK);
    assert_int_equal(tg_sequential_add(odd, tg_layer_dense(ctx, 4, 2, true)), TG_OK);
    assert_int_equal(tg_sequential_add(odd, tg_layer_batch_norm(ctx, 2, 0.1f, 1e-5f)), TG_OK);
    assert_int_equal(tg_module_init(src, TG_INIT_NORMAL, 1.0f, 0.5f), TG_OK);
    assert_int_equal(tg_module_init(avg, TG_INIT_NORMAL, 1.0f, 0.5f), TG_OK);
    tg_tensor *ps[4], *pa[4];
    assert_int_equal(tg_module_params(src, ps, 4), 4);
    assert_int_equal(tg_module_params(avg, pa, 4), 4);
    float *before[4];
    for (int i = 0; i < 4; i++) before[i] = tu_read(pa[i]);
    assert_int_equal(tg_module_ema(avg, src, 0.9f), TG_OK);
    for (int i = 0; i < 4; i++) {
        float *s = tu_read(ps[i]), *a = tu_read(pa[i]);
        int64_t n = tg_tensor_numel(pa[i]);
        double *want = malloc(sizeof(double) * (size_t)n);
        for (int64_t k = 0; k < n; k++) want[k] = 0.9 * before[i][k] + 0.1 * s[k];
        tu_close_f(a, want, n, 1e-6, 1e-6, "averaged parameter");
        free(s), free(a), free(want), free(before[i]);
    }
    /* decay 0 copies */
    assert_int_equal(tg_module_ema(avg, src, 0.0f), TG_OK);
    for (int i = 0; i < 4; i++) {
        float *s = tu_read(ps[i]), *a = tu_read(pa[i]);
        assert_memory_equal(s, a, sizeof(float) * (size_t)tg_tensor_numel(pa[i]));
        free(s), free(a);
    }
    assert_int_equal(tg_module_ema(avg, odd, 0.5f), TG_ERR_SHAPE);
    assert_int_equal(tg_module_ema(avg, src, 1.5f), TG_ERR_INVALID);
    assert_int_equal(tg_module_ema(NULL, src, 0.5f), TG_ERR_INVALID);
    tg_module_free(src), tg_module_free(avg), tg_module_free(odd);
    tg_ctx_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swd_matches_reference),
        cmocka_unit_test(test_swd_behaviour),
        cmocka_unit_test(test_swd_refusals),
        cmocka_unit_test(test_module_ema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

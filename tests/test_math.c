/*
 * test_math.c — the shared per-element helpers of lib/tg_math.h on their own (the CUDA kernels
 * call the same functions): Philox4x32-10 known-answer vectors, activation derivatives against
 * finite differences, tanh's approximation against tanh, stability of sigmoid and BCE at extreme logits, one Adam element update,
 * and the im2col index helper against the CPU backend's loop nest. Internal: includes lib/.
 */
#include "testutil.h"

#include "core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Random123's kat_vectors for philox4x32_10 with counter words 2,3 and key as we use them:
 * counter (0,0,0,0) key (0,0) -> 6627e8d5 e169c58d bc57ac4c 9b00dbd8 */
static void test_philox_kat(void **state) {
    (void)state;
    tg_u32x4 r = tg_philox(0, 0, 0);
    assert_int_equal(r.v[0], 0x6627e8d5u);
    assert_int_equal(r.v[1], 0xe169c58du);
    assert_int_equal(r.v[2], 0xbc57ac4cu);
    assert_int_equal(r.v[3], 0x9b00dbd8u);
    /* different counters, streams and seeds give different blocks */
    tg_u32x4 a = tg_philox(1, 0, 0), b = tg_philox(0, 1, 0), c = tg_philox(0, 0, 1);
    assert_true(a.v[0] != r.v[0] && b.v[0] != r.v[0] && c.v[0] != r.v[0]);
    /* uniform in (0,1] never reaches 0 */
    assert_true(tg_u01(0) > 0.0f && tg_u01(0xffffffffu) <= 1.0f);
}

static void test_activations(void **state) {
    (void)state;
    const float xs[] = {-3.0f, -0.7f, -0.01f, 0.02f, 0.5f, 2.5f};
    for (int op = 0; op < 4; op++)
        for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
            float x = xs[i], h = 1e-3f;
            double num = ((double)tg_unary_fwd1(op, 0.2f, x + h) - tg_unary_fwd1(op, 0.2f, x - h)) / (2.0 * h);
            float y = tg_unary_fwd1(op, 0.2f, x);
            float got = tg_unary_bwd1(op, 0.2f, x, y, 1.0f);
            tu_close_f(&got, &num, 1, 2e-3, 2e-3, "activation derivative");
        }
    /* sigmoid saturates without overflow or NaN */
    assert_true(tg_sigmoidf(-1000.0f) == 0.0f && tg_sigmoidf(1000.0f) == 1.0f);
    assert_true(tg_unary_fwd1(TG_UN_TANH, 0, 50.0f) == 1.0f);
}

/* tg_tanhf (a rational approximation, so loops over it vectorise) against tanh in double over a
 * sweep of every 97th float bit pattern of both signs, and at its special values */
static void test_tanh_approx(void **state) {
    (void)state;
    double worst = 0.0;
    for (uint32_t u = 0; u < 0x7f800000u; u += 97) {
        float x;
        memcpy(&x, &u, sizeof x);
        for (int sign = 0; sign < 2; sign++) {
            const float xs = sign ? -x : x;
            const double ref = tanh((double)xs), err = fabs((double)tg_tanhf(xs) - ref);
            const double rel = err / (fabs(ref) > 1e-30 ? fabs(ref) : 1e-30);
            if (rel > worst) worst = rel;
        }
    }
    if (worst > 5e-7) fail_msg("tg_tanhf is %g off tanh (relative)", worst);
    assert_true(tg_tanhf(INFINITY) == 1.0f && tg_tanhf(-INFINITY) == -1.0f);
    assert_true(tg_tanhf(100.0f) == 1.0f && tg_tanhf(-8.0f) == -1.0f);
    assert_true(isnan(tg_tanhf(NAN)));
    assert_true(tg_tanhf(1e-30f) == 1e-30f && signbit(tg_tanhf(-0.0f)));
}

static void test_bce(void **state) {
    (void)state;
    /* l(x,t) at extreme logits equals the exact value to float precision */
    const float xs[] = {-1e4f, -88.0f, -20.0f, 0.0f, 20.0f, 88.0f, 1e4f};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++)
        for (int k = 0; k <= 4; k++) {
            double t = k / 4.0, x = xs[i];
            double exact = fmax(x, 0) - x * t + log1p(exp(-fabs(x)));
            float got = tg_bce1(xs[i], (float)t);
            assert_true(isfinite(got));
            tu_close_f(&got, &exact, 1, 1e-6, 1e-6, "bce");
            float g = tg_bce_dx1(xs[i], (float)t);
            double eg = 1.0 / (1.0 + exp(-x)) - t;
            tu_close_f(&g, &eg, 1, 1e-6, 1e-6, "bce gradient");
        }
}

/* one element, first step: m = 0.1 g, v = 0.001 g^2, p -= lr * (m/0.1) / (sqrt(v/0.001) + eps)
 * = lr * g/(|g| + eps): with g = 2, lr 0.5, eps 0: p moves by exactly -0.5 */
static void test_adam_element(void **state) {
    (void)state;
    tg_adam_hyper h = {0.5f, 0.9f, 0.999f, 0.0f, 0.1f, 0.001f, 0};
    float p = 3.0f, m = 0.0f, v = 0.0f;
    tg_adam1(&p, 2.0f, &m, &v, &h);
    /* 1-0.9f and 1-0.999f are not exact in float: a few ulps of slack */
    assert_true(fabsf(p - 2.5f) < 1e-5f);
    assert_true(fabsf(m - 0.2f) < 1e-6f && fabsf(v - 0.004f) < 1e-7f);
}

/* the CUDA im2col kernel's index helper against im2col's definition, written out here, on an
 * awkward shape */
static void test_im2col_index(void **state) {
    (void)state;
    const int N = 2, C = 3, H = 5, W = 7, kh = 3, kw = 2, s = 2, p = 1;
    const int Ho = (H + 2 * p - kh) / s + 1, Wo = (W + 2 * p - kw) / s + 1;
    const int64_t K = C * kh * kw, NP = (int64_t)N * Ho * Wo;
    for (int64_t r = 0; r < K; r++)
        for (int64_t q = 0; q < NP; q++) {
            const int c = (int)(r / (kh * kw)), i = (int)(r / kw % kh), j = (int)(r % kw);
            const int n = (int)(q / (Ho * Wo)), oh = (int)(q / Wo % Ho), ow = (int)(q % Wo);
            const int h = oh * s - p + i, w = ow * s - p + j;
            const int64_t want = h < 0 || h >= H || w < 0 || w >= W ? -1 : (((int64_t)n * C + c) * H + h) * W + w;
            assert_int_equal(tg_im2col_src(r, q, C, H, W, kh, kw, s, p, Ho, Wo), want);
        }
}

/* Every slot of every backend compiled in is set (the tables are generated from one list, so a
 * hole would be a defect in that machinery; a CUDA table with one would fail every CUDA context). */
static void test_backend_tables_complete(void **state) {
    (void)state;
    const struct tg_backend_ops *tables[] = {
        &tg_cpu_backend,
#ifdef TG_WITH_CUDA
        &tg_cuda_backend,
#endif
    };
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
#define CHECK_SLOT(ret, slot, params) \
    if (!tables[t]->slot) fail_msg("the %s backend leaves slot %s empty", tables[t]->name, #slot);
        TG_BACKEND_SLOTS(CHECK_SLOT)
#undef CHECK_SLOT
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_tables_complete),
        cmocka_unit_test(test_philox_kat),
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_tanh_approx),
        cmocka_unit_test(test_bce),
        cmocka_unit_test(test_adam_element),
        cmocka_unit_test(test_im2col_index),
    };
    return cmocka_run_group_tests_name("shared math", tests, NULL, NULL);
}

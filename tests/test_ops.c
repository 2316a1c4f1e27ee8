/*
 * test_ops.c — every op on the CPU: forward against a naive double-precision loop, every input
 * gradient against central finite differences of that loop (tests/testutil.c). The cases, with
 * their references, are the shared table in tests/op_cases.c; what lives here are the checks a
 * table row cannot state: refusals, extreme inputs, running statistics, fused and in-place paths
 * against the separate ops bit for bit, dropout's mask, module names and modes, the RNG.
 */
#include "testutil.h"
#include "op_cases.h"

#include "core.h" /* tg_diff_augment_with: DiffAugment with known parameters */

#include <math.h>
#include <stdlib.h>
#include <string.h>

static tg_ctx *ctx;

static int setup(void **state) {
    (void)state;
    ctx = tg_ctx_new(TG_CPU, 1234);
    return ctx ? 0 : -1;
}
static int teardown(void **state) {
    (void)state;
    tg_ctx_free(ctx);
    return 0;
}

/* ---- spectral normalisation ---------------------------------------------------------------- */
static void test_spectral_norm(void **state) {
    (void)state;
    /* (forward and gradient through sigma: the op table, tests/op_cases.c) */
    /* power iteration: one step moves u and v as the formula says; many converge on the largest
     * singular value (reference: 500 double-precision iterations) */
    enum { R = 6, C = 10 };
    float w[R * C], u0[R], v0[C];
    tu_seed(950);
    tu_fill(w, R * C, -1, 1);
    tu_fill(u0, R, -1, 1);
    tu_fill(v0, C, -1, 1);
    double u[R], v[C];
    for (int r = 0; r < R; r++) u[r] = u0[r];
    for (int it = 0; it < 500; it++) {
        double n = 0;
        for (int j = 0; j < C; j++) {
            v[j] = 0;
            for (int r = 0; r < R; r++) v[j] += w[r * C + j] * u[r];
            n += v[j] * v[j];
        }
        for (int j = 0; j < C; j++) v[j] /= sqrt(n);
        n = 0;
        for (int r = 0; r < R; r++) {
            u[r] = 0;
            for (int j = 0; j < C; j++) u[r] += w[r * C + j] * v[j];
            n += u[r] * u[r];
        }
        for (int r = 0; r < R; r++) u[r] /= sqrt(n);
        if (it == 0) { /* after one iteration */
            int64_t ws[2] = {R, C}, us = R, vs = C;
            tg_tensor *tw = tu_tensor(ctx, 2, ws, w, 0), *tu = tu_tensor(ctx, 1, &us, u0, 0), *tv = tu_tensor(ctx, 1, &vs, v0, 0);
            assert_non_null(tg_spectral_norm(ctx, tw, tu, tv, 1, 1e-12f));
            float *gu = tu_read(tu), *gv = tu_read(tv);
            tu_close_f(gu, u, R, 1e-5, 1e-4, "u after one power iteration");
            tu_close_f(gv, v, C, 1e-5, 1e-4, "v after one power iteration");
            free(gu), free(gv);
            tg_ctx_clear_tape(ctx);
            tg_tensor_free(tw), tg_tensor_free(tu), tg_tensor_free(tv);
        }
    }
    double sigma = 0;
    for (int r = 0; r < R; r++)
        for (int j = 0; j < C; j++) sigma += u[r] * w[r * C + j] * v[j];
    int64_t ws[2] = {R, C}, us = R, vs = C;
    tg_tensor *tw = tu_tensor(ctx, 2, ws, w, 0), *tu = tu_tensor(ctx, 1, &us, u0, 0), *tv = tu_tensor(ctx, 1, &vs, v0, 0);
    tg_tensor *y = tg_spectral_norm(ctx, tw, tu, tv, 200, 1e-12f);
    assert_non_null(y);
    float *gy = tu_read(y);
    double want[R * C];
    for (int i = 0; i < R * C; i++) want[i] = w[i] / sigma;
    tu_close_f(gy, want, R * C, 1e-5, 1e-4, "w / largest singular value");
    free(gy);
    /* refusals */
    int64_t bad = R + 1;
    tg_tensor *tb = tg_tensor_new(ctx, 1, &bad);
    assert_null(tg_spectral_norm(ctx, tw, tb, tv, 1, 1e-12f));
    assert_non_null(strstr(tg_last_error(), "must have 6 and 10 elements"));
    assert_null(tg_spectral_norm(ctx, tw, tu, tv, -1, 1e-12f));
    assert_null(tg_spectral_norm(ctx, tv, tu, tv, 1, 1e-12f));
    tg_ctx_clear_tape(ctx);
    tg_tensor_free(tw), tg_tensor_free(tu), tg_tensor_free(tv), tg_tensor_free(tb);
}

/* a spectrally normalised layer: PyTorch's state names, u and v move in training mode only, and
 * its output is the plain layer's with the normalised weight */
static void test_spectral_norm_module(void **state) {
    (void)state;
    tg_module *seq = tg_sequential(ctx);
    assert_int_equal(tg_sequential_add(seq, tg_layer_conv2d(ctx, 3, 4, 3, 1, 1, true)), TG_OK);
    assert_int_equal(tg_sequential_add(seq, tg_layer_leaky_relu(ctx, 0.2f)), TG_OK);
    assert_int_equal(tg_sequential_add(seq, tg_layer_flatten(ctx)), TG_OK);
    assert_int_equal(tg_sequential_add(seq, tg_layer_dense(ctx, 4 * 5 * 5, 1, true)), TG_OK);
    assert_int_equal(tg_module_init(seq, TG_INIT_NORMAL, 0.5f, 0.0f), TG_OK);
    assert_int_equal(tg_module_spectral_norm(seq, 1, 1e-12f), TG_OK);
    const char *names[16];
    tg_tensor *t[16];
    int n = tg_module_state(seq, names, t, 16);
    assert_int_equal(n, 8);
    const char *want[8] = {"0.weight_orig", "0.bias", "0.weight_u", "0.weight_v",
                           "3.weight_orig", "3.bias", "3.weight_u", "3.weight_v"};
    for (int i = 0; i < 8; i++) assert_string_equal(names[i], want[i]);
    assert_int_equal(tg_module_params(seq, NULL, 0), 4);
    int64_t xs[4] = {2, 3, 5, 5};
    tg_tensor *x = tg_tensor_new(ctx, 4, xs);
    assert_int_equal(tg_tensor_fill_normal(x, 0.0f, 1.0f), TG_OK);
    float *u0 = tu_read(t[2]);
    tg_module_set_training(seq, false);
    assert_non_null(tg_module_forward(seq, x));
    float *u1 = tu_read(t[2]);
    assert_memory_equal(u0, u1, sizeof(float) * 4); /* evaluation: unchanged */
    tg_module_set_training(seq, true);
    tg_tensor *y = tg_module_forward(seq, x);
    assert_non_null(y);
    float *u2 = tu_read(t[2]);
    assert_memory_not_equal(u0, u2, sizeof(float) * 4); /* training: one power iteration */
    /* the same as conv2d with w / sigma computed from the moved u and v */
    tg_tensor *wn = tg_spectral_norm(ctx, t[0], t[2], t[3], 0, 1e-12f);
    tg_tensor *y1 = tg_leaky_relu(ctx, tg_conv2d(ctx, x, wn, t[1], 1, 1), 0.2f);
    assert_non_null(y1);
    /* y1 is [2,4,5,5]; the module's output went on through flatten and dense: compare there */
    tg_tensor *wd = tg_spectral_norm(ctx, t[4], t[6], t[7], 0, 1e-12f);
    tg_tensor *y2 = tg_linear(ctx, tg_flatten(ctx, y1), wd, t[5]);
    float *a = tu_read(y2), *got = tu_read(y);
    tu_close_ff(got, a, 2, 1e-6, 1e-6, "spectrally normalised sequential");
    free(a), free(got), free(u0), free(u1), free(u2);
    /* only conv2d and dense */
    tg_module *ct = tg_layer_conv_transpose2d(ctx, 3, 4, 4, 2, 1, false);
    assert_int_equal(tg_module_spectral_norm(ct, 1, 1e-12f), TG_ERR_INVALID);
    assert_int_equal(tg_module_spectral_norm(tg_sequential_get(seq, 0), 1, 1e-12f), TG_ERR_INVALID); /* twice */
    tg_ctx_clear_tape(ctx);
    tg_tensor_free(x);
    tg_module_free(ct), tg_module_free(seq);
}

/* ---- DiffAugment ---------------------------------------------------------------------------- */
static void test_diff_augment(void **state) {
    (void)state;
    /* (known parameters against the definition: the op table, tests/op_cases.c) */
    /* the drawn version: shapes kept, repeatable from the RNG position, zero policy = identity,
     * translation and cutout zero some values, refusals */
    int64_t xs[4] = {4, 3, 16, 16};
    tg_tensor *x = tg_tensor_new(ctx, 4, xs);
    assert_int_equal(tg_tensor_fill_uniform(x, 0.5f, 1.0f), TG_OK);
    float *hx = tu_read(x);
    uint64_t seed, off;
    tg_ctx_rng_get(ctx, &seed, &off);
    tg_tensor *a = tg_diff_augment(ctx, x, TG_AUG_COLOR | TG_AUG_TRANSLATION | TG_AUG_CUTOUT);
    tg_ctx_rng_set(ctx, seed, off);
    tg_tensor *b = tg_diff_augment(ctx, x, TG_AUG_COLOR | TG_AUG_TRANSLATION | TG_AUG_CUTOUT);
    assert_non_null(a);
    assert_non_null(b);
    float *ha = tu_read(a), *hb = tu_read(b);
    assert_memory_equal(ha, hb, sizeof(float) * 4 * 3 * 16 * 16);
    int zeros = 0;
    for (int i = 0; i < 4 * 3 * 16 * 16; i++) zeros += ha[i] == 0.0f;
    assert_true(zeros >= 4 * 3 * 8 * 8 / 4); /* at least part of each cutout square */
    tg_tensor *id = tg_diff_augment(ctx, x, 0);
    float *hi = tu_read(id);
    assert_memory_equal(hi, hx, sizeof(float) * 4 * 3 * 16 * 16);
    assert_null(tg_diff_augment(ctx, x, 8));
    assert_non_null(strstr(tg_last_error(), "unknown policy"));
    int64_t s2[2] = {4, 3};
    tg_tensor *flat = tg_tensor_new(ctx, 2, s2);
    assert_null(tg_diff_augment(ctx, flat, TG_AUG_COLOR));
    free(ha), free(hb), free(hi), free(hx);
    tg_ctx_clear_tape(ctx);
    tg_tensor_free(x), tg_tensor_free(flat);
}

/* ---- pooling, softmax, cross-entropy, dropout ------------------------------------------------ */
/* pooling's refusals (its values and gradients: the op table, tests/op_cases.c) */
/* 2x2 stride-2 pooling (lib/cpu/pool.c's fast path) bit for bit against the scan the header
 * documents: ties to the first maximum in row-major order, the first NaN wins, an odd last row
 * and column in no window; average sums from 0 in that order (signed zeros included). */
static void test_pool_2x2_ties_nan(void **state) {
    (void)state;
    enum { N = 2, C = 3, H = 7, W = 9, HO = 3, WO = 4 };
    static const float pick[5] = {-1.0f, 0.0f, 1.0f, -0.0f, 1.0f};
    float v[N * C * H * W];
    uint32_t r = 12345;
    for (int i = 0; i < N * C * H * W; i++) {
        r = r * 1664525u + 1013904223u;
        v[i] = (r >> 24) % 4 == 0 ? NAN : pick[(r >> 16) % 5];
    }
    int64_t s[4] = {N, C, H, W};
    for (int avg = 0; avg < 2; avg++) {
        tg_tensor *x = tu_tensor(ctx, 4, s, v, 1);
        tg_tensor *y = avg ? tg_avg_pool2d(ctx, x, 2, 2, 0) : tg_max_pool2d(ctx, x, 2, 2, 0);
        assert_non_null(y);
        assert_int_equal(tg_tensor_dim(y, 2), HO);
        assert_int_equal(tg_tensor_dim(y, 3), WO);
        assert_int_equal(tg_backward(ctx, tg_sum(ctx, y)), TG_OK);
        float *got = tu_read(y), *gx = tu_read(tg_tensor_grad(x));
        float want[N * C * HO * WO], wg[N * C * H * W];
        for (int i = 0; i < N * C * H * W; i++) wg[i] = 0.0f;
        for (int q = 0; q < N * C; q++)
            for (int oh = 0; oh < HO; oh++)
                for (int ow = 0; ow < WO; ow++) {
                    const float *p = v + q * H * W;
                    float best = 0.0f, sum = 0.0f;
                    int arg = -1;
                    for (int h = 2 * oh; h < 2 * oh + 2 && (arg < 0 || best == best); h++)
                        for (int w = 2 * ow; w < 2 * ow + 2; w++) {
                            const float e = p[h * W + w];
                            sum += e;
                            if (arg < 0 || e > best || e != e) best = e, arg = h * W + w;
                            if (e != e) break;
                        }
                    want[(q * HO + oh) * WO + ow] = avg ? sum / 4.0f : best;
                    if (avg)
                        for (int h = 2 * oh; h < 2 * oh + 2; h++)
                            for (int w = 2 * ow; w < 2 * ow + 2; w++) wg[q * H * W + h * W + w] = (0.0f + 1.0f) / 4.0f;
                    else
                        wg[q * H * W + arg] = 1.0f;
                }
        /* the max's NaN is the input's own (same bits); the average's is computed: any NaN */
        for (int i = 0; i < N * C * HO * WO; i++)
            if ((avg ? !(isnan(got[i]) && isnan(want[i])) : 1) && memcmp(&got[i], &want[i], 4))
                fail_msg("%s output %d: %g, want %g", avg ? "average" : "max", i, got[i], want[i]);
        for (int i = 0; i < N * C * H * W; i++)
            if (memcmp(&gx[i], &wg[i], 4)) fail_msg("%s gradient %d: %g, want %g", avg ? "average" : "max", i, gx[i], wg[i]);
        free(got), free(gx);
        tg_ctx_clear_tape(ctx);
        tg_tensor_free(x);
    }
}

static void test_pooling(void **state) {
    (void)state;
    int64_t xs[4] = {1, 1, 4, 4};
    tg_tensor *x = tg_tensor_new(ctx, 4, xs);
    assert_null(tg_max_pool2d(ctx, x, 2, 2, 2)); /* padding above half the kernel */
    assert_non_null(strstr(tg_last_error(), "at most half the kernel"));
    assert_null(tg_avg_pool2d(ctx, x, 5, 1, 0)); /* window larger than the input */
    assert_null(tg_max_pool2d(ctx, x, 2, 0, 0));
    tg_tensor_free(x);
}

/* cross-entropy at extreme logits, and refusals (values and gradients: the op table) */
static void test_softmax_cross_entropy(void **state) {
    (void)state;
    /* stable at extreme logits; refusals */
    int64_t s[2] = {2, 3};
    float big[6] = {1000, -1000, 0, 88, 89, -200};
    tg_tensor *x = tu_tensor(ctx, 2, s, big, 0);
    tg_tensor *l = tg_cross_entropy(ctx, x, (const int32_t[]){1, 2}, 0.0f);
    assert_non_null(l);
    float v = tg_tensor_item(l);
    assert_true(isfinite(v) && fabsf(v - (2000.0f + 289.3132616f) / 2) < 1e-2f);
    assert_null(tg_cross_entropy(ctx, x, (const int32_t[]){1, 3}, 0.0f));
    assert_non_null(strstr(tg_last_error(), "outside the 3 classes"));
    assert_null(tg_cross_entropy(ctx, x, (const int32_t[]){1, 2}, 1.5f));
    assert_null(tg_cross_entropy(ctx, x, NULL, 0.0f));
    tg_tensor_free(x);
    tg_ctx_clear_tape(ctx);
}

static void test_dropout(void **state) {
    (void)state;
    int64_t s[2] = {100, 100};
    float ones[10000];
    for (int i = 0; i < 10000; i++) ones[i] = 1.0f;
    tg_tensor *x = tu_tensor(ctx, 2, s, ones, 1);
    uint64_t seed, off;
    tg_ctx_rng_get(ctx, &seed, &off);
    tg_tensor *y = tg_dropout(ctx, x, 0.3f, true);
    assert_non_null(y);
    float *h = tu_read(y);
    int zeros = 0;
    for (int i = 0; i < 10000; i++) {
        if (h[i] == 0.0f) zeros++;
        else if (fabsf(h[i] - 1.0f / 0.7f) > 1e-6f) fail_msg("element %d is %g, neither 0 nor 1/0.7", i, h[i]);
    }
    if (zeros < 2800 || zeros > 3200) fail_msg("%d of 10000 dropped at p = 0.3", zeros);
    /* backward: the same mask */
    assert_int_equal(tg_backward(ctx, tg_sum(ctx, y)), TG_OK);
    float *g = tu_read(tg_tensor_grad(x));
    assert_memory_equal(g, h, sizeof(float) * 10000);
    /* the same RNG position draws the same mask; evaluation and p = 0 are the identity */
    tg_ctx_rng_set(ctx, seed, off);
    float *h2 = tu_read(tg_dropout(ctx, x, 0.3f, true));
    assert_memory_equal(h, h2, sizeof(float) * 10000);
    assert_ptr_equal(tg_dropout(ctx, x, 0.3f, false), x);
    assert_ptr_equal(tg_dropout(ctx, x, 0.0f, true), x);
    assert_null(tg_dropout(ctx, x, 1.0f, true));
    free(h), free(g), free(h2);
    tg_ctx_clear_tape(ctx);
    tg_tensor_free(x);
}

/* ---- concatenation, slicing, broadcasting, upsampling, embedding --------------------------- */
/* the channel ops' refusals (values and gradients: the op table, tests/op_cases.c) */
static void test_channel_ops(void **state) {
    (void)state;
    /* refusals */
    int64_t a[4] = {2, 3, 4, 4}, b[4] = {2, 3, 5, 4}, v[1] = {4};
    tg_tensor *x = tg_tensor_new(ctx, 4, a), *y = tg_tensor_new(ctx, 4, b), *t = tg_tensor_new(ctx, 1, v);
    tg_tensor *pair[2] = {x, y};
    assert_null(tg_cat_channels(ctx, pair, 2));
    assert_non_null(strstr(tg_last_error(), "outside dimension 1"));
    assert_null(tg_slice_channels(ctx, x, 2, 2));
    assert_null(tg_add_channels(ctx, x, t));
    assert_non_null(strstr(tg_last_error(), "neither [C]"));
    int64_t e[2] = {5, 3};
    tg_tensor *tab = tg_tensor_new(ctx, 2, e);
    assert_null(tg_embedding(ctx, tab, (const int32_t[]){1, 5}, 2));
    assert_non_null(strstr(tg_last_error(), "outside the 5 rows"));
    tg_tensor_free(x), tg_tensor_free(y), tg_tensor_free(t), tg_tensor_free(tab);
}

/* the parameter-free layers and the embedding layer: shapes through a sequential, state names,
 * dropout only in training mode, refusals */
static void test_new_layers(void **state) {
    (void)state;
    tg_module *seq = tg_sequential(ctx);
    assert_int_equal(tg_sequential_add(seq, tg_layer_max_pool2d(ctx, 2, 2, 0)), TG_OK);
    assert_int_equal(tg_sequential_add(seq, tg_layer_upsample2(ctx, true)), TG_OK);
    assert_int_equal(tg_sequential_add(seq, tg_layer_avg_pool2d(ctx, 3, 1, 1)), TG_OK);
    assert_int_equal(tg_sequential_add(seq, tg_layer_dropout(ctx, 0.5f)), TG_OK);
    assert_int_equal(tg_sequential_add(seq, tg_layer_global_avg_pool2d(ctx)), TG_OK);
    int64_t xs[4] = {2, 3, 8, 6};
    tg_tensor *x = tg_tensor_new(ctx, 4, xs);
    assert_int_equal(tg_tensor_fill_uniform(x, 0.5f, 1.0f), TG_OK);
    tg_module_set_training(seq, false);
    tg_tensor *y = tg_module_forward(seq, x);
    assert_non_null(y);
    assert_int_equal(tg_tensor_ndim(y), 4);
    assert_int_equal(tg_tensor_dim(y, 1), 3);
    assert_int_equal(tg_tensor_dim(y, 2), 1);
    /* evaluation: no dropout, so the same as without the dropout layer */
    tg_tensor *z = tg_global_avg_pool2d(ctx, tg_avg_pool2d(ctx, tg_upsample2(ctx, tg_max_pool2d(ctx, x, 2, 2, 0), true), 3, 1, 1));
    float *a = tu_read(y), *b = tu_read(z);
    assert_memory_equal(a, b, sizeof(float) * 6);
    free(a), free(b);
    assert_int_equal(tg_module_state(seq, NULL, NULL, 0), 0); /* no parameters, no buffers */
    tg_module *e = tg_layer_embedding(ctx, 10, 4);
    const char *names[2];
    tg_tensor *t[2];
    assert_int_equal(tg_module_state(e, names, t, 2), 1);
    assert_string_equal(names[0], "weight");
    tg_tensor *rows = tg_module_embed(e, (const int32_t[]){9, 0}, 2);
    assert_non_null(rows);
    float *w = tu_read(t[0]), *r = tu_read(rows);
    assert_memory_equal(r, w + 36, sizeof(float) * 4);
    assert_memory_equal(r + 4, w, sizeof(float) * 4);
    free(w), free(r);
    assert_null(tg_module_forward(e, x));
    assert_non_null(strstr(tg_last_error(), "use tg_module_embed"));
    assert_null(tg_module_embed(seq, (const int32_t[]){0}, 1));
    assert_null(tg_layer_max_pool2d(ctx, 2, 2, 2));
    assert_null(tg_layer_dropout(ctx, 1.0f));
    assert_null(tg_layer_embedding(ctx, 0, 4));
    tg_ctx_clear_tape(ctx);
    tg_tensor_free(x);
    tg_module_free(seq), tg_module_free(e);
}

/* ---- the shared op table (tests/op_cases.c): every CPU case against its reference and finite
 * differences ------------------------------------------------------------------------------ */
static void test_op_table(void **state) {
    (void)state;
    int n;
    const tu_op_case *cases = tu_op_cases(&n);
    int run = 0;
    for (int i = 0; i < n; i++) {
        if (!cases[i].cpu) continue;
        tu_seed(cases[i].seed);
        tu_check_op(ctx, &cases[i].check);
        tg_ctx_clear_tape(ctx);
        run++;
    }
    assert_true(run >= 55); /* the table is not silently empty */
}

/* The same table on a context in bf16: convolutions and dense layers against references on
 * bf16-rounded operands (tu_check_op) with float32 tolerances, every other op exactly as in fp32. */
static void test_op_table_bf16(void **state) {
    (void)state;
    tg_ctx *b = tg_ctx_new(TG_CPU, 42);
    assert_non_null(b);
    assert_non_null(strstr(tg_ctx_describe(b), "precision fp32"));
    assert_int_equal(tg_ctx_set_precision(b, TG_PRECISION_BF16), TG_OK);
    assert_int_equal(tg_ctx_precision(b), TG_PRECISION_BF16);
    assert_non_null(strstr(tg_ctx_describe(b), "precision bf16"));
    int n, run = 0, rounded = 0;
    const tu_op_case *cases = tu_op_cases(&n);
    for (int i = 0; i < n; i++) {
        if (!cases[i].cpu) continue;
        tu_seed(cases[i].seed);
        tu_check_op(b, &cases[i].check);
        tg_ctx_clear_tape(b);
        run++;
        rounded += cases[i].check.bf16_in != 0;
    }
    assert_true(run >= 55);
    assert_true(rounded >= 11); /* 4 conv2d, 4 conv_transpose2d, 3 linear rows */
    tg_ctx_free(b);
}

/* ---- batch norm -------------------------------------------------------------------------- */
/* running statistics: momentum is the new value's weight; running_var uses the unbiased var */
static void test_batch_norm_running_stats(void **state) {
    (void)state;
    const int N = 3, C = 2, P = 4;
    float x[24];
    tu_seed(450);
    tu_fill(x, 24, -1, 2);
    int64_t xs[4] = {N, C, 2, 2}, cs[1] = {C};
    float rm0[2] = {0.25f, -0.5f}, rv0[2] = {1.5f, 0.75f};
    tg_tensor *tx = tu_tensor(ctx, 4, xs, x, 0);
    tg_tensor *rm = tu_tensor(ctx, 1, cs, rm0, 0), *rv = tu_tensor(ctx, 1, cs, rv0, 0);
    assert_non_null(tg_batch_norm(ctx, tx, NULL, NULL, rm, rv, true, 0.3f, 1e-5f));
    float *m = tu_read(rm), *v = tu_read(rv);
    for (int c = 0; c < C; c++) {
        double s = 0, ss = 0;
        for (int n = 0; n < N; n++)
            for (int p = 0; p < P; p++) s += x[(n * C + c) * P + p];
        double mean = s / (N * P);
        for (int n = 0; n < N; n++)
            for (int p = 0; p < P; p++) ss += pow(x[(n * C + c) * P + p] - mean, 2);
        double em = 0.7 * rm0[c] + 0.3 * mean, ev = 0.7 * rv0[c] + 0.3 * ss / (N * P - 1);
        tu_close_f(&m[c], &em, 1, 1e-6, 1e-5, "running_mean");
        tu_close_f(&v[c], &ev, 1, 1e-6, 1e-5, "running_var");
    }
    free(m);
    free(v);
    tg_ctx_clear_tape(ctx);
    tg_tensor_free(tx);
    tg_tensor_free(rm);
    tg_tensor_free(rv);
}

/* ---- activations ------------------------------------------------------------------------ */
/* A sequential [BatchNorm, (Leaky)ReLU] runs as one fused op on backends that have it: its output,
 * every gradient and the running statistics must equal those of the two ops called one after
 * the other, bit for bit, in training, frozen and evaluation modes. */
static void bn_act_case(float slope, int mode) {
    const int C = 5;
    tg_module *seq = tg_sequential(ctx), *bn2 = tg_layer_batch_norm(ctx, C, 0.3f, 1e-3f);
    tg_module *bn1 = tg_layer_batch_norm(ctx, C, 0.3f, 1e-3f);
    tg_sequential_add(seq, bn1);
    tg_sequential_add(seq, slope == 0.0f ? tg_layer_relu(ctx) : tg_layer_leaky_relu(ctx, slope));
    tg_tensor *s1[4], *s2[4];
    tg_module_state(bn1, NULL, s1, 4);
    tg_module_state(bn2, NULL, s2, 4);
    for (int i = 0; i < 4; i++) { /* same parameters and buffers, not the defaults */
        tg_tensor_fill_uniform(s1[i], 0.5f, 1.5f);
        tg_tensor_copy(s2[i], s1[i]);
    }
    if (mode == 2) tg_module_set_training(seq, false), tg_module_set_training(bn2, false);
    if (mode == 1) tg_module_set_frozen(seq, true), tg_module_set_frozen(bn2, true);
    int64_t xs[4] = {3, C, 4, 5};
    tg_tensor *x1 = tg_tensor_new(ctx, 4, xs), *x2 = tg_tensor_new(ctx, 4, xs), *dz = tg_tensor_new(ctx, 4, xs);
    tg_tensor_fill_normal(x1, 0.2f, 1.0f);
    tg_tensor_copy(x2, x1);
    tg_tensor_fill_normal(dz, 0.0f, 1.0f);
    tg_tensor_set_requires_grad(x1, true);
    tg_tensor_set_requires_grad(x2, true);
    tg_tensor *z1 = tg_module_forward(seq, x1);
    tg_tensor *y2 = tg_module_forward(bn2, x2);
    tg_tensor *z2 = slope == 0.0f ? tg_relu(ctx, y2) : tg_leaky_relu(ctx, y2, slope);
    assert_non_null(z1);
    assert_non_null(z2);
    assert_int_equal(tg_backward_with(ctx, z1, dz), TG_OK);
    assert_int_equal(tg_backward_with(ctx, z2, dz), TG_OK);
    const tg_tensor *pairs[][2] = {{z1, z2}, {tg_tensor_grad(x1), tg_tensor_grad(x2)},
                                   {s1[0], s2[0]}, {s1[1], s2[1]}, {s1[2], s2[2]}, {s1[3], s2[3]},
                                   {tg_tensor_grad(s1[0]), tg_tensor_grad(s2[0])},
                                   {tg_tensor_grad(s1[1]), tg_tensor_grad(s2[1])}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        if (mode == 1 && i >= 6) break; /* frozen: no parameter gradients */
        assert_non_null(pairs[i][0]);
        assert_non_null(pairs[i][1]);
        float *a = tu_read(pairs[i][0]), *b = tu_read(pairs[i][1]);
        const int64_t n = tg_tensor_numel(pairs[i][0]);
        for (int64_t k = 0; k < n; k++)
            if (memcmp(&a[k], &b[k], sizeof(float)))
                fail_msg("slope %g mode %d: tensor %zu element %lld: fused %.9g, separate %.9g", slope,
                         mode, i, (long long)k, a[k], b[k]);
        free(a), free(b);
    }
    tg_ctx_clear_tape(ctx);
    tg_tensor_free(x1), tg_tensor_free(x2), tg_tensor_free(dz);
    tg_module_free(seq), tg_module_free(bn2);
}

static void test_batch_norm_act_fused(void **state) {
    (void)state;
    for (int mode = 0; mode < 3; mode++) {
        bn_act_case(0.2f, mode);
        bn_act_case(0.0f, mode);
    }
}

/* An activation right after a convolution or dense layer in a sequential runs in place; output and
 * every gradient must equal the two ops called separately, bit for bit. */
static void test_activation_in_place(void **state) {
    (void)state;
    for (int a = 0; a < 5; a++) {
        const int dense = a == 4;
        tg_module *seq = tg_sequential(ctx);
        tg_module *l1 = dense ? tg_layer_dense(ctx, 12, 5, true) : tg_layer_conv2d(ctx, 2, 3, 3, 1, 1, true);
        tg_module *l2 = dense ? tg_layer_dense(ctx, 12, 5, true) : tg_layer_conv2d(ctx, 2, 3, 3, 1, 1, true);
        tg_module *act = a == 0 ? tg_layer_leaky_relu(ctx, 0.2f) : a == 1 ? tg_layer_relu(ctx)
                       : a == 3 ? tg_layer_sigmoid(ctx) : tg_layer_tanh(ctx); /* 4: dense + tanh */
        tg_sequential_add(seq, l1);
        tg_sequential_add(seq, act);
        tg_tensor *p1[2], *p2[2];
        tg_module_params(l1, p1, 2);
        tg_module_params(l2, p2, 2);
        tg_tensor_copy(p2[0], p1[0]), tg_tensor_copy(p2[1], p1[1]);
        int64_t xs4[4] = {2, 2, 4, 4}, xs2[2] = {3, 12};
        tg_tensor *x1 = dense ? tg_tensor_new(ctx, 2, xs2) : tg_tensor_new(ctx, 4, xs4);
        tg_tensor *x2 = dense ? tg_tensor_new(ctx, 2, xs2) : tg_tensor_new(ctx, 4, xs4);
        tg_tensor_fill_normal(x1, 0, 1);
        tg_tensor_copy(x2, x1);
        tg_tensor_set_requires_grad(x1, true), tg_tensor_set_requires_grad(x2, true);
        tg_tensor *y1 = tg_module_forward(seq, x1), *h = tg_module_forward(l2, x2);
        tg_tensor *y2 = a == 0 ? tg_leaky_relu(ctx, h, 0.2f) : a == 1 ? tg_relu(ctx, h)
                      : a == 2 || a == 4 ? tg_tanh(ctx, h) : tg_sigmoid(ctx, h);
        tg_tensor *dz = tg_tensor_new(ctx, tg_tensor_ndim(y1), dense ? (int64_t[]){3, 5} : (int64_t[]){2, 3, 4, 4});
        tg_tensor_fill_normal(dz, 0, 1);
        assert_int_equal(tg_backward_with(ctx, y1, dz), TG_OK);
        assert_int_equal(tg_backward_with(ctx, y2, dz), TG_OK);
        const tg_tensor *pairs[][2] = {{y1, y2}, {tg_tensor_grad(x1), tg_tensor_grad(x2)},
                                       {tg_tensor_grad(p1[0]), tg_tensor_grad(p2[0])},
                                       {tg_tensor_grad(p1[1]), tg_tensor_grad(p2[1])}};
        for (size_t i = 0; i < 4; i++) {
            assert_non_null(pairs[i][0]);
            assert_non_null(pairs[i][1]);
            float *u = tu_read(pairs[i][0]), *v = tu_read(pairs[i][1]);
            if (memcmp(u, v, sizeof(float) * (size_t)tg_tensor_numel(pairs[i][0])))
                fail_msg("activation %d: tensor %zu differs in place vs separate", a, i);
            free(u), free(v);
        }
        tg_ctx_clear_tape(ctx);
        tg_tensor_free(x1), tg_tensor_free(x2), tg_tensor_free(dz);
        tg_module_free(seq), tg_module_free(l2);
    }
}

/* stable for logits far beyond float exp's range; matches log1p formulation */
static void test_bce_extreme_logits(void **state) {
    (void)state;
    float x[6] = {-200.0f, -40.0f, 0.0f, 40.0f, 200.0f, 1e30f};
    float t[6] = {1.0f, 0.5f, 0.25f, 0.0f, 1.0f, 0.0f};
    int64_t s[1] = {6};
    tg_tensor *tx = tu_tensor(ctx, 1, s, x, 1), *tt = tu_tensor(ctx, 1, s, t, 0);
    tg_tensor *l = tg_bce_with_logits(ctx, tx, tt);
    assert_non_null(l);
    double ref = 0;
    for (int i = 0; i < 6; i++)
        ref += fmax(x[i], 0) - (double)x[i] * t[i] + log1p(exp(-fabs((double)x[i])));
    ref /= 6;
    float got = tg_tensor_item(l);
    assert_true(isfinite(got));
    tu_close_f(&got, &ref, 1, 0, 1e-6, "bce with extreme logits");
    assert_int_equal(tg_backward(ctx, l), TG_OK);
    float *g = tu_read(tg_tensor_grad(tx));
    for (int i = 0; i < 6; i++) {
        double sg = x[i] >= 0 ? 1.0 / (1.0 + exp(-(double)x[i])) : exp(x[i]) / (1 + exp(x[i]));
        double e = (sg - t[i]) / 6.0;
        tu_close_f(&g[i], &e, 1, 1e-7, 1e-5, "bce gradient with extreme logits");
    }
    free(g);
    tg_ctx_clear_tape(ctx);
    tg_tensor_free(tx);
    tg_tensor_free(tt);
}

/* ---- random fills ------------------------------------------------------------------------ */
static void test_random_fill(void **state) {
    (void)state;
    const int64_t n = 200000;
    int64_t s[1] = {n};
    tg_ctx *a = tg_ctx_new(TG_CPU, 42), *b = tg_ctx_new(TG_CPU, 42), *c = tg_ctx_new(TG_CPU, 43);
    tg_tensor *ta = tg_tensor_new(a, 1, s), *tb = tg_tensor_new(b, 1, s), *tc = tg_tensor_new(c, 1, s);
    assert_int_equal(tg_tensor_fill_normal(ta, 1.5f, 2.0f), TG_OK);
    assert_int_equal(tg_tensor_fill_normal(tb, 1.5f, 2.0f), TG_OK);
    assert_int_equal(tg_tensor_fill_normal(tc, 1.5f, 2.0f), TG_OK);
    float *va = tu_read(ta), *vb = tu_read(tb), *vc = tu_read(tc);
    assert_memory_equal(va, vb, sizeof(float) * (size_t)n); /* same seed, same numbers */
    assert_memory_not_equal(va, vc, sizeof(float) * 64);     /* other seed, other numbers */
    double m = 0, v = 0, m4 = 0;
    for (int64_t i = 0; i < n; i++) m += va[i];
    m /= n;
    for (int64_t i = 0; i < n; i++) {
        v += (va[i] - m) * (va[i] - m);
        m4 += pow((va[i] - m) / 2.0, 4);
    }
    v /= n;
    m4 /= n;
    /* standard errors: mean 2/sqrt(n)=0.0045, var ~ 4*sqrt(2/n)=0.0126, kurtosis 3 +- 0.011 */
    assert_true(fabs(m - 1.5) < 0.025);
    assert_true(fabs(sqrt(v) - 2.0) < 0.02);
    assert_true(fabs(m4 - 3.0) < 0.08);
    /* the offset advances: a second draw differs; rewinding the offset repeats it */
    uint64_t seed, off;
    tg_ctx_rng_get(a, &seed, &off);
    assert_int_equal(off, (uint64_t)n);
    assert_int_equal(tg_tensor_fill_uniform(ta, -1.0f, 3.0f), TG_OK);
    float *u1 = tu_read(ta);
    tg_ctx_rng_set(a, seed, off);
    assert_int_equal(tg_tensor_fill_uniform(ta, -1.0f, 3.0f), TG_OK);
    float *u2 = tu_read(ta);
    assert_memory_equal(u1, u2, sizeof(float) * (size_t)n);
    double um = 0, lo = 1e9, hi = -1e9;
    for (int64_t i = 0; i < n; i++) {
        um += u1[i];
        lo = fmin(lo, u1[i]);
        hi = fmax(hi, u1[i]);
    }
    um /= n;
    assert_true(fabs(um - 1.0) < 0.02);
    assert_true(lo >= -1.0 && lo < -0.99 && hi < 3.0 && hi > 2.99);
    free(va), free(vb), free(vc), free(u1), free(u2);
    tg_tensor_free(ta), tg_tensor_free(tb), tg_tensor_free(tc);
    tg_ctx_free(a), tg_ctx_free(b), tg_ctx_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_op_table),
        cmocka_unit_test(test_op_table_bf16),
        cmocka_unit_test(test_spectral_norm),
        cmocka_unit_test(test_spectral_norm_module),
        cmocka_unit_test(test_diff_augment),
        cmocka_unit_test(test_pooling),
        cmocka_unit_test(test_pool_2x2_ties_nan),
        cmocka_unit_test(test_softmax_cross_entropy),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_channel_ops),
        cmocka_unit_test(test_new_layers),
        cmocka_unit_test(test_batch_norm_running_stats),
        cmocka_unit_test(test_batch_norm_act_fused),
        cmocka_unit_test(test_activation_in_place),
        cmocka_unit_test(test_bce_extreme_logits),
        cmocka_unit_test(test_random_fill),
    };
    return cmocka_run_group_tests_name("ops (CPU)", tests, setup, teardown);
}

/*
 * test_errors.c — bad input gets a clear status and message, never a crash: NULLs, wrong shapes
 * (the message names the function and the shapes), tensors from another context, non-scalar
 * losses, bad arguments to constructors, and the NULL-chaining contract of ops.
 */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tg_ctx *ctx;
static int setup(void **s) { (void)s; return (ctx = tg_ctx_new(TG_CPU, 3)) ? 0 : -1; }
static int teardown(void **s) { (void)s; tg_ctx_clear_tape(ctx); tg_ctx_free(ctx); return 0; }

#define EXPECT_MSG(...)                                                                         \
    do {                                                                                        \
        const char *needles[] = {__VA_ARGS__};                                                  \
        for (size_t k = 0; k < sizeof needles / sizeof needles[0]; k++)                         \
            if (!strstr(tg_last_error(), needles[k]))                                           \
                fail_msg("message \"%s\" lacks \"%s\"", tg_last_error(), needles[k]);           \
    } while (0)

/* A program that only uses CPU contexts never maps cuBLAS (cuda/libs.cu opens it at the first
 * CUDA context): once linked, libcublas and libcublasLt were about 150 MB of every CPU run's
 * resident memory. test_cuda.c checks the same reading of /proc/self/maps sees it once loaded. */
static void test_cpu_maps_no_cuda_blas(void **state) {
    (void)state;
    tg_tensor *x = tg_tensor_new4(ctx, 2, 3, 8, 8), *w = tg_tensor_new4(ctx, 4, 3, 3, 3);
    assert_non_null(tg_conv2d(ctx, x, w, NULL, 1, 1));
    tg_ctx_clear_tape(ctx);
    tg_tensor_free(x), tg_tensor_free(w);
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) skip(); /* not Linux */
    char line[512];
    while (fgets(line, sizeof line, f))
        if (strstr(line, "libcublas") || strstr(line, "libnccl")) fail_msg("mapped: %s", line);
    fclose(f);
}

static void test_shapes(void **state) {
    (void)state;
    tg_tensor *x = tg_tensor_new4(ctx, 2, 3, 8, 8), *w = tg_tensor_new4(ctx, 4, 5, 3, 3);
    tg_tensor *b = tg_tensor_new4(ctx, 7, 0, 0, 0), *v = tg_tensor_new4(ctx, 6, 0, 0, 0);
    assert_null(tg_conv2d(ctx, x, w, NULL, 1, 1));
    EXPECT_MSG("tg_conv2d", "[2,3,8,8]", "[4,5,3,3]");
    tg_tensor *w2 = tg_tensor_new4(ctx, 4, 3, 3, 3);
    assert_null(tg_conv2d(ctx, x, w2, b, 1, 1));
    EXPECT_MSG("tg_conv2d", "bias", "[7]", "[4]");
    assert_null(tg_conv2d(ctx, x, w2, NULL, 0, 1));
    EXPECT_MSG("stride 0");
    tg_tensor *big = tg_tensor_new4(ctx, 4, 3, 9, 9);
    assert_null(tg_conv2d(ctx, x, big, NULL, 1, 0));
    EXPECT_MSG("empty output");
    assert_null(tg_conv_transpose2d(ctx, x, w2, NULL, 2, 1)); /* w2 is [Cin=4,...]: x has 3 */
    EXPECT_MSG("tg_conv_transpose2d", "[Cin,Cout,kh,kw]");
    assert_null(tg_linear(ctx, v, w, NULL));
    EXPECT_MSG("tg_linear", "[6]");
    assert_null(tg_batch_norm(ctx, x, v, NULL, NULL, NULL, true, 0.1f, 1e-5f));
    EXPECT_MSG("tg_batch_norm", "gamma", "[6]", "[3]");
    assert_null(tg_batch_norm(ctx, x, NULL, NULL, NULL, NULL, false, 0.1f, 1e-5f));
    EXPECT_MSG("evaluation mode needs");
    tg_tensor *one = tg_tensor_new4(ctx, 1, 3, 1, 1);
    assert_null(tg_batch_norm(ctx, one, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f));
    EXPECT_MSG("more than one value per channel");
    assert_null(tg_add(ctx, x, w));
    EXPECT_MSG("tg_add", "[2,3,8,8]", "[4,5,3,3]");
    assert_null(tg_bce_with_logits(ctx, v, b));
    EXPECT_MSG("tg_bce_with_logits", "[6]", "[7]");
    int64_t bad[2] = {5, -1};
    assert_null(tg_reshape(ctx, x, 2, bad));
    EXPECT_MSG("tg_reshape", "[2,3,8,8]");
    tg_tensor_free(x), tg_tensor_free(w), tg_tensor_free(b), tg_tensor_free(v);
    tg_tensor_free(w2), tg_tensor_free(big), tg_tensor_free(one);
}

static void test_nulls_and_chaining(void **state) {
    (void)state;
    tg_tensor *x = tg_tensor_new4(ctx, 2, 3, 8, 8), *w = tg_tensor_new4(ctx, 4, 5, 3, 3);
    /* after a successful op, a NULL input is reported as such */
    assert_non_null(tg_relu(ctx, x));
    assert_null(tg_relu(ctx, NULL));
    EXPECT_MSG("tg_relu", "x is NULL");
    assert_null(tg_relu(NULL, x));
    EXPECT_MSG("ctx is NULL");
    /* a failing op inside a chain: the first message survives to the end */
    tg_tensor *y = tg_sigmoid(ctx, tg_tanh(ctx, tg_relu(ctx, tg_conv2d(ctx, x, w, NULL, 1, 1))));
    assert_null(y);
    EXPECT_MSG("tg_conv2d", "[4,5,3,3]");
    /* and backward on the chain's NULL keeps it too, with its status */
    assert_int_equal(tg_backward(ctx, y), TG_ERR_SHAPE);
    EXPECT_MSG("tg_conv2d", "[4,5,3,3]");
    /* free functions accept NULL */
    tg_tensor_free(NULL);
    tg_module_free(NULL);
    tg_optim_free(NULL);
    tg_state_free(NULL);
    tg_ctx_free(NULL);
    assert_null(tg_tensor_grad(NULL));
    assert_int_equal(tg_tensor_numel(NULL), 0);
    assert_int_equal(tg_tensor_dim(x, 7), -1);
    assert_int_equal(tg_tensor_dim(x, -1), 8);
    tg_tensor_free(x), tg_tensor_free(w);
}

static void test_contexts_and_io(void **state) {
    (void)state;
    tg_ctx *other = tg_ctx_new(TG_CPU, 4);
    tg_tensor *a = tg_tensor_new4(ctx, 3, 0, 0, 0), *b = tg_tensor_new4(other, 3, 0, 0, 0);
    assert_null(tg_add(ctx, a, b));
    EXPECT_MSG("tg_add", "another context");
    assert_int_equal(tg_tensor_copy(a, b), TG_ERR_DEVICE);
    tg_tensor *ps[1] = {b};
    assert_null(tg_adam(ctx, ps, 1, 1e-3f, 0.9f, 0.999f, 1e-8f));
    EXPECT_MSG("tg_adam", "another context");
    float buf[4];
    assert_int_equal(tg_tensor_write(a, buf, 4), TG_ERR_SHAPE);
    EXPECT_MSG("tg_tensor_write", "n = 4", "3 elements");
    assert_int_equal(tg_tensor_read(a, NULL, 3), TG_ERR_INVALID);
    int64_t s0[2] = {3, 0};
    assert_null(tg_tensor_new(ctx, 2, s0));
    EXPECT_MSG("tg_tensor_new", "dimension 1 is 0");
    assert_null(tg_tensor_new(ctx, 5, s0));
    EXPECT_MSG("ndim 5");
    /* a non-scalar loss */
    tg_tensor_set_requires_grad(a, true);
    assert_int_equal(tg_backward(ctx, tg_relu(ctx, a)), TG_ERR_SHAPE);
    EXPECT_MSG("tg_backward", "one element", "[3]");
    assert_true(isnan(tg_tensor_item(a)));
    EXPECT_MSG("tg_tensor_item", "3 elements");
    tg_ctx_clear_tape(ctx);
    tg_tensor_free(a), tg_tensor_free(b);
    tg_ctx_free(other);
}

static void test_constructors(void **state) {
    (void)state;
    assert_null(tg_layer_conv2d(ctx, 0, 4, 3, 1, 1, true));
    EXPECT_MSG("tg_layer_conv2d");
    assert_null(tg_layer_batch_norm(ctx, 4, 1.5f, 1e-5f));
    EXPECT_MSG("momentum");
    assert_null(tg_adam(ctx, NULL, 2, 1e-3f, 0.9f, 0.999f, 1e-8f));
    assert_null(tg_adam(ctx, NULL, 0, 1e-3f, 1.0f, 0.999f, 1e-8f));
    EXPECT_MSG("beta1 1");
    tg_module *seq = tg_sequential(ctx);
    assert_int_equal(tg_sequential_add(seq, NULL), TG_ERR_INVALID);
    tg_module *dense = tg_layer_dense(ctx, 2, 2, true);
    assert_int_equal(tg_sequential_add(dense, tg_layer_relu(ctx)), TG_ERR_INVALID);
    EXPECT_MSG("not a sequential");
    assert_null(tg_ctx_new((tg_device)9, 1));
    EXPECT_MSG("unknown device 9");
    /* a module on the wrong input shape fails inside, with the layer's op named */
    tg_tensor *x = tg_tensor_new4(ctx, 4, 3, 0, 0);
    assert_null(tg_module_forward(dense, x));
    EXPECT_MSG("tg_linear", "[4,3]");
    tg_tensor_free(x);
    tg_module_free(seq);
    tg_module_free(dense);
}

/* NaN and infinity: found by tg_tensor_check_finite, and refused by an optimizer that checks */
static void test_nonfinite(void **state) {
    (void)state;
    tg_tensor *t = tg_tensor_new4(ctx, 5, 0, 0, 0);
    const float good[5] = {1, 2, 3, 4, 5}, bad[5] = {1, 2, NAN, INFINITY, 5};
    tg_tensor_write(t, good, 5);
    assert_int_equal(tg_tensor_check_finite(t), TG_OK);
    tg_tensor_write(t, bad, 5);
    assert_int_equal(tg_tensor_check_finite(t), TG_ERR_NUMERIC);
    EXPECT_MSG("tg_tensor_check_finite", "[5]", "2 NaN/Inf values", "index 2");
    /* a gradient with a NaN in it: checked, the step changes nothing; unchecked, it applies */
    tg_tensor *p = tg_tensor_new4(ctx, 5, 0, 0, 0);
    tg_tensor_set_requires_grad(p, true);
    tg_tensor_write(p, good, 5);
    tg_optim *o = tg_adam(ctx, &p, 1, 0.1f, 0.9f, 0.999f, 1e-8f);
    tg_optim_set_check_finite(o, true);
    assert_int_equal(tg_backward(ctx, tg_sum(ctx, tg_mul(ctx, p, t))), TG_OK);
    assert_int_equal(tg_optim_step(o), TG_ERR_NUMERIC);
    EXPECT_MSG("tg_optim_step", "the gradient of params[0]", "NaN/Inf");
    float after[5];
    tg_tensor_read(p, after, 5);
    assert_memory_equal(after, good, sizeof good);
    tg_optim_set_check_finite(o, false);
    assert_int_equal(tg_optim_step(o), TG_OK);
    tg_tensor_read(p, after, 5);
    assert_true(isnan(after[2]));
    tg_ctx_clear_tape(ctx);
    tg_optim_free(o);
    tg_tensor_free(p), tg_tensor_free(t);
    /* a large tensor (counted on several threads): every kind of non-finite value, the first of
     * them far into it, and the largest finite float, which is not one of them */
    const int64_t n = 300001;
    float *v = malloc(sizeof(float) * (size_t)n);
    assert_non_null(v);
    for (int64_t i = 0; i < n; i++) v[i] = (float)(i % 7) - 3.0f;
    v[5] = FLT_MAX, v[6] = -FLT_MAX;
    tg_tensor *big = tg_tensor_new4(ctx, n, 0, 0, 0);
    tg_tensor_write(big, v, n);
    assert_int_equal(tg_tensor_check_finite(big), TG_OK);
    v[150001] = -INFINITY, v[299999] = NAN, v[200000] = INFINITY, v[n - 1] = -NAN;
    tg_tensor_write(big, v, n);
    assert_int_equal(tg_tensor_check_finite(big), TG_ERR_NUMERIC);
    EXPECT_MSG("tg_tensor_check_finite", "4 NaN/Inf values", "-inf", "index 150001");
    tg_tensor_free(big);
    free(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_maps_no_cuda_blas),
        cmocka_unit_test(test_nonfinite),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_nulls_and_chaining),
        cmocka_unit_test(test_contexts_and_io),
        cmocka_unit_test(test_constructors),
    };
    return cmocka_run_group_tests_name("errors", tests, setup, teardown);
}

/*
 * test_learn.c — a small convolutional network actually learns a fixed problem: telling 8x8
 * images of a horizontal bar from a vertical one (with noise). Stated bar: after 60 Adam steps
 * the loss is at least 20x below its start and every training image is classified correctly.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>

static void make_data(float *x, float *y, int n) {
    for (int i = 0; i < n; i++) {
        int vertical = i % 2, pos = 1 + (i / 2) % 6;
        y[i] = (float)vertical;
        for (int r = 0; r < 8; r++)
            for (int c = 0; c < 8; c++) {
                int on = vertical ? c == pos : r == pos;
                x[i * 64 + r * 8 + c] = (on ? 1.0f : -1.0f) + (float)tu_uniform(-0.3, 0.3);
            }
    }
}

static void test_bars(void **state) {
    (void)state;
    tg_ctx *ctx = tg_ctx_new(TG_CPU, 2024);
    tg_module *net = tg_sequential(ctx);
    tg_sequential_add(net, tg_layer_conv2d(ctx, 1, 6, 3, 1, 1, true));
    tg_sequential_add(net, tg_layer_batch_norm(ctx, 6, 0.1f, 1e-5f));
    tg_sequential_add(net, tg_layer_leaky_relu(ctx, 0.2f));
    tg_sequential_add(net, tg_layer_conv2d(ctx, 6, 8, 4, 2, 1, true));
    tg_sequential_add(net, tg_layer_leaky_relu(ctx, 0.2f));
    tg_sequential_add(net, tg_layer_flatten(ctx));
    tg_sequential_add(net, tg_layer_dense(ctx, 8 * 4 * 4, 1, true));
    tg_tensor *p[16];
    int np = tg_module_params(net, p, 16);
    tg_optim *o = tg_adam(ctx, p, np, 3e-3f, 0.9f, 0.999f, 1e-8f);
    enum { N = 24 };
    float xv[N * 64], yv[N];
    tu_seed(5);
    make_data(xv, yv, N);
    int64_t xs[4] = {N, 1, 8, 8}, ys[2] = {N, 1};
    tg_tensor *x = tu_tensor(ctx, 4, xs, xv, 0), *y = tu_tensor(ctx, 2, ys, yv, 0);
    float first = 0, last = 0;
    for (int step = 0; step < 60; step++) {
        tg_optim_zero_grad(o);
        tg_tensor *l = tg_bce_with_logits(ctx, tg_module_forward(net, x), y);
        assert_non_null(l);
        assert_int_equal(tg_backward(ctx, l), TG_OK);
        assert_int_equal(tg_optim_step(o), TG_OK);
        last = tg_tensor_item(l);
        if (step == 0) first = last;
        tg_ctx_clear_tape(ctx);
    }
    print_message("bars: loss %.4f -> %.4f (%.0fx)\n", first, last, first / last);
    assert_true(isfinite(last));
    assert_true(first / last >= 20.0f);
    tg_module_set_training(net, false);
    tg_tensor *logits = tg_module_forward(net, x);
    float *lv = tu_read(logits);
    for (int i = 0; i < N; i++) assert_int_equal(lv[i] > 0.0f, yv[i] > 0.5f);
    free(lv);
    tg_ctx_clear_tape(ctx);
    tg_optim_free(o);
    tg_tensor_free(x), tg_tensor_free(y);
    tg_module_free(net);
    tg_ctx_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_bars)};
    return cmocka_run_group_tests_name("learning", tests, NULL, NULL);
}

/*
 * test_optim.c — Adam and SGD against values computed by hand (derivations in the comments),
 * per-parameter step counts across a frozen stretch, and the freeze contract of modules: no
 * weight gradients, bitwise-unchanged parameters, optimizer state and BatchNorm running
 * statistics, while gradients still reach the module's input.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static tg_ctx *ctx;
static int setup(void **s) { (void)s; return (ctx = tg_ctx_new(TG_CPU, 3)) ? 0 : -1; }
static int teardown(void **s) { (void)s; tg_ctx_free(ctx); return 0; }

/* gives p the gradient g through backward of sum(p * g) */
static void set_grad(tg_tensor *p, float g) {
    int64_t one = 1;
    tg_tensor *gt = tu_tensor(ctx, 1, &one, &g, 0);
    assert_int_equal(tg_backward(ctx, tg_sum(ctx, tg_mul(ctx, p, gt))), TG_OK);
    tg_ctx_clear_tape(ctx);
    tg_tensor_free(gt);
}

static float value(const tg_tensor *t) { return tg_tensor_item(t); }

/* p0 = 1, grads 0.5, -0.25, 1.0; lr 0.1, betas (0.9, 0.999), eps 0.1 (large, so the two
 * epsilon placements differ visibly).
 * PyTorch step 1: m = 0.05, v = 0.00025, m^ = 0.5, sqrt(v^) = 0.5, p = 1 - 0.1*0.5/0.6 = 0.916667
 * Keras   step 1: p = 1 - 0.1*sqrt(0.001)/0.1 * 0.05/(sqrt(0.00025)+0.1) = 0.986347
 * later steps follow the same formulas (values below from a double-precision evaluation). */
static void test_adam_by_hand(void **state) {
    (void)state;
    const float grads[3] = {0.5f, -0.25f, 1.0f};
    const double want[2][3] = {{0.9166666666666666, 0.895411060230342, 0.8382407659468465},
                               {0.9863472940504185, 0.982347709936244, 0.964848714717913}};
    for (int mode = 0; mode < 2; mode++) {
        int64_t one = 1;
        float p0 = 1.0f;
        tg_tensor *p = tu_tensor(ctx, 1, &one, &p0, 1);
        tg_optim *o = tg_adam(ctx, &p, 1, 0.1f, 0.9f, 0.999f, 0.1f);
        assert_non_null(o);
        if (mode) assert_int_equal(tg_adam_set_eps_mode(o, TG_ADAM_EPS_KERAS), TG_OK);
        for (int t = 0; t < 3; t++) {
            tg_optim_zero_grad(o);
            set_grad(p, grads[t]);
            assert_int_equal(tg_optim_step(o), TG_OK);
            float got = value(p);
            tu_close_f(&got, &want[mode][t], 1, 1e-6, 1e-6, mode ? "keras adam" : "pytorch adam");
        }
        tg_optim_free(o);
        tg_tensor_free(p);
    }
}

/* torch.optim.SGD(momentum 0.9): buf = g at step 1, then 0.9*buf + g; p -= lr*buf.
 * p: 1 -> 0.95 -> 0.93 -> 0.812 */
static void test_sgd_by_hand(void **state) {
    (void)state;
    const float grads[3] = {0.5f, -0.25f, 1.0f};
    const double want[3] = {0.95, 0.93, 0.812};
    int64_t one = 1;
    float p0 = 1.0f;
    tg_tensor *p = tu_tensor(ctx, 1, &one, &p0, 1);
    tg_optim *o = tg_sgd(ctx, &p, 1, 0.1f, 0.9f);
    for (int t = 0; t < 3; t++) {
        tg_optim_zero_grad(o);
        set_grad(p, grads[t]);
        assert_int_equal(tg_optim_step(o), TG_OK);
        float got = value(p);
        tu_close_f(&got, &want[t], 1, 1e-6, 1e-6, "sgd momentum");
    }
    tg_optim_free(o);
    tg_tensor_free(p);
}

/* A parameter without a gradient for a step keeps its value and its own step count: after
 * steps with grads (0.5, skip, -0.25) it equals a fresh Adam after (0.5, -0.25). */
static void test_adam_per_param_steps(void **state) {
    (void)state;
    int64_t one = 1;
    float p0 = 1.0f;
    tg_tensor *a = tu_tensor(ctx, 1, &one, &p0, 1), *b = tu_tensor(ctx, 1, &one, &p0, 1);
    tg_tensor *ref = tu_tensor(ctx, 1, &one, &p0, 1);
    tg_tensor *ab[2] = {a, b};
    tg_optim *o = tg_adam(ctx, ab, 2, 0.1f, 0.9f, 0.999f, 1e-8f);
    tg_optim *oref = tg_adam(ctx, &ref, 1, 0.1f, 0.9f, 0.999f, 1e-8f);
    tg_optim_zero_grad(o);
    set_grad(a, 0.5f);
    set_grad(b, 0.5f);
    tg_optim_step(o);
    /* step 2: b frozen (requires_grad off) even though it still holds last step's gradient */
    float before = value(b);
    tg_tensor_set_requires_grad(b, false);
    set_grad(a, 0.3f);
    assert_int_equal(tg_optim_step(o), TG_OK);
    float after = value(b);
    assert_memory_equal(&before, &after, sizeof before);
    tg_tensor_set_requires_grad(b, true);
    tg_optim_zero_grad(o);
    set_grad(b, -0.25f);
    tg_optim_step(o); /* a has no gradient now: skipped */
    /* reference: two plain steps */
    set_grad(ref, 0.5f);
    tg_optim_step(oref);
    tg_optim_zero_grad(oref);
    set_grad(ref, -0.25f);
    tg_optim_step(oref);
    float vb = value(b), vr = value(ref);
    assert_memory_equal(&vb, &vr, sizeof vb);
    tg_optim_free(o), tg_optim_free(oref);
    tg_tensor_free(a), tg_tensor_free(b), tg_tensor_free(ref);
}

static tg_module *small_d(void) {
    tg_module *d = tg_sequential(ctx);
    tg_sequential_add(d, tg_layer_conv2d(ctx, 2, 4, 3, 2, 1, true));
    tg_sequential_add(d, tg_layer_batch_norm(ctx, 4, 0.5f, 1e-3f));
    tg_sequential_add(d, tg_layer_leaky_relu(ctx, 0.2f));
    tg_sequential_add(d, tg_layer_flatten(ctx));
    tg_sequential_add(d, tg_layer_dense(ctx, 4 * 3 * 3, 1, true));
    return d;
}

/* Frozen D: nothing of D changes, gradients still reach its input, and they equal the input
 * gradients of the unfrozen D (BatchNorm keeps using batch statistics in training mode). */
static void test_freeze(void **state) {
    (void)state;
    tg_module *d = small_d();
    tg_tensor *ps[8], *st[16];
    int np = tg_module_params(d, ps, 8);
    int ns = tg_module_state(d, NULL, st, 16);
    assert_int_equal(np, 6);
    assert_int_equal(ns, 8);
    tg_optim *o = tg_adam(ctx, ps, np, 0.1f, 0.5f, 0.999f, 1e-7f);
    int64_t xs[4] = {5, 2, 6, 6};
    float xv[360];
    tu_seed(11);
    tu_fill(xv, 360, -1, 1);
    tg_tensor *x = tu_tensor(ctx, 4, xs, xv, 1);
    /* one normal step so the optimizer has state to (not) change */
    tg_optim_zero_grad(o);
    assert_int_equal(tg_backward(ctx, tg_mean(ctx, tg_module_forward(d, x))), TG_OK);
    tg_optim_step(o);
    tg_ctx_clear_tape(ctx);

    float *snap[16];
    for (int i = 0; i < ns; i++) snap[i] = tu_read(st[i]);
    tg_tensor_zero_grad(x);
    tg_optim_zero_grad(o);
    tg_module_set_frozen(d, true);
    assert_true(tg_module_frozen(d));
    assert_int_equal(tg_backward(ctx, tg_mean(ctx, tg_module_forward(d, x))), TG_OK);
    for (int i = 0; i < np; i++) assert_null(tg_tensor_grad(ps[i])); /* no weight gradients */
    const tg_tensor *gx = tg_tensor_grad(x);
    assert_non_null(gx);                                              /* flows through */
    float *gxf = tu_read(gx);
    assert_int_equal(tg_optim_step(o), TG_OK);
    tg_ctx_clear_tape(ctx);
    for (int i = 0; i < ns; i++) {
        float *now = tu_read(st[i]);
        assert_memory_equal(now, snap[i], sizeof(float) * (size_t)tg_tensor_numel(st[i]));
        free(now);
    }
    /* unfreeze: the input gradient is the same as the frozen one (running stats untouched so far,
     * batch statistics used either way) */
    tg_module_set_frozen(d, false);
    tg_tensor_zero_grad(x);
    assert_int_equal(tg_backward(ctx, tg_mean(ctx, tg_module_forward(d, x))), TG_OK);
    float *gxu = tu_read(tg_tensor_grad(x));
    tu_close_ff(gxf, gxu, 360, 0, 0, "input gradient frozen vs unfrozen");
    for (int i = 0; i < np; i++) assert_non_null(tg_tensor_grad(ps[i]));
    tg_ctx_clear_tape(ctx);
    for (int i = 0; i < ns; i++) free(snap[i]);
    free(gxf), free(gxu);
    tg_optim_free(o);
    tg_tensor_free(x);
    tg_module_free(d);
}

/* Evaluation mode uses (and does not move) the running statistics. */
static void test_eval_mode(void **state) {
    (void)state;
    tg_module *bn = tg_layer_batch_norm(ctx, 3, 0.1f, 1e-5f);
    int64_t xs[2] = {4, 3};
    float xv[12];
    tu_seed(12);
    tu_fill(xv, 12, -2, 2);
    tg_tensor *x = tu_tensor(ctx, 2, xs, xv, 0);
    tg_module_set_training(bn, false);
    tg_tensor *y = tg_module_forward(bn, x);
    float *yv = tu_read(y);
    /* running mean 0, var 1 -> y = x / sqrt(1 + eps) */
    for (int i = 0; i < 12; i++) {
        double e = xv[i] / sqrt(1.0 + 1e-5);
        tu_close_f(&yv[i], &e, 1, 1e-6, 1e-6, "eval-mode batch norm");
    }
    tg_tensor *st[4];
    tg_module_state(bn, NULL, st, 4);
    float rm[3];
    tg_tensor_read(st[2], rm, 3);
    for (int i = 0; i < 3; i++) assert_true(rm[i] == 0.0f);
    free(yv);
    tg_ctx_clear_tape(ctx);
    tg_tensor_free(x);
    tg_module_free(bn);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_by_hand),
        cmocka_unit_test(test_sgd_by_hand),
        cmocka_unit_test(test_adam_per_param_steps),
        cmocka_unit_test(test_freeze),
        cmocka_unit_test(test_eval_mode),
    };
    return cmocka_run_group_tests_name("optimizers and freezing", tests, setup, teardown);
}

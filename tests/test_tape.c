/*
 * test_tape.c — autograd mechanics: a tensor used twice gets both contributions, gradients
 * accumulate across backward passes until zeroed, detach and grad mode cut the tape, views
 * pass gradients through, and clearing the tape reuses the arena (a repeated step allocates
 * nothing new after the first).
 */
#include "testutil.h"

#include "core.h" /* the grad hook (ctx->grad_hook), which lib/dist.c uses */

#include <math.h>
#include <string.h>
#include <stdlib.h>

static tg_ctx *ctx;
static int setup(void **s) { (void)s; return (ctx = tg_ctx_new(TG_CPU, 3)) ? 0 : -1; }
static int teardown(void **s) { (void)s; tg_ctx_free(ctx); return 0; }

/* L = sum(x*x + x)  ->  dL/dx = 2x + 1 */
static void test_reuse(void **state) {
    (void)state;
    int64_t s[1] = {5};
    float xv[5] = {-2, -0.5f, 0, 1, 3};
    tg_tensor *x = tu_tensor(ctx, 1, s, xv, 1);
    tg_tensor *l = tg_sum(ctx, tg_add(ctx, tg_mul(ctx, x, x), x));
    assert_int_equal(tg_backward(ctx, l), TG_OK);
    float *g = tu_read(tg_tensor_grad(x));
    for (int i = 0; i < 5; i++) assert_true(g[i] == 2 * xv[i] + 1);
    free(g);
    /* a second backward over the same tape accumulates: 2*(2x+1) */
    assert_int_equal(tg_backward(ctx, l), TG_OK);
    g = tu_read(tg_tensor_grad(x));
    for (int i = 0; i < 5; i++) assert_true(g[i] == 2 * (2 * xv[i] + 1));
    free(g);
    tg_ctx_clear_tape(ctx);
    /* zeroing drops the gradient; the next backward starts from zero */
    tg_tensor_zero_grad(x);
    assert_null(tg_tensor_grad(x));
    assert_int_equal(tg_backward(ctx, tg_sum(ctx, tg_scale(ctx, x, 3.0f))), TG_OK);
    g = tu_read(tg_tensor_grad(x));
    for (int i = 0; i < 5; i++) assert_true(g[i] == 3.0f);
    free(g);
    tg_ctx_clear_tape(ctx);
    tg_tensor_free(x);
}

/* detach and grad mode off stop gradients; reshape views carry them */
static void test_detach_and_grad_mode(void **state) {
    (void)state;
    int64_t s[2] = {2, 3};
    float xv[6] = {1, 2, 3, 4, 5, 6};
    tg_tensor *x = tu_tensor(ctx, 2, s, xv, 1);
    /* L = sum(x * detach(x)): gradient is detach(x) = x, not 2x */
    assert_int_equal(tg_backward(ctx, tg_sum(ctx, tg_mul(ctx, x, tg_detach(ctx, x)))), TG_OK);
    float *g = tu_read(tg_tensor_grad(x));
    for (int i = 0; i < 6; i++) assert_true(g[i] == xv[i]);
    free(g);
    tg_ctx_clear_tape(ctx);
    tg_tensor_zero_grad(x);
    /* view: sum(reshape(x) * c) has gradient c laid out as x */
    int64_t r[1] = {6};
    float cv[6] = {6, 5, 4, 3, 2, 1};
    tg_tensor *c = tu_tensor(ctx, 1, r, cv, 0);
    assert_int_equal(tg_backward(ctx, tg_sum(ctx, tg_mul(ctx, tg_reshape(ctx, x, 1, r), c))), TG_OK);
    g = tu_read(tg_tensor_grad(x));
    for (int i = 0; i < 6; i++) assert_true(g[i] == cv[i]);
    free(g);
    tg_ctx_clear_tape(ctx);
    /* grad mode off: nothing recorded, backward refuses with a message */
    assert_true(tg_ctx_set_grad_enabled(ctx, false));
    tg_tensor *l = tg_sum(ctx, tg_mul(ctx, x, x));
    tg_ctx_stats st;
    tg_ctx_stats_get(ctx, &st);
    assert_int_equal(st.tape_nodes, 0);
    assert_int_equal(tg_backward(ctx, l), TG_ERR_INVALID);
    assert_non_null(strstr(tg_last_error(), "does not require a gradient"));
    assert_false(tg_ctx_set_grad_enabled(ctx, true));
    tg_ctx_clear_tape(ctx);
    tg_tensor_free(x);
    tg_tensor_free(c);
}

/* gradients of intermediate results are reachable until the tape is cleared */
static void test_intermediate_grad(void **state) {
    (void)state;
    int64_t s[1] = {3};
    float xv[3] = {0.5f, -1, 2};
    tg_tensor *x = tu_tensor(ctx, 1, s, xv, 1);
    tg_tensor *y = tg_tanh(ctx, x);
    assert_int_equal(tg_backward(ctx, tg_sum(ctx, tg_scale(ctx, y, 2.0f))), TG_OK);
    float *gy = tu_read(tg_tensor_grad(y)), *gx = tu_read(tg_tensor_grad(x));
    for (int i = 0; i < 3; i++) {
        assert_true(gy[i] == 2.0f);
        double e = 2.0 * (1.0 - tanh(xv[i]) * tanh(xv[i]));
        tu_close_f(&gx[i], &e, 1, 1e-6, 1e-5, "tanh chain");
    }
    free(gy), free(gx);
    tg_ctx_clear_tape(ctx);
    tg_tensor_free(x);
}

/* a training step repeated: after the first, the arena asks the system for nothing */
static void test_arena_steady_state(void **state) {
    (void)state;
    tg_module *net = tg_sequential(ctx);
    tg_sequential_add(net, tg_layer_conv2d(ctx, 3, 8, 3, 1, 1, true));
    tg_sequential_add(net, tg_layer_batch_norm(ctx, 8, 0.1f, 1e-5f));
    tg_sequential_add(net, tg_layer_relu(ctx));
    tg_sequential_add(net, tg_layer_conv_transpose2d(ctx, 8, 2, 4, 2, 1, false));
    tg_tensor *p[16];
    int n = tg_module_params(net, p, 16);
    tg_optim *o = tg_adam(ctx, p, n, 1e-3f, 0.9f, 0.999f, 1e-8f);
    tg_tensor *x = tg_tensor_new4(ctx, 4, 3, 12, 12);
    tg_tensor_fill_normal(x, 0, 1);
    size_t allocs[4], ws[4];
    for (int step = 0; step < 4; step++) {
        tg_optim_zero_grad(o);
        assert_int_equal(tg_backward(ctx, tg_mean(ctx, tg_module_forward(net, x))), TG_OK);
        assert_int_equal(tg_optim_step(o), TG_OK);
        tg_ctx_stats st;
        tg_ctx_stats_get(ctx, &st);
        allocs[step] = st.arena_chunk_allocs;
        ws[step] = st.workspace_bytes;
        assert_true(st.tape_nodes > 0);
        tg_ctx_clear_tape(ctx);
        tg_ctx_stats_get(ctx, &st);
        assert_int_equal(st.tape_nodes, 0);
    }
    for (int step = 1; step < 4; step++) {
        assert_int_equal(allocs[step], allocs[0]);
        assert_int_equal(ws[step], ws[0]);
    }
    tg_optim_free(o);
    tg_tensor_free(x);
    tg_module_free(net);
}


/* The grad hook reports each parameter once per pass, when its gradient is final: a copy taken
 * at that moment equals the gradient after the pass, for parameters read by one node, by two
 * (w1 below) and by the tape's first node. Leaves outside the pass are not reported. */
typedef struct {
    tg_tensor *seen[8];
    float *at_report[8];
    int n;
} hook_log;

static void record_hook(void *user, tg_tensor *leaf) {
    hook_log *h = user;
    h->seen[h->n] = leaf;
    h->at_report[h->n] = tu_read(tg_tensor_grad(leaf));
    h->n++;
}

static void test_grad_hook(void **state) {
    (void)state;
    int64_t xs[2] = {4, 3}, ws[2] = {3, 3}, bs[1] = {3};
    tg_tensor *x = tg_tensor_new(ctx, 2, xs), *w1 = tg_tensor_new(ctx, 2, ws), *w2 = tg_tensor_new(ctx, 2, ws);
    tg_tensor *b = tg_tensor_new(ctx, 1, bs), *unused = tg_tensor_new(ctx, 1, bs);
    tg_tensor *all[5] = {x, w1, w2, b, unused};
    for (int i = 0; i < 5; i++) {
        tg_tensor_fill_normal(all[i], 0, 1);
        if (i) tg_tensor_set_requires_grad(all[i], true);
    }
    /* h = tanh(x w1^T + b); y = h w2^T + h w1^T; loss = sum(y * y) */
    tg_tensor *h = tg_tanh(ctx, tg_linear(ctx, x, w1, b));
    tg_tensor *y = tg_add(ctx, tg_linear(ctx, h, w2, NULL), tg_linear(ctx, h, w1, NULL));
    tg_tensor *loss = tg_sum(ctx, tg_mul(ctx, y, y));
    hook_log log = {0};
    ctx->grad_hook = record_hook, ctx->grad_hook_user = &log;
    assert_int_equal(tg_backward(ctx, loss), TG_OK);
    assert_null(ctx->grad_hook); /* armed for one pass */
    assert_int_equal(log.n, 3);  /* w1, w2, b: not x (no gradient wanted), not `unused` */
    int got_w1 = 0;
    for (int i = 0; i < log.n; i++) {
        tg_tensor *t = log.seen[i];
        assert_true(t == w1 || t == w2 || t == b);
        got_w1 += t == w1;
        float *final = tu_read(tg_tensor_grad(t));
        assert_memory_equal(log.at_report[i], final, sizeof(float) * (size_t)tg_tensor_numel(t));
        free(final), free(log.at_report[i]);
    }
    assert_int_equal(got_w1, 1);
    tg_ctx_clear_tape(ctx);
    for (int i = 0; i < 5; i++) tg_tensor_free(all[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_detach_and_grad_mode),
        cmocka_unit_test(test_intermediate_grad),
        cmocka_unit_test(test_arena_steady_state),
        cmocka_unit_test(test_grad_hook),
    };
    return cmocka_run_group_tests_name("tape", tests, setup, teardown);
}

/*
 * test_alloc.c — after the first training step, a step allocates nothing: no malloc, calloc,
 * realloc or aligned_alloc from the library (every call is counted through the linker's --wrap,
 * see the Makefile), and no new arena chunk or larger workspace. The step is a small GAN step
 * with every kind of op, freezing, Adam, and a scalar read.
 */
#include "testutil.h"

#include <stdlib.h>

static long allocs;
void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
void *__wrap_malloc(size_t n) { allocs++; return __real_malloc(n); }
void *__wrap_calloc(size_t a, size_t b) { allocs++; return __real_calloc(a, b); }
void *__wrap_realloc(void *p, size_t n) { allocs++; return __real_realloc(p, n); }
void *__wrap_aligned_alloc(size_t a, size_t n) { allocs++; return __real_aligned_alloc(a, n); }

static void step(tg_ctx *c, tg_module *G, tg_module *D, tg_optim *og, tg_optim *od, tg_tensor *z,
                 tg_tensor *real, tg_tensor *ones, tg_tensor *zeros) {
    tg_tensor_fill_normal(z, 0, 1);
    tg_optim_zero_grad(od);
    assert_int_equal(tg_backward(c, tg_bce_with_logits(c, tg_module_forward(D, real), ones)), TG_OK);
    tg_tensor *fake = tg_module_forward(G, z);
    tg_tensor *lf = tg_bce_with_logits(c, tg_module_forward(D, tg_detach(c, fake)), zeros);
    assert_int_equal(tg_backward(c, lf), TG_OK);
    assert_int_equal(tg_optim_step(od), TG_OK);
    tg_module_set_frozen(D, true);
    tg_optim_zero_grad(og);
    tg_tensor *lg = tg_bce_with_logits(c, tg_module_forward(D, fake), ones);
    assert_int_equal(tg_backward(c, lg), TG_OK);
    assert_int_equal(tg_optim_step(og), TG_OK);
    tg_module_set_frozen(D, false);
    assert_true(tg_tensor_item(lg) > 0.0f);
    tg_ctx_clear_tape(c);
}

static void test_steady_state(void **state) {
    (void)state;
    tg_ctx *c = tg_ctx_new(TG_CPU, 3);
    tg_module *G = tg_sequential(c), *D = tg_sequential(c);
    tg_sequential_add(G, tg_layer_conv_transpose2d(c, 8, 16, 4, 1, 0, false));
    tg_sequential_add(G, tg_layer_batch_norm(c, 16, 0.1f, 1e-5f));
    tg_sequential_add(G, tg_layer_relu(c));
    tg_sequential_add(G, tg_layer_conv_transpose2d(c, 16, 3, 4, 2, 1, true));
    tg_sequential_add(G, tg_layer_tanh(c));
    tg_sequential_add(D, tg_layer_conv2d(c, 3, 8, 4, 2, 1, true));
    tg_sequential_add(D, tg_layer_leaky_relu(c, 0.2f));
    tg_sequential_add(D, tg_layer_conv2d(c, 8, 16, 3, 1, 1, false));
    tg_sequential_add(D, tg_layer_batch_norm(c, 16, 0.1f, 1e-5f));
    tg_sequential_add(D, tg_layer_sigmoid(c));
    tg_sequential_add(D, tg_layer_flatten(c));
    tg_sequential_add(D, tg_layer_dense(c, 16 * 4 * 4, 1, true));
    tg_tensor *p[32];
    int n = tg_module_params(G, p, 32);
    tg_optim *og = tg_adam(c, p, n, 1e-3f, 0.5f, 0.999f, 1e-7f);
    tg_adam_set_eps_mode(og, TG_ADAM_EPS_KERAS);
    n = tg_module_params(D, p, 32);
    tg_optim *od = tg_sgd(c, p, n, 1e-2f, 0.9f);
    tg_tensor *z = tg_tensor_new4(c, 6, 8, 1, 1), *real = tg_tensor_new4(c, 6, 3, 8, 8);
    tg_tensor *ones = tg_tensor_new4(c, 6, 1, 0, 0), *zeros = tg_tensor_new4(c, 6, 1, 0, 0);
    tg_tensor_fill(ones, 1.0f);
    tg_tensor_fill_uniform(real, -1, 1);
    step(c, G, D, og, od, z, real, ones, zeros); /* the first step may allocate */
    tg_ctx_stats before, after;
    tg_ctx_stats_get(c, &before);
    allocs = 0;
    for (int s = 0; s < 3; s++) step(c, G, D, og, od, z, real, ones, zeros);
    long counted = allocs;
    tg_ctx_stats_get(c, &after);
    if (counted) fail_msg("%ld allocations in 3 steady-state steps", counted);
    assert_int_equal(after.arena_chunk_allocs, before.arena_chunk_allocs);
    assert_int_equal(after.workspace_bytes, before.workspace_bytes);
    tg_optim_free(og), tg_optim_free(od);
    tg_tensor_free(z), tg_tensor_free(real), tg_tensor_free(ones), tg_tensor_free(zeros);
    tg_module_free(G), tg_module_free(D);
    tg_ctx_free(c);
    /* the counter works: a fresh context allocates */
    allocs = 0;
    tg_ctx_free(tg_ctx_new(TG_CPU, 1));
    assert_true(allocs > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_steady_state)};
    return cmocka_run_group_tests_name("allocation-free steady state", tests, NULL, NULL);
}

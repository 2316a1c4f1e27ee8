/*
 * test_threads.c — two contexts trained in two threads at once give exactly what each gives
 * alone: a small conv net with BatchNorm and Adam, 4 steps, different seeds per context; the
 * weights after training are compared bit for bit with a run of each alone. `make tsan` runs
 * this under ThreadSanitizer (with one OpenMP thread per context: libgomp is not instrumented).
 */
#include "testutil.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t seed;
    float out[2 * 4 * 3 * 3 + 4 + 4 + 4];
    int n;
    tg_status st;
} job;

static void *train(void *arg) {
    job *j = arg;
    tg_ctx *c = tg_ctx_new(TG_CPU, j->seed);
    tg_module *m = tg_sequential(c);
    tg_sequential_add(m, tg_layer_conv2d(c, 2, 4, 3, 1, 1, true));
    tg_sequential_add(m, tg_layer_batch_norm(c, 4, 0.1f, 1e-5f));
    tg_sequential_add(m, tg_layer_leaky_relu(c, 0.2f));
    tg_sequential_add(m, tg_layer_flatten(c));
    tg_sequential_add(m, tg_layer_dense(c, 4 * 6 * 6, 1, true));
    tg_tensor *p[8];
    int n = tg_module_params(m, p, 8);
    tg_optim *o = tg_adam(c, p, n, 1e-2f, 0.9f, 0.999f, 1e-8f);
    tg_tensor *x = tg_tensor_new4(c, 5, 2, 6, 6), *t = tg_tensor_new4(c, 5, 1, 0, 0);
    j->st = TG_OK;
    for (int s = 0; s < 4 && !j->st; s++) {
        tg_tensor_fill_normal(x, 0, 1);
        tg_tensor_fill_uniform(t, 0, 1);
        tg_optim_zero_grad(o);
        tg_tensor *l = tg_bce_with_logits(c, tg_module_forward(m, x), t);
        j->st = l ? tg_backward(c, l) : TG_ERR_INVALID;
        if (!j->st) j->st = tg_optim_step(o);
        tg_ctx_clear_tape(c);
    }
    tg_tensor *st[8];
    int k = tg_module_state(m, NULL, st, 8), off = 0;
    for (int i = 0; i < k && i < 4; i++) { /* conv weight, bias, bn weight, bn bias */
        const int64_t numel = tg_tensor_numel(st[i]);
        tg_tensor_read(st[i], j->out + off, numel);
        off += (int)numel;
    }
    j->n = off;
    tg_optim_free(o);
    tg_tensor_free(x), tg_tensor_free(t);
    tg_module_free(m);
    tg_ctx_free(c);
    return NULL;
}

static void test_two_contexts_two_threads(void **state) {
    (void)state;
    job alone[2] = {{.seed = 11}, {.seed = 22}}, both[2] = {{.seed = 11}, {.seed = 22}};
    for (int i = 0; i < 2; i++) {
        train(&alone[i]);
        assert_int_equal(alone[i].st, TG_OK);
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, train, &both[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(both[i].st, TG_OK);
        assert_int_equal(both[i].n, alone[i].n);
        assert_true(both[i].n > 70);
        assert_memory_equal(both[i].out, alone[i].out, sizeof(float) * (size_t)both[i].n);
    }
    /* and the two seeds really trained different nets */
    assert_true(memcmp(alone[0].out, alone[1].out, sizeof(float) * (size_t)alone[0].n) != 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_two_contexts_two_threads)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

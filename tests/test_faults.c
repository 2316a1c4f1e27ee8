/*
 * test_faults.c — allocation failures. Every malloc/calloc/realloc/aligned_alloc the library
 * makes goes through the linker's --wrap (Makefile); the k-th one is made to fail, for every k
 * reached by a GAN training step (forward, backward, optimizer, on fresh and on warm contexts),
 * a checkpoint save and load, and a packed-dataset load. Each failing call must report
 * TG_ERR_NOMEM (or NULL) with a message, nothing may crash, and afterwards the same context must
 * run a whole step correctly. Under `make test SAN=1`, LeakSanitizer checks that a failure leaks
 * nothing.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long count, fail_at; /* fail_at 0: never */
void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
static int should_fail(void) { return fail_at && ++count == fail_at; }
void *__wrap_malloc(size_t n) { return should_fail() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t a, size_t b) { return should_fail() ? NULL : __real_calloc(a, b); }
void *__wrap_realloc(void *p, size_t n) { return should_fail() ? NULL : __real_realloc(p, n); }
void *__wrap_aligned_alloc(size_t a, size_t n) { return should_fail() ? NULL : __real_aligned_alloc(a, n); }

static void arm(long k) { count = 0, fail_at = k; }
static int fired(void) { return fail_at && count >= fail_at; }
static void disarm(void) { fail_at = 0; }

typedef struct {
    tg_ctx *c;
    tg_module *G, *D;
    tg_optim *og, *od;
    tg_tensor *z, *real, *ones, *zeros;
} gan;

static void gan_new(gan *g) {
    tg_ctx *c = g->c = tg_ctx_new(TG_CPU, 3);
    g->G = tg_sequential(c), g->D = tg_sequential(c);
    tg_sequential_add(g->G, tg_layer_conv_transpose2d(c, 8, 16, 4, 1, 0, false));
    tg_sequential_add(g->G, tg_layer_batch_norm(c, 16, 0.1f, 1e-5f));
    tg_sequential_add(g->G, tg_layer_leaky_relu(c, 0.2f));
    tg_sequential_add(g->G, tg_layer_conv_transpose2d(c, 16, 3, 4, 2, 1, true));
    tg_sequential_add(g->G, tg_layer_tanh(c));
    tg_sequential_add(g->D, tg_layer_conv2d(c, 3, 8, 4, 2, 1, true));
    tg_sequential_add(g->D, tg_layer_leaky_relu(c, 0.2f));
    tg_sequential_add(g->D, tg_layer_conv2d(c, 8, 16, 3, 1, 1, false));
    tg_sequential_add(g->D, tg_layer_batch_norm(c, 16, 0.1f, 1e-5f));
    tg_sequential_add(g->D, tg_layer_relu(c));
    tg_sequential_add(g->D, tg_layer_flatten(c));
    tg_sequential_add(g->D, tg_layer_dense(c, 16 * 4 * 4, 1, true));
    tg_tensor *p[32];
    int n = tg_module_params(g->G, p, 32);
    g->og = tg_adam(c, p, n, 1e-3f, 0.5f, 0.999f, 1e-7f);
    n = tg_module_params(g->D, p, 32);
    g->od = tg_adam(c, p, n, 1e-3f, 0.5f, 0.999f, 1e-7f);
    g->z = tg_tensor_new4(c, 6, 8, 1, 1), g->real = tg_tensor_new4(c, 6, 3, 8, 8);
    g->ones = tg_tensor_new4(c, 6, 1, 0, 0), g->zeros = tg_tensor_new4(c, 6, 1, 0, 0);
    tg_tensor_fill(g->ones, 1.0f);
    tg_tensor_fill_uniform(g->real, -1, 1);
    assert_non_null(g->og);
    assert_non_null(g->zeros);
}

/* new inputs of batch b: the next step needs a bigger arena and workspace */
static void gan_rebatch(gan *g, int b) {
    tg_tensor_free(g->z), tg_tensor_free(g->real), tg_tensor_free(g->ones), tg_tensor_free(g->zeros);
    g->z = tg_tensor_new4(g->c, b, 8, 1, 1), g->real = tg_tensor_new4(g->c, b, 3, 8, 8);
    g->ones = tg_tensor_new4(g->c, b, 1, 0, 0), g->zeros = tg_tensor_new4(g->c, b, 1, 0, 0);
    tg_tensor_fill(g->ones, 1.0f);
    tg_tensor_fill_uniform(g->real, -1, 1);
    assert_non_null(g->zeros);
}

static void gan_free(gan *g) {
    tg_optim_free(g->og), tg_optim_free(g->od);
    tg_tensor_free(g->z), tg_tensor_free(g->real), tg_tensor_free(g->ones), tg_tensor_free(g->zeros);
    tg_module_free(g->G), tg_module_free(g->D);
    tg_ctx_free(g->c);
}

/* One GAN step that stops at the first failure; returns its status (TG_OK if none). */
static tg_status step(gan *g) {
    tg_ctx *c = g->c;
    tg_status st = tg_tensor_fill_normal(g->z, 0, 1);
    tg_optim_zero_grad(g->od);
    tg_tensor *l = tg_bce_with_logits(c, tg_module_forward(g->D, g->real), g->ones);
    if (!l) return TG_ERR_NOMEM;
    if ((st = tg_backward(c, l))) return st;
    tg_tensor *fake = tg_module_forward(g->G, g->z);
    l = tg_bce_with_logits(c, tg_module_forward(g->D, tg_detach(c, fake)), g->zeros);
    if (!l) return TG_ERR_NOMEM;
    if ((st = tg_backward(c, l)) || (st = tg_optim_step(g->od))) return st;
    tg_module_set_frozen(g->D, true);
    tg_optim_zero_grad(g->og);
    l = tg_bce_with_logits(c, tg_module_forward(g->D, fake), g->ones);
    st = l ? tg_backward(c, l) : TG_ERR_NOMEM;
    if (!st) st = tg_optim_step(g->og);
    tg_module_set_frozen(g->D, false);
    if (!st && !(tg_tensor_item(l) > 0.0f)) st = TG_ERR_INVALID;
    tg_ctx_clear_tape(c);
    return st;
}

/* warm: the context has run a step at batch 6 before (its arena and workspace exist and must
 * grow for the failing step at batch 64) */
static void fail_each_allocation_of_a_step(int warm) {
    int failures = 0;
    for (long k = 1;; k++) {
        gan g;
        gan_new(&g);
        if (warm) {
            assert_int_equal(step(&g), TG_OK);
            gan_rebatch(&g, 64);
        }
        arm(k);
        tg_status st = step(&g);
        const int hit = fired();
        disarm();
        if (!hit) { /* the step needs fewer than k allocations: every one has been failed */
            assert_int_equal(st, TG_OK);
            gan_free(&g);
            break;
        }
        failures++;
        if (st != TG_ERR_NOMEM) fail_msg("allocation %ld failed: status %s (%s)", k, tg_status_str(st), tg_last_error());
        if (!tg_last_error()[0]) fail_msg("allocation %ld failed without a message", k);
        tg_module_set_frozen(g.D, false);
        tg_ctx_clear_tape(g.c);
        if (step(&g) != TG_OK) fail_msg("after allocation %ld failed, the context cannot step: %s", k, tg_last_error());
        gan_free(&g);
    }
    print_message("%s step: failed each of %d allocations in turn\n", warm ? "warm" : "first", failures);
    assert_true(failures > (warm ? 0 : 10));
}

static void test_first_step(void **state) { (void)state; fail_each_allocation_of_a_step(0); }
static void test_warm_step(void **state) { (void)state; fail_each_allocation_of_a_step(1); }

static void test_checkpoint_and_dataset(void **state) {
    (void)state;
    char dir[64] = "/tmp/tg_faults_XXXXXX", f[128], pk[128];
    assert_non_null(mkdtemp(dir));
    snprintf(f, sizeof f, "%s/ck.safetensors", dir);
    snprintf(pk, sizeof pk, "%s/pack.safetensors.xz", dir);
    gan g;
    gan_new(&g);
    assert_int_equal(step(&g), TG_OK);
    tg_state *s = tg_state_new();
    assert_int_equal(tg_state_add_module(s, "G.", g.G), TG_OK);
    assert_int_equal(tg_state_add_optim(s, "optG.", g.og), TG_OK);
    assert_int_equal(tg_state_save(s, f), TG_OK);
    uint8_t px[7 * 8 * 8 * 3];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)i;
    tg_dataset *ds = tg_dataset_from_memory(px, 7, 8);
    assert_int_equal(tg_dataset_save(ds, pk), TG_OK);
    tg_dataset_free(ds);
    int saves = 0, loads = 0, dsloads = 0;
    for (long k = 1;; k++) { /* save: fails cleanly, the previous file stays loadable */
        arm(k);
        tg_status st = tg_state_save(s, f);
        const int hit = fired();
        disarm();
        if (!hit) break;
        saves++;
        if (st != TG_ERR_NOMEM || !tg_last_error()[0]) fail_msg("save, allocation %ld: %s", k, tg_last_error());
        assert_int_equal(tg_state_load(s, f, true), TG_OK);
    }
    for (long k = 1;; k++) {
        arm(k);
        tg_status st = tg_state_load(s, f, true);
        const int hit = fired();
        disarm();
        if (!hit) break;
        loads++;
        if (st != TG_ERR_NOMEM || !tg_last_error()[0]) fail_msg("load, allocation %ld: %s", k, tg_last_error());
    }
    for (long k = 1;; k++) {
        arm(k);
        ds = tg_dataset_load(pk, 8, NULL);
        const int hit = fired();
        disarm();
        if (!hit) {
            assert_non_null(ds);
            tg_dataset_free(ds);
            break;
        }
        dsloads++;
        if (ds) fail_msg("dataset load succeeded although allocation %ld failed", k);
        if (!strstr(tg_last_error(), "memory")) fail_msg("dataset load, allocation %ld: %s", k, tg_last_error());
    }
    print_message("failed each allocation: %d in a save, %d in a load, %d in a dataset load\n", saves, loads, dsloads);
    assert_true(saves > 0 && loads > 0 && dsloads > 0);
    tg_state_free(s);
    gan_free(&g);
    unlink(f), unlink(pk), rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_step),
        cmocka_unit_test(test_warm_step),
        cmocka_unit_test(test_checkpoint_and_dataset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

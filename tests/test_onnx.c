/*
 * test_onnx.c — tg_module_export_onnx without any ONNX tool (tests/onnx/check.sh runs the
 * files in onnx.checker and ONNX Runtime; `make onnx-check`, in CI): the file is a ModelProto
 * (IR 8, opset 17) naming the module's state and the ops; exporting is deterministic and does
 * not depend on the context's precision or on whether gradients are enabled; the caller's tape,
 * training modes and gradient flag are as before, so a pending backward pass still works.
 * The hostile arguments are rows of tests/api_cases.h.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tg-onnx-test.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}
static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void add(tg_module *seq, tg_module *layer) {
    assert_non_null(layer);
    assert_int_equal(tg_sequential_add(seq, layer), TG_OK);
}

/* conv + BN + ReLU + flatten + dense on [N,2,6,6] */
static tg_module *small_net(tg_ctx *ctx) {
    tg_module *s = tg_sequential(ctx);
    assert_non_null(s);
    add(s, tg_layer_conv2d(ctx, 2, 3, 3, 1, 1, true));
    add(s, tg_layer_batch_norm(ctx, 3, 0.5f, 1e-5f));
    add(s, tg_layer_relu(ctx));
    add(s, tg_layer_flatten(ctx));
    add(s, tg_layer_dense(ctx, 3 * 6 * 6, 4, true));
    return s;
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)len + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

static bool has(const uint8_t *b, size_t n, const char *s) {
    const size_t k = strlen(s);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(b + i, s, k)) return true;
    return false;
}

static void export_to(tg_module *m, const char *name, char *path, size_t n) {
    snprintf(path, n, "%s/%s", dir, name);
    tg_onnx_input in = {"x", 4, {2, 2, 6, 6}, NULL};
    if (tg_module_export_onnx(m, &in, 1, "y", path) != TG_OK) fail_msg("export: %s", tg_last_error());
}

static void test_file(void **state) {
    (void)state;
    tg_ctx *ctx = tg_ctx_new(TG_CPU, 3);
    tg_module *m = small_net(ctx);
    char p1[128], p2[128];
    export_to(m, "a.onnx", p1, sizeof p1);
    export_to(m, "b.onnx", p2, sizeof p2);
    size_t n1, n2;
    uint8_t *a = slurp(p1, &n1), *b = slurp(p2, &n2);
    assert_true(n1 > 4 * (3 * 2 * 9 + 4 * 108)); /* the weights are in it */
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1); /* deterministic */
    assert_int_equal(a[0], 0x08); /* ModelProto field 1 (ir_version), varint */
    assert_int_equal(a[1], 8);
    const char *want[] = {"libtensorgan", "Conv", "BatchNormalization", "Relu", "Reshape", "Gemm", "0.weight",
                          "0.bias", "1.running_mean", "1.running_var", "4.weight", "batch"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!has(a, n1, want[i])) fail_msg("\"%s\" is not in the file", want[i]);
    free(a), free(b);
    tg_module_free(m);
    tg_ctx_free(ctx);
}

/* the graph (folded constants included) does not depend on the context's precision or on
 * gradients being enabled */
static void test_precision_and_grad(void **state) {
    (void)state;
    tg_ctx *c1 = tg_ctx_new(TG_CPU, 5), *c2 = tg_ctx_new(TG_CPU, 5);
    tg_module *m1 = small_net(c1), *m2 = small_net(c2);
    /* spectral normalisation's W / sigma is folded: the same bytes from a bf16 context */
    assert_int_equal(tg_module_spectral_norm(tg_sequential_get(m1, 4), 1, 1e-12f), TG_OK);
    assert_int_equal(tg_module_spectral_norm(tg_sequential_get(m2, 4), 1, 1e-12f), TG_OK);
    assert_int_equal(tg_ctx_set_precision(c2, TG_PRECISION_BF16), TG_OK);
    tg_ctx_set_grad_enabled(c2, false);
    char p1[128], p2[128];
    export_to(m1, "fp32.onnx", p1, sizeof p1);
    export_to(m2, "bf16.onnx", p2, sizeof p2);
    assert_false(tg_ctx_grad_enabled(c2));
    size_t n1, n2;
    uint8_t *a = slurp(p1, &n1), *b = slurp(p2, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    free(a), free(b);
    tg_module_free(m1), tg_module_free(m2);
    tg_ctx_free(c1), tg_ctx_free(c2);
}

/* a pending backward pass, the modules' training flags: as before the export */
static void test_caller_state_kept(void **state) {
    (void)state;
    float g1[3 * 2 * 9], g2[3 * 2 * 9], rm1[3], rm2[3];
    for (int pass = 0; pass < 2; pass++) {
        tg_ctx *ctx = tg_ctx_new(TG_CPU, 9);
        tg_module *m = small_net(ctx);
        tg_module_set_training(m, true);
        tg_tensor *x = tg_tensor_new4(ctx, 2, 2, 6, 6);
        assert_int_equal(tg_tensor_fill_normal(x, 0.0f, 1.0f), TG_OK);
        tg_tensor *loss = tg_mean(ctx, tg_module_forward(m, x));
        assert_non_null(loss);
        if (pass) { /* the export between the forward and the backward */
            char p[128];
            export_to(m, "mid.onnx", p, sizeof p);
        }
        assert_int_equal(tg_backward(ctx, loss), TG_OK);
        tg_tensor *params[8];
        assert_int_equal(tg_module_params(m, params, 8), 6);
        assert_int_equal(tg_tensor_read(tg_tensor_grad(params[0]), pass ? g2 : g1, 3 * 2 * 9), TG_OK);
        /* still training: a forward moves BatchNorm's running mean */
        const char *names[8];
        tg_tensor *st[8];
        assert_int_equal(tg_module_state(m, names, st, 8), 8);
        assert_string_equal(names[4], "1.running_mean");
        tg_ctx_clear_tape(ctx);
        assert_non_null(tg_module_forward(m, x));
        assert_int_equal(tg_tensor_read(st[4], pass ? rm2 : rm1, 3), TG_OK);
        tg_tensor_free(x);
        tg_module_free(m);
        tg_ctx_free(ctx);
    }
    assert_memory_equal(g1, g2, sizeof g1);
    assert_memory_equal(rm1, rm2, sizeof rm1);
    assert_true(rm1[0] != 0.0f || rm1[1] != 0.0f || rm1[2] != 0.0f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_precision_and_grad),
        cmocka_unit_test(test_caller_state_kept),
    };
    return cmocka_run_group_tests_name("onnx", tests, setup, teardown);
}

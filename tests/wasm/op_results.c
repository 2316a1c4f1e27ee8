/*
 * op_results.c — every row of the op table (tests/op_cases.c) in the WebAssembly build against
 * the native build's results for the same inputs. Built twice by make test-wasm: natively,
 * `op_results write FILE` runs each row on the CPU (its forward output and every input gradient,
 * from the row's seeded inputs) and writes them; under Node, `op_results check FILE` runs the same
 * rows in WebAssembly and compares with each row's cross-device tolerance (dev_atol, dev_rtol, the
 * one CUDA is held to: only the summation order and fused multiply-adds differ).
 */
#include "../op_cases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *mode, *path;

static void test_against_native(void **state) {
    (void)state;
    int n;
    const tu_op_case *cases = tu_op_cases(&n);
    const int writing = !strcmp(mode, "write");
    FILE *f = fopen(path, writing ? "wb" : "rb");
    if (!f) fail_msg("cannot open %s", path);
    int32_t count = n;
    if (writing) assert_int_equal(fwrite(&count, sizeof count, 1, f), 1);
    else {
        assert_int_equal(fread(&count, sizeof count, 1, f), 1);
        if (count != n) fail_msg("%s holds %d op cases, this build has %d: rebuild both", path, (int)count, n);
    }
    tg_ctx *ctx = tg_ctx_new(TG_CPU, 42);
    assert_non_null(ctx);
    for (int i = 0; i < n; i++) {
        tu_seed(cases[i].seed);
        int64_t k, kn;
        float *got = tu_op_results(ctx, &cases[i].check, &k);
        if (writing) {
            assert_int_equal(fwrite(&k, sizeof k, 1, f), 1);
            assert_int_equal(fwrite(got, sizeof(float), (size_t)k, f), (size_t)k);
        } else {
            assert_int_equal(fread(&kn, sizeof kn, 1, f), 1);
            if (kn != k) fail_msg("%s: %lld values here, %lld natively", cases[i].name, (long long)k, (long long)kn);
            float *native = malloc(sizeof(float) * (size_t)k);
            assert_non_null(native);
            assert_int_equal(fread(native, sizeof(float), (size_t)k, f), (size_t)k);
            char what[160];
            snprintf(what, sizeof what, "%s (output, then input gradients), WebAssembly vs native", cases[i].name);
            tu_close_ff(got, native, k, cases[i].dev_atol, cases[i].dev_rtol, what);
            free(native);
        }
        free(got);
    }
    assert_true(n >= 55); /* the table is not silently empty */
    print_message("%s %d op cases (%s)\n", writing ? "wrote" : "compared", n, path);
    tg_ctx_free(ctx);
    fclose(f);
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "write") && strcmp(argv[1], "check"))) {
        fprintf(stderr, "usage: op_results write|check FILE\n");
        return 2;
    }
    mode = argv[1], path = argv[2];
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_against_native)};
    return cmocka_run_group_tests_name("op_results", tests, NULL, NULL);
}

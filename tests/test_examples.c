/*
 * test_examples.c — the example programs other than mangagan, run as a user runs them:
 * examples/fashion learns Fashion-MNIST (a slice of it, one epoch: well above chance on held-out
 * images) and refuses a missing data directory with a message naming the package. Skipped, with
 * the reason, when Debian's dataset-fashion-mnist is not installed.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

static int run(char *out, size_t cap, const char *args) {
    const char *b = getenv("BUILD");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=2 %s/examples/fashion %s 2>&1", b ? b : "build", args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_fashion_learns(void **state) {
    (void)state;
    if (access(FASHION_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        print_message("skipped: %s is not installed (apt-get install dataset-fashion-mnist)\n", FASHION_DIR);
        skip();
    }
    char out[8192];
    int rc = run(out, sizeof out, "--limit 2000 --test-limit 1000 --epochs 1 --batch 64 --device cpu");
    if (rc) fail_msg("fashion exited %d:\n%s", rc, out);
    const char *a = strstr(out, "fashion: test accuracy ");
    assert_non_null(a);
    double acc = atof(a + strlen("fashion: test accuracy "));
    if (!(acc >= 60.0)) fail_msg("accuracy %.2f%% after one epoch on 2000 images (chance is 10%%):\n%s", acc, out);
}

static void test_fashion_refusals(void **state) {
    (void)state;
    char out[8192];
    assert_int_equal(run(out, sizeof out, "--data /nonexistent --epochs 1"), 1);
    assert_non_null(strstr(out, "install Debian's dataset-fashion-mnist"));
    assert_int_equal(run(out, sizeof out, "--epochs 0"), 1);
    assert_non_null(strstr(out, "--epochs wants a whole number"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fashion_learns),
        cmocka_unit_test(test_fashion_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_blas.c — a slow GEMM is never silent. Each case runs in a forked child (the BLAS is chosen
 * once per process) with the environment a user might have: the built-in fallback
 * (TG_BLAS=builtin), the reference BLAS (netlib libblas3, as Debian installs it), an
 * OPENBLAS_CORETYPE naming a slower kernel than the CPU supports, and the automatic choice. The
 * child reports tg_blas_info() and the warnings the log callback received through a pipe; the
 * built-in GEMM must also compute a correct product, and tg_swd (which projects through the
 * BLAS when there is one) the same distance as with OpenBLAS.
 */
#include "testutil.h"

#include <cpuid.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define REF_BLAS "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3"

static char warnings[2048];
static double child_swd;   /* what small_swd() gave in the last probe's child */
static double builtin_swd; /* ... in the TG_BLAS=builtin child (the parent never runs OpenMP: it forks) */
static void on_log(tg_log_level level, const char *msg, void *user) {
    (void)user;
    if (level == TG_LOG_WARN) strncat(warnings, msg, sizeof warnings - strlen(warnings) - 1);
}

/* in the child: a [3,5] x [4,5]^T linear against a naive loop; 1 if it matches */
static int linear_ok(void) {
    tg_ctx *c = tg_ctx_new(TG_CPU, 1);
    float xv[15], wv[20], y[12];
    for (int i = 0; i < 15; i++) xv[i] = (float)(i % 7) - 3.0f;
    for (int i = 0; i < 20; i++) wv[i] = (float)(i % 5) * 0.5f - 1.0f;
    int64_t xs[2] = {3, 5}, ws[2] = {4, 5};
    tg_tensor *x = tu_tensor(c, 2, xs, xv, 0), *w = tu_tensor(c, 2, ws, wv, 0);
    tg_tensor *out = tg_linear(c, x, w, NULL);
    int ok = out && tg_tensor_read(out, y, 12) == TG_OK;
    for (int i = 0; ok && i < 3; i++)
        for (int j = 0; j < 4; j++) {
            float ref = 0.0f;
            for (int k = 0; k < 5; k++) ref += xv[i * 5 + k] * wv[j * 5 + k];
            if (y[i * 4 + j] != ref) ok = 0;
        }
    tg_ctx_clear_tape(c);
    tg_tensor_free(x), tg_tensor_free(w);
    tg_ctx_free(c);
    return ok;
}

/* tg_swd of two fixed sets of 16x16 images (two levels, small options) */
static double small_swd(void) {
    static uint8_t a[8 * 16 * 16 * 3], b[8 * 16 * 16 * 3];
    for (size_t i = 0; i < sizeof a; i++) a[i] = (uint8_t)(i * 37 % 251), b[i] = (uint8_t)(i * 91 % 241);
    tg_swd_options o;
    tg_swd_defaults(&o);
    o.nhoods_per_image = 16, o.dir_repeats = 2, o.dirs_per_repeat = 8, o.min_size = 8;
    double m = -1;
    if (tg_swd(a, 8, b, 8, 16, &o, NULL, 0, NULL, &m) != TG_OK) return -1;
    return m;
}

/* Runs tg_blas_info() in a child with var=value set (value NULL: unset); info and warnings come
 * back in info[], warn[]; *gemm_ok whether a product through the chosen GEMM was right. */
static void probe(const char *var, const char *value, char *info, char *warn, int *gemm_ok) {
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        if (value) setenv(var, value, 1);
        else unsetenv(var);
        tg_set_log_callback(on_log, NULL);
        char buf[4096];
        int ok = linear_ok();
        int n = snprintf(buf, sizeof buf, "%d %.17g\n%s\n%s", ok, small_swd(), tg_blas_info(), warnings);
        if (write(fd[1], buf, (size_t)n) != n) _exit(3);
        _exit(0);
    }
    close(fd[1]);
    char buf[4096];
    size_t n = 0;
    ssize_t r;
    while ((r = read(fd[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
    buf[n] = 0;
    close(fd[0]);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char *l1 = strchr(buf, '\n'), *l2 = l1 ? strchr(l1 + 1, '\n') : NULL;
    assert_non_null(l2);
    *gemm_ok = buf[0] == '1';
    child_swd = atof(buf + 2);
    snprintf(info, 1024, "%.*s", (int)(l2 - l1 - 1), l1 + 1);
    snprintf(warn, 2048, "%s", l2 + 1);
}

static void test_builtin_gemm_warns(void **state) {
    (void)state;
    char info[1024], warn[2048];
    int ok;
    probe("TG_BLAS", "builtin", info, warn, &ok);
    assert_true(ok);
    builtin_swd = child_swd; /* compared with the automatic choice's below */
    if (!strstr(info, "SLOW: built-in fallback GEMM")) fail_msg("info: %s", info);
    if (!strstr(warn, "SLOW: built-in fallback GEMM")) fail_msg("no warning; info: %s", info);
}

static void test_reference_blas_warns(void **state) {
    (void)state;
    if (access(REF_BLAS, R_OK) != 0) skip(); /* Debian's libblas3 not installed */
    char info[1024], warn[2048];
    int ok;
    probe("TG_BLAS", REF_BLAS, info, warn, &ok);
    assert_true(ok);
    if (!strstr(info, "SLOW") || !strstr(info, "reference BLAS")) fail_msg("info: %s", info);
    if (!strstr(warn, "reference BLAS")) fail_msg("no warning; info: %s", info);
}

static int cpu_has_avx2(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 5) & 1;
}

/* a system-wide OPENBLAS_CORETYPE naming a generic kernel: used, but said to be slow */
static void test_slow_coretype_warns(void **state) {
    (void)state;
    char info[1024], warn[2048];
    int ok;
    probe("TG_BLAS", NULL, info, warn, &ok); /* make sure TG_BLAS is not set */
    if (!strstr(info, "OpenBLAS") || !cpu_has_avx2()) skip(); /* no OpenBLAS, or an old CPU */
    setenv("OPENBLAS_CORETYPE", "Prescott", 1);
    probe("TG_BLAS", NULL, info, warn, &ok);
    unsetenv("OPENBLAS_CORETYPE");
    assert_true(ok);
    if (!strstr(info, "core Prescott") || !strstr(info, "SLOW: this CPU supports the faster"))
        fail_msg("info: %s", info);
    if (!strstr(warn, "unset OPENBLAS_CORETYPE")) fail_msg("no warning; info: %s", info);
}

/* left alone, the library picks the CPU's best kernel and warns about nothing */
static void test_automatic_choice_is_quiet(void **state) {
    (void)state;
    char info[1024], warn[2048];
    int ok;
    probe("OPENBLAS_CORETYPE", NULL, info, warn, &ok);
    if (!strstr(info, "OpenBLAS")) skip();
    assert_true(ok);
    if (strstr(info, "SLOW") || warn[0]) fail_msg("info: %s\nwarnings: %s", info, warn);
    /* tg_swd without a BLAS (its plain projection loop) gives the distance it gives with OpenBLAS */
    if (!(child_swd > 0 && fabs(builtin_swd - child_swd) <= 1e-4 * child_swd))
        fail_msg("tg_swd with the built-in GEMM %.9g, with OpenBLAS %.9g", builtin_swd, child_swd);
}

int main(void) {
    unsetenv("TG_BLAS");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_gemm_warns),
        cmocka_unit_test(test_reference_blas_warns),
        cmocka_unit_test(test_slow_coretype_warns),
        cmocka_unit_test(test_automatic_choice_is_quiet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

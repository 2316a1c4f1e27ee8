/*
 * cmocka_shim.c — the runner behind tests/wasm/cmocka.h (see there): one test at a time, a failure
 * or skip longjmps back here, cmocka's output lines, the failure count as the exit status.
 */
#include "cmocka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static jmp_buf cm_jump;
static int cm_running;

void print_message(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

void print_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

void cm_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[   ERROR  ] --- ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n[   LINE   ] --- %s:%d: error: Failure!\n", file, line);
    va_end(ap);
    if (!cm_running) abort(); /* outside a test (a group fixture): nothing to return to */
    longjmp(cm_jump, 1);
}

void cm_skip(const char *file, int line) {
    (void)file, (void)line;
    if (!cm_running) abort();
    longjmp(cm_jump, 2);
}

void cm_memory(const void *a, const void *b, size_t n, int want_equal, const char *file, int line) {
    const int eq = memcmp(a, b, n) == 0;
    if (eq != want_equal) cm_fail(file, line, "%zu bytes are %s", n, eq ? "equal" : "not equal");
}

void cm_string(const char *a, const char *b, const char *file, int line) {
    if (!a || !b || strcmp(a, b)) cm_fail(file, line, "\"%s\" != \"%s\"", a ? a : "(null)", b ? b : "(null)");
}

int cm_run_group(const char *name, const struct CMUnitTest *tests, size_t n, CMFixtureFunction setup,
                 CMFixtureFunction teardown) {
    void *state = NULL;
    int failed = 0, skipped = 0;
    printf("[==========] %s: Running %zu test(s).\n", name, n);
    if (setup && setup(&state)) {
        printf("[  ERROR   ] %s: group setup failed\n", name);
        return (int)n;
    }
    for (size_t i = 0; i < n; i++) {
        printf("[ RUN      ] %s\n", tests[i].name);
        fflush(stdout);
        void *st = state;
        cm_running = 1;
        const int r = setjmp(cm_jump);
        if (r == 0) tests[i].test_func(&st);
        cm_running = 0;
        if (r == 1) failed++, printf("[  FAILED  ] %s\n", tests[i].name);
        else if (r == 2) skipped++, printf("[  SKIPPED ] %s\n", tests[i].name);
        else printf("[       OK ] %s\n", tests[i].name);
        fflush(stdout);
    }
    if (teardown) teardown(&state);
    printf("[==========] %s: %zu test(s) run.\n[  PASSED  ] %zu test(s).\n", name, n, n - failed - skipped);
    if (skipped) printf("[  SKIPPED ] %d test(s).\n", skipped);
    if (failed) printf("[  FAILED  ] %d test(s).\n", failed);
    return failed;
}

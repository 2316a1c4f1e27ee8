/*
 * cmocka.h — the part of cmocka's API the suites here use, for the WebAssembly build (make
 * test-wasm), where no cmocka library exists: Debian packages it for the host only. The suites
 * compile unchanged against it (-Itests/wasm) and print cmocka's lines. A failed assertion ends its
 * test (longjmp back to the runner) and the group goes on; the exit status is the failure count.
 * Not a general replacement: no mocks, no per-test setup.
 */
#ifndef TG_CMOCKA_SHIM_H
#define TG_CMOCKA_SHIM_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef void (*CMUnitTestFunction)(void **state);
typedef int (*CMFixtureFunction)(void **state);
struct CMUnitTest {
    const char *name;
    CMUnitTestFunction test_func;
};

void cm_fail(const char *file, int line, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));
void cm_skip(const char *file, int line) __attribute__((noreturn));
void print_message(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void print_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cm_run_group(const char *name, const struct CMUnitTest *tests, size_t n, CMFixtureFunction setup,
                 CMFixtureFunction teardown);
void cm_memory(const void *a, const void *b, size_t n, int want_equal, const char *file, int line);
void cm_string(const char *a, const char *b, const char *file, int line);

#define cmocka_unit_test(f) {#f, f}
#define cmocka_run_group_tests_name(name, t, s, d) cm_run_group(name, t, sizeof(t) / sizeof((t)[0]), s, d)
#define cmocka_run_group_tests(t, s, d) cm_run_group(#t, t, sizeof(t) / sizeof((t)[0]), s, d)

#define fail() cm_fail(__FILE__, __LINE__, "fail()")
#define fail_msg(...) cm_fail(__FILE__, __LINE__, __VA_ARGS__)
#define skip() cm_skip(__FILE__, __LINE__)
#define assert_true(c) ((c) ? (void)0 : cm_fail(__FILE__, __LINE__, "%s is false", #c))
#define assert_false(c) (!(c) ? (void)0 : cm_fail(__FILE__, __LINE__, "%s is true", #c))
#define assert_non_null(p) ((p) != NULL ? (void)0 : cm_fail(__FILE__, __LINE__, "%s is NULL", #p))
#define assert_null(p) ((p) == NULL ? (void)0 : cm_fail(__FILE__, __LINE__, "%s is not NULL", #p))
#define assert_int_equal(a, b)                                                                          \
    do {                                                                                                \
        const long long cm_a = (long long)(a), cm_b = (long long)(b);                                   \
        if (cm_a != cm_b) cm_fail(__FILE__, __LINE__, "%lld != %lld (%s, %s)", cm_a, cm_b, #a, #b);     \
    } while (0)
#define assert_int_not_equal(a, b)                                                                      \
    do {                                                                                                \
        const long long cm_a = (long long)(a), cm_b = (long long)(b);                                   \
        if (cm_a == cm_b) cm_fail(__FILE__, __LINE__, "%lld == %lld (%s, %s)", cm_a, cm_b, #a, #b);     \
    } while (0)
#define assert_ptr_equal(a, b)                                                                          \
    ((const void *)(a) == (const void *)(b) ? (void)0 : cm_fail(__FILE__, __LINE__, "%s != %s", #a, #b))
#define assert_memory_equal(a, b, n) cm_memory(a, b, n, 1, __FILE__, __LINE__)
#define assert_memory_not_equal(a, b, n) cm_memory(a, b, n, 0, __FILE__, __LINE__)
#define assert_string_equal(a, b) cm_string(a, b, __FILE__, __LINE__)

#endif

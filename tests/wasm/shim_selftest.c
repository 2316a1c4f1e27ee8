/*
 * shim_selftest.c — tests/wasm/cmocka.h must fail what cmocka fails: of these five tests one
 * passes, one skips and three fail (an integer assertion, fail_msg, a NULL check), so the program
 * must print three FAILED lines and exit with status 3 (tests/wasm/check.sh checks both). A
 * stand-in that let everything pass would make every WebAssembly suite meaningless.
 */
#include <cmocka.h>

#include <stddef.h>

static void passes(void **state) {
    (void)state;
    assert_int_equal(2 + 2, 4);
    assert_true(1);
    assert_non_null(state);
    assert_string_equal("a", "a");
}
static void skips(void **state) { (void)state; skip(); }
static void int_differs(void **state) { (void)state; assert_int_equal(2 + 2, 5); }
static void fails_with_message(void **state) { (void)state; fail_msg("expected failure %d", 42); }
static void null_found(void **state) {
    (void)state;
    const char *p = NULL;
    assert_non_null(p);
    fail_msg("not reached: assert_non_null(NULL) must end the test");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(passes), cmocka_unit_test(skips), cmocka_unit_test(int_differs),
        cmocka_unit_test(fails_with_message), cmocka_unit_test(null_found),
    };
    return cmocka_run_group_tests_name("shim self-test", tests, NULL, NULL);
}

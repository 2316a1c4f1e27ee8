/*
 * op_cases.h — one table of op cases that two suites run: test_ops checks each CPU case against
 * its naive double-precision reference and central finite differences (tu_check_op), test_cuda
 * runs every case on the CPU and the GPU from the same inputs and compares (tu_compare_ctx).
 * A case whose shapes are too large for finite differences (or whose op has no closed-form
 * reference, such as dropout) is compared across devices only. Every op is described here
 * once: a new op adds its cases to this file and nowhere else in the tests (test_api derives the
 * op's hostile calls from its rows: see fn and bad below).
 */
#ifndef OP_CASES_H
#define OP_CASES_H

#include "testutil.h"

/* One argument out of range: the row's call with cfg instead of its own must fail with want and
 * a message holding frag (test_api runs these). */
typedef struct {
    const void *cfg;
    tg_status want;
    const char *frag;
} tu_bad_cfg;

#define TU_MAX_BAD 4
typedef struct {
    const char *name;
    const char *fn;           /* the public function the row calls; NULL where it calls several or an
                               * internal one. test_api derives hostile calls from it: ctx NULL, each
                               * required input NULL, each input on another context, a freed context */
    tu_bad_cfg bad[TU_MAX_BAD]; /* arguments out of range, each a failing call test_api makes */
    int n_bad;
    tu_op_check check;        /* inputs, lib, ref (NULL: compared across devices only), tolerances */
    uint64_t seed;            /* tu_seed before the inputs are drawn */
    int cpu;                  /* run the reference + finite-difference check on the CPU */
    double dev_atol, dev_rtol; /* CUDA vs CPU */
} tu_op_case;

/* Fills the table (built once; pointers stay valid) and returns it; *n gets the count. */
const tu_op_case *tu_op_cases(int *n);

#endif

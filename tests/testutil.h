/*
 * testutil.h — shared by the cmocka suites: a deterministic test RNG (independent of the
 * library's), the one tolerance check (atol + rtol*|ref|, reporting the worst index), and a
 * generic op checker that compares an op's forward against a double-precision reference written
 * in the test and its backward against central finite differences of that reference.
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <tensorgan.h>

/* xorshift-based, seeded per test: values in [lo, hi) */
void tu_seed(uint64_t s);
double tu_uniform(double lo, double hi);
void tu_fill(float *x, int64_t n, double lo, double hi);

/* Fails the test (with the worst index and values) unless |got-ref| <= atol + rtol*|ref| for all
 * i. what names the quantity in the message. */
void tu_close_f(const float *got, const double *ref, int64_t n, double atol, double rtol,
                const char *what);
void tu_close_ff(const float *got, const float *ref, int64_t n, double atol, double rtol,
                 const char *what);

/* x as a float rounded to the nearest bfloat16 (ties to even; NaN kept): written here from the
 * format's definition, independently of the library's rounding. */
double tu_bf16_round(double x);

/* A leaf tensor with the given values. */
tg_tensor *tu_tensor(tg_ctx *ctx, int ndim, const int64_t *shape, const float *v, int requires_grad);
/* Host copy of a tensor (malloc'd). */
float *tu_read(const tg_tensor *t);

/* Runs the shell command cmd, its stdout (and whatever it redirects there) into out (cap bytes,
 * NUL-terminated); returns its exit status, 128 when it did not exit normally. */
int tu_run_capture(const char *cmd, char *out, size_t cap);
/* Fails the test unless path is a PNG of w x h pixels. */
void tu_png_size(const char *path, int w, int h);
/* A training run's out/log.csv without its timing columns (the second, seconds, and the last,
 * images/s): "step|losses...\n" per line, for comparing runs bit for bit. Fails the test if
 * there is no log. The caller frees it. */
char *tu_log_losses(const char *out_dir);

/* ---- generic op checking ---------------------------------------------------------------- */
#define TU_MAX_IN 5
typedef struct {
    int ndim;
    int64_t shape[4];
    double lo, hi;     /* value range */
    int requires_grad;
    int absent;        /* passed as NULL (e.g. no bias) */
} tu_in_spec;

typedef tg_tensor *(*tu_lib_fn)(tg_ctx *ctx, tg_tensor **in, const void *cfg);
/* in[i] are double copies of the inputs (NULL where absent); writes out[out_n] */
typedef void (*tu_ref_fn)(double *const *in, double *out, const void *cfg);

typedef struct {
    int n_in;
    tu_in_spec in[TU_MAX_IN];
    tu_lib_fn lib;
    tu_ref_fn ref;
    const void *cfg;
    int64_t out_n;
    double fwd_atol, fwd_rtol, grad_atol, grad_rtol;
    double h;          /* finite-difference step (default 1e-3) */
    unsigned bf16_in;  /* bit i: a context in TG_PRECISION_BF16 multiplies input i rounded to
                        * bf16 (a convolution's or dense layer's x and w) */
} tu_op_check;

/* Forward vs reference and every input gradient vs finite differences, on ctx. On a context in
 * TG_PRECISION_BF16 the reference sees the inputs of bf16_in rounded to bf16 (tg_bf16 rounding,
 * to nearest even), so the tolerance stays float32 accumulation's: the forward uses the rounded
 * inputs; input i's gradient is the finite difference in input i itself of the loss with the
 * other bf16_in inputs rounded, and, when i is one of them, the output gradient rounded too (its
 * gradient pass multiplies dy, rounded, by the other operand). */
void tu_check_op(tg_ctx *ctx, const tu_op_check *c);
/* The op's output, then each input's gradient (input order), for the test's random inputs and
 * output gradient (tu_seed first): one malloc'd array of *n floats, to compare across builds
 * (tests/wasm/op_results.c: the WebAssembly build against the native one). */
float *tu_op_results(tg_ctx *ctx, const tu_op_check *c, int64_t *n);
/* Same random inputs on ctx_a and ctx_b: outputs and gradients must agree within tolerance. */
void tu_compare_ctx(tg_ctx *a, tg_ctx *b, const tu_op_check *c, double atol, double rtol);

#endif

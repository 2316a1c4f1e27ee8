/*
 * example.h — the few helpers every example program here writes otherwise: die with the
 * program's name (EXAMPLE_NAME, defined before including this), TRY for a library call that must
 * succeed, need for a result that must not be NULL, a monotonic clock, a whole-number check for
 * command lines, splitmix64 (the examples' own generator for data order, so it never disturbs
 * the library's RNG), and what the benchmarks print (sorting times, peak memory). Header-only;
 * uses the public API alone.
 */
#ifndef EXAMPLE_H
#define EXAMPLE_H

#include <tensorgan.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#ifndef EXAMPLE_NAME
#error "define EXAMPLE_NAME (the program's name for its messages) before including example.h"
#endif

static inline void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static inline void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, EXAMPLE_NAME ": ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

#define TRY(call)                                                                               \
    do {                                                                                        \
        if ((call) != TG_OK) die("%s", tg_last_error());                                        \
    } while (0)

static inline void *need(void *p) {
    if (!p) die("%s", tg_last_error()[0] ? tg_last_error() : "out of memory");
    return p;
}

static inline double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Whether v is a whole number in [lo, hi] (nothing else in it, no overflow); it goes to *out.
 * Each program reports a refusal its own way. */
static inline int parse_long(const char *v, long lo, long hi, long *out) {
    char *e;
    errno = 0;
    const long x = strtol(v, &e, 10);
    if (errno || e == v || *e || x < lo || x > hi) return 0;
    *out = x;
    return 1;
}

/* qsort's comparison of doubles, ascending (step times) */
static inline int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* this process's peak resident memory in MB (the benchmarks' "peak RSS") */
static inline double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* splitmix64 */
static inline uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* --precision NAME on ctx (fp32, bf16, or tf32 on CUDA): tg_ctx_set_precision, or a message
 * naming the option and why. NULL: fp32. */
static inline void set_precision(tg_ctx *ctx, const char *name) {
    const int p = tg_precision_parse(name ? name : "fp32");
    if (p < 0) die("--precision %s: not fp32, bf16 or tf32", name);
    if (tg_ctx_set_precision(ctx, (tg_precision)p) != TG_OK) die("--precision %s: %s", name, tg_last_error());
}

#endif

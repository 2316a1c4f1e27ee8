/*
 * checked.h — the one way the library does size arithmetic: products and sums of shapes,
 * element counts and byte counts that say when they overflow instead of wrapping, and the
 * bounds every public entry point holds its arguments to (docs/api.md, "Limits").
 *
 * Every computation of a size from caller-supplied numbers (a tensor's dims, a kernel, a
 * padding, an image's width and height, a count of images) goes through these, so a wrapped
 * product can never size an allocation or a loop. Plain C11 + GCC/Clang builtins; compiled by cc
 * and by nvcc.
 */
#ifndef TG_CHECKED_H
#define TG_CHECKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Elements of one tensor: fewer than 2^40 (4 TiB of float32, more than any machine holds; the
 * bound keeps every element count, and 4x it in bytes, far from int64/size_t overflow). */
#define TG_MAX_NUMEL (((int64_t)1 << 40) - 1)
/* One image dimension (N, C, H, W of a batch; a kernel side; a padding; a stride) and the size
 * of one plane H*W: the kernels index within a plane with 32-bit ints. */
#define TG_MAX_SIDE INT32_MAX

/* *out = a * b; false (and *out untouched) when either is negative or the product overflows */
static inline bool tg_mul_ok(int64_t a, int64_t b, int64_t *out) {
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) return false;
    *out = r;
    return true;
}
/* *out = a + b; false when either is negative or the sum overflows */
static inline bool tg_add_ok(int64_t a, int64_t b, int64_t *out) {
    int64_t r;
    if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &r)) return false;
    *out = r;
    return true;
}
/* *out = the product of v[0..n), each >= 0; false when it overflows or exceeds limit */
static inline bool tg_prod_ok(const int64_t *v, int n, int64_t limit, int64_t *out) {
    int64_t p = 1;
    for (int i = 0; i < n; i++)
        if (!tg_mul_ok(p, v[i], &p) || p > limit) return false;
    *out = p;
    return true;
}
/* *out = count elements of elem bytes, as a size_t; false on overflow or a negative count */
static inline bool tg_bytes_ok(int64_t count, size_t elem, size_t *out) {
    size_t r;
    if (count < 0 || __builtin_mul_overflow((size_t)count, elem, &r)) return false;
    *out = r;
    return true;
}
/* whether v fits an int (the kernels' spatial arithmetic) */
static inline bool tg_fits_int(int64_t v) { return v >= INT32_MIN && v <= INT32_MAX; }

#endif /* TG_CHECKED_H */

/*
 * metrics.c — image-set quality metrics, on the host.
 *
 * tg_swd: the sliced Wasserstein distance of Karras et al. 2018 ("Progressive Growing of GANs",
 * section 5 and appendix D), as their metrics/sliced_wasserstein.py computes it:
 *   1. a Laplacian pyramid of each image, from size x size down to min_size (5x5 binomial filter,
 *      mirror borders, as cv2.pyrDown / pyrUp; the last level is the Gaussian one);
 *   2. per image and level, nhoods_per_image neighbourhoods of nhood x nhood pixels x 3 channels
 *      at random positions: descriptors of 3*nhood*nhood values;
 *   3. per set and level, every descriptor component normalised by its colour channel's mean and
 *      standard deviation over all descriptors of that set;
 *   4. per level, dir_repeats times: dirs_per_repeat random unit directions, both sets projected
 *      on each, the projections sorted, and the mean absolute difference of the sorted lists (the
 *      1-D Wasserstein-1 distance, averaged over directions); averaged over repeats, times 1e3.
 * Random numbers come from Philox (tg_math.h), keyed by the seed: the neighbourhood positions on
 * (set, image index, level, neighbourhood) — each set draws its own, as in the reference, so a
 * set against itself scores near 0 but not exactly — and the directions on (level, repeat,
 * direction, component).
 */
#include "core.h"
#include "tg_omp.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void tg_swd_defaults(tg_swd_options *o) {
    if (!o) {
        tg_fail(TG_ERR_INVALID, "tg_swd_defaults", "o is NULL");
        return;
    }
    o->nhood = 7;
    o->nhoods_per_image = 128;
    o->dir_repeats = 4;
    o->dirs_per_repeat = 128;
    o->min_size = 16;
    o->seed = 0;
}

/* scipy.ndimage's 'mirror' border: d c b | a b c d | c b a */
static inline int mirror(int i, int n) {
    if (n == 1) return 0;
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
}

static const float BINOM5[5] = {1.0f / 16, 4.0f / 16, 6.0f / 16, 4.0f / 16, 1.0f / 16};

/* 5x5 binomial blur of one s x s plane (separable, mirror borders) into dst; tmp s*s floats */
static void blur(const float *src, float *dst, float *tmp, int s, float gain) {
    for (int y = 0; y < s; y++)
        for (int x = 0; x < s; x++) {
            float acc = 0;
            for (int k = 0; k < 5; k++) acc += BINOM5[k] * src[y * s + mirror(x + k - 2, s)];
            tmp[y * s + x] = acc;
        }
    for (int y = 0; y < s; y++)
        for (int x = 0; x < s; x++) {
            float acc = 0;
            for (int k = 0; k < 5; k++) acc += BINOM5[k] * tmp[mirror(y + k - 2, s) * s + x];
            dst[y * s + x] = gain * acc;
        }
}

/* The Laplacian pyramid of one RGB image (uint8 HWC) into planes: level l holds 3 planes of
 * (size >> l)^2 floats, channel-major. work: 3 * size * size floats. */
static void pyramid(const uint8_t *img, int size, int levels, float **lv, float *work) {
    float *blurred = work, *tmp = work + size * size, *up = work + 2 * size * size;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < size * size; i++) lv[0][c * size * size + i] = (float)img[i * 3 + c];
    for (int l = 1; l < levels; l++) {
        const int s = size >> (l - 1), h = s / 2;
        for (int c = 0; c < 3; c++) {
            float *hi = lv[l - 1] + c * s * s, *lo = lv[l] + c * h * h;
            blur(hi, blurred, tmp, s, 1.0f);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < h; x++) lo[y * h + x] = blurred[(2 * y) * s + 2 * x];
            /* hi -= pyr_up(lo): zeros between the samples, blurred with 4x the filter */
            memset(up, 0, sizeof(float) * (size_t)s * s);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < h; x++) up[(2 * y) * s + 2 * x] = lo[y * h + x];
            blur(up, blurred, tmp, s, 4.0f);
            for (int i = 0; i < s * s; i++) hi[i] -= blurred[i];
        }
    }
}

/* Top-left corner of neighbourhood j of image i at level l: both in [0, s - nhood]. */
static inline void nhood_pos(uint64_t seed, int set, int64_t i, int l, int j, int per_image,
                             int span, int *y, int *x) {
    tg_u32x4 r = tg_philox(((uint64_t)i * 16 + (uint64_t)l) * (uint64_t)per_image + (uint64_t)j,
                           TG_SWD_STREAM_POS + (uint32_t)set, seed);
    *y = (int)(r.v[0] % (uint32_t)span);
    *x = (int)(r.v[1] % (uint32_t)span);
}

/* Descriptors of one set at level l: [n * per_image][3][nh][nh], normalised per channel. */
static tg_status descriptors(const uint8_t *imgs, int64_t n, int set, int size, int levels, int l,
                             const tg_swd_options *o, float *desc) {
    const int s = size >> l, nh = o->nhood, per = o->nhoods_per_image, dim = 3 * nh * nh;
    const int64_t plane_total = (int64_t)3 * size * size * 2; /* the pyramid fits in 2x level 0 */
    int fail = 0;
#pragma omp parallel
    {
        float *buf = malloc(sizeof(float) * (size_t)(plane_total + 3 * (int64_t)size * size));
        if (!buf) {
#pragma omp atomic write
            fail = 1;
        }
        float *lv[16];
        if (buf) {
            float *p = buf;
            for (int k = 0; k < levels; k++) {
                lv[k] = p;
                p += 3 * (size >> k) * (size >> k);
            }
        }
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; i++) {
            if (!buf) continue;
            pyramid(imgs + i * (int64_t)size * size * 3, size, levels, lv, buf + plane_total);
            for (int j = 0; j < per; j++) {
                int y0, x0;
                nhood_pos(o->seed, set, i, l, j, per, s - nh + 1, &y0, &x0);
                float *d = desc + (i * per + j) * dim;
                for (int c = 0; c < 3; c++)
                    for (int y = 0; y < nh; y++)
                        for (int x = 0; x < nh; x++)
                            d[(c * nh + y) * nh + x] = lv[l][(c * s + y0 + y) * s + x0 + x];
            }
        }
        free(buf);
    }
    if (fail) return tg_fail(TG_ERR_NOMEM, "tg_swd", "out of memory for the image pyramids");
    /* per-channel mean and (population) standard deviation over all descriptors, in double, in
     * one fixed order (the result must not depend on the thread count) */
    const int64_t rows = n * per, per_ch = (int64_t)nh * nh;
    for (int c = 0; c < 3; c++) {
        double sum = 0, sq = 0;
        for (int64_t r = 0; r < rows; r++) {
            const float *d = desc + r * dim + c * per_ch;
            for (int64_t k = 0; k < per_ch; k++) sum += d[k], sq += (double)d[k] * d[k];
        }
        const double cnt = (double)rows * (double)per_ch, mean = sum / cnt;
        const double var = sq / cnt - mean * mean, sd = var > 0 ? sqrt(var) : 0;
        const float m = (float)mean, inv = sd > 0 ? (float)(1.0 / sd) : 0.0f;
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            float *d = desc + r * dim + c * per_ch;
            for (int64_t k = 0; k < per_ch; k++) d[k] = (d[k] - m) * inv;
        }
    }
    return TG_OK;
}

/* out [D][rows] = dirs [D][dim] x desc^T: the CPU backend's GEMM (its BLAS, or its plain loops
 * without one), on a context of tg_swd's own */
static void project(tg_ctx *cpu, const float *dirs, int D, const float *desc, int64_t rows, int dim, float *out) {
    const tg_gemm_args g = {0, 1, D, rows, dim, 1.0f, 0.0f, tg_mem_f32(dirs, (int64_t)D * dim),
                            tg_mem_f32(desc, rows * dim), tg_mem_f32(out, (int64_t)D * rows), dim, dim, rows,
                            TG_PRECISION_FP32};
    cpu->be->gemm(cpu, &g);
}

/* float -> uint32 with the same order (negative floats reversed) */
static inline uint32_t fkey(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u & 0x80000000u ? ~u : u | 0x80000000u;
}
static inline float keyf(uint32_t k) {
    uint32_t u = k & 0x80000000u ? k & 0x7fffffffu : ~k;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* LSD radix sort of n keys, 3 passes of 11 bits; b is scratch of n keys; the result is in a */
static void radix_sort(uint32_t *a, uint32_t *b, int64_t n) {
    for (int pass = 0; pass < 3; pass++) {
        const int shift = pass * 11;
        int64_t cnt[2048] = {0};
        for (int64_t i = 0; i < n; i++) cnt[(a[i] >> shift) & 2047]++;
        int64_t sum = 0;
        for (int k = 0; k < 2048; k++) {
            int64_t t = cnt[k];
            cnt[k] = sum;
            sum += t;
        }
        for (int64_t i = 0; i < n; i++) b[cnt[(a[i] >> shift) & 2047]++] = a[i];
        uint32_t *t = a;
        a = b;
        b = t;
    }
    /* after an odd number of passes the sorted keys are in the caller's b: move them back */
    memcpy(b, a, sizeof(uint32_t) * (size_t)n);
}

tg_status tg_swd(const uint8_t *a, int64_t na, const uint8_t *b, int64_t nb, int size,
                 const tg_swd_options *opt, double *per_level, int max_levels, int *nlevels,
                 double *mean) {
    static const char *fn = "tg_swd";
    TG_API_SCOPE(fn);
    tg_swd_options o;
    if (opt) o = *opt;
    else tg_swd_defaults(&o);
    if (!a || !b || !mean) return tg_fail(TG_ERR_INVALID, fn, "%s is NULL", !a ? "a" : !b ? "b" : "mean");
    if (na < 1 || na != nb)
        return tg_fail(TG_ERR_INVALID, fn, "both sets need the same number of images (at least 1), got %lld and %lld",
                       (long long)na, (long long)nb);
    if (max_levels < 0) return tg_fail(TG_ERR_INVALID, fn, "max_levels %d is negative", max_levels);
    if (o.nhood < 1 || o.nhood > 64 || o.nhoods_per_image < 1 || o.nhoods_per_image > 65536 || o.dir_repeats < 1 ||
        o.dir_repeats > 1024 || o.dirs_per_repeat < 1 || o.dirs_per_repeat > 65536 || o.min_size < o.nhood)
        return tg_fail(TG_ERR_INVALID, fn, "options out of range (nhood %d in 1..64, per image %d in 1..65536, repeats %d "
                       "in 1..1024, directions %d in 1..65536, min size %d >= nhood)",
                       o.nhood, o.nhoods_per_image, o.dir_repeats, o.dirs_per_repeat, o.min_size);
    if (size < o.min_size || size > 4096 || (size & (size - 1)) || (o.min_size & (o.min_size - 1)))
        return tg_fail(TG_ERR_INVALID, fn, "image size %d and min size %d must be powers of two with %d <= size <= 4096",
                       size, o.min_size, o.min_size);
    int levels = 1;
    while ((size >> levels) >= o.min_size) levels++;
    if (levels > 16) levels = 16;
    const int nh = o.nhood, dim = 3 * nh * nh, D = o.dirs_per_repeat;
    int64_t rows;
    if (!tg_mul_ok(na, o.nhoods_per_image, &rows) || rows > INT32_MAX)
        return tg_fail(TG_ERR_INVALID, fn, "%lld images x %d neighbourhoods is more than this implementation sorts (2^31)",
                       (long long)na, o.nhoods_per_image);
    /* the work, bounded so that no option makes a call run for hours: levels x repeats x D
     * projections of both sets' rows x dim descriptors */
    const double work = (double)levels * o.dir_repeats * D * (double)rows * dim * 2.0;
    if (work > 17592186044416.0) /* 2^44 multiply-adds: minutes */
        return tg_fail(TG_ERR_INVALID, fn, "%.3g multiply-adds (%d levels, %d repeats, %d directions, %lld rows of %d) "
                       "are over the 2^44 this function does in one call", work, levels, o.dir_repeats, D,
                       (long long)rows, dim);
    size_t desc_bytes, proj_bytes;
    if (!tg_bytes_ok(rows * dim, sizeof(float), &desc_bytes) || !tg_bytes_ok(rows * D, sizeof(float), &proj_bytes))
        return tg_fail(TG_ERR_INVALID, fn, "the descriptor buffers' sizes overflow");
    float *da = malloc(desc_bytes), *db = malloc(desc_bytes);
    float *pa = malloc(proj_bytes), *pb = malloc(proj_bytes);
    float *dirs = malloc(sizeof(float) * (size_t)D * dim);
    double *w1 = malloc(sizeof(double) * (size_t)D);
    if (!da || !db || !pa || !pb || !dirs || !w1) {
        free(da), free(db), free(pa), free(pb), free(dirs), free(w1);
        return tg_fail(TG_ERR_NOMEM, fn, "out of memory for %lld descriptors", (long long)rows);
    }
    tg_ctx *cpu = tg_ctx_new(TG_CPU, 0); /* host memory: the CPU backend's table serves it */
    if (!cpu) {
        free(da), free(db), free(pa), free(pb), free(dirs), free(w1);
        return tg_last_status();
    }
    tg_status st = TG_OK;
    double total = 0;
    for (int l = 0; l < levels && st == TG_OK; l++) {
        st = descriptors(a, na, 0, size, levels, l, &o, da);
        if (st == TG_OK) st = descriptors(b, nb, 1, size, levels, l, &o, db);
        if (st != TG_OK) break;
        double level_sum = 0;
        for (int r = 0; r < o.dir_repeats; r++) {
            /* unit directions, one per row of dirs [D][dim] */
            for (int d = 0; d < D; d++) {
                double n2 = 0;
                for (int k = 0; k < dim; k++) {
                    uint64_t idx = (((uint64_t)l * (uint64_t)o.dir_repeats + (uint64_t)r) * (uint64_t)D + (uint64_t)d) *
                                       (uint64_t)dim + (uint64_t)k;
                    float v = tg_rng_normal1(o.seed, TG_SWD_STREAM_DIR, idx, 0.0f, 1.0f);
                    dirs[d * dim + k] = v;
                    n2 += (double)v * v;
                }
                const float inv = (float)(1.0 / sqrt(n2));
                for (int k = 0; k < dim; k++) dirs[d * dim + k] *= inv;
            }
            /* projections, one direction per row */
            project(cpu, dirs, D, da, rows, dim, pa);
            project(cpu, dirs, D, db, rows, dim, pb);
            int fail = 0;
#pragma omp parallel
            {
                uint32_t *ka = malloc(sizeof(uint32_t) * (size_t)rows * 2), *kb = malloc(sizeof(uint32_t) * (size_t)rows * 2);
                if (!ka || !kb) {
#pragma omp atomic write
                    fail = 1;
                }
#pragma omp for schedule(dynamic, 1)
                for (int d = 0; d < D; d++) {
                    if (!ka || !kb) continue;
                    const float *x = pa + (int64_t)d * rows, *y = pb + (int64_t)d * rows;
                    for (int64_t i = 0; i < rows; i++) ka[i] = fkey(x[i]), kb[i] = fkey(y[i]);
                    radix_sort(ka, ka + rows, rows);
                    radix_sort(kb, kb + rows, rows);
                    double s = 0;
                    for (int64_t i = 0; i < rows; i++) s += fabs((double)keyf(ka[i]) - (double)keyf(kb[i]));
                    w1[d] = s / (double)rows;
                }
                free(ka), free(kb);
            }
            if (fail) {
                st = tg_fail(TG_ERR_NOMEM, fn, "out of memory for sorting projections");
                break;
            }
            double dsum = 0; /* summed in direction order: the same for any thread count */
            for (int d = 0; d < D; d++) dsum += w1[d];
            level_sum += dsum / D;
        }
        const double v = level_sum / o.dir_repeats * 1e3;
        if (per_level && l < max_levels) per_level[l] = v;
        total += v;
    }
    free(da), free(db), free(pa), free(pb), free(dirs), free(w1);
    tg_ctx_free(cpu);
    if (st != TG_OK) return st;
    if (nlevels) *nlevels = levels;
    *mean = total / levels;
    return TG_OK;
}

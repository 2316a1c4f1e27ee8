/*
 * backend_cpu.c — the CPU backend: CBLAS sgemm for GEMMs (lib/cpu/blas.c loads it), OpenMP loops
 * for everything else. Per-element math comes from tg_math.h, shared with the CUDA kernels.
 * Reductions accumulate in double, so the thread count changes results by rounding at most.
 */
#include "cpu.h"

#include "../tg_omp.h"
#include <stdlib.h>
#include <string.h>

#define PAR_MIN 16384 /* below this many elements a loop runs on one thread */

static tg_status cpu_init(tg_ctx *ctx) {
    (void)ctx;
    return TG_OK;
}
static void cpu_shutdown(tg_ctx *ctx) { (void)ctx; }

static void *cpu_alloc(tg_ctx *ctx, size_t bytes) {
    (void)ctx;
    bytes = (bytes + 63) & ~(size_t)63;
    return aligned_alloc(64, bytes ? bytes : 64);
}
static void cpu_release(tg_ctx *ctx, void *p) {
    (void)ctx;
    free(p);
}
static tg_status cpu_sync(tg_ctx *ctx) {
    (void)ctx;
    return TG_OK;
}
static tg_status cpu_memcpy(tg_ctx *ctx, void *dst, const void *src, size_t bytes) {
    (void)ctx;
    memcpy(dst, src, bytes);
    return TG_OK;
}
static void cpu_copy(tg_ctx *ctx, float *dst, const float *src, int64_t n) {
    (void)ctx;
    memcpy(dst, src, (size_t)n * sizeof(float));
}
static void cpu_fill(tg_ctx *ctx, float *x, int64_t n, float v) {
    (void)ctx;
    if (v == 0.0f) {
        memset(x, 0, (size_t)n * sizeof(float));
        return;
    }
#pragma omp parallel for simd if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) x[i] = v;
}

/* Fallback when no CBLAS library can be loaded: correct, cache-blocked, not fast. */
static void naive_gemm(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                       float *C, int64_t ldc) {
#pragma omp parallel for if (M * N * K > PAR_MIN)
    for (int64_t i = 0; i < M; i++) {
        float *c = C + i * ldc;
        for (int64_t j = 0; j < N; j++) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
        for (int64_t k = 0; k < K; k++) {
            float a = alpha * (ta ? A[k * lda + i] : A[i * lda + k]);
            if (a == 0.0f) continue;
            if (!tb) {
                const float *b = B + k * ldb;
                for (int64_t j = 0; j < N; j++) c[j] += a * b[j];
            } else {
                for (int64_t j = 0; j < N; j++) c[j] += a * B[j * ldb + k];
            }
        }
    }
}

static void cpu_gemm(tg_ctx *ctx, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                     const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                     int64_t ldc) {
    (void)ctx;
    tg_sgemm_fn f = tg_blas_sgemm();
    if (f)
        f(101 /* CblasRowMajor */, ta ? 112 : 111, tb ? 112 : 111, (int)M, (int)N, (int)K, alpha,
          A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
    else
        naive_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void cpu_im2col(tg_ctx *ctx, const float *x, int N, int C, int H, int W, int kh, int kw,
                       int stride, int pad, int Ho, int Wo, float *col) {
    (void)ctx;
    const int64_t P = (int64_t)Ho * Wo, NP = (int64_t)N * P, K = (int64_t)C * kh * kw;
#pragma omp parallel for collapse(2) if (K * NP > PAR_MIN)
    for (int64_t r = 0; r < K; r++) {
        for (int n = 0; n < N; n++) {
            const int j = (int)(r % kw), i = (int)((r / kw) % kh);
            const int64_t c = r / ((int64_t)kw * kh);
            const float *xp = x + ((int64_t)n * C + c) * H * W;
            float *dst = col + r * NP + (int64_t)n * P;
            for (int oh = 0; oh < Ho; oh++) {
                const int h = oh * stride - pad + i;
                float *d = dst + (int64_t)oh * Wo;
                if (h < 0 || h >= H) {
                    memset(d, 0, sizeof(float) * (size_t)Wo);
                    continue;
                }
                const float *xr = xp + (int64_t)h * W;
                for (int ow = 0; ow < Wo; ow++) {
                    const int w = ow * stride - pad + j;
                    d[ow] = (w >= 0 && w < W) ? xr[w] : 0.0f;
                }
            }
        }
    }
}

static void cpu_col2im(tg_ctx *ctx, const float *col, int N, int C, int H, int W, int kh, int kw,
                       int stride, int pad, int Ho, int Wo, float *x, int acc) {
    (void)ctx;
    const int64_t P = (int64_t)Ho * Wo, NP = (int64_t)N * P;
    /* each (n, c) plane of x receives from its own rows and columns only: no races */
#pragma omp parallel for collapse(2) if ((int64_t)N * C * H * W > PAR_MIN / 4)
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++) {
            float *xp = x + ((int64_t)n * C + c) * H * W;
            if (!acc) memset(xp, 0, sizeof(float) * (size_t)H * W);
            for (int i = 0; i < kh; i++) {
                for (int j = 0; j < kw; j++) {
                    const int64_t r = ((int64_t)c * kh + i) * kw + j;
                    const float *src = col + r * NP + (int64_t)n * P;
                    for (int oh = 0; oh < Ho; oh++) {
                        const int h = oh * stride - pad + i;
                        if (h < 0 || h >= H) continue;
                        float *xr = xp + (int64_t)h * W;
                        const float *s = src + (int64_t)oh * Wo;
                        for (int ow = 0; ow < Wo; ow++) {
                            const int w = ow * stride - pad + j;
                            if (w >= 0 && w < W) xr[w] += s[ow];
                        }
                    }
                }
            }
        }
    }
}

static void cpu_nc_to_cn(tg_ctx *ctx, const float *src, int64_t N, int64_t C, int64_t P,
                         float *dst) {
    (void)ctx;
#pragma omp parallel for collapse(2) if (N * C * P > PAR_MIN)
    for (int64_t c = 0; c < C; c++)
        for (int64_t n = 0; n < N; n++)
            memcpy(dst + c * N * P + n * P, src + (n * C + c) * P, sizeof(float) * (size_t)P);
}

static void cpu_cn_to_nc(tg_ctx *ctx, const float *src, int64_t N, int64_t C, int64_t P,
                         const float *bias, float *dst, int acc) {
    (void)ctx;
#pragma omp parallel for collapse(2) if (N * C * P > PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        for (int64_t c = 0; c < C; c++) {
            const float *s = src + c * N * P + n * P;
            float *d = dst + (n * C + c) * P;
            const float b = bias ? bias[c] : 0.0f;
            if (acc)
                for (int64_t p = 0; p < P; p++) d[p] += s[p] + b;
            else
                for (int64_t p = 0; p < P; p++) d[p] = s[p] + b;
        }
    }
}

static void cpu_bias_add(tg_ctx *ctx, float *y, const float *b, int64_t N, int64_t C, int64_t P) {
    (void)ctx;
#pragma omp parallel for collapse(2) if (N * C * P > PAR_MIN)
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            float *d = y + (n * C + c) * P;
            const float bc = b[c];
            for (int64_t p = 0; p < P; p++) d[p] += bc;
        }
}

/* sum over n,p of x[n,c,p], in double */
static double sum_channel(const float *x, int64_t N, int64_t C, int64_t P, int64_t c) {
    double s = 0.0;
    for (int64_t n = 0; n < N; n++) {
        const float *restrict xp = x + (n * C + c) * P;
#pragma omp simd reduction(+ : s)
        for (int64_t p = 0; p < P; p++) s += xp[p];
    }
    return s;
}

static void cpu_channel_sum(tg_ctx *ctx, const float *x, int64_t N, int64_t C, int64_t P,
                            float *out, int acc) {
    (void)ctx;
#pragma omp parallel for if (N * C * P > PAR_MIN)
    for (int64_t c = 0; c < C; c++) {
        const double s = sum_channel(x, N, C, P, c);
        out[c] = (float)(acc ? out[c] + s : s);
    }
}

/* Elementwise loops: the body runs on [lo, hi) ranges with restrict pointers (so GCC vectorises
 * it; an `omp simd` loop around a formula with a branch did not), split into one contiguous
 * range per thread. */
#define PAR_RANGES(n, call)                                                                     \
    do {                                                                                        \
        if ((n) <= PAR_MIN) {                                                                   \
            const int64_t lo = 0, hi = (n);                                                     \
            call;                                                                               \
        } else {                                                                                \
            _Pragma("omp parallel") {                                                           \
                const int64_t nt_ = omp_get_num_threads(), t_ = omp_get_thread_num();           \
                const int64_t lo = (n) * t_ / nt_, hi = (n) * (t_ + 1) / nt_;                   \
                call;                                                                           \
            }                                                                                   \
        }                                                                                       \
    } while (0)

/* One function per activation, so the formula (tg_unary_*1 with a constant op) inlines without
 * its switch. */
#define UNARY_FWD_FN(name, OP)                                                                  \
    static void name(const float *restrict x, float *restrict y, float a, int64_t lo,           \
                     int64_t hi) {                                                              \
        for (int64_t i = lo; i < hi; i++) y[i] = tg_unary_fwd1(OP, a, x[i]);                    \
    }
UNARY_FWD_FN(leaky_fwd, TG_UN_LEAKY_RELU)
UNARY_FWD_FN(relu_fwd, TG_UN_RELU)
UNARY_FWD_FN(tanh_fwd, TG_UN_TANH)
UNARY_FWD_FN(sigmoid_fwd, TG_UN_SIGMOID)

#define UNARY_BWD_FN(name, OP)                                                                  \
    static void name(const float *restrict x, const float *restrict y, const float *restrict dy,\
                     float *restrict dx, float a, int acc, int64_t lo, int64_t hi) {            \
        if (acc)                                                                                \
            for (int64_t i = lo; i < hi; i++) dx[i] += tg_unary_bwd1(OP, a, x[i], y[i], dy[i]); \
        else                                                                                    \
            for (int64_t i = lo; i < hi; i++) dx[i] = tg_unary_bwd1(OP, a, x[i], y[i], dy[i]);  \
    }
UNARY_BWD_FN(leaky_bwd, TG_UN_LEAKY_RELU)
UNARY_BWD_FN(relu_bwd, TG_UN_RELU)
UNARY_BWD_FN(tanh_bwd, TG_UN_TANH)
UNARY_BWD_FN(sigmoid_bwd, TG_UN_SIGMOID)

static void cpu_unary_fwd(tg_ctx *ctx, int op, float a, const float *x, float *y, int64_t n) {
    (void)ctx;
    void (*f)(const float *restrict, float *restrict, float, int64_t, int64_t) =
        op == TG_UN_LEAKY_RELU ? leaky_fwd : op == TG_UN_RELU ? relu_fwd
                                           : op == TG_UN_TANH ? tanh_fwd : sigmoid_fwd;
    PAR_RANGES(n, f(x, y, a, lo, hi));
}

static void cpu_unary_bwd(tg_ctx *ctx, int op, float a, const float *x, const float *y,
                          const float *dy, float *dx, int64_t n, int acc) {
    (void)ctx;
    void (*f)(const float *restrict, const float *restrict, const float *restrict,
              float *restrict, float, int, int64_t, int64_t) =
        op == TG_UN_LEAKY_RELU ? leaky_bwd : op == TG_UN_RELU ? relu_bwd
                                           : op == TG_UN_TANH ? tanh_bwd : sigmoid_bwd;
    PAR_RANGES(n, f(x, y, dy, dx, a, acc, lo, hi));
}

static void cpu_axpby(tg_ctx *ctx, int64_t n, float a, const float *x, float b, float *y) {
    (void)ctx;
#pragma omp parallel for simd if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) y[i] = a * x[i] + (b == 0.0f ? 0.0f : b * y[i]);
}

static void cpu_mul(tg_ctx *ctx, int64_t n, const float *a, const float *b, float *out, int acc) {
    (void)ctx;
#pragma omp parallel for simd if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) out[i] = (acc ? out[i] : 0.0f) + a[i] * b[i];
}

static void cpu_sum(tg_ctx *ctx, const float *x, int64_t n, float scale, float *out) {
    (void)ctx;
    double s = 0.0;
#pragma omp parallel for reduction(+ : s) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) s += x[i];
    out[0] = (float)(s * scale);
}

static void cpu_fill_scalar(tg_ctx *ctx, float *x, int64_t n, const float *s, float scale,
                            int acc) {
    (void)ctx;
    const float v = s[0] * scale;
#pragma omp parallel for simd if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) x[i] = (acc ? x[i] : 0.0f) + v;
}

static void cpu_bn_fwd_apply(tg_ctx *ctx, const float *x, int64_t N, int64_t C, int64_t P,
                             const float *mean, const float *invstd, const float *gamma,
                             const float *beta, float *y) {
    (void)ctx;
#pragma omp parallel for collapse(2) if (N * C * P > PAR_MIN)
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            const float m = mean[c], is = invstd[c];
            const float g = gamma ? gamma[c] : 1.0f, b = beta ? beta[c] : 0.0f;
            const float *xp = x + (n * C + c) * P;
            float *yp = y + (n * C + c) * P;
            for (int64_t p = 0; p < P; p++) yp[p] = tg_bn_fwd1(xp[p], m, is, g, b);
        }
}

/* Per-channel batch statistics (biased variance) in double, and the running-buffer update. */
static void bn_stats(const float *x, int64_t N, int64_t C, int64_t P, float eps, float momentum,
                     float *running_mean, float *running_var, float *mean, float *invstd) {
    const double M = (double)N * (double)P;
#pragma omp parallel for if (N * C * P > PAR_MIN)
    for (int64_t c = 0; c < C; c++) {
        const double mu = sum_channel(x, N, C, P, c) / M;
        double ss = 0.0;
        for (int64_t n = 0; n < N; n++) {
            const float *restrict xp = x + (n * C + c) * P;
#pragma omp simd reduction(+ : ss)
            for (int64_t p = 0; p < P; p++) {
                const double d = xp[p] - mu;
                ss += d * d;
            }
        }
        const double var = ss / M;
        mean[c] = (float)mu;
        invstd[c] = tg_bn_invstd1(var, eps);
        if (running_mean) {
            running_mean[c] = tg_bn_running1(running_mean[c], mu, momentum);
            running_var[c] = tg_bn_running1(running_var[c], tg_bn_unbiased(ss, M), momentum);
        }
    }
}

static void cpu_bn_fwd_train(tg_ctx *ctx, const float *x, int64_t N, int64_t C, int64_t P,
                             const float *gamma, const float *beta, float eps, float momentum,
                             float *running_mean, float *running_var, float *mean, float *invstd,
                             float *y) {
    bn_stats(x, N, C, P, eps, momentum, running_mean, running_var, mean, invstd);
    cpu_bn_fwd_apply(ctx, x, N, C, P, mean, invstd, gamma, beta, y);
}

static void cpu_bn_act_fwd(tg_ctx *ctx, const float *x, int64_t N, int64_t C, int64_t P,
                           const float *gamma, const float *beta, float eps, float momentum,
                           float *running_mean, float *running_var, int training, float *mean,
                           float *invstd, float slope, float *z) {
    (void)ctx;
    if (training) bn_stats(x, N, C, P, eps, momentum, running_mean, running_var, mean, invstd);
#pragma omp parallel for collapse(2) if (N * C * P > PAR_MIN)
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            const float m = mean[c], is = invstd[c];
            const float g = gamma ? gamma[c] : 1.0f, b = beta ? beta[c] : 0.0f;
            const float *restrict xp = x + (n * C + c) * P;
            float *restrict zp = z + (n * C + c) * P;
            for (int64_t p = 0; p < P; p++)
                zp[p] = tg_act_fwd1(tg_bn_fwd1(xp[p], m, is, g, b), slope);
        }
}

static void cpu_bn_invstd(tg_ctx *ctx, const float *var, int64_t C, float eps, float *invstd) {
    (void)ctx;
    for (int64_t c = 0; c < C; c++) invstd[c] = tg_bn_invstd1(var[c], eps);
}


/* BatchNorm's backward over one channel c, in two passes: the sums of dy and dy*xhat, then dx.
 * DY is the upstream gradient at p, an expression over zp/dp: dp[p] for the plain op, act'(z)*dz
 * for the fused one (recomputed in both passes rather than stored). training/acc and the
 * activation are fixed per loop, so each inner loop is branch-free and vectorises. Expects x, z,
 * dz, dx, dgamma, dbeta, N, C, P, mean/invstd values mu/is, g, inv_m, training, acc in scope. */
#define BN_SUMS(DY)                                                                             \
    for (int64_t n = 0; n < N; n++) {                                                           \
        const float *restrict xp = x + (n * C + c) * P, *restrict zp = z + (n * C + c) * P;     \
        const float *restrict dp = dz + (n * C + c) * P;                                        \
        (void)zp;                                                                               \
        _Pragma("omp simd reduction(+ : sdy, sdyx)") for (int64_t p = 0; p < P; p++) {          \
            const float dy = DY;                                                                \
            sdy += dy;                                                                          \
            sdyx += (double)dy * ((xp[p] - mu) * is);                                           \
        }                                                                                       \
    }
#define BN_DX(DY, EXPR)                                                                         \
    for (int64_t n = 0; n < N; n++) {                                                           \
        const float *restrict xp = x + (n * C + c) * P, *restrict zp = z + (n * C + c) * P;     \
        const float *restrict dp = dz + (n * C + c) * P;                                        \
        float *restrict dxp = dx + (n * C + c) * P;                                             \
        (void)xp, (void)zp; /* the evaluation-mode formula does not read x */                   \
        for (int64_t p = 0; p < P; p++) {                                                       \
            const float dy = DY;                                                                \
            EXPR;                                                                               \
        }                                                                                       \
    }
#define BN_CHANNEL(DY)                                                                          \
    do {                                                                                        \
        BN_SUMS(DY)                                                                             \
        if (dgamma) dgamma[c] += (float)sdyx;                                                   \
        if (dbeta) dbeta[c] += (float)sdy;                                                      \
        if (!dx) break;                                                                         \
        const float fsdy = (float)sdy, fsdyx = (float)sdyx;                                     \
        (void)fsdy, (void)fsdyx;                                                                \
        if (training && acc)                                                                    \
            BN_DX(DY, dxp[p] += tg_bn_bwd1(dy, xp[p], mu, is, g, fsdy, fsdyx, inv_m))           \
        else if (training)                                                                      \
            BN_DX(DY, dxp[p] = tg_bn_bwd1(dy, xp[p], mu, is, g, fsdy, fsdyx, inv_m))            \
        else if (acc)                                                                           \
            BN_DX(DY, dxp[p] += tg_bn_bwd_eval1(dy, g, is))                                     \
        else                                                                                    \
            BN_DX(DY, dxp[p] = tg_bn_bwd_eval1(dy, g, is))                                      \
    } while (0)

static void cpu_bn_bwd(tg_ctx *ctx, const float *x, const float *dz, int64_t N, int64_t C,
                       int64_t P, const float *gamma, const float *mean, const float *invstd,
                       int training, float *dx, float *dgamma, float *dbeta, int acc) {
    (void)ctx;
    const float inv_m = 1.0f / (float)(N * P);
    const float *z = dz; /* no activation: z is not read */
#pragma omp parallel for if (N * C * P > PAR_MIN)
    for (int64_t c = 0; c < C; c++) {
        const float mu = mean[c], is = invstd[c], g = gamma ? gamma[c] : 1.0f;
        double sdy = 0.0, sdyx = 0.0;
        BN_CHANNEL(dp[p]);
    }
}

/* dy = act'(z) * dz is recomputed in both passes rather than stored (tg_act_grad1's formula,
 * with the ReLU/LeakyReLU choice taken once per call). */
static void cpu_bn_act_bwd(tg_ctx *ctx, const float *x, const float *z, const float *dz,
                           int64_t N, int64_t C, int64_t P, const float *gamma, const float *mean,
                           const float *invstd, int training, float slope, float *dx,
                           float *dgamma, float *dbeta, int acc) {
    (void)ctx;
    const float inv_m = 1.0f / (float)(N * P);
#pragma omp parallel for if (N * C * P > PAR_MIN)
    for (int64_t c = 0; c < C; c++) {
        const float mu = mean[c], is = invstd[c], g = gamma ? gamma[c] : 1.0f;
        double sdy = 0.0, sdyx = 0.0;
        if (slope == 0.0f) BN_CHANNEL(tg_unary_bwd1(TG_UN_RELU, slope, zp[p], zp[p], dp[p]));
        else BN_CHANNEL(tg_unary_bwd1(TG_UN_LEAKY_RELU, slope, zp[p], zp[p], dp[p]));
    }
}

static void cpu_bce_fwd(tg_ctx *ctx, const float *x, const float *t, int64_t n, float *out) {
    (void)ctx;
    double s = 0.0;
#pragma omp parallel for reduction(+ : s) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) s += tg_bce1(x[i], t[i]);
    out[0] = (float)(s / (double)n);
}

static void cpu_bce_bwd(tg_ctx *ctx, const float *x, const float *t, const float *dl, int64_t n,
                        float *dx, float *dt) {
    (void)ctx;
    const float k = dl[0] / (float)n;
    for (int64_t i = 0; i < n; i++) {
        if (dx) dx[i] += k * tg_bce_dx1(x[i], t[i]);
        if (dt) dt[i] += k * tg_bce_dt1(x[i]);
    }
}

/* tg_adam1 over [lo, hi) with the epsilon placement fixed per loop, so each vectorises */
static void adam_range(float *restrict p, const float *restrict g, float *restrict m,
                       float *restrict v, tg_adam_hyper h, int64_t lo, int64_t hi) {
    if (h.keras_eps) {
        h.keras_eps = 1;
        for (int64_t i = lo; i < hi; i++) tg_adam1(&p[i], g[i], &m[i], &v[i], &h);
    } else {
        h.keras_eps = 0;
        for (int64_t i = lo; i < hi; i++) tg_adam1(&p[i], g[i], &m[i], &v[i], &h);
    }
}

static tg_status cpu_adam(tg_ctx *ctx, const tg_adam_item *items, int count,
                          const tg_adam_hyper *h) {
    (void)ctx;
    for (int k = 0; k < count; k++) {
        const tg_adam_item *it = &items[k];
        tg_adam_hyper hk = *h;
        hk.bc1 = it->bc1;
        hk.bc2 = it->bc2;
        PAR_RANGES(it->n, adam_range(it->p, it->g, it->m, it->v, hk, lo, hi));
    }
    return TG_OK;
}

static tg_status cpu_sgd(tg_ctx *ctx, const tg_sgd_item *items, int count, float lr,
                         float momentum) {
    (void)ctx;
    for (int k = 0; k < count; k++) {
        const tg_sgd_item *it = &items[k];
#pragma omp parallel for if (it->n > PAR_MIN)
        for (int64_t i = 0; i < it->n; i++)
            tg_sgd1(&it->p[i], it->g[i], it->buf ? &it->buf[i] : NULL, lr, momentum, it->first);
    }
    return TG_OK;
}

static void cpu_rng_uniform(tg_ctx *ctx, float *x, int64_t n, uint64_t seed, uint32_t stream,
                            uint64_t offset, float lo, float hi) {
    (void)ctx;
#pragma omp parallel for if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) x[i] = tg_rng_uniform1(seed, stream, offset + (uint64_t)i, lo, hi);
}

static void cpu_rng_normal(tg_ctx *ctx, float *x, int64_t n, uint64_t seed, uint32_t stream,
                           uint64_t offset, float mean, float std) {
    (void)ctx;
#pragma omp parallel for if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++)
        x[i] = tg_rng_normal1(seed, stream, offset + (uint64_t)i, mean, std);
}

static tg_status cpu_check(tg_ctx *ctx, const char *what) {
    (void)ctx;
    (void)what;
    return TG_OK;
}

const struct tg_backend_ops tg_cpu_backend = {
    .name = "cpu",
    .init = cpu_init,
    .shutdown = cpu_shutdown,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .sync = cpu_sync,
    .to_device = cpu_memcpy,
    .to_host = cpu_memcpy,
    .copy = cpu_copy,
    .fill = cpu_fill,
    .gemm = cpu_gemm,
    .im2col = cpu_im2col,
    .col2im = cpu_col2im,
    .nc_to_cn = cpu_nc_to_cn,
    .cn_to_nc = cpu_cn_to_nc,
    .bias_add = cpu_bias_add,
    .channel_sum = cpu_channel_sum,
    .unary_fwd = cpu_unary_fwd,
    .unary_bwd = cpu_unary_bwd,
    .axpby = cpu_axpby,
    .mul = cpu_mul,
    .sum = cpu_sum,
    .fill_scalar = cpu_fill_scalar,
    .bn_fwd_train = cpu_bn_fwd_train,
    .bn_fwd_apply = cpu_bn_fwd_apply,
    .bn_invstd = cpu_bn_invstd,
    .bn_bwd = cpu_bn_bwd,
    .conv_fwd = tg_cpu_conv_fwd,
    .conv_bwd_data = tg_cpu_conv_bwd_data,
    .conv_wgrad = tg_cpu_conv_wgrad,
    .bn_act_fwd = cpu_bn_act_fwd,
    .bn_act_bwd = cpu_bn_act_bwd,
    .pool_fwd = tg_cpu_pool_fwd,
    .pool_bwd = tg_cpu_pool_bwd,
    .softmax_fwd = tg_cpu_softmax_fwd,
    .softmax_bwd = tg_cpu_softmax_bwd,
    .xent_fwd = tg_cpu_xent_fwd,
    .xent_bwd = tg_cpu_xent_bwd,
    .dropout_mask = tg_cpu_dropout_mask,
    .chan_block = tg_cpu_chan_block,
    .chan_bcast = tg_cpu_chan_bcast,
    .chan_reduce = tg_cpu_chan_reduce,
    .up2_fwd = tg_cpu_up2_fwd,
    .up2_bwd = tg_cpu_up2_bwd,
    .embed_fwd = tg_cpu_embed_fwd,
    .embed_bwd = tg_cpu_embed_bwd,
    .augment_fwd = tg_cpu_augment_fwd,
    .augment_bwd = tg_cpu_augment_bwd,
    .bce_fwd = cpu_bce_fwd,
    .bce_bwd = cpu_bce_bwd,
    .adam = cpu_adam,
    .sgd = cpu_sgd,
    .rng_uniform = cpu_rng_uniform,
    .rng_normal = cpu_rng_normal,
    .check = cpu_check,
};

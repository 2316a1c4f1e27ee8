/*
 * batchnorm.c (CPU) — BatchNorm's statistics, forward (plain and fused with a (leaky) ReLU) and
 * backward passes, and per-channel sums, behind lib/batchnorm.c; mirrors cuda/batchnorm.cu.
 * Statistics accumulate in double; the formulas are tg_math.h's.
 */
#include "cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

void tg_cpu_channel_sum(tg_ctx *ctx, tg_ncp sh, tg_mem xm, tg_mem om, int acc) {
    const float *x = tg_f(xm);
    float *out = tg_f(om);
    const int64_t N = sh.N, C = sh.C, P = sh.P;
#pragma omp parallel for if (N * C * P > PAR_MIN)
    for (int64_t c = 0; c < C; c++) {
        const double s = sum_channel(x, N, C, P, c);
        out[c] = (float)(acc ? out[c] + s : s);
    }
}


/* One plane (P floats of channel c) of the output: bn(x), or act(bn(x)) with act's slope when
 * act is set; every forward path writes its output through this loop. */
static void bn_apply_plane(const float *restrict xp, float *restrict yp, int64_t P,
                           const float *mean, const float *invstd, const float *gamma,
                           const float *beta, int64_t c, int act, float slope) {
    const float m = mean[c], is = invstd[c];
    const float g = gamma ? gamma[c] : 1.0f, b = beta ? beta[c] : 0.0f;
    if (!act)
        for (int64_t p = 0; p < P; p++) yp[p] = tg_bn_fwd1(xp[p], m, is, g, b);
    else
        for (int64_t p = 0; p < P; p++) yp[p] = tg_act_fwd1(tg_bn_fwd1(xp[p], m, is, g, b), slope);
}

/* Every plane, (n, c) pairs split over the threads */
static void bn_apply_all(const float *x, int64_t N, int64_t C, int64_t P, const float *mean,
                         const float *invstd, const float *gamma, const float *beta, int act,
                         float slope, float *y) {
#pragma omp parallel for collapse(2) if (N * C * P > PAR_MIN)
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            bn_apply_plane(x + (n * C + c) * P, y + (n * C + c) * P, P, mean, invstd, gamma, beta,
                           c, act, slope);
}


/* One channel's batch statistics (biased variance) in double, and its running-buffer update. */
static void bn_stats_channel(const float *x, int64_t N, int64_t C, int64_t P, int64_t c, float eps,
                             float momentum, float *running_mean, float *running_var, float *mean,
                             float *invstd) {
    const double M = (double)N * (double)P;
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

/* Training: each channel's statistics, then its output while the channel's planes (N x P floats,
 * 256 KiB for a 32 x 32 layer of batch 64) are still in cache: x is read from memory once. */
static void bn_train_channels(const float *x, int64_t N, int64_t C, int64_t P, const float *gamma,
                              const float *beta, float eps, float momentum, float *running_mean,
                              float *running_var, float *mean, float *invstd, int act, float slope,
                              float *y) {
#pragma omp parallel for if (N * C * P > PAR_MIN)
    for (int64_t c = 0; c < C; c++) {
        bn_stats_channel(x, N, C, P, c, eps, momentum, running_mean, running_var, mean, invstd);
        for (int64_t n = 0; n < N; n++)
            bn_apply_plane(x + (n * C + c) * P, y + (n * C + c) * P, P, mean, invstd, gamma, beta,
                           c, act, slope);
    }
}

/* Training: the batch statistics (and the running buffers moved), then the output channel by
 * channel; evaluation: the statistics from the running buffers, then the output. With act, the
 * output is act(bn(x)) and bn(x) is never stored. */
void tg_cpu_bn_fwd(tg_ctx *ctx, const tg_bn *b, tg_mem ym) {
    const int64_t N = b->s.N, C = b->s.C, P = b->s.P;
    const float *x = tg_f(b->x), *gamma = tg_f(b->gamma), *beta = tg_f(b->beta);
    float *mean = tg_f(b->mean), *invstd = tg_f(b->invstd), *y = tg_f(ym);
    if (b->training) {
        bn_train_channels(x, N, C, P, gamma, beta, b->eps, b->momentum, tg_f(b->running_mean),
                          tg_f(b->running_var), mean, invstd, b->act, b->slope, y);
        return;
    }
    const float *rm = tg_f(b->running_mean), *rv = tg_f(b->running_var);
    for (int64_t c = 0; c < C; c++) mean[c] = rm[c], invstd[c] = tg_bn_invstd1(rv[c], b->eps);
    bn_apply_all(x, N, C, P, mean, invstd, gamma, beta, b->act, b->slope, y);
}

/* BatchNorm's backward over one channel c, in two passes: the sums of dy and dy*xhat, then dx
 * (the second finds the channel's planes in cache). DY is the upstream gradient at p, an
 * expression over xp/dp: dp[p] for the plain op, act'(y)*dz for the fused one, with y the BN
 * output recomputed from x (the forward's value bit for bit: the same formula, and the library
 * is built with -ffp-contract=off), so the activation's output is never read. training/acc and
 * the activation are fixed per loop, so each inner loop is branch-free and vectorises. Expects
 * x, dz, dx, dgamma, dbeta, N, C, P, mean/invstd values mu/is, g, inv_m, training, acc (and b
 * for the fused op) in scope. */
#define BN_SUMS(DY)                                                                             \
    for (int64_t n = 0; n < N; n++) {                                                           \
        const float *restrict xp = x + (n * C + c) * P;                                         \
        const float *restrict dp = dz + (n * C + c) * P;                                        \
        _Pragma("omp simd reduction(+ : sdy, sdyx)") for (int64_t p = 0; p < P; p++) {          \
            const float dy = DY;                                                                \
            sdy += dy;                                                                          \
            sdyx += (double)dy * ((xp[p] - mu) * is);                                           \
        }                                                                                       \
    }
#define BN_DX(DY, EXPR)                                                                         \
    for (int64_t n = 0; n < N; n++) {                                                           \
        const float *restrict xp = x + (n * C + c) * P;                                         \
        const float *restrict dp = dz + (n * C + c) * P;                                        \
        float *restrict dxp = dx + (n * C + c) * P;                                             \
        (void)xp; /* the evaluation-mode formula of the plain op does not read x */             \
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

/* The plain backward reads dz as the BN output's gradient; with act, dy = act'(y) * dz is
 * recomputed in both passes rather than stored (tg_unary_bwd1 on y, which has z's sign, with the
 * ReLU/LeakyReLU choice taken once per call), y recomputed from x: z (ym) is not read. */
void tg_cpu_bn_bwd(tg_ctx *ctx, const tg_bn *bn, tg_mem ym, tg_mem dzm, tg_mem dxm, tg_mem dgm, tg_mem dbm, int acc) {
    const int64_t N = bn->s.N, C = bn->s.C, P = bn->s.P;
    const float *x = tg_f(bn->x), *dz = tg_f(dzm), *gamma = tg_f(bn->gamma), *beta = tg_f(bn->beta);
    const float *mean = tg_f(bn->mean), *invstd = tg_f(bn->invstd);
    float *dx = tg_f(dxm), *dgamma = tg_f(dgm), *dbeta = tg_f(dbm);
    const int training = bn->training;
    const float slope = bn->slope, inv_m = 1.0f / (float)(N * P);
    if (!bn->act) {
#pragma omp parallel for if (N * C * P > PAR_MIN)
        for (int64_t c = 0; c < C; c++) {
            const float mu = mean[c], is = invstd[c], g = gamma ? gamma[c] : 1.0f;
            double sdy = 0.0, sdyx = 0.0;
            BN_CHANNEL(dp[p]);
        }
        return;
    }
#pragma omp parallel for if (N * C * P > PAR_MIN)
    for (int64_t c = 0; c < C; c++) {
        const float mu = mean[c], is = invstd[c], g = gamma ? gamma[c] : 1.0f;
        const float b = beta ? beta[c] : 0.0f;
        double sdy = 0.0, sdyx = 0.0;
#define Y tg_bn_fwd1(xp[p], mu, is, g, b)
        if (slope == 0.0f) BN_CHANNEL(tg_unary_bwd1(TG_UN_RELU, slope, Y, Y, dp[p]));
        else BN_CHANNEL(tg_unary_bwd1(TG_UN_LEAKY_RELU, slope, Y, Y, dp[p]));
#undef Y
    }
}

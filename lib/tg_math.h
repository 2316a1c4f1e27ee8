/*
 * tg_math.h — per-element math shared by the CPU loops (lib/cpu/) and the CUDA kernels (cuda/).
 *
 * Every formula here exists once. It compiles as C11 and as CUDA C++ (TG_HD is
 * __host__ __device__ under nvcc), so the CPU tests cover the math of every kernel; a GPU test
 * only has to cover indexing, reductions and launches.
 */
#ifndef TG_MATH_H
#define TG_MATH_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define TG_HD __host__ __device__
#else
#define TG_HD
#endif

/* ---- bfloat16 ------------------------------------------------------------------------------
 * bf16 is the upper half of a float's bits (8 exponent bits, 7 stored mantissa bits). Rounding
 * is to nearest, ties to even, on the bits; a NaN stays a (quiet) NaN; infinities and signed
 * zeros stay themselves; a float above bf16's largest finite value rounds to infinity. This is
 * the conversion both CPU paths (lib/cpu/gemm*.c, scalar and vector) and the CUDA kernels use,
 * so a bf16 operand is the same number everywhere. */
static inline TG_HD uint32_t tg_f32_bits(float f) {
    union { float f; uint32_t u; } v;
    v.f = f;
    return v.u;
}
static inline TG_HD float tg_bits_f32(uint32_t u) {
    union { float f; uint32_t u; } v;
    v.u = u;
    return v.f;
}
static inline TG_HD uint16_t tg_bf16_of(float f) {
    const uint32_t u = tg_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* NaN: quiet */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
static inline TG_HD float tg_bf16_f32(uint16_t h) { return tg_bits_f32((uint32_t)h << 16); }
/* f rounded to the nearest bf16, as a float */
static inline TG_HD float tg_bf16_round(float f) { return tg_bf16_f32(tg_bf16_of(f)); }

/* ---- activations ------------------------------------------------------------------------- */
enum { TG_UN_LEAKY_RELU = 0, TG_UN_RELU = 1, TG_UN_TANH = 2, TG_UN_SIGMOID = 3 };

static inline TG_HD float tg_sigmoidf(float x) {
    /* split by sign so exp never overflows */
    if (x >= 0.0f) {
        float z = expf(-x);
        return 1.0f / (1.0f + z);
    }
    float z = expf(x);
    return z / (1.0f + z);
}

/* tanh as a rational function of x (odd numerator of degree 13, even denominator of degree 6;
 * the coefficients of Eigen's float tanh): arithmetic and selects only, so a CPU loop over it
 * vectorises where a libm call does not. Within 4e-7 of tanh over all floats (6 ulp of tanhf),
 * exactly +-1 beyond |x| = 7.9053, x itself below |x| = 0.0004, NaN for NaN. */
static inline TG_HD float tg_tanhf(float x) {
    const float c = 7.90531110763549805f;
    const float xc = x > c ? c : x < -c ? -c : x, x2 = xc * xc;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 - 8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    const float r = p * xc / q;
    return fabsf(x) < 0.0004f ? x : r;
}

/* The leaky products are computed unconditionally: a select, not a branch, so CPU loops vectorise
 * (a conditional multiply could raise a flag, so the compiler may not hoist it itself). */
static inline TG_HD float tg_unary_fwd1(int op, float a, float x) {
    const float ax = a * x;
    switch (op) {
    case TG_UN_LEAKY_RELU: return x > 0.0f ? x : ax;
    case TG_UN_RELU: return x > 0.0f ? x : 0.0f;
    case TG_UN_TANH: return tg_tanhf(x);
    default: return tg_sigmoidf(x);
    }
}

/* d(out)/d(in) * dy, from the input x and the output y (whichever the formula needs). */
static inline TG_HD float tg_unary_bwd1(int op, float a, float x, float y, float dy) {
    const float ady = a * dy;
    switch (op) {
    case TG_UN_LEAKY_RELU: return x > 0.0f ? dy : ady;
    case TG_UN_RELU: return x > 0.0f ? dy : 0.0f;
    case TG_UN_TANH: return dy * (1.0f - y * y);
    default: return dy * y * (1.0f - y);
    }
}

/* ---- binary cross-entropy on logits ----------------------------------------------------------
 * l(x,t) = max(x,0) - x*t + log(1 + exp(-|x|)); dl/dx = sigmoid(x) - t; dl/dt = -x. */
static inline TG_HD float tg_bce1(float x, float t) {
    return fmaxf(x, 0.0f) - x * t + log1pf(expf(-fabsf(x)));
}
static inline TG_HD float tg_bce_dx1(float x, float t) { return tg_sigmoidf(x) - t; }
/* ... and with respect to the target t */
static inline TG_HD float tg_bce_dt1(float x) { return -x; }

/* ---- optimizers ---------------------------------------------------------------------------- */
typedef struct {
    float lr, beta1, beta2, eps;
    float bc1, bc2;  /* 1 - beta^t for this parameter's own step t */
    int keras_eps;   /* eps added to sqrt(v) instead of sqrt(v_hat) */
} tg_adam_hyper;

static inline TG_HD void tg_adam1(float *p, float g, float *m, float *v, const tg_adam_hyper *h) {
    float mi = h->beta1 * *m + (1.0f - h->beta1) * g;
    float vi = h->beta2 * *v + (1.0f - h->beta2) * g * g;
    *m = mi;
    *v = vi;
    float denom;
    if (h->keras_eps)
        denom = (sqrtf(vi) + h->eps) / sqrtf(h->bc2);
    else
        denom = sqrtf(vi) / sqrtf(h->bc2) + h->eps;
    *p -= (h->lr / h->bc1) * mi / denom;
}

static inline TG_HD void tg_sgd1(float *p, float g, float *buf, float lr, float momentum,
                                 int first) {
    if (momentum != 0.0f) {
        float b = first ? g : momentum * *buf + g;
        *buf = b;
        g = b;
    }
    *p -= lr * g;
}

/* ---- BatchNorm ------------------------------------------------------------------------------ */
/* BatchNorm's statistics, in double on both backends: 1 / sqrt(var + eps); a running buffer moved
 * toward a batch value with PyTorch's momentum (the new value's weight); the unbiased variance
 * from the sum of squared deviations ss over M values (the biased one when M is 1). */
static inline TG_HD float tg_bn_invstd1(double var, float eps) { return (float)(1.0 / sqrt(var + (double)eps)); }
static inline TG_HD float tg_bn_running1(float old, double value, float momentum) {
    return (float)((1.0 - (double)momentum) * (double)old + (double)momentum * value);
}
static inline TG_HD double tg_bn_unbiased(double ss, double M) { return M > 1.0 ? ss / (M - 1.0) : ss / M; }

static inline TG_HD float tg_bn_fwd1(float x, float mean, float invstd, float gamma, float beta) {
    return (x - mean) * invstd * gamma + beta;
}
/* Training-mode input gradient for one element:
 * dx = gamma*invstd/M * (M*dy - sum(dy) - xhat*sum(dy*xhat)) */
static inline TG_HD float tg_bn_bwd1(float dy, float x, float mean, float invstd, float gamma,
                                     float sum_dy, float sum_dy_xhat, float inv_m) {
    float xhat = (x - mean) * invstd;
    return gamma * invstd * (dy - inv_m * sum_dy - xhat * inv_m * sum_dy_xhat);
}

/* The gradient through act(y) = y > 0 ? y : slope*y, read off its output z (same sign as y when
 * slope >= 0): the fused BatchNorm + (leaky) ReLU backward. */
static inline TG_HD float tg_act_grad1(float z, float dz, float slope) {
    return slope == 0.0f ? tg_unary_bwd1(TG_UN_RELU, 0.0f, z, z, dz)
                         : tg_unary_bwd1(TG_UN_LEAKY_RELU, slope, z, z, dz);
}
/* ... and its forward (ReLU exactly when slope is 0: +0, not -0, for negative inputs) */
static inline TG_HD float tg_act_fwd1(float y, float slope) {
    return slope == 0.0f ? tg_unary_fwd1(TG_UN_RELU, 0.0f, y) : tg_unary_fwd1(TG_UN_LEAKY_RELU, slope, y);
}

/* Evaluation-mode input gradient (the statistics are constants): dx = dy * gamma * invstd */
static inline TG_HD float tg_bn_bwd_eval1(float dy, float gamma, float invstd) {
    return dy * gamma * invstd;
}

/* ---- im2col index math -----------------------------------------------------------------------
 * col has rows r = (c*kh + i)*kw + j and columns q = (n*Ho + oh)*Wo + ow.
 * Returns the flat index into x [N,C,H,W] that col[r][q] reads, or -1 for padding. */
/* Row r of the column matrix is the tap (c, i, j): channel c, kernel row i, kernel column j. The
 * CPU and CUDA im2col kernels decode it once per row with this. */
static inline TG_HD void tg_im2col_tap(int64_t r, int kh, int kw, int64_t *c, int *i, int *j) {
    *j = (int)(r % kw);
    *i = (int)((r / kw) % kh);
    *c = r / ((int64_t)kw * kh);
}
/* the input coordinate that output position o reads through kernel offset k */
static inline TG_HD int tg_conv_in(int o, int stride, int pad, int k) { return o * stride - pad + k; }

static inline TG_HD int64_t tg_im2col_src(int64_t r, int64_t q, int C, int H, int W, int kh,
                                          int kw, int stride, int pad, int Ho, int Wo) {
    int i, j;
    int64_t c;
    tg_im2col_tap(r, kh, kw, &c, &i, &j);
    int ow = (int)(q % Wo);
    int oh = (int)((q / Wo) % Ho);
    int64_t n = q / ((int64_t)Wo * Ho);
    int h = tg_conv_in(oh, stride, pad, i);
    int w = tg_conv_in(ow, stride, pad, j);
    if (h < 0 || h >= H || w < 0 || w >= W) return -1;
    return ((n * C + c) * H + h) * W + w;
}

/* ---- DiffAugment (lib/augment.c) ----------------------------------------------------------
 * Per sample, TG_AUG_NPARAM floats: brightness b, saturation s, contrast c, shift ty, tx, and a
 * cutout box y0, x0, size (size 0: none). y = cutout(translate(color(x))) where color is
 *   z1 = x + b;  z2 = s (z1 - mean_ch z1) + mean_ch z1  (per pixel, over channels);
 *   z3 = c (z2 - m) + m  with m the sample's mean of z2 (= mean x + b);
 * translate moves z3 by (ty, tx) with zeros shifted in, and cutout zeroes the box. */
#define TG_AUG_NPARAM 8

/* Whether output pixel (h, w) of an H x W image keeps a value: inside the image after the shift
 * and outside the cutout box. Its source pixel is (h - ty, w - tx). */
static inline TG_HD int tg_aug_kept(int h, int w, int H, int W, const float *p) {
    const int ty = (int)p[3], tx = (int)p[4], y0 = (int)p[5], x0 = (int)p[6], sz = (int)p[7];
    const int sh = h - ty, sw = w - tx;
    if (h < 0 || h >= H || w < 0 || w >= W) return 0;
    if (sh < 0 || sh >= H || sw < 0 || sw >= W) return 0;
    return !(sz > 0 && h >= y0 && h < y0 + sz && w >= x0 && w < x0 + sz);
}

/* The colour transform of one value v whose pixel has channel mean pm (of x), sample mean xm;
 * exactly v when the colour parameters are the identity (0, 1, 1). */
static inline TG_HD float tg_aug_color(float v, float pm, float xm, const float *p) {
    if (p[0] == 0.0f && p[1] == 1.0f && p[2] == 1.0f) return v;
    const float z1 = v + p[0], m1 = pm + p[0], z2 = p[1] * (z1 - m1) + m1, m = xm + p[0];
    return p[2] * (z2 - m) + m;
}

/* Its adjoint, in two steps: g3 is the gradient at z3 (dy at the destination pixel, 0 where the
 * value was dropped), gm the sample's mean of g3; then
 *   g2 = c g3 + (1 - c) gm;   dx = g1 = s g2 + (1 - s) mean_ch(g2 at the pixel). */
static inline TG_HD float tg_aug_color_bwd2(float g3, float gm, const float *p) {
    return p[2] * g3 + (1.0f - p[2]) * gm;
}
/* g1 from g2 and the channel mean g2m of g2 at the pixel */
static inline TG_HD float tg_aug_color_bwd1(float g2, float g2m, const float *p) {
    return p[1] * g2 + (1.0f - p[1]) * g2m;
}

/* One output pixel o (row-major, P per channel plane) of a sample x with C channels and sample
 * mean xm: every channel's colour-transformed value of its source pixel src, or 0 where
 * !tg_aug_kept. */
static inline TG_HD void tg_aug_pixel_fwd(const float *x, int64_t C, int64_t P, int64_t o, int64_t src,
                                          int kept, float xm, const float *p, float *y) {
    if (!kept) {
        for (int64_t c = 0; c < C; c++) y[c * P + o] = 0.0f;
        return;
    }
    float pm = 0.0f;
    for (int64_t c = 0; c < C; c++) pm += x[c * P + src];
    pm /= (float)C;
    for (int64_t c = 0; c < C; c++) y[c * P + o] = tg_aug_color(x[c * P + src], pm, xm, p);
}

/* Its adjoint for one source pixel src: adds into dx every channel's gradient from dy at the
 * destination pixel dst (nothing reaches it where !kept); gm is the sample's mean of g3. */
static inline TG_HD void tg_aug_pixel_bwd(const float *dy, int64_t C, int64_t P, int64_t src, int64_t dst,
                                          int kept, float gm, const float *p, float *dx) {
    float g2m = 0.0f;
    for (int64_t c = 0; c < C; c++) g2m += tg_aug_color_bwd2(kept ? dy[c * P + dst] : 0.0f, gm, p);
    g2m /= (float)C;
    for (int64_t c = 0; c < C; c++)
        dx[c * P + src] += tg_aug_color_bwd1(tg_aug_color_bwd2(kept ? dy[c * P + dst] : 0.0f, gm, p), g2m, p);
}

/* ---- pooling (lib/pool.c) -------------------------------------------------------------------
 * Output o of a pooled axis covers inputs o*s - pad .. o*s - pad + k - 1; input i is covered by
 * outputs lo..hi (empty when lo > hi). */
/* Inputs lo..hi-1 of an axis of n that output o's window (start o*s - pad, k wide) covers: the
 * window clipped to the input, so a loop over it never visits padding (a window of INT32_MAX
 * costs what it overlaps). lib/pool.c keeps n + 2*pad within int. */
static inline TG_HD void tg_pool_window(int o, int s, int pad, int k, int n, int *lo, int *hi) {
    const int start = o * s - pad;
    *lo = start < 0 ? 0 : start;
    *hi = n - start < k ? n : start + k;
}
/* the divisor of average pooling (count_include_pad): in float, as kh*kw can overflow an int */
static inline TG_HD float tg_pool_area(int kh, int kw) { return (float)kh * (float)kw; }

static inline TG_HD void tg_pool_cover(int i, int pad, int k, int s, int O, int *lo, int *hi) {
    int a = i + pad - k + 1; /* o*s >= a */
    *lo = a <= 0 ? 0 : (a + s - 1) / s;
    int b = (i + pad) / s;
    *hi = b < O - 1 ? b : O - 1;
}
/* Output (oh, ow) of one plane xp [H,W]: the window's maximum (and its offset in the plane, the
 * first on ties; a NaN wins and ends the scan, as in PyTorch) or its average with the padding
 * counted. The CPU loop and the CUDA kernel both call this. */
static inline TG_HD void tg_pool_out1(const float *xp, int H, int W, int oh, int ow, int kh, int kw, int sh,
                                      int sw, int ph, int pw, int is_max, float *y, int32_t *arg) {
    int hlo, hhi, wlo, whi;
    tg_pool_window(oh, sh, ph, kh, H, &hlo, &hhi);
    tg_pool_window(ow, sw, pw, kw, W, &wlo, &whi);
    float best = -INFINITY, sum = 0.0f;
    int a = -1;
    for (int h = hlo; h < hhi; h++)
        for (int w = wlo; w < whi; w++) {
            const float v = xp[h * W + w];
            sum += v;
            if (v > best || a < 0 || v != v) best = v, a = h * W + w;
            if (v != v) h = hhi, w = whi; /* NaN propagates */
        }
    if (is_max) *y = best, *arg = a;
    else *y = sum / tg_pool_area(kh, kw);
}
/* The gradient of input (h, w) of one plane: the sum over the windows that cover it of dy (the
 * argmax's, for max pooling; divided by the area, for average). */
static inline TG_HD float tg_pool_in1(const float *g, const int32_t *ix, int H, int W, int h, int w, int kh,
                                      int kw, int sh, int sw, int ph, int pw, int Ho, int Wo, int is_max) {
    int olo, ohi, plo, phi;
    tg_pool_cover(h, ph, kh, sh, Ho, &olo, &ohi);
    tg_pool_cover(w, pw, kw, sw, Wo, &plo, &phi);
    float s = 0.0f;
    for (int oh = olo; oh <= ohi; oh++)
        for (int ow = plo; ow <= phi; ow++) {
            const int64_t o = (int64_t)oh * Wo + ow;
            if (!is_max) s += g[o];
            else if (ix[o] == h * W + w) s += g[o];
        }
    (void)H;
    return is_max ? s : s / tg_pool_area(kh, kw);
}

/* ---- upsampling by 2 (lib/channel.c) ----------------------------------------------------------
 * Bilinear with align_corners=False (PyTorch): output o of an axis of n inputs reads inputs i0 and
 * i1 with weights 1 - l and l, from the source coordinate (o + 0.5) / 2 - 0.5 clamped at 0. */
static inline TG_HD void tg_up2_src(int o, int n, int *i0, int *i1, float *l) {
    float s = (o + 0.5f) * 0.5f - 0.5f;
    if (s < 0.0f) s = 0.0f;
    int a = (int)s;
    if (a > n - 1) a = n - 1;
    *i0 = a;
    *i1 = a + 1 < n ? a + 1 : n - 1;
    *l = s - (float)a;
}
/* the weight with which output o reads input i along one axis (0 when it does not) */
static inline TG_HD float tg_up2_weight(int o, int i, int n, int bilinear) {
    if (!bilinear) return o / 2 == i ? 1.0f : 0.0f;
    int i0, i1;
    float l;
    tg_up2_src(o, n, &i0, &i1, &l);
    return (i0 == i ? 1.0f - l : 0.0f) + (i1 == i ? l : 0.0f);
}

/* Output (oh, ow) of plane x [H][W] upsampled by 2. */
static inline TG_HD float tg_up2_sample(const float *x, int H, int W, int oh, int ow, int bilinear) {
    if (!bilinear) return x[(oh / 2) * W + ow / 2];
    int h0, h1, w0, w1;
    float lh, lw;
    tg_up2_src(oh, H, &h0, &h1, &lh);
    tg_up2_src(ow, W, &w0, &w1, &lw);
    return (1 - lh) * ((1 - lw) * x[h0 * W + w0] + lw * x[h0 * W + w1]) +
           lh * ((1 - lw) * x[h1 * W + w0] + lw * x[h1 * W + w1]);
}
/* The gradient at input (h, w) of plane [H][W]: the sum over the outputs that read it of their
 * gradient g [2H][2W] times the weight they read it with (outputs 2h-2 .. 2h+3 are the only ones
 * that can). */
static inline TG_HD float tg_up2_gather(const float *g, int H, int W, int h, int w, int bilinear) {
    const int Ho = 2 * H, Wo = 2 * W;
    float s = 0.0f;
    for (int oh = 2 * h - 2; oh <= 2 * h + 3; oh++) {
        if (oh < 0 || oh >= Ho) continue;
        const float a = tg_up2_weight(oh, h, H, bilinear);
        if (a == 0.0f) continue;
        for (int ow = 2 * w - 2; ow <= 2 * w + 3; ow++) {
            if (ow < 0 || ow >= Wo) continue;
            const float b = tg_up2_weight(ow, w, W, bilinear);
            if (b != 0.0f) s += a * b * g[oh * Wo + ow];
        }
    }
    return s;
}

/* ---- softmax and cross-entropy (lib/softmax.c): one row of C values, stride P apart ---------- */
/* log(sum(exp(x))) of the row, shifted by its maximum */
static inline TG_HD float tg_logsumexp_row(const float *x, int64_t C, int64_t P) {
    float m = x[0];
    for (int64_t c = 1; c < C; c++) m = x[c * P] > m ? x[c * P] : m;
    float s = 0.0f;
    for (int64_t c = 0; c < C; c++) s += expf(x[c * P] - m);
    return m + logf(s);
}
/* Cross-entropy of one row against class y with label smoothing e (PyTorch's definition): the
 * target is (1 - e) on y plus e / C everywhere. */
static inline TG_HD float tg_xent_row(const float *x, int64_t C, int64_t P, int y, float e) {
    const float lse = tg_logsumexp_row(x, C, P);
    float mean = 0.0f;
    if (e != 0.0f) {
        for (int64_t c = 0; c < C; c++) mean += x[c * P];
        mean /= (float)C;
    }
    return (1.0f - e) * (lse - x[(int64_t)y * P]) + e * (lse - mean);
}
/* its gradient for class c, given the row's logsumexp */
static inline TG_HD float tg_xent_dx1(float xc, float lse, int c, int y, float e, int64_t C) {
    return expf(xc - lse) - ((c == y ? 1.0f - e : 0.0f) + e / (float)C);
}
/* a row's softmax (or log-softmax) into y, and its gradient added into dx from the output y */
static inline TG_HD void tg_softmax_row(const float *x, float *y, int64_t C, int64_t P, int is_log) {
    const float lse = tg_logsumexp_row(x, C, P);
    for (int64_t c = 0; c < C; c++) {
        const float l = x[c * P] - lse;
        y[c * P] = is_log ? l : expf(l);
    }
}
static inline TG_HD void tg_softmax_row_bwd(const float *y, const float *dy, float *dx, int64_t C, int64_t P,
                                            int is_log) {
    float s = 0.0f; /* log: sum dy; softmax: sum dy * y */
    for (int64_t c = 0; c < C; c++) s += is_log ? dy[c * P] : dy[c * P] * y[c * P];
    for (int64_t c = 0; c < C; c++) {
        const int64_t i = c * P;
        dx[i] += is_log ? dy[i] - expf(y[i]) * s : y[i] * (dy[i] - s);
    }
}
/* a row's cross-entropy gradient, k times, added into dx */
static inline TG_HD void tg_xent_row_bwd(const float *x, float *dx, int64_t C, int64_t P, int y, float e, float k) {
    const float lse = tg_logsumexp_row(x, C, P);
    for (int64_t c = 0; c < C; c++) dx[c * P] += k * tg_xent_dx1(x[c * P], lse, (int)c, y, e, C);
}

/* ---- dropout (lib/dropout.c): element i keeps with probability 1 - p, scaled by 1 / (1 - p) -- */
static inline TG_HD float tg_dropout_mask1(uint64_t seed, uint32_t stream, uint64_t idx, float p);

/* ---- counter-based RNG: Philox4x32-10 (Salmon et al., SC'11) ------------------------------ */
typedef struct { uint32_t v[4]; } tg_u32x4;

static inline TG_HD uint32_t tg_mulhilo32(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

static inline TG_HD tg_u32x4 tg_philox(uint64_t counter, uint32_t stream, uint64_t seed) {
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = stream, c3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = tg_mulhilo32(0xD2511F53u, c0, &hi0);
        uint32_t lo1 = tg_mulhilo32(0xCD9E8D57u, c2, &hi1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    tg_u32x4 out;
    out.v[0] = c0; out.v[1] = c1; out.v[2] = c2; out.v[3] = c3;
    return out;
}

/* uniform in (0, 1]: 24 random bits, never 0 so log() is safe */
static inline TG_HD float tg_u01(uint32_t bits) {
    return ((float)(bits >> 8) + 1.0f) * (1.0f / 16777216.0f);
}

/* Element i of a draw at `offset`: uniform in [lo, hi). Uses word 0 of block offset+i. */
static inline TG_HD float tg_rng_uniform1(uint64_t seed, uint32_t stream, uint64_t idx, float lo,
                                          float hi) {
    tg_u32x4 r = tg_philox(idx, stream, seed);
    float u = (float)(r.v[0] >> 8) * (1.0f / 16777216.0f); /* [0,1) */
    return lo + (hi - lo) * u;
}

/* Element i: normal(mean, std) by Box-Muller on words 0 and 1 of block offset+i. Computed in
 * double so CPU libm and CUDA agree to float rounding. */
static inline TG_HD float tg_rng_normal1(uint64_t seed, uint32_t stream, uint64_t idx, float mean,
                                         float std) {
    tg_u32x4 r = tg_philox(idx, stream, seed);
    double u1 = (double)tg_u01(r.v[0]);
    double u2 = (double)(r.v[1] >> 8) * (1.0 / 16777216.0);
    double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    return mean + std * (float)z;
}

static inline TG_HD float tg_dropout_mask1(uint64_t seed, uint32_t stream, uint64_t idx, float p) {
    return tg_rng_uniform1(seed, stream, idx, 0.0f, 1.0f) >= p ? 1.0f / (1.0f - p) : 0.0f;
}

#endif /* TG_MATH_H */

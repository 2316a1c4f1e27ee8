/*
 * op_cases.c — the table of op cases shared by test_ops and test_cuda (op_cases.h): for each op,
 * the library call, a naive double-precision reference written from the op's definition, the
 * inputs, and tolerances.
 */
#include "op_cases.h"

#include "core.h" /* tg_diff_augment_with: DiffAugment with known parameters */

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- convolution ------------------------------------------------------------------------ */
/* where a row runs: REF also against its reference and finite differences on the CPU (small
 * shapes), DEV only across devices (CPU vs CUDA) */
enum { DEV = 0, REF = 1 };

typedef struct {
    int N, Cin, H, W, Cout, kh, kw, stride, pad, bias;
    int where;
} conv_cfg;

static int conv_out(int in, int k, int s, int p) { return (in + 2 * p - k) / s + 1; }
static int convt_out(int in, int k, int s, int p) { return (in - 1) * s - 2 * p + k; }

static tg_tensor *lib_conv(tg_ctx *c, tg_tensor **in, const void *cfg) {
    const conv_cfg *k = cfg;
    return tg_conv2d(c, in[0], in[1], in[2], k->stride, k->pad);
}

static void ref_conv(double *const *in, double *out, const void *cfg) {
    const conv_cfg *k = cfg;
    const double *x = in[0], *w = in[1], *b = in[2];
    int Ho = conv_out(k->H, k->kh, k->stride, k->pad), Wo = conv_out(k->W, k->kw, k->stride, k->pad);
    for (int n = 0; n < k->N; n++)
        for (int co = 0; co < k->Cout; co++)
            for (int oh = 0; oh < Ho; oh++)
                for (int ow = 0; ow < Wo; ow++) {
                    double s = b ? b[co] : 0.0;
                    for (int ci = 0; ci < k->Cin; ci++)
                        for (int i = 0; i < k->kh; i++)
                            for (int j = 0; j < k->kw; j++) {
                                int h = oh * k->stride - k->pad + i, ww = ow * k->stride - k->pad + j;
                                if (h < 0 || h >= k->H || ww < 0 || ww >= k->W) continue;
                                s += x[((n * k->Cin + ci) * k->H + h) * k->W + ww] *
                                     w[((co * k->Cin + ci) * k->kh + i) * k->kw + j];
                            }
                    out[((n * k->Cout + co) * Ho + oh) * Wo + ow] = s;
                }
}

static tg_tensor *lib_convt(tg_ctx *c, tg_tensor **in, const void *cfg) {
    const conv_cfg *k = cfg;
    return tg_conv_transpose2d(c, in[0], in[1], in[2], k->stride, k->pad);
}

/* independent formulation: scatter every input pixel through the kernel */
static void ref_convt(double *const *in, double *out, const void *cfg) {
    const conv_cfg *k = cfg;
    const double *x = in[0], *w = in[1], *b = in[2];
    int Ho = convt_out(k->H, k->kh, k->stride, k->pad), Wo = convt_out(k->W, k->kw, k->stride, k->pad);
    for (int n = 0; n < k->N; n++)
        for (int co = 0; co < k->Cout; co++)
            for (int p = 0; p < Ho * Wo; p++) out[(n * k->Cout + co) * Ho * Wo + p] = b ? b[co] : 0.0;
    for (int n = 0; n < k->N; n++)
        for (int ci = 0; ci < k->Cin; ci++)
            for (int ih = 0; ih < k->H; ih++)
                for (int iw = 0; iw < k->W; iw++)
                    for (int co = 0; co < k->Cout; co++)
                        for (int i = 0; i < k->kh; i++)
                            for (int j = 0; j < k->kw; j++) {
                                int oh = ih * k->stride - k->pad + i, ow = iw * k->stride - k->pad + j;
                                if (oh < 0 || oh >= Ho || ow < 0 || ow >= Wo) continue;
                                out[((n * k->Cout + co) * Ho + oh) * Wo + ow] +=
                                    x[((n * k->Cin + ci) * k->H + ih) * k->W + iw] *
                                    w[((ci * k->Cout + co) * k->kh + i) * k->kw + j];
                            }
}

/* ---- linear ------------------------------------------------------------------------------ */
typedef struct {
    int N, in, out, bias;
    int where;
} lin_cfg;

static tg_tensor *lib_linear(tg_ctx *c, tg_tensor **in, const void *cfg) {
    (void)cfg;
    return tg_linear(c, in[0], in[1], in[2]);
}
static void ref_linear(double *const *in, double *out, const void *cfg) {
    const lin_cfg *k = cfg;
    for (int n = 0; n < k->N; n++)
        for (int o = 0; o < k->out; o++) {
            double s = in[2] ? in[2][o] : 0.0;
            for (int i = 0; i < k->in; i++) s += in[0][n * k->in + i] * in[1][o * k->in + i];
            out[n * k->out + o] = s;
        }
}

/* ---- batch norm -------------------------------------------------------------------------- */
typedef struct {
    int N, C, H, W, training, affine; /* H = 0: an [N, C] input */
    float eps;
    int where;
    double offset; /* added to x's range: a channel mean far from zero tests the statistics' accuracy */
} bn_cfg;

static tg_tensor *lib_bn(tg_ctx *c, tg_tensor **in, const void *cfg) {
    const bn_cfg *k = cfg;
    /* running stats only in eval mode here; training-mode updates have their own test */
    return tg_batch_norm(c, in[0], in[1], in[2], k->training ? NULL : in[3],
                         k->training ? NULL : in[4], k->training, 0.1f, k->eps);
}

static void ref_bn(double *const *in, double *out, const void *cfg) {
    const bn_cfg *k = cfg;
    const double *x = in[0];
    const int P = k->H ? k->H * k->W : 1;
    for (int c = 0; c < k->C; c++) {
        double mean, var;
        if (k->training) {
            double s = 0, ss = 0;
            for (int n = 0; n < k->N; n++)
                for (int p = 0; p < P; p++) s += x[(n * k->C + c) * P + p];
            mean = s / (k->N * P);
            for (int n = 0; n < k->N; n++)
                for (int p = 0; p < P; p++) {
                    double d = x[(n * k->C + c) * P + p] - mean;
                    ss += d * d;
                }
            var = ss / (k->N * P);
        } else {
            mean = in[3][c];
            var = in[4][c];
        }
        double g = in[1] ? in[1][c] : 1.0, b = in[2] ? in[2][c] : 0.0;
        for (int n = 0; n < k->N; n++)
            for (int p = 0; p < P; p++) {
                int i = (n * k->C + c) * P + p;
                out[i] = (x[i] - mean) / sqrt(var + k->eps) * g + b;
            }
    }
}

/* ---- activations and elementwise ------------------------------------------------------- */
typedef struct {
    int which;
    int64_t n;
    float a;
} ew_cfg;

enum { EW_LEAKY, EW_RELU, EW_TANH, EW_SIGMOID, EW_ADD, EW_SUB, EW_MUL, EW_SCALE, EW_SUM, EW_MEAN,
       EW_BCE, EW_MSE, EW_RESHAPE, EW_COUNT };

static tg_tensor *lib_ew(tg_ctx *c, tg_tensor **in, const void *cfg) {
    const ew_cfg *k = cfg;
    switch (k->which) {
    case EW_LEAKY: return tg_leaky_relu(c, in[0], k->a);
    case EW_RELU: return tg_relu(c, in[0]);
    case EW_TANH: return tg_tanh(c, in[0]);
    case EW_SIGMOID: return tg_sigmoid(c, in[0]);
    case EW_ADD: return tg_add(c, in[0], in[1]);
    case EW_SUB: return tg_sub(c, in[0], in[1]);
    case EW_MUL: return tg_mul(c, in[0], in[1]);
    case EW_SCALE: return tg_scale(c, in[0], k->a);
    case EW_SUM: return tg_sum(c, in[0]);
    case EW_MEAN: return tg_mean(c, in[0]);
    case EW_BCE: return tg_bce_with_logits(c, in[0], in[1]);
    case EW_MSE: return tg_mse_loss(c, in[0], in[1]);
    default: {
        int64_t s[3] = {2, -1, 3};
        return tg_flatten(c, tg_reshape(c, in[0], 3, s));
    }
    }
}

static void ref_ew(double *const *in, double *out, const void *cfg) {
    const ew_cfg *k = cfg;
    const double *x = in[0], *y = in[1];
    double acc = 0.0;
    for (int64_t i = 0; i < k->n; i++) {
        double v = x[i];
        switch (k->which) {
        case EW_LEAKY: out[i] = v > 0 ? v : k->a * v; break;
        case EW_RELU: out[i] = v > 0 ? v : 0; break;
        case EW_TANH: out[i] = tanh(v); break;
        case EW_SIGMOID: out[i] = 1.0 / (1.0 + exp(-v)); break;
        case EW_ADD: out[i] = v + y[i]; break;
        case EW_SUB: out[i] = v - y[i]; break;
        case EW_MUL: out[i] = v * y[i]; break;
        case EW_SCALE: out[i] = k->a * v; break;
        case EW_SUM: case EW_MEAN: acc += v; break;
        case EW_BCE: acc += -(y[i] * log(1.0 / (1.0 + exp(-v))) + (1 - y[i]) * log(1.0 - 1.0 / (1.0 + exp(-v)))); break;
        case EW_MSE: acc += (v - y[i]) * (v - y[i]); break;
        default: out[i] = v;
        }
    }
    if (k->which == EW_SUM) out[0] = acc;
    if (k->which == EW_MEAN || k->which == EW_BCE || k->which == EW_MSE) out[0] = acc / k->n;
}

/* ---- spectral normalisation ---------------------------------------------------------------- */
typedef struct {
    int64_t rows, cols;
    int iters; /* power iterations; the reference holds for 0 (u and v as given) */
} sn_cfg;

static tg_tensor *lib_sn(tg_ctx *c, tg_tensor **in, const void *cfg) {
    return tg_spectral_norm(c, in[0], in[1], in[2], ((const sn_cfg *)cfg)->iters, 1e-12f);
}
static void ref_sn(double *const *in, double *out, const void *cfg) {
    const sn_cfg *k = cfg;
    double sigma = 0;
    for (int64_t r = 0; r < k->rows; r++) {
        double wv = 0;
        for (int64_t j = 0; j < k->cols; j++) wv += in[0][r * k->cols + j] * in[2][j];
        sigma += in[1][r] * wv;
    }
    for (int64_t i = 0; i < k->rows * k->cols; i++) out[i] = in[0][i] / sigma;
}

typedef struct {
    int N, C, H, W;
    const float *p; /* N x TG_AUG_NPARAM */
} aug_cfg;

static tg_tensor *lib_aug(tg_ctx *c, tg_tensor **in, const void *cfg) {
    return tg_diff_augment_with(c, in[0], ((const aug_cfg *)cfg)->p);
}
/* straight from the definition: brightness, saturation, contrast, shift with zeros, cutout */
static void ref_aug(double *const *in, double *out, const void *cfg) {
    const aug_cfg *k = cfg;
    const int P = k->H * k->W, S = k->C * P;
    double *z = malloc(sizeof(double) * (size_t)S);
    for (int n = 0; n < k->N; n++) {
        const double *x = in[0] + (size_t)n * S;
        const float *q = k->p + n * TG_AUG_NPARAM;
        for (int i = 0; i < S; i++) z[i] = x[i] + q[0];
        for (int o = 0; o < P; o++) { /* saturation about the pixel's channel mean */
            double m = 0;
            for (int c = 0; c < k->C; c++) m += z[c * P + o];
            m /= k->C;
            for (int c = 0; c < k->C; c++) z[c * P + o] = q[1] * (z[c * P + o] - m) + m;
        }
        double m = 0; /* contrast about the sample mean */
        for (int i = 0; i < S; i++) m += z[i];
        m /= S;
        for (int i = 0; i < S; i++) z[i] = q[2] * (z[i] - m) + m;
        for (int c = 0; c < k->C; c++)
            for (int h = 0; h < k->H; h++)
                for (int w = 0; w < k->W; w++) {
                    int sh = h - (int)q[3], sw = w - (int)q[4];
                    double v = sh >= 0 && sh < k->H && sw >= 0 && sw < k->W ? z[c * P + sh * k->W + sw] : 0.0;
                    if (q[7] > 0 && h >= q[5] && h < q[5] + q[7] && w >= q[6] && w < q[6] + q[7]) v = 0.0;
                    out[(size_t)n * S + c * P + h * k->W + w] = v;
                }
    }
    free(z);
}

typedef struct {
    int N, C, H, W, k, s, p, kind; /* kind: 0 max, 1 avg, 2 global avg */
    int where;
} pool_cfg;

static tg_tensor *lib_pool(tg_ctx *c, tg_tensor **in, const void *cfg) {
    const pool_cfg *k = cfg;
    if (k->kind == 0) return tg_max_pool2d(c, in[0], k->k, k->s, k->p);
    if (k->kind == 1) return tg_avg_pool2d(c, in[0], k->k, k->s, k->p);
    return tg_global_avg_pool2d(c, in[0]);
}
static void ref_pool(double *const *in, double *out, const void *cfg) {
    const pool_cfg *k = cfg;
    const int kk = k->kind == 2 ? k->H : k->k, s = k->kind == 2 ? 1 : k->s, p = k->kind == 2 ? 0 : k->p;
    const int kw = k->kind == 2 ? k->W : k->k;
    const int Ho = (k->H + 2 * p - kk) / s + 1, Wo = (k->W + 2 * p - kw) / s + 1;
    for (int q = 0; q < k->N * k->C; q++)
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++) {
                double best = -INFINITY, sum = 0;
                for (int i = 0; i < kk; i++)
                    for (int j = 0; j < kw; j++) {
                        int h = oh * s - p + i, w = ow * s - p + j;
                        if (h < 0 || h >= k->H || w < 0 || w >= k->W) continue;
                        double v = in[0][(q * k->H + h) * k->W + w];
                        sum += v;
                        if (v > best) best = v;
                    }
                out[(q * Ho + oh) * Wo + ow] = k->kind == 0 ? best : sum / (kk * kw);
            }
}

typedef struct {
    int N, C, P, kind; /* 0 softmax, 1 log-softmax, 2 cross-entropy, 3 dropout (p = e) */
    float e;
    const int32_t *labels;
    int where;
} sm_cfg;

static tg_tensor *lib_sm(tg_ctx *c, tg_tensor **in, const void *cfg) {
    const sm_cfg *k = cfg;
    if (k->kind == 0) return tg_softmax(c, in[0]);
    if (k->kind == 1) return tg_log_softmax(c, in[0]);
    if (k->kind == 3) return tg_dropout(c, in[0], k->e, true);
    return tg_cross_entropy(c, in[0], k->labels, k->e);
}
static void ref_sm(double *const *in, double *out, const void *cfg) {
    const sm_cfg *k = cfg;
    double loss = 0;
    for (int n = 0; n < k->N; n++)
        for (int p = 0; p < k->P; p++) {
            const double *x = in[0] + (size_t)n * k->C * k->P + p;
            double m = x[0], s = 0, mean = 0;
            for (int c = 1; c < k->C; c++) m = fmax(m, x[c * k->P]);
            for (int c = 0; c < k->C; c++) s += exp(x[c * k->P] - m), mean += x[c * k->P] / k->C;
            const double lse = m + log(s);
            for (int c = 0; c < k->C; c++) {
                double *o = out + (size_t)n * k->C * k->P + p + c * k->P;
                if (k->kind == 0) *o = exp(x[c * k->P] - lse);
                if (k->kind == 1) *o = x[c * k->P] - lse;
            }
            if (k->kind == 2) {
                const int y = k->labels[n * k->P + p];
                loss += (1 - k->e) * (lse - x[y * k->P]) + k->e * (lse - mean);
            }
        }
    if (k->kind == 2) out[0] = loss / (k->N * k->P);
}

typedef struct {
    int kind; /* 0 cat of 3, 1 slice, 2 add [C], 3 mul [N,C,1,1], 4 up nearest, 5 up bilinear, 6 embedding */
    int N, C, H, W;
    const int32_t *idx;
    int n;
    int where;
} ch_cfg;

static tg_tensor *lib_ch(tg_ctx *c, tg_tensor **in, const void *cfg) {
    const ch_cfg *k = cfg;
    switch (k->kind) {
    case 0: return tg_cat_channels(c, in, 3);
    case 1: return tg_slice_channels(c, in[0], 1, 2);
    case 2: return tg_add_channels(c, in[0], in[1]);
    case 3: return tg_mul_channels(c, in[0], in[1]);
    case 4: return tg_upsample2(c, in[0], false);
    case 5: return tg_upsample2(c, in[0], true);
    default: return tg_embedding(c, in[0], k->idx, k->n);
    }
}
static double up_ref(const double *x, int H, int W, int oh, int ow, int bil) {
    if (!bil) return x[(oh / 2) * W + ow / 2];
    double sh = fmax((oh + 0.5) / 2 - 0.5, 0), sw = fmax((ow + 0.5) / 2 - 0.5, 0);
    int h0 = (int)sh, w0 = (int)sw, h1 = h0 + 1 < H ? h0 + 1 : H - 1, w1 = w0 + 1 < W ? w0 + 1 : W - 1;
    double lh = sh - h0, lw = sw - w0;
    return (1 - lh) * ((1 - lw) * x[h0 * W + w0] + lw * x[h0 * W + w1]) + lh * ((1 - lw) * x[h1 * W + w0] + lw * x[h1 * W + w1]);
}
static void ref_ch(double *const *in, double *out, const void *cfg) {
    const ch_cfg *k = cfg;
    const int P = k->H * k->W;
    int o = 0;
    switch (k->kind) {
    case 0: /* inputs with C, 1 and 2 channels */
        for (int n = 0; n < k->N; n++)
            for (int t = 0; t < 3; t++) {
                int C = t == 0 ? k->C : t;
                for (int i = 0; i < C * P; i++) out[o++] = in[t][n * C * P + i];
            }
        break;
    case 1:
        for (int n = 0; n < k->N; n++)
            for (int i = 0; i < 2 * P; i++) out[o++] = in[0][(n * k->C + 1) * P + i];
        break;
    case 2:
    case 3:
        for (int n = 0; n < k->N; n++)
            for (int c = 0; c < k->C; c++)
                for (int i = 0; i < P; i++) {
                    double x = in[0][(n * k->C + c) * P + i];
                    out[o++] = k->kind == 2 ? x + in[1][c] : x * in[1][n * k->C + c];
                }
        break;
    case 4:
    case 5:
        for (int q = 0; q < k->N * k->C; q++)
            for (int oh = 0; oh < 2 * k->H; oh++)
                for (int ow = 0; ow < 2 * k->W; ow++) out[o++] = up_ref(in[0] + q * P, k->H, k->W, oh, ow, k->kind == 5);
        break;
    default:
        for (int i = 0; i < k->n; i++)
            for (int d = 0; d < k->W; d++) out[o++] = in[0][k->idx[i] * k->W + d];
    }
}


/* ---- the table ---------------------------------------------------------------------------- */
#define MAX_CASES 192
static tu_op_case cases[MAX_CASES];
static int n_cases;

static tu_op_case *add(const char *name, const char *fn, uint64_t seed, int cpu, tu_lib_fn lib, tu_ref_fn ref,
                       const void *cfg, int64_t out_n, double dev_atol, double dev_rtol) {
    tu_op_case *c = &cases[n_cases++];
    memset(c, 0, sizeof *c);
    c->name = name, c->fn = fn, c->seed = seed, c->cpu = cpu, c->dev_atol = dev_atol, c->dev_rtol = dev_rtol;
    c->check.lib = lib, c->check.ref = cpu ? ref : NULL, c->check.cfg = cfg, c->check.out_n = out_n;
    c->check.fwd_atol = 1e-6, c->check.fwd_rtol = 1e-5, c->check.grad_atol = 1e-4, c->check.grad_rtol = 1e-3;
    return c;
}
/* an argument out of range for row c: its call with cfg must fail with want, naming frag */
static void bad(tu_op_case *c, const void *cfg, tg_status want, const char *frag) {
    c->bad[c->n_bad++] = (tu_bad_cfg){cfg, want, frag};
}
static tu_in_spec in4(int64_t a, int64_t b, int64_t c, int64_t d, double lo, double hi, int grad) {
    return (tu_in_spec){4, {a, b, c, d}, lo, hi, grad, 0};
}
static tu_in_spec in1(int64_t a, double lo, double hi, int grad) { return (tu_in_spec){1, {a}, lo, hi, grad, 0}; }
static tu_in_spec in2(int64_t a, int64_t b, double lo, double hi, int grad) {
    return (tu_in_spec){2, {a, b}, lo, hi, grad, 0};
}

/* conv and transposed conv: the small shapes against the references, the DCGAN's and awkward
 * ones (33 channels, batch 1, odd sizes) across devices */
static void conv_cases(void) {
    static const conv_cfg conv[] = {
        {2, 3, 7, 6, 4, 3, 3, 1, 1, 1, REF},  /* same padding, odd sizes */
        {3, 2, 8, 8, 5, 4, 4, 2, 1, 1, REF},  /* the DCGAN shape: 4x4 stride 2 pad 1 */
        {1, 3, 5, 7, 2, 2, 3, 2, 0, 0, REF},  /* batch 1 (direct path), non-square kernel, no bias */
        {2, 1, 4, 4, 3, 4, 4, 1, 0, 1, REF},  /* kernel covers the whole input */
        {16, 3, 64, 64, 64, 4, 4, 2, 1, 1, DEV}, /* D layer 1 at batch 16 */
        {8, 64, 32, 32, 128, 4, 4, 2, 1, 0, DEV}, /* D layer 2 */
        {4, 64, 32, 32, 64, 3, 3, 1, 1, 1, DEV},  /* the seed recipe's 3x3 conv */
        {1, 5, 9, 7, 33, 3, 3, 2, 1, 1, DEV},     /* batch 1, odd sizes, 33 channels */
        {3, 7, 13, 11, 17, 5, 5, 3, 2, 1, DEV},
    };
    static const conv_cfg convt[] = {
        {2, 3, 4, 4, 2, 4, 4, 2, 1, 1, REF},  /* DCGAN upsampling: 4 -> 8 */
        {3, 4, 1, 1, 3, 4, 4, 1, 0, 1, REF},  /* 1x1 noise map -> 4x4 (first G layer) */
        {1, 2, 3, 5, 3, 3, 2, 2, 0, 0, REF},  /* batch 1, odd, non-square, no bias */
        {2, 3, 5, 5, 2, 3, 3, 1, 1, 1, REF},  /* stride 1 "same" */
        {16, 100, 1, 1, 512, 4, 4, 1, 0, 1, DEV}, /* G layer 1: noise -> 4x4 */
        {8, 128, 16, 16, 64, 4, 4, 2, 1, 0, DEV}, /* G upsampling */
        {4, 64, 32, 32, 3, 4, 4, 2, 1, 1, DEV},   /* G output layer */
        {1, 5, 7, 9, 33, 3, 3, 2, 1, 1, DEV},     /* batch 1, odd */
        {3, 17, 5, 6, 7, 5, 5, 3, 1, 0, DEV},
    };
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < 9; i++) {
            const conv_cfg *k = t ? &convt[i] : &conv[i];
            const int cpu = k->where == REF;
            const int Ho = t ? convt_out(k->H, k->kh, k->stride, k->pad) : conv_out(k->H, k->kh, k->stride, k->pad);
            const int Wo = t ? convt_out(k->W, k->kw, k->stride, k->pad) : conv_out(k->W, k->kw, k->stride, k->pad);
            tu_op_case *c = add(t ? "conv_transpose2d" : "conv2d", t ? "tg_conv_transpose2d" : "tg_conv2d",
                                (t ? 200 : 100) + i, cpu, t ? lib_convt : lib_conv, t ? ref_convt : ref_conv, k,
                                (int64_t)k->N * k->Cout * Ho * Wo, 1e-4, 1e-3);
            if (i == 0) { /* the first row's shapes with a stride of 0 and a padding of -1 */
                static const conv_cfg zero = {2, 3, 7, 6, 4, 3, 3, 0, 1, 1, REF}, neg = {2, 3, 7, 6, 4, 3, 3, 1, -1, 1, REF};
                static const conv_cfg tzero = {2, 3, 4, 4, 2, 4, 4, 0, 1, 1, REF}, tneg = {2, 3, 4, 4, 2, 4, 4, 2, -1, 1, REF};
                bad(c, t ? &tzero : &zero, TG_ERR_INVALID, "stride 0");
                bad(c, t ? &tneg : &neg, TG_ERR_INVALID, "pad -1");
            }
            tu_op_check *q = &c->check;
            const double wr = cpu ? 0.5 : 0.2;
            q->n_in = 3;
            q->in[0] = in4(k->N, k->Cin, k->H, k->W, -1, 1, 1);
            q->in[1] = t ? in4(k->Cin, k->Cout, k->kh, k->kw, -wr, wr, 1) : in4(k->Cout, k->Cin, k->kh, k->kw, -wr, wr, 1);
            q->in[2] = in1(k->Cout, -0.5, 0.5, 1);
            q->in[2].absent = !k->bias;
            q->fwd_atol = 1e-5, q->fwd_rtol = 1e-4, q->grad_atol = 2e-4, q->grad_rtol = 2e-3;
            q->bf16_in = 1u << 0 | 1u << 1; /* x and w */
        }
}

static void linear_cases(void) {
    static const lin_cfg list[] = {{4, 7, 3, 1, REF},      {1, 5, 1, 0, REF},  {5, 1, 6, 1, REF},
                                   {64, 8192, 1, 1, DEV}, {1, 37, 5, 0, DEV}, {13, 100, 33, 1, DEV}};
    for (int i = 0; i < 6; i++) {
        const lin_cfg *k = &list[i];
        const int cpu = k->where == REF;
        const double wr = cpu ? 1 : 0.1;
        tu_op_case *c = add("linear", "tg_linear", 300 + i, cpu, lib_linear, ref_linear, k, (int64_t)k->N * k->out, 1e-4, 1e-3);
        tu_op_check *q = &c->check;
        q->n_in = 3;
        q->in[0] = in2(k->N, k->in, -1, 1, 1);
        q->in[1] = in2(k->out, k->in, -wr, wr, 1);
        q->in[2] = in1(k->out, -1, 1, 1);
        q->in[2].absent = !k->bias;
        q->fwd_atol = 1e-5, q->fwd_rtol = 1e-5;
        q->bf16_in = 1u << 0 | 1u << 1; /* x and w */
    }
}

static void batch_norm_cases(void) {
    static const bn_cfg list[] = {
        {4, 3, 1, 5, 1, 1, 1e-5f, REF, 0}, /* training */
        {6, 2, 0, 0, 1, 1, 1e-3f, REF, 0}, /* [N,C] training */
        {3, 3, 2, 2, 0, 1, 1e-5f, REF, 0}, /* evaluation with running stats */
        {2, 2, 1, 3, 1, 0, 1e-5f, REF, 0}, /* no affine */
        /* device only: training and evaluation at the DCGAN's size and awkward ones */
        {64, 128, 16, 16, 1, 1, 1e-5f, DEV, 0}, {1, 33, 3, 5, 1, 1, 1e-5f, DEV, 0}, {7, 5, 1, 1, 1, 1, 1e-5f, DEV, 0},
        {2, 3, 9, 9, 1, 1, 1e-5f, DEV, 0},      {64, 128, 16, 16, 0, 1, 1e-3f, DEV, 0}, {1, 33, 3, 5, 0, 1, 1e-3f, DEV, 0},
        {7, 5, 1, 1, 0, 1, 1e-3f, DEV, 0},      {2, 3, 9, 9, 0, 1, 1e-3f, DEV, 0},
        /* channels of mean 1e4 and deviation about 1 (64 x 32 x 32 values each): statistics summed
         * in float lose the variance; both backends sum in double */
        {64, 2, 32, 32, 1, 1, 1e-5f, DEV, 1e4},
        {64, 2, 32, 32, 1, 0, 1e-5f, DEV, -1e4},
    };
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
        const bn_cfg *k = &list[i];
        const int64_t P = k->H ? (int64_t)k->H * k->W : 1;
        tu_op_case *c = add(k->training ? "batch_norm (training)" : "batch_norm (evaluation)", "tg_batch_norm", 400 + i,
                            k->where == REF, lib_bn, ref_bn, k, k->N * k->C * P, 2e-4, 2e-3);
        if (i == 0) {
            static const bn_cfg eps0 = {4, 3, 1, 5, 1, 1, 0.0f, REF, 0}, epsnan = {4, 3, 1, 5, 1, 1, NAN, REF, 0};
            bad(c, &eps0, TG_ERR_INVALID, "eps 0");
            bad(c, &epsnan, TG_ERR_INVALID, "eps nan");
        }
        tu_op_check *q = &c->check;
        q->n_in = 5;
        const double lo = -1.7 + k->offset, hi = 1.7 + k->offset; /* deviation 1 (uniform) */
        q->in[0] = k->H ? in4(k->N, k->C, k->H, k->W, k->offset ? lo : -2, k->offset ? hi : 3, 1)
                        : in2(k->N, k->C, -2, 3, 1);
        q->in[1] = in1(k->C, 0.5, 1.5, 1);
        q->in[2] = in1(k->C, -0.5, 0.5, 1);
        q->in[1].absent = q->in[2].absent = !k->affine;
        q->in[3] = in1(k->C, -0.5, 0.5, 0);
        q->in[4] = in1(k->C, 0.5, 2.0, 0);
        q->in[3].absent = q->in[4].absent = k->training; /* lib_bn passes running statistics in evaluation only */
        q->fwd_atol = 1e-5, q->fwd_rtol = 1e-4, q->grad_atol = 5e-4, q->grad_rtol = 5e-3;
    }
}

static void elementwise_cases(void) {
    static const char *names[EW_COUNT] = {"leaky_relu", "relu", "tanh", "sigmoid", "add", "sub", "mul", "scale",
                                          "sum", "mean", "bce_with_logits", "mse_loss", "reshape + flatten"};
    static const char *fns[EW_COUNT] = {"tg_leaky_relu", "tg_relu", "tg_tanh", "tg_sigmoid", "tg_add", "tg_sub",
                                        "tg_mul", "tg_scale", "tg_sum", "tg_mean", "tg_bce_with_logits",
                                        "tg_mse_loss", NULL /* two functions */};
    static ew_cfg small[EW_COUNT], big[EW_COUNT];
    for (int dev = 0; dev < 2; dev++)
        for (int w = 0; w < EW_COUNT; w++) {
            if (dev && w == EW_RESHAPE) continue; /* no device work: a view */
            ew_cfg *k = dev ? &big[w] : &small[w];
            const int64_t d[4] = {dev ? 64 : 2, 3, dev ? 33 : 4, dev ? 5 : 1};
            k->which = w, k->n = d[0] * d[1] * d[2] * d[3], k->a = w == EW_SCALE ? (dev ? -0.75f : -1.75f) : 0.2f;
            const int binary = w == EW_ADD || w == EW_SUB || w == EW_MUL || w == EW_BCE || w == EW_MSE;
            const int scalar = w == EW_SUM || w == EW_MEAN || w == EW_BCE || w == EW_MSE;
            tu_op_case *c = add(names[w], fns[w], (dev ? 600 : 500) + w, !dev, lib_ew, ref_ew, k, scalar ? 1 : k->n, 1e-5, 1e-4);
            if (w == EW_LEAKY && !dev) {
                static const ew_cfg slope_nan = {EW_LEAKY, 24, NAN};
                bad(c, &slope_nan, TG_ERR_INVALID, "slope nan");
            }
            tu_op_check *q = &c->check;
            q->n_in = binary ? 2 : 1;
            /* values kept away from the kinks of relu so finite differences are meaningful */
            q->in[0] = dev ? in4(d[0], d[1], d[2], d[3], -4, 4, 1) : (tu_in_spec){3, {2, 3, 4}, -3, 3, 1, 0};
            q->in[1] = q->in[0];
            q->in[1].lo = w == EW_BCE ? 0 : -2, q->in[1].hi = w == EW_BCE ? 1 : 2;
            q->fwd_atol = 1e-5, q->fwd_rtol = 1e-5;
            q->h = 1e-4;
        }
}

static void spectral_cases(void) {
    static const sn_cfg small[3] = {{5, 12, 0}, {1, 7, 0}, {9, 1, 0}};
    static const int64_t shp[3][4] = {{5, 3, 2, 2}, {1, 7, 1, 1}, {9, 1, 1, 1}};
    for (int i = 0; i < 3; i++) {
        tu_op_case *c = add("spectral_norm", "tg_spectral_norm", 900 + i, 1, lib_sn, ref_sn, &small[i],
                            small[i].rows * small[i].cols, 1e-5, 1e-3);
        if (i == 0) {
            static const sn_cfg neg = {5, 12, -1};
            bad(c, &neg, TG_ERR_INVALID, "power_iters -1");
        }
        c->check.n_in = 3;
        c->check.in[0] = in4(shp[i][0], shp[i][1], shp[i][2], shp[i][3], -0.2, 1, 1);
        c->check.in[1] = in1(small[i].rows, 0.2, 1, 0);
        c->check.in[2] = in1(small[i].cols, 0.2, 1, 0);
        c->check.grad_rtol = 2e-3;
    }
    static sn_cfg big[6];
    static const int64_t bshp[3][4] = {{128, 64, 4, 4}, {1, 8192, 1, 1}, {33, 5, 3, 3}};
    for (int it = 0; it <= 1; it++)
        for (int i = 0; i < 3; i++) {
            sn_cfg *k = &big[it * 3 + i];
            k->rows = bshp[i][0], k->cols = bshp[i][1] * bshp[i][2] * bshp[i][3], k->iters = it;
            tu_op_case *c = add("spectral_norm (device)", "tg_spectral_norm", 8, 0, lib_sn, NULL, k, k->rows * k->cols, 1e-5, 1e-3);
            c->check.n_in = 3;
            c->check.in[0] = in4(bshp[i][0], bshp[i][1], bshp[i][2], bshp[i][3], -0.2, 1, 1);
            c->check.in[1] = in1(k->rows, 0.1, 1, 0);
            c->check.in[2] = in1(k->cols, 0.1, 1, 0);
        }
}

static void augment_cases(void) {
    /* per sample: brightness, saturation, contrast, ty, tx, cutout y0, x0, size */
    static const float p1[3 * TG_AUG_NPARAM] = {0.3f, 1.7f, 0.6f, 2, -1, 1, 4, 3,
                                                -0.4f, 0.2f, 1.4f, -3, 3, -2, -1, 4,
                                                0, 1, 1, 0, 0, 0, 0, 0};
    static const float p2[2 * TG_AUG_NPARAM] = {0.1f, 0.5f, 1.2f, 1, 1, 0, 0, 0, 0, 1, 1, -1, 0, 2, 2, 2};
    static const aug_cfg small[2] = {{3, 3, 7, 6, p1}, {2, 2, 5, 5, p2}};
    for (int i = 0; i < 2; i++) {
        const aug_cfg *k = &small[i];
        tu_op_case *c = add("diff_augment", NULL /* tg_diff_augment_with, internal */, 970 + i, 1, lib_aug, ref_aug, k, (int64_t)k->N * k->C * k->H * k->W, 1e-5, 1e-4);
        c->check.n_in = 1;
        c->check.in[0] = in4(k->N, k->C, k->H, k->W, -1, 1, 1);
        c->check.fwd_atol = 1e-5;
    }
    static float pb[64 * TG_AUG_NPARAM];
    for (int n = 0; n < 64; n++) { /* colour, shifts both ways, cutouts (some past the border), none */
        float *q = pb + n * TG_AUG_NPARAM;
        q[0] = -0.5f + (float)(n % 11) / 10.0f, q[1] = (float)(n % 9) / 4.0f, q[2] = 0.5f + (float)(n % 7) / 6.0f;
        q[3] = (float)(n % 17 - 8), q[4] = (float)(n % 13 - 6);
        q[5] = (float)(n % 40 - 8), q[6] = (float)(n % 37 - 10), q[7] = n % 3 ? 32.0f : 0.0f;
    }
    static aug_cfg big[3] = {{64, 3, 64, 64, pb}, {5, 3, 7, 9, pb}, {3, 1, 16, 16, pb}};
    for (int i = 0; i < 3; i++) {
        tu_op_case *c = add("diff_augment (device)", NULL, 9, 0, lib_aug, NULL, &big[i],
                            (int64_t)big[i].N * big[i].C * big[i].H * big[i].W, 1e-5, 1e-4);
        c->check.n_in = 1;
        c->check.in[0] = in4(big[i].N, big[i].C, big[i].H, big[i].W, -1, 1, 1);
    }
}

static int64_t pool_out(const pool_cfg *k) {
    const int kk = k->kind == 2 ? k->H : k->k, s = k->kind == 2 ? 1 : k->s, p = k->kind == 2 ? 0 : k->p;
    const int kw = k->kind == 2 ? k->W : k->k;
    return (int64_t)k->N * k->C * ((k->H + 2 * p - kk) / s + 1) * ((k->W + 2 * p - kw) / s + 1);
}

static void pool_cases(void) {
    static const pool_cfg small[] = {
        {2, 3, 8, 8, 2, 2, 0, 0, REF}, {1, 2, 7, 9, 3, 2, 1, 0, REF}, {2, 1, 5, 6, 3, 1, 1, 0, REF}, /* max */
        {2, 3, 8, 8, 2, 2, 0, 1, REF}, {1, 2, 7, 9, 3, 2, 1, 1, REF}, {3, 2, 5, 5, 4, 3, 2, 1, REF}, /* avg */
        {1, 2, 7, 9, 2, 2, 0, 0, REF}, {1, 2, 7, 9, 2, 2, 0, 1, REF}, /* 2x2/2 with an odd last row and column */
        {2, 4, 7, 5, 0, 0, 0, 2, REF},                                                              /* global */
        {64, 32, 28, 28, 2, 2, 0, 0, DEV}, {64, 32, 28, 28, 2, 2, 0, 1, DEV}, {64, 32, 7, 7, 0, 0, 0, 2, DEV},
        {3, 5, 9, 7, 3, 2, 1, 0, DEV}, {3, 5, 9, 7, 3, 2, 1, 1, DEV},
    };
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
        const pool_cfg *k = &small[i];
        const int cpu = k->where == REF;
        static const char *names[3] = {"max_pool2d", "avg_pool2d", "global_avg_pool2d"};
        static const char *fns[3] = {"tg_max_pool2d", "tg_avg_pool2d", "tg_global_avg_pool2d"};
        tu_op_case *c = add(names[k->kind], fns[k->kind], 1000 + i, cpu, lib_pool, ref_pool, k, pool_out(k), 1e-5, 1e-4);
        if (i == 0 || i == 3) { /* kernel 0, stride 0, a padding over half the kernel */
            static const pool_cfg bads[2][3] = {
                {{2, 3, 8, 8, 0, 1, 0, 0, REF}, {2, 3, 8, 8, 2, 0, 0, 0, REF}, {2, 3, 8, 8, 2, 1, 2, 0, REF}},
                {{2, 3, 8, 8, 0, 1, 0, 1, REF}, {2, 3, 8, 8, 2, 0, 0, 1, REF}, {2, 3, 8, 8, 2, 1, 2, 1, REF}}};
            bad(c, &bads[k->kind][0], TG_ERR_INVALID, "kernel 0x0");
            bad(c, &bads[k->kind][1], TG_ERR_INVALID, "stride 0x0");
            bad(c, &bads[k->kind][2], TG_ERR_INVALID, "half the kernel");
        }
        c->check.n_in = 1;
        c->check.in[0] = in4(k->N, k->C, k->H, k->W, -1, 1, 1);
    }
}

static void softmax_cases(void) {
    static const int32_t lab1[5] = {0, 3, 2, 3, 1}, lab2[2 * 6] = {0, 1, 2, 2, 1, 0, 1, 1, 0, 2, 2, 0};
    static int32_t labs[64 * 7];
    for (int i = 0; i < 64 * 7; i++) labs[i] = i * 7 % 10;
    static const sm_cfg list[] = {
        {5, 4, 1, 0, 0, NULL, REF}, {2, 3, 6, 0, 0, NULL, REF}, {5, 4, 1, 1, 0, NULL, REF}, {2, 3, 6, 1, 0, NULL, REF},
        {5, 4, 1, 2, 0, lab1, REF}, {5, 4, 1, 2, 0.1f, lab1, REF}, {2, 3, 6, 2, 0.25f, lab2, REF},
        /* device only: larger, and dropout */
        {64, 10, 1, 0, 0, NULL, DEV}, {3, 10, 7, 1, 0, NULL, DEV}, {64, 10, 1, 2, 0, labs, DEV},
        {3, 10, 7, 2, 0.1f, labs, DEV}, {64, 10, 1, 3, 0.4f, NULL, DEV}, {3, 10, 7, 3, 0.5f, NULL, DEV},
    };
    /* a label past the classes, a smoothing of 1.5, a dropout probability of 1 */
    static const int32_t lab_big[5] = {0, 3, 4, 3, 1};
    static const sm_cfg bad_label = {5, 4, 1, 2, 0, lab_big, REF}, bad_smooth = {5, 4, 1, 2, 1.5f, lab1, REF};
    static const sm_cfg bad_p = {64, 10, 1, 3, 1.0f, NULL, DEV};
    static const char *names[4] = {"softmax", "log_softmax", "cross_entropy", "dropout"};
    static const char *fns[4] = {"tg_softmax", "tg_log_softmax", "tg_cross_entropy", "tg_dropout"};
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
        const sm_cfg *k = &list[i];
        tu_op_case *c = add(names[k->kind], fns[k->kind], 1100 + i, k->where == REF, lib_sm, ref_sm, k,
                            k->kind == 2 ? 1 : (int64_t)k->N * k->C * k->P, 1e-5, 1e-4);
        if (k == &list[4]) {
            bad(c, &bad_label, TG_ERR_INVALID, "label 2 is 4");
            bad(c, &bad_smooth, TG_ERR_INVALID, "label_smoothing 1.5");
        }
        if (k == &list[11]) bad(c, &bad_p, TG_ERR_INVALID, "p 1");
        c->check.n_in = 1;
        c->check.in[0] = k->P == 1 ? in2(k->N, k->C, -3, 3, 1) : in4(k->N, k->C, k->P == 6 ? 2 : k->P, k->P == 6 ? 3 : 1, -3, 3, 1);
    }
}

static void channel_cases(void) {
    static const int32_t idx[7] = {3, 0, 3, 4, 1, 3, 0};
    static int32_t idx_big[200];
    for (int i = 0; i < 200; i++) idx_big[i] = i * 7 % 10;
    static const ch_cfg list[] = {
        {0, 2, 3, 3, 2, NULL, 0, REF}, {1, 2, 4, 3, 3, NULL, 0, REF}, {2, 3, 4, 2, 3, NULL, 0, REF},
        {3, 3, 4, 2, 3, NULL, 0, REF}, {4, 2, 2, 3, 4, NULL, 0, REF}, {5, 2, 2, 3, 4, NULL, 0, REF},
        {5, 1, 1, 1, 1, NULL, 0, REF}, {6, 0, 5, 1, 3, idx, 7, REF},
        /* device only, larger */
        {0, 16, 33, 9, 7, NULL, 0, DEV}, {1, 16, 33, 9, 7, NULL, 0, DEV}, {2, 16, 33, 9, 7, NULL, 0, DEV},
        {3, 16, 33, 9, 7, NULL, 0, DEV}, {4, 16, 33, 9, 7, NULL, 0, DEV}, {5, 16, 33, 9, 7, NULL, 0, DEV},
        {6, 0, 10, 1, 100, idx_big, 200, DEV},
    };
    /* an embedding index past the table, and none */
    static const int32_t idx_past[7] = {3, 0, 5, 4, 1, 3, 0};
    static const ch_cfg emb_past = {6, 0, 5, 1, 3, idx_past, 7, REF}, emb_none = {6, 0, 5, 1, 3, idx, 0, REF};
    static const char *names[7] = {"cat_channels", "slice_channels", "add_channels", "mul_channels",
                                   "upsample2 nearest", "upsample2 bilinear", "embedding"};
    static const char *fns[7] = {"tg_cat_channels", "tg_slice_channels", "tg_add_channels", "tg_mul_channels",
                                 "tg_upsample2", "tg_upsample2", "tg_embedding"};
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
        const ch_cfg *k = &list[i];
        const int64_t P = (int64_t)k->H * k->W;
        tu_op_case *c = add(names[k->kind], fns[k->kind], 1200 + i, k->where == REF, lib_ch, ref_ch, k, 0, 1e-5, 1e-4);
        if (k == &list[7]) {
            bad(c, &emb_past, TG_ERR_INVALID, "index 2 is 5");
            bad(c, &emb_none, TG_ERR_INVALID, "n must be");
        }
        tu_op_check *q = &c->check;
        q->n_in = 1;
        q->in[0] = in4(k->N, k->C, k->H, k->W, -1, 1, 1);
        switch (k->kind) {
        case 0:
            q->n_in = 3;
            q->in[1] = in4(k->N, 1, k->H, k->W, -1, 1, 1);
            q->in[2] = in4(k->N, 2, k->H, k->W, -1, 1, 1);
            q->out_n = k->N * (k->C + 3) * P;
            break;
        case 1: q->out_n = k->N * 2 * P; break;
        case 2: q->n_in = 2, q->in[1] = in1(k->C, -1, 1, 1), q->out_n = k->N * k->C * P; break;
        case 3: q->n_in = 2, q->in[1] = in4(k->N, k->C, 1, 1, -1, 1, 1), q->out_n = k->N * k->C * P; break;
        case 4:
        case 5: q->out_n = 4 * k->N * k->C * P; break;
        default: q->in[0] = in2(k->C, k->W, -1, 1, 1), q->out_n = (int64_t)k->n * k->W;
        }
    }
}

const tu_op_case *tu_op_cases(int *n) {
    if (!n_cases) {
        conv_cases();
        linear_cases();
        batch_norm_cases();
        elementwise_cases();
        spectral_cases();
        augment_cases();
        pool_cases();
        softmax_cases();
        channel_cases();
    }
    *n = n_cases;
    return cases;
}

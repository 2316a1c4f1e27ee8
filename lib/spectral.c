/*
 * spectral.c — tg_spectral_norm: a weight divided by its largest singular value (Miyato et al.
 * 2018), estimated by power iteration as torch.nn.utils.spectral_norm does it. The weight is seen
 * as a matrix [rows = shape[0], cols = the rest]. With power_iters > 0 (training), the persistent
 * vectors u [rows] and v [cols] are first updated in place:
 *     v = normalize(W^T u), u = normalize(W v)          (normalize(x) = x / max(|x|, eps))
 * then sigma = u . (W v) and y = W / sigma. The gradient flows through sigma with u and v held
 * fixed: dW = dy / sigma - (sum(dy * W) / sigma^2) u v^T.
 * Built from backend primitives only (gemm, mul, sum, axpby), so it runs on every backend.
 */
#include "core.h"

#include <math.h>

/* scalar device value -> host */
static float host_scalar(tg_ctx *ctx, const float *d) {
    float h = 0.0f;
    if (ctx->be->to_host(ctx, &h, d, sizeof h) != TG_OK) return NAN;
    return h;
}

/* row-major C[M,N] = alpha A[M,K] B[K,N] + beta C, all contiguous */
static void gemm(tg_ctx *ctx, int64_t M, int64_t N, int64_t K, float alpha, const float *A, const float *B,
                 float beta, float *C) {
    const tg_gemm_args g = {0, 0, M, N, K, alpha, beta, tg_mem_f32(A, M * K), tg_mem_f32(B, K * N),
                            tg_mem_f32(C, M * N), K, N, N, TG_PRECISION_FP32}; /* the power iteration stays float32 */
    ctx->be->gemm(ctx, &g);
}

/* x = x / max(|x|, eps); tmp holds n floats and one more for the sum */
static void normalize(tg_ctx *ctx, float *x, int64_t n, float eps, float *tmp) {
    const struct tg_backend_ops *be = ctx->be;
    const tg_mem xm = tg_mem_f32(x, n), tm = tg_mem_f32(tmp, n);
    be->mul(ctx, xm, xm, tm, 0);
    be->sum(ctx, tm, 1.0f, tg_mem_f32(tmp + n, 1));
    const float norm = sqrtf(host_scalar(ctx, tmp + n));
    be->axpby(ctx, 1.0f / fmaxf(norm, eps), xm, 0.0f, xm);
}

static void spectral_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *w = nd->in[0], *y = nd->out, *u = nd->saved[0], *v = nd->saved[1];
    float *dw = tg_grad_of(ctx, w);
    if (!dw) return;
    const struct tg_backend_ops *be = ctx->be;
    const float sigma = nd->p.spectral.sigma;
    const int64_t n = w->numel, rows = w->shape[0], cols = n / rows;
    float *tmp = tg_workspace(ctx, sizeof(float) * (size_t)(n + 1));
    if (!tmp) return;
    be->mul(ctx, tg_mem_of(y->grad), tg_mem_of(w), tg_mem_f32(tmp, n), 0);
    be->sum(ctx, tg_mem_f32(tmp, n), 1.0f, tg_mem_f32(tmp + n, 1));
    const float c = host_scalar(ctx, tmp + n) / (sigma * sigma);
    be->axpby(ctx, 1.0f / sigma, tg_mem_of(y->grad), 1.0f, tg_mem_f32(dw, n));
    gemm(ctx, rows, cols, 1, -c, u->data, v->data, 1.0f, dw);
}

tg_tensor *tg_spectral_norm(tg_ctx *ctx, tg_tensor *w, tg_tensor *u, tg_tensor *v, int power_iters,
                            float eps) {
    static const char *fn = "tg_spectral_norm";
    if (!tg_check_in(ctx, w, fn, "w") || !tg_check_in(ctx, u, fn, "u") || !tg_check_in(ctx, v, fn, "v"))
        return NULL;
    if (w->ndim < 2) {
        tg_fail(TG_ERR_SHAPE, fn, "w needs at least 2 dimensions, has %d", w->ndim);
        return NULL;
    }
    const int64_t n = w->numel, rows = w->shape[0], cols = n / rows;
    if (u->numel != rows || v->numel != cols) {
        char b1[64], b2[64], b3[64];
        tg_fail(TG_ERR_SHAPE, fn, "u %s and v %s must have %lld and %lld elements for w %s", SHP(u, b1),
                SHP(v, b2), (long long)rows, (long long)cols, SHP(w, b3));
        return NULL;
    }
    if (power_iters < 0 || !(eps > 0.0f)) {
        tg_fail(TG_ERR_INVALID, fn, "power_iters %d must be >= 0 and eps %g > 0", power_iters, eps);
        return NULL;
    }
    const struct tg_backend_ops *be = ctx->be;
    const int64_t big = rows > cols ? rows : cols;
    float *tmp = tg_workspace(ctx, sizeof(float) * (size_t)(big + 1));
    if (!tmp) return NULL;
    for (int it = 0; it < power_iters; it++) {
        /* v = W^T u: [1, rows] x [rows, cols]; u = W v: [rows, cols] x [cols, 1] */
        gemm(ctx, 1, cols, rows, 1.0f, u->data, w->data, 0.0f, v->data);
        normalize(ctx, v->data, cols, eps, tmp);
        gemm(ctx, rows, 1, cols, 1.0f, w->data, v->data, 0.0f, u->data);
        normalize(ctx, u->data, rows, eps, tmp);
    }
    /* sigma = u . (W v) */
    gemm(ctx, rows, 1, cols, 1.0f, w->data, v->data, 0.0f, tmp);
    be->mul(ctx, tg_mem_f32(tmp, rows), tg_mem_of(u), tg_mem_f32(tmp, rows), 0);
    be->sum(ctx, tg_mem_f32(tmp, rows), 1.0f, tg_mem_f32(tmp + rows, 1));
    const float sigma = host_scalar(ctx, tmp + rows);
    if (!(fabsf(sigma) > 0.0f) || !isfinite(sigma)) {
        tg_fail(TG_ERR_NUMERIC, fn, "the estimated spectral norm is %g", sigma);
        return NULL;
    }
    tg_tensor *y = tg_result(ctx, w->ndim, w->shape, fn);
    if (!y) return NULL;
    be->axpby(ctx, 1.0f / sigma, tg_mem_of(w), 0.0f, tg_mem_of(y));
    if (tg_needs_grad(ctx, &w, 1)) {
        /* u and v as they are now: a later forward may move them before this backward runs */
        tg_tensor *us = tg_result(ctx, 1, &rows, fn), *vs = tg_result(ctx, 1, &cols, fn);
        if (!us || !vs) return NULL;
        be->copy(ctx, tg_mem_of(us), tg_mem_of(u));
        be->copy(ctx, tg_mem_of(vs), tg_mem_of(v));
        tg_node *nd = tg_record(ctx, TG_OP_SPECTRAL, spectral_backward, y, &w, 1, fn);
        if (!nd) return NULL;
        nd->saved[0] = us;
        nd->saved[1] = vs;
        nd->p.spectral.sigma = sigma;
    }
    return y;
}

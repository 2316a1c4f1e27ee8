/*
 * pool.cu — the kernels behind lib/pool.c, lib/softmax.c and dropout's mask, with the
 * per-element math of tg_math.h as on the CPU (lib/cpu/pool.c): one thread per output (pooling
 * forward), per input (pooling backward: gathers, no atomics), per row (softmax, cross-entropy).
 */
#include "cuda_common.cuh"

static __global__ void pool_fwd_kernel(int is_max, const float *x, int64_t planes, int H, int W,
                                       int kh, int kw, int sh, int sw, int ph, int pw, int Ho, int Wo,
                                       float *y, int32_t *idx) {
    TG_GRID_STRIDE(o, planes * Ho * Wo) {
        const int64_t q = o / ((int64_t)Ho * Wo);
        const int oh = (int)(o / Wo % Ho), ow = (int)(o % Wo);
        const float *xp = x + q * H * W;
        int hlo, hhi, wlo, whi;
        tg_pool_window(oh, sh, ph, kh, H, &hlo, &hhi);
        tg_pool_window(ow, sw, pw, kw, W, &wlo, &whi);
        float best = -INFINITY, sum = 0.0f;
        int arg = -1, nan = 0;
        for (int h = hlo; h < hhi && !nan; h++)
            for (int w = wlo; w < whi && !nan; w++) {
                const float v = xp[h * W + w];
                sum += v;
                if (v > best || arg < 0 || v != v) best = v, arg = h * W + w;
                nan = v != v;
            }
        if (is_max) y[o] = best, idx[o] = arg;
        else y[o] = sum / tg_pool_area(kh, kw);
    }
}

static __global__ void pool_bwd_kernel(int is_max, const float *dy, const int32_t *idx, int64_t planes,
                                       int H, int W, int kh, int kw, int sh, int sw, int ph, int pw,
                                       int Ho, int Wo, float *dx) {
    TG_GRID_STRIDE(i, planes * H * W) {
        const int64_t q = i / ((int64_t)H * W);
        const int h = (int)(i / W % H), w = (int)(i % W);
        int olo, ohi, plo, phi;
        tg_pool_cover(h, ph, kh, sh, Ho, &olo, &ohi);
        tg_pool_cover(w, pw, kw, sw, Wo, &plo, &phi);
        const float *g = dy + q * Ho * Wo;
        float s = 0.0f;
        for (int oh = olo; oh <= ohi; oh++)
            for (int ow = plo; ow <= phi; ow++) {
                const int64_t o = (int64_t)oh * Wo + ow;
                if (!is_max || idx[q * Ho * Wo + o] == h * W + w) s += g[o];
            }
        dx[i] += is_max ? s : s / tg_pool_area(kh, kw);
    }
}

static __global__ void softmax_fwd_kernel(int is_log, const float *x, int64_t N, int64_t C, int64_t P,
                                          float *y) {
    TG_GRID_STRIDE(r, N * P) {
        const int64_t base = r / P * C * P + r % P;
        const float lse = tg_logsumexp_row(x + base, C, P);
        for (int64_t c = 0; c < C; c++) {
            const float l = x[base + c * P] - lse;
            y[base + c * P] = is_log ? l : expf(l);
        }
    }
}

static __global__ void softmax_bwd_kernel(int is_log, const float *y, const float *dy, int64_t N,
                                          int64_t C, int64_t P, float *dx) {
    TG_GRID_STRIDE(r, N * P) {
        const int64_t base = r / P * C * P + r % P;
        float s = 0.0f;
        for (int64_t c = 0; c < C; c++) s += is_log ? dy[base + c * P] : dy[base + c * P] * y[base + c * P];
        for (int64_t c = 0; c < C; c++) {
            const int64_t i = base + c * P;
            dx[i] += is_log ? dy[i] - expf(y[i]) * s : y[i] * (dy[i] - s);
        }
    }
}

static __global__ void xent_fwd_kernel(const float *x, const int32_t *labels, int64_t N, int64_t C,
                                       int64_t P, float e, float *rows) {
    TG_GRID_STRIDE(r, N * P) rows[r] = tg_xent_row(x + r / P * C * P + r % P, C, P, labels[r], e);
}

static __global__ void xent_bwd_kernel(const float *x, const int32_t *labels, int64_t N, int64_t C,
                                       int64_t P, float e, const float *dl, float scale, float *dx) {
    const float k = scale * dl[0];
    TG_GRID_STRIDE(r, N * P) {
        const int64_t base = r / P * C * P + r % P;
        const float lse = tg_logsumexp_row(x + base, C, P);
        for (int64_t c = 0; c < C; c++)
            dx[base + c * P] += k * tg_xent_dx1(x[base + c * P], lse, (int)c, labels[r], e, C);
    }
}

static __global__ void dropout_mask_kernel(float *mask, int64_t n, uint64_t seed, uint32_t stream,
                                           uint64_t offset, float p) {
    TG_GRID_STRIDE(i, n) mask[i] = tg_dropout_mask1(seed, stream, offset + (uint64_t)i, p);
}

extern "C" {

void tg_cuda_pool_fwd(tg_ctx *ctx, int is_max, const float *x, int64_t planes, int H, int W, int kh,
                      int kw, int sh, int sw, int ph, int pw, int Ho, int Wo, float *y, int32_t *idx) {
    pool_fwd_kernel<<<tg_blocks(planes * Ho * Wo), TG_THREADS, 0, tg_stream(ctx)>>>(
        is_max, x, planes, H, W, kh, kw, sh, sw, ph, pw, Ho, Wo, y, idx);
    TG_LAUNCHED(ctx, "pool forward");
}

void tg_cuda_pool_bwd(tg_ctx *ctx, int is_max, const float *dy, const int32_t *idx, int64_t planes,
                      int H, int W, int kh, int kw, int sh, int sw, int ph, int pw, int Ho, int Wo,
                      float *dx) {
    pool_bwd_kernel<<<tg_blocks(planes * H * W), TG_THREADS, 0, tg_stream(ctx)>>>(
        is_max, dy, idx, planes, H, W, kh, kw, sh, sw, ph, pw, Ho, Wo, dx);
    TG_LAUNCHED(ctx, "pool backward");
}

void tg_cuda_softmax_fwd(tg_ctx *ctx, int is_log, const float *x, int64_t N, int64_t C, int64_t P,
                         float *y) {
    softmax_fwd_kernel<<<tg_blocks(N * P), TG_THREADS, 0, tg_stream(ctx)>>>(is_log, x, N, C, P, y);
    TG_LAUNCHED(ctx, "softmax forward");
}

void tg_cuda_softmax_bwd(tg_ctx *ctx, int is_log, const float *y, const float *dy, int64_t N,
                         int64_t C, int64_t P, float *dx) {
    softmax_bwd_kernel<<<tg_blocks(N * P), TG_THREADS, 0, tg_stream(ctx)>>>(is_log, y, dy, N, C, P, dx);
    TG_LAUNCHED(ctx, "softmax backward");
}

void tg_cuda_xent_fwd(tg_ctx *ctx, const float *x, const int32_t *labels, int64_t N, int64_t C,
                      int64_t P, float e, float *rows) {
    xent_fwd_kernel<<<tg_blocks(N * P), TG_THREADS, 0, tg_stream(ctx)>>>(x, labels, N, C, P, e, rows);
    TG_LAUNCHED(ctx, "cross_entropy forward");
}

void tg_cuda_xent_bwd(tg_ctx *ctx, const float *x, const int32_t *labels, int64_t N, int64_t C,
                      int64_t P, float e, const float *dl, float scale, float *dx) {
    xent_bwd_kernel<<<tg_blocks(N * P), TG_THREADS, 0, tg_stream(ctx)>>>(x, labels, N, C, P, e, dl, scale, dx);
    TG_LAUNCHED(ctx, "cross_entropy backward");
}

void tg_cuda_dropout_mask(tg_ctx *ctx, float *mask, int64_t n, uint64_t seed, uint32_t stream,
                          uint64_t offset, float p) {
    dropout_mask_kernel<<<tg_blocks(n), TG_THREADS, 0, tg_stream(ctx)>>>(mask, n, seed, stream, offset, p);
    TG_LAUNCHED(ctx, "dropout mask");
}

} /* extern "C" */

/*
 * conv.cu — CUDA kernels behind lib/conv.c: im2col (one thread per column element, index math
 * from tg_im2col_src), col2im (one thread per image element gathering its kernel taps: no
 * atomics, deterministic), the [N,C,P] <-> [C,N*P] reorders, and the per-channel bias add.
 */
#include "cuda_common.cuh"

static __global__ void im2col_kernel(const float *x, int C, int H, int W, int kh, int kw,
                                     int stride, int pad, int Ho, int Wo, int64_t NP, int64_t total,
                                     float *col) {
    TG_GRID_STRIDE(idx, total) {
        const int64_t r = idx / NP, q = idx % NP;
        const int64_t src = tg_im2col_src(r, q, C, H, W, kh, kw, stride, pad, Ho, Wo);
        col[idx] = src >= 0 ? x[src] : 0.0f;
    }
}

static __global__ void col2im_kernel(const float *col, int C, int H, int W, int kh, int kw,
                                     int stride, int pad, int Ho, int Wo, int64_t NP, int64_t total,
                                     float *x, int acc) {
    TG_GRID_STRIDE(idx, total) {
        const int w = (int)(idx % W), h = (int)((idx / W) % H);
        const int64_t c = (idx / ((int64_t)W * H)) % C, n = idx / ((int64_t)W * H * C);
        float s = 0.0f;
        for (int i = 0; i < kh; i++) {
            const int hh = h + pad - i;
            if (hh < 0 || hh % stride) continue;
            const int oh = hh / stride;
            if (oh >= Ho) continue;
            for (int j = 0; j < kw; j++) {
                const int ww = w + pad - j;
                if (ww < 0 || ww % stride) continue;
                const int ow = ww / stride;
                if (ow >= Wo) continue;
                const int64_t r = (c * kh + i) * kw + j, q = (n * Ho + oh) * Wo + ow;
                s += col[r * NP + q];
            }
        }
        x[idx] = acc ? x[idx] + s : s;
    }
}

static __global__ void nc_to_cn_kernel(const float *src, int64_t N, int64_t C, int64_t P,
                                       float *dst) {
    TG_GRID_STRIDE(i, N * C * P) { /* i indexes dst [C, N*P]: coalesced writes */
        const int64_t p = i % P, n = (i / P) % N, c = i / (P * N);
        dst[i] = src[(n * C + c) * P + p];
    }
}

static __global__ void cn_to_nc_kernel(const float *src, int64_t N, int64_t C, int64_t P,
                                       const float *bias, float *dst, int acc) {
    TG_GRID_STRIDE(i, N * C * P) { /* i indexes dst [N, C, P] */
        const int64_t p = i % P, c = (i / P) % C, n = i / (P * C);
        const float v = src[(c * N + n) * P + p] + (bias ? bias[c] : 0.0f);
        dst[i] = acc ? dst[i] + v : v;
    }
}

static __global__ void bias_add_kernel(float *y, const float *b, int64_t C, int64_t P, int64_t n) {
    TG_GRID_STRIDE(i, n) { y[i] += b[(i / P) % C]; }
}

extern "C" {

void tg_cuda_im2col(tg_ctx *ctx, const float *x, int N, int C, int H, int W, int kh, int kw,
                    int stride, int pad, int Ho, int Wo, float *col) {
    const int64_t NP = (int64_t)N * Ho * Wo, total = (int64_t)C * kh * kw * NP;
    im2col_kernel<<<tg_blocks(total), TG_THREADS, 0, tg_stream(ctx)>>>(x, C, H, W, kh, kw, stride,
                                                                         pad, Ho, Wo, NP, total, col);
    TG_LAUNCHED(ctx, "im2col");
}

void tg_cuda_col2im(tg_ctx *ctx, const float *col, int N, int C, int H, int W, int kh, int kw,
                    int stride, int pad, int Ho, int Wo, float *x, int acc) {
    const int64_t NP = (int64_t)N * Ho * Wo, total = (int64_t)N * C * H * W;
    col2im_kernel<<<tg_blocks(total), TG_THREADS, 0, tg_stream(ctx)>>>(
        col, C, H, W, kh, kw, stride, pad, Ho, Wo, NP, total, x, acc);
    TG_LAUNCHED(ctx, "col2im");
}

void tg_cuda_nc_to_cn(tg_ctx *ctx, const float *src, int64_t N, int64_t C, int64_t P, float *dst) {
    nc_to_cn_kernel<<<tg_blocks(N * C * P), TG_THREADS, 0, tg_stream(ctx)>>>(src, N, C, P, dst);
    TG_LAUNCHED(ctx, "nc_to_cn");
}

void tg_cuda_cn_to_nc(tg_ctx *ctx, const float *src, int64_t N, int64_t C, int64_t P,
                      const float *bias, float *dst, int acc) {
    cn_to_nc_kernel<<<tg_blocks(N * C * P), TG_THREADS, 0, tg_stream(ctx)>>>(src, N, C, P, bias,
                                                                              dst, acc);
    TG_LAUNCHED(ctx, "cn_to_nc");
}

void tg_cuda_bias_add(tg_ctx *ctx, float *y, const float *b, int64_t N, int64_t C, int64_t P) {
    bias_add_kernel<<<tg_blocks(N * C * P), TG_THREADS, 0, tg_stream(ctx)>>>(y, b, C, P, N * C * P);
    TG_LAUNCHED(ctx, "bias_add");
}

} /* extern "C" */

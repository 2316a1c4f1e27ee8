/*
 * conv.cu — CUDA kernels behind lib/conv.c: im2col (a row of the column matrix per grid row),
 * col2im (one thread per image element gathering the windows that cover it: no atomics,
 * deterministic), the [N,C,P] <-> [C,N*P] reorders, and the per-channel bias add.
 */
#include "cuda_common.cuh"

/* 2-D grid: blockIdx.y walks rows r = (c,i,j), so the tap is decoded once per row; x walks the
 * columns q = (n,oh,ow). I is int32_t when every index fits, which makes the divisions cheap.
 * The tap decode and the input coordinate are tg_math.h's (as tg_im2col_src). */
template <typename I>
static __global__ void im2col_kernel(const float *x, int C, int H, int W, int kh, int kw,
                                     int stride, int pad, int Ho, int Wo, I NP, I K, float *col) {
    const I P = (I)Ho * Wo;
    for (I r = blockIdx.y; r < K; r += gridDim.y) {
        int i, j;
        int64_t c64;
        tg_im2col_tap((int64_t)r, kh, kw, &c64, &i, &j); /* once per row */
        const I c = (I)c64;
        float *dst = col + r * NP;
        for (I q = (I)blockIdx.x * blockDim.x + threadIdx.x; q < NP; q += (I)blockDim.x * gridDim.x) {
            const I n = q / P, rem = q - n * P;
            const int oh = (int)(rem / Wo), ow = (int)(rem - (I)oh * Wo);
            const int h = tg_conv_in(oh, stride, pad, i), w = tg_conv_in(ow, stride, pad, j);
            dst[q] = (h >= 0 && h < H && w >= 0 && w < W) ? x[((n * C + c) * H + h) * W + w] : 0.0f;
        }
    }
}

/* One thread per image element; it gathers exactly the output positions whose kernel window
 * covers it (for 4x4 stride 2: 2x2 of them), no atomics: deterministic. */
template <typename I>
static __global__ void col2im_kernel(const float *col, int C, int H, int W, int kh, int kw,
                                     int stride, int pad, int Ho, int Wo, I NP, I total, float *x,
                                     int acc) {
    for (I idx = (I)blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += (I)blockDim.x * gridDim.x) {
        const int wp = (int)(idx % W) + pad, hp = (int)((idx / W) % H) + pad;
        const I c = (idx / ((I)W * H)) % C, n = idx / ((I)W * H * C);
        const int w0 = wp < kw ? 0 : (wp - kw) / stride + 1, w1 = min(wp / stride + 1, Wo);
        const int h0 = hp < kh ? 0 : (hp - kh) / stride + 1, h1 = min(hp / stride + 1, Ho);
        float s = 0.0f;
        for (int oh = h0; oh < h1; oh++) {
            const int i = hp - oh * stride; /* in [0, kh) by the bounds above */
            const float *row = col + ((c * kh + i) * kw) * NP + (n * Ho + oh) * Wo;
            for (int ow = w0; ow < w1; ow++) s += row[(I)(wp - ow * stride) * NP + ow];
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

static bool fits32(int64_t a, int64_t b) { return a < INT32_MAX && b < INT32_MAX; }

void tg_cuda_im2col(tg_ctx *ctx, const float *x, int N, int C, int H, int W, int kh, int kw,
                    int stride, int pad, int Ho, int Wo, float *col) {
    const int64_t NP = (int64_t)N * Ho * Wo, K = (int64_t)C * kh * kw;
    dim3 grid(tg_blocks(NP) > 1024 ? 1024 : tg_blocks(NP), (unsigned)(K > 65535 ? 65535 : K));
    if (fits32(K * NP, (int64_t)N * C * H * W))
        im2col_kernel<int32_t><<<grid, TG_THREADS, 0, tg_stream(ctx)>>>(
            x, C, H, W, kh, kw, stride, pad, Ho, Wo, (int32_t)NP, (int32_t)K, col);
    else
        im2col_kernel<int64_t><<<grid, TG_THREADS, 0, tg_stream(ctx)>>>(x, C, H, W, kh, kw, stride,
                                                                         pad, Ho, Wo, NP, K, col);
    TG_LAUNCHED(ctx, "im2col");
}

void tg_cuda_col2im(tg_ctx *ctx, const float *col, int N, int C, int H, int W, int kh, int kw,
                    int stride, int pad, int Ho, int Wo, float *x, int acc) {
    const int64_t NP = (int64_t)N * Ho * Wo, total = (int64_t)N * C * H * W;
    if (fits32((int64_t)C * kh * kw * NP, total))
        col2im_kernel<int32_t><<<tg_blocks(total), TG_THREADS, 0, tg_stream(ctx)>>>(
            col, C, H, W, kh, kw, stride, pad, Ho, Wo, (int32_t)NP, (int32_t)total, x, acc);
    else
        col2im_kernel<int64_t><<<tg_blocks(total), TG_THREADS, 0, tg_stream(ctx)>>>(
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

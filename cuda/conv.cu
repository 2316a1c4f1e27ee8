/*
 * conv.cu — the CUDA backend's convolutions: each pass is im2col + one cuBLAS GEMM over the whole
 * batch, with the column buffer [C*kh*kw, N*Ho*Wo] in the context's workspace (lib/conv.c
 * validates and records; the algorithm is this file's):
 *   forward    col = im2col(x); yt[Co, N*P] = w[Co, K] col; y = reorder(yt) + bias
 *   data grad  col = w^T dyt (dyt = dy as [Co, N*P]); dx = col2im(col)
 *   weight     col = im2col(x); dw = dyt col^T
 * (at batch 1 the reorders are skipped: [1,Co,P] is already [Co, P]). Kernels: im2col (a row of
 * the column matrix per grid row), col2im (one thread per image element gathering the windows
 * that cover it: no atomics, deterministic), the [N,C,P] <-> [C,N*P] reorders, the bias add.
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

static void im2col(tg_ctx *ctx, const float *x, int N, int C, int H, int W, int kh, int kw,
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

static void col2im(tg_ctx *ctx, const float *col, int N, int C, int H, int W, int kh, int kw,
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

static void nc_to_cn(tg_ctx *ctx, const float *src, int64_t N, int64_t C, int64_t P, float *dst) {
    nc_to_cn_kernel<<<tg_blocks(N * C * P), TG_THREADS, 0, tg_stream(ctx)>>>(src, N, C, P, dst);
    TG_LAUNCHED(ctx, "nc_to_cn");
}

static void cn_to_nc(tg_ctx *ctx, const float *src, int64_t N, int64_t C, int64_t P,
                     const float *bias, float *dst, int acc) {
    cn_to_nc_kernel<<<tg_blocks(N * C * P), TG_THREADS, 0, tg_stream(ctx)>>>(src, N, C, P, bias,
                                                                              dst, acc);
    TG_LAUNCHED(ctx, "cn_to_nc");
}

void tg_cuda_bias_add(tg_ctx *ctx, tg_ncp s, tg_mem y, tg_mem b) {
    bias_add_kernel<<<tg_blocks(s.N * s.C * s.P), TG_THREADS, 0, tg_stream(ctx)>>>(tg_f(y), tg_f(b), s.C, s.P,
                                                                                  s.N * s.C * s.P);
    TG_LAUNCHED(ctx, "bias_add");
}

/* C[M,N] = A op(B) (+ C when acc) in the convolution's precision: the row-major GEMM the passes
 * need, through the table's slot */
static void gemm(tg_ctx *ctx, const tg_conv_geom *cg, int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A,
                 int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc, int acc) {
    tg_gemm_args g = {ta, tb, M, N, K, 1.0f, acc ? 1.0f : 0.0f, tg_mem_f32(A, 0), tg_mem_f32(B, 0), tg_mem_f32(C, 0),
                      lda, ldb, ldc, cg->prec};
    tg_cuda_gemm(ctx, &g);
}

/* the workspace, in floats (NULL: the message is set) */
static float *ws_floats(tg_ctx *ctx, int64_t n) {
    size_t bytes;
    if (!tg_bytes_ok(n, sizeof(float), &bytes)) {
        tg_fail(TG_ERR_NOMEM, "convolution (CUDA)", "a column buffer of %lld floats", (long long)n);
        return NULL;
    }
    return tg_workspace(ctx, bytes);
}

tg_status tg_cuda_conv_fwd(tg_ctx *ctx, const tg_conv_geom *g, tg_mem x, tg_mem w, tg_mem bias, tg_mem y, int acc) {
    const int64_t K = (int64_t)g->C * g->kh * g->kw, P = (int64_t)g->Ho * g->Wo, NP = g->N * P;
    const bool direct = g->N == 1; /* the GEMM's [Co, P] is already NCHW */
    float *ws = ws_floats(ctx, K * NP + (direct ? 0 : g->Co * NP));
    if (!ws) return TG_ERR_NOMEM;
    float *col = ws, *yt = direct ? tg_f(y) : ws + K * NP;
    im2col(ctx, tg_f(x), g->N, g->C, g->H, g->W, g->kh, g->kw, g->stride, g->pad, g->Ho, g->Wo, col);
    gemm(ctx, g, 0, 0, g->Co, NP, K, tg_f(w), K, col, NP, yt, NP, direct && acc);
    if (!direct) cn_to_nc(ctx, yt, g->N, g->Co, P, tg_f(bias), tg_f(y), acc);
    else if (bias.p) tg_cuda_bias_add(ctx, tg_ncp{1, g->Co, P}, y, bias);
    return TG_OK;
}

tg_status tg_cuda_conv_bwd_data(tg_ctx *ctx, const tg_conv_geom *g, tg_mem dy, tg_mem w, tg_mem dx, int acc) {
    const int64_t K = (int64_t)g->C * g->kh * g->kw, P = (int64_t)g->Ho * g->Wo, NP = g->N * P;
    const bool direct = g->N == 1;
    float *ws = ws_floats(ctx, K * NP + (direct ? 0 : g->Co * NP));
    if (!ws) return TG_ERR_NOMEM;
    float *col = ws;
    const float *dyt = tg_f(dy);
    if (!direct) {
        nc_to_cn(ctx, tg_f(dy), g->N, g->Co, P, ws + K * NP);
        dyt = ws + K * NP;
    }
    gemm(ctx, g, 1, 0, K, NP, g->Co, tg_f(w), K, dyt, NP, col, NP, 0);
    col2im(ctx, col, g->N, g->C, g->H, g->W, g->kh, g->kw, g->stride, g->pad, g->Ho, g->Wo, tg_f(dx), acc);
    return TG_OK;
}

tg_status tg_cuda_conv_wgrad(tg_ctx *ctx, const tg_conv_geom *g, tg_mem x, tg_mem dy, tg_mem dw, int acc) {
    const int64_t K = (int64_t)g->C * g->kh * g->kw, P = (int64_t)g->Ho * g->Wo, NP = g->N * P;
    const bool direct = g->N == 1;
    float *ws = ws_floats(ctx, K * NP + (direct ? 0 : g->Co * NP));
    if (!ws) return TG_ERR_NOMEM;
    float *col = ws;
    const float *dyt = tg_f(dy);
    if (!direct) {
        nc_to_cn(ctx, tg_f(dy), g->N, g->Co, P, ws + K * NP);
        dyt = ws + K * NP;
    }
    im2col(ctx, tg_f(x), g->N, g->C, g->H, g->W, g->kh, g->kw, g->stride, g->pad, g->Ho, g->Wo, col);
    gemm(ctx, g, 0, 1, g->Co, K, NP, dyt, NP, col, NP, tg_f(dw), K, acc);
    return TG_OK;
}

} /* extern "C" */

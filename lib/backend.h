/*
 * backend.h — the contract between the op layer (lib/<op>.c) and a backend (lib/cpu/, cuda/):
 * everything a backend implements and everything it may use, and nothing more (no tape, no
 * files). Compiled by cc and nvcc.
 *
 * The slots are listed once, in TG_BACKEND_SLOTS below: X(return type, name, (parameters)).
 * From that list come struct tg_backend_ops, each backend's declarations (lib/cpu/cpu.h,
 * cuda/cuda_common.cuh: tg_cpu_<name>, tg_cuda_<name>) and each backend's table
 * (lib/cpu/backend_cpu.c, cuda/backend_cuda.cu). A backend that lacks a slot does not link.
 * Every slot is required: a backend owns its algorithms (the CPU convolves through its
 * table-driven GEMM, CUDA through im2col and cuBLAS) and answers every call itself.
 *
 * Tensor memory travels as a tg_mem view (pointer, element count, element type), so a second
 * precision adds a dtype, not slots or parameters; an op's geometry and settings travel as named
 * structs (tg_conv_geom, tg_pool_geom, tg_bn, ...). "acc" in a slot: 0 overwrite the
 * destination, 1 add into it. Gradient slots add into their dx unless they take an acc.
 */
#ifndef TG_BACKEND_H
#define TG_BACKEND_H

#include "tensorgan.h"
#include "checked.h"
#include "error.h"
#include "tg_math.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- views and parameters ------------------------------------------------------------------ */
typedef enum { TG_F32 = 0, TG_BF16 = 1, TG_I32 = 2 } tg_dtype;

/* n elements of type dt at p (backend memory); p NULL: absent (no bias, no gamma, ...) */
typedef struct {
    void *p;
    int64_t n;
    tg_dtype dt;
} tg_mem;
static inline tg_mem tg_mem_f32(const float *p, int64_t n) {
    tg_mem m = {(void *)p, n, TG_F32};
    return m;
}
static inline tg_mem tg_mem_none(void) {
    tg_mem m = {NULL, 0, TG_F32};
    return m;
}
/* the float / int32 pointer of a view (NULL when absent) */
static inline float *tg_f(tg_mem m) { return (float *)m.p; }
static inline int32_t *tg_i(tg_mem m) { return (int32_t *)m.p; }

/* a tensor seen as [N, C, P]: P the product of the dimensions after C */
typedef struct {
    int64_t N, C, P;
} tg_ncp;

/* row-major C[M,N] = alpha * op(A) op(B) + beta * C (op: transposed when ta / tb) */
typedef struct {
    int ta, tb;
    int64_t M, N, K;
    float alpha, beta;
    tg_mem A, B, C;
    int64_t lda, ldb, ldc;
    tg_precision prec; /* of the products (tg_ctx_set_precision); FP32 when left 0 */
} tg_gemm_args;

/* One convolution: x [N,C,H,W] * w [Co,C,kh,kw] -> y [N,Co,Ho,Wo] (stride, zero padding).
 * The three passes are always of this convolution; ConvTranspose2D is the same convolution
 * run the other way (its input is this y, its output this x: lib/conv.c). */
typedef struct {
    int N, C, H, W;
    int Co, kh, kw;
    int stride, pad;
    int Ho, Wo;
    tg_precision prec; /* of the products (tg_ctx_set_precision): the op's, for all three passes */
} tg_conv_geom;

/* Pooling planes of H x W into Ho x Wo: windows kh x kw, strides sh sw, padding ph pw; max
 * writes each output's argmax (its offset in the plane, TG_I32), average counts the padding. */
typedef struct {
    int64_t planes;
    int H, W, kh, kw, sh, sw, ph, pw, Ho, Wo;
    int is_max;
} tg_pool_geom;

/* an activation: TG_UN_* (tg_math.h) and its parameter (LeakyReLU's slope) */
typedef struct {
    int op;
    float a;
} tg_unary;

/* BatchNorm over x [N, C, P]. training: mean/invstd [C] are computed (and the running buffers,
 * when present, moved with momentum, unbiased variance); otherwise they are filled from the
 * running buffers. act: a (leaky) ReLU follows (slope >= 0, 0 for ReLU) and the BN output is
 * never stored: the backward recomputes it from x, mean, invstd, gamma and beta. */
typedef struct {
    tg_ncp s;
    tg_mem x, gamma, beta;             /* gamma, beta: absent for no affine */
    tg_mem running_mean, running_var;  /* absent: not moved (training) */
    tg_mem mean, invstd;               /* [C] */
    float eps, momentum;
    int training;
    int act;
    float slope;
} tg_bn;

/* a draw from Philox4x32-10 at (seed, stream, offset + i): uniform in [a, b), normal with mean a
 * and deviation b, or dropout's mask (element 1/(1-a) or 0, a the drop probability) */
typedef enum { TG_DRAW_UNIFORM, TG_DRAW_NORMAL, TG_DRAW_DROPOUT } tg_draw_kind;
typedef struct {
    tg_draw_kind kind;
    float a, b;
    uint64_t seed, offset;
    uint32_t stream;
} tg_draw;

/* cross-entropy of logits x [N, C, P] against labels [N, P] (TG_I32) with label smoothing */
typedef struct {
    tg_ncp s;
    tg_mem x, labels;
    float smoothing;
} tg_xent;

/* channel block: big [N, Cbig, P] and small [N, Csmall, P]; to_big: big[n, off + c, p] (acc?
 * +=: =) small[n, c, p], else the other way */
typedef struct {
    tg_mem big, small;
    int64_t N, P, Cbig, Csmall, off;
    int to_big, acc;
} tg_chan_block;

/* per-channel broadcast over x [N, C, P] with b [C] (or [N, C] when per_sample): op 0 adds, 1
 * multiplies */
typedef struct {
    tg_ncp s;
    int op, per_sample;
} tg_bcast;

/* upsampling by 2 of planes H x W (nearest, or bilinear with align_corners=False) */
typedef struct {
    int64_t planes;
    int H, W;
    int bilinear;
} tg_up2;

/* DiffAugment of x [N, C, H, W] with the per-sample parameters (TG_AUG_NPARAM each) and N floats
 * of scratch for the means (tg_math.h) */
typedef struct {
    int64_t N, C, H, W;
    tg_mem params, mean;
} tg_aug;

/* the optimizers' per-parameter work (lib/optim.c fills them) */
typedef struct {
    float *p;
    const float *g;
    float *m;
    float *v;
    int64_t n;
    float bc1, bc2;
} tg_adam_item;
typedef struct {
    float *p;
    const float *g;
    float *buf;
    int64_t n;
    int first;
} tg_sgd_item;

/* ---- the slots ------------------------------------------------------------------------------ */
#define TG_BACKEND_SLOTS(X)                                                                     \
    /* the context's life: init fills the backend's state (tg_be_set_state); describe writes one \
     * line about the device; check reports (and clears) the first asynchronous failure */        \
    X(tg_status, init, (tg_ctx * ctx))                                                          \
    X(void, shutdown, (tg_ctx * ctx))                                                           \
    X(void, describe, (tg_ctx * ctx, char *buf, size_t n))                                      \
    X(tg_status, check, (tg_ctx * ctx, const char *what))                                       \
    X(tg_status, sync, (tg_ctx * ctx))                                                          \
    /* memory: backend allocations, host <-> backend copies (synchronous), copies and fills */   \
    X(void *, alloc, (tg_ctx * ctx, size_t bytes))                                              \
    X(void, release, (tg_ctx * ctx, void *p))                                                   \
    X(tg_status, to_device, (tg_ctx * ctx, void *dst, const void *src, size_t bytes))           \
    X(tg_status, to_host, (tg_ctx * ctx, void *dst, const void *src, size_t bytes))             \
    X(void, copy, (tg_ctx * ctx, tg_mem dst, tg_mem src))                                       \
    X(void, fill, (tg_ctx * ctx, tg_mem x, float v))                                            \
    X(void, draw, (tg_ctx * ctx, tg_mem x, const tg_draw *d))                                   \
    /* products: a GEMM, and the three passes of a convolution (bias absent or [Co]) */                  \
    X(void, gemm, (tg_ctx * ctx, const tg_gemm_args *g))                                        \
    X(tg_status, conv_fwd, (tg_ctx * ctx, const tg_conv_geom *g, tg_mem x, tg_mem w, tg_mem bias, tg_mem y, int acc)) \
    X(tg_status, conv_bwd_data, (tg_ctx * ctx, const tg_conv_geom *g, tg_mem dy, tg_mem w, tg_mem dx, int acc)) \
    X(tg_status, conv_wgrad, (tg_ctx * ctx, const tg_conv_geom *g, tg_mem x, tg_mem dy, tg_mem dw, int acc)) \
    /* per channel of [N, C, P]: y += b[c]; out[c] (acc? +=: =) the sum over n, p */             \
    X(void, bias_add, (tg_ctx * ctx, tg_ncp s, tg_mem y, tg_mem b))                             \
    X(void, channel_sum, (tg_ctx * ctx, tg_ncp s, tg_mem x, tg_mem out, int acc))               \
    /* elementwise: y = f(x); dx (acc? +=: =) f'(x, y) dy; y = a x + b y; out (acc? +=: =) a b;  \
     * out[0] = scale sum(x); x (acc? +=: =) s[0] scale (s a one-element view) */               \
    X(void, unary_fwd, (tg_ctx * ctx, tg_unary u, tg_mem x, tg_mem y))                          \
    X(void, unary_bwd, (tg_ctx * ctx, tg_unary u, tg_mem x, tg_mem y, tg_mem dy, tg_mem dx, int acc)) \
    X(void, axpby, (tg_ctx * ctx, float a, tg_mem x, float b, tg_mem y))                        \
    X(void, mul, (tg_ctx * ctx, tg_mem a, tg_mem b, tg_mem out, int acc))                       \
    X(void, sum, (tg_ctx * ctx, tg_mem x, float scale, tg_mem out))                             \
    X(void, fill_scalar, (tg_ctx * ctx, tg_mem x, tg_mem s, float scale, int acc))              \
    /* BatchNorm (tg_bn): y (the activation's output when act); backward: dgamma += sum(dy      \
     * xhat), dbeta += sum(dy), dx (acc? +=: =), any of them absent */                           \
    X(void, bn_fwd, (tg_ctx * ctx, const tg_bn *b, tg_mem y))                                   \
    X(void, bn_bwd, (tg_ctx * ctx, const tg_bn *b, tg_mem y, tg_mem dy, tg_mem dx, tg_mem dgamma, tg_mem dbeta, int acc)) \
    /* pooling (argmax: TG_I32, written by a max forward, read by its backward) */               \
    X(void, pool_fwd, (tg_ctx * ctx, const tg_pool_geom *g, tg_mem x, tg_mem y, tg_mem argmax)) \
    X(void, pool_bwd, (tg_ctx * ctx, const tg_pool_geom *g, tg_mem dy, tg_mem argmax, tg_mem dx)) \
    /* softmax over C of [N, C, P] (is_log: log-softmax); the backward from the output y */       \
    X(void, softmax_fwd, (tg_ctx * ctx, tg_ncp s, int is_log, tg_mem x, tg_mem y))              \
    X(void, softmax_bwd, (tg_ctx * ctx, tg_ncp s, int is_log, tg_mem y, tg_mem dy, tg_mem dx))  \
    /* cross-entropy: each row's loss into rows [N*P]; dx += scale dl[0] (softmax - target) */   \
    X(void, xent_fwd, (tg_ctx * ctx, const tg_xent *e, tg_mem rows))                            \
    X(void, xent_bwd, (tg_ctx * ctx, const tg_xent *e, tg_mem dl, float scale, tg_mem dx))      \
    /* channel blocks, per-channel broadcasts and their reductions (db (acc? +=: =) the sum of  \
     * dy, times x when x is present), upsampling by 2, embedding rows (idx TG_I32) */            \
    X(void, chan_block, (tg_ctx * ctx, const tg_chan_block *b))                                 \
    X(void, chan_bcast, (tg_ctx * ctx, const tg_bcast *c, tg_mem x, tg_mem b, tg_mem y, int acc)) \
    X(void, chan_reduce, (tg_ctx * ctx, const tg_bcast *c, tg_mem dy, tg_mem x, tg_mem db, int acc)) \
    X(void, up2_fwd, (tg_ctx * ctx, const tg_up2 *u, tg_mem x, tg_mem y))                       \
    X(void, up2_bwd, (tg_ctx * ctx, const tg_up2 *u, tg_mem dy, tg_mem dx))                     \
    X(void, embed_fwd, (tg_ctx * ctx, tg_mem table, int64_t D, tg_mem idx, tg_mem y))           \
    X(void, embed_bwd, (tg_ctx * ctx, tg_mem dy, tg_mem idx, int64_t D, tg_mem dtable))         \
    /* DiffAugment (the means are scratch the forward fills and the backward reads) */           \
    X(void, augment_fwd, (tg_ctx * ctx, const tg_aug *a, tg_mem x, tg_mem y))                   \
    X(void, augment_bwd, (tg_ctx * ctx, const tg_aug *a, tg_mem dy, tg_mem dx))                 \
    /* binary cross-entropy with logits: out[0] = the mean; dx += dl[0]/n (sigmoid(x) - t),     \
     * dt += dl[0]/n (-x), either absent */                                                      \
    X(void, bce_fwd, (tg_ctx * ctx, tg_mem x, tg_mem t, tg_mem out))                            \
    X(void, bce_bwd, (tg_ctx * ctx, tg_mem x, tg_mem t, tg_mem dl, tg_mem dx, tg_mem dt))       \
    /* the optimizers' updates, every parameter in one call */                                  \
    X(tg_status, adam, (tg_ctx * ctx, const tg_adam_item *items, int count, const tg_adam_hyper *h)) \
    X(tg_status, sgd, (tg_ctx * ctx, const tg_sgd_item *items, int count, float lr, float momentum))

#define TG_SLOT_FIELD(ret, name, params) ret(*name) params;
struct tg_backend_ops {
    const char *name;
    TG_BACKEND_SLOTS(TG_SLOT_FIELD)
};

TG_INTERNAL extern const struct tg_backend_ops tg_cpu_backend;
#ifdef TG_WITH_CUDA
TG_INTERNAL extern const struct tg_backend_ops tg_cuda_backend;
#endif

/* ---- what a backend may use of its context (lib/ctx.c) --------------------------------------- */
TG_INTERNAL void *tg_be_state(const tg_ctx *ctx);
TG_INTERNAL void tg_be_set_state(tg_ctx *ctx, void *state);
/* the context's precision (tg_ctx_set_precision), for describe; ops pass theirs in their args */
TG_INTERNAL tg_precision tg_be_precision(const tg_ctx *ctx);
/* scratch of at least bytes (grows; contents not kept across calls). NULL + message (and a
 * recorded backward failure) when it cannot grow. */
TG_INTERNAL float *tg_workspace(tg_ctx *ctx, size_t bytes);

/* x rounded up to a multiple of m (sizes and offsets) */
static inline int64_t tg_round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
/* p rounded up to a multiple of a bytes (a power of two) */
static inline void *tg_align_ptr(void *p, size_t a) {
    return (void *)(((uintptr_t)p + (a - 1)) & ~(uintptr_t)(a - 1));
}

#ifdef __cplusplus
}
#endif
#endif /* TG_BACKEND_H */

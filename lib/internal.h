/*
 * internal.h — what the library's own files share: the structs behind the public handles, the
 * arena, the tape, the backend table (struct tg_backend_ops) and error helpers.
 * Nothing here is installed. Backends implement the table in lib/cpu/ and cuda/.
 */
#ifndef TG_INTERNAL_H
#define TG_INTERNAL_H

#include "tensorgan.h"
#include "checked.h"
#include "tg_math.h"

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TG_INTERNAL __attribute__((visibility("hidden")))

/* ---- errors ------------------------------------------------------------------------------- */
/* Sets the thread's message ("func: ...") and returns code. */
TG_INTERNAL tg_status tg_fail(tg_status code, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* whether the last failure is still unanswered by a successful op (see tg_check_in) */
TG_INTERNAL int tg_error_pending(void);
TG_INTERNAL void tg_error_settle(void);
/* Every failure names the public function the caller called: a public function that reaches
 * code reporting under other names (another public function, an inner helper) opens its body
 * with TG_API_SCOPE("tg_xxx"). Until the scope ends, messages read "tg_xxx: inner: ..." (the
 * outermost scope wins; nested public calls keep it). Ended by the cleanup attribute on every
 * return path. */
TG_INTERNAL const char *tg_api_enter(const char *name);
TG_INTERNAL void tg_api_restore(const char **prev);
#define TG_API_SCOPE(name) \
    __attribute__((cleanup(tg_api_restore), unused)) const char *tg_api_prev_ = tg_api_enter(name)
/* Inside a module tree: messages name the layer being run ("layer 2.0 (conv2d)"). */
TG_INTERNAL void tg_path_push(int index, const char *kind);
TG_INTERNAL void tg_path_pop(void);
TG_INTERNAL void tg_log(tg_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* the machine's physical memory in bytes (SIZE_MAX when unknown): one allocation larger than
 * it is refused as TG_ERR_NOMEM before malloc (an overcommitted one would be killed when used) */
TG_INTERNAL size_t tg_host_memory(void);
/* monotonic nanoseconds */
TG_INTERNAL uint64_t tg_now_ns(void);
/* the loader limits in force (tg_set_limits) */
TG_INTERNAL const tg_limits *tg_limits_now(void);
/* "[2,3,4]" into buf */
TG_INTERNAL const char *tg_shape_str(const tg_tensor *t, char *buf, size_t n);
/* the same into a char array b declared at the call site */
#define SHP(t, b) tg_shape_str((t), (b), sizeof(b))

/* ---- memory arena --------------------------------------------------------------------------
 * Bump allocation in big chunks of backend memory; rewinding keeps the chunks, so a repeated
 * training step allocates nothing after the first. */
typedef struct tg_chunk {
    struct tg_chunk *next;
    char *base;
    size_t size, used;
} tg_chunk;

typedef struct {
    tg_chunk *head, *cur;
    size_t total, in_use, peak;
    size_t chunk_allocs;
    int on_device; /* chunks come from the backend (device memory) vs malloc */
} tg_arena;

TG_INTERNAL void *tg_arena_alloc(tg_ctx *ctx, tg_arena *a, size_t bytes);
TG_INTERNAL void tg_arena_rewind(tg_arena *a);
TG_INTERNAL void tg_arena_release(tg_ctx *ctx, tg_arena *a);

/* ---- tensors ------------------------------------------------------------------------------ */
struct tg_tensor {
    tg_ctx *ctx;
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    int64_t numel;
    float *data;       /* host memory on a CPU context, device memory on a CUDA one */
    tg_tensor *grad;   /* gradient (same shape), or NULL */
    bool grad_valid;   /* grad holds values written since the last zero_grad */
    bool requires_grad;
    bool is_leaf;      /* created by tg_tensor_new, owned by the caller */
    bool owned;        /* a leaf a module or an optimizer owns: tg_tensor_free refuses it */
    bool caller_freed; /* tg_tensor_free was called (the caller's reference is gone) */
    int refs;          /* leaves: references (the creator's, and each optimizer, state and
                          gradient averager holding it); freed when the last one goes */
    size_t bw_last;    /* with a grad hook: the tape index after whose backward this leaf's
                          gradient is final (the first node that reads it) */
};

/* ---- tape --------------------------------------------------------------------------------- */
typedef struct tg_node tg_node;
typedef void (*tg_backward_fn)(tg_ctx *ctx, tg_node *node);

#define TG_NODE_MAX_IN 5
struct tg_node {
    tg_backward_fn backward;
    tg_tensor *in[TG_NODE_MAX_IN];
    tg_tensor *out;
    tg_tensor *saved[3];
    union {
        struct { int stride, pad; } conv;
        struct { int op; float a; } un;
        struct { float s; } scale;
        struct { float eps; int training; float slope; } bn;
        struct { int kh, kw, sh, sw, ph, pw, is_max; } pool;
        struct { float e; } xent;
    } p;
};

/* ---- backend ------------------------------------------------------------------------------
 * Primitives every backend implements. Pointers are device pointers of that backend. Shapes in
 * int64 element counts. "acc" arguments: 0 overwrite, 1 add into the destination. */
typedef struct {
    float *p; const float *g; float *m; float *v; int64_t n; float bc1, bc2;
} tg_adam_item;
typedef struct {
    float *p; const float *g; float *buf; int64_t n; int first;
} tg_sgd_item;

struct tg_backend_ops {
    const char *name;
    tg_status (*init)(tg_ctx *ctx);
    void (*shutdown)(tg_ctx *ctx);
    void *(*alloc)(tg_ctx *ctx, size_t bytes);
    void (*release)(tg_ctx *ctx, void *p);
    tg_status (*sync)(tg_ctx *ctx);
    tg_status (*to_device)(tg_ctx *ctx, void *dst, const void *src, size_t bytes);
    tg_status (*to_host)(tg_ctx *ctx, void *dst, const void *src, size_t bytes);
    void (*copy)(tg_ctx *ctx, float *dst, const float *src, int64_t n);
    void (*fill)(tg_ctx *ctx, float *x, int64_t n, float v);
    /* row-major C[M,N] = alpha * op(A) op(B) + beta * C */
    void (*gemm)(tg_ctx *ctx, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                 const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                 int64_t ldc);
    /* x [N,C,H,W] -> col [C*kh*kw, N*Ho*Wo] */
    void (*im2col)(tg_ctx *ctx, const float *x, int N, int C, int H, int W, int kh, int kw,
                   int stride, int pad, int Ho, int Wo, float *col);
    /* x (acc? +=: =) scatter-add of col [C*kh*kw, N*Ho*Wo] into [N,C,H,W] */
    void (*col2im)(tg_ctx *ctx, const float *col, int N, int C, int H, int W, int kh, int kw,
                   int stride, int pad, int Ho, int Wo, float *x, int acc);
    /* dst[c, n*P+p] = src[n,c,p] */
    void (*nc_to_cn)(tg_ctx *ctx, const float *src, int64_t N, int64_t C, int64_t P, float *dst);
    /* dst[n,c,p] (acc? +=: =) src[c, n*P+p] + (bias? bias[c]: 0) */
    void (*cn_to_nc)(tg_ctx *ctx, const float *src, int64_t N, int64_t C, int64_t P,
                     const float *bias, float *dst, int acc);
    /* y[n,c,p] += b[c] */
    void (*bias_add)(tg_ctx *ctx, float *y, const float *b, int64_t N, int64_t C, int64_t P);
    /* out[c] (acc? +=: =) sum over n,p of x[n,c,p] */
    void (*channel_sum)(tg_ctx *ctx, const float *x, int64_t N, int64_t C, int64_t P, float *out,
                        int acc);
    void (*unary_fwd)(tg_ctx *ctx, int op, float a, const float *x, float *y, int64_t n);
    /* dx (acc? +=: =) f'(x,y) * dy */
    void (*unary_bwd)(tg_ctx *ctx, int op, float a, const float *x, const float *y,
                      const float *dy, float *dx, int64_t n, int acc);
    /* y = a*x + b*y */
    void (*axpby)(tg_ctx *ctx, int64_t n, float a, const float *x, float b, float *y);
    /* out (acc? +=: =) a*b elementwise */
    void (*mul)(tg_ctx *ctx, int64_t n, const float *a, const float *b, float *out, int acc);
    /* out[0] = scale * sum(x) */
    void (*sum)(tg_ctx *ctx, const float *x, int64_t n, float scale, float *out);
    /* x[i] (acc? +=: =) s[0] * scale, s a one-element device buffer */
    void (*fill_scalar)(tg_ctx *ctx, float *x, int64_t n, const float *s, float scale, int acc);
    /* training-mode BatchNorm over x [N,C,P]: writes mean/invstd [C] and y; when running_mean
     * is not NULL, updates running stats with momentum (unbiased variance). */
    void (*bn_fwd_train)(tg_ctx *ctx, const float *x, int64_t N, int64_t C, int64_t P,
                         const float *gamma, const float *beta, float eps, float momentum,
                         float *running_mean, float *running_var, float *mean, float *invstd,
                         float *y);
    /* y = bn with given mean/invstd [C] (eval mode uses invstd from running_var) */
    void (*bn_fwd_apply)(tg_ctx *ctx, const float *x, int64_t N, int64_t C, int64_t P,
                         const float *mean, const float *invstd, const float *gamma,
                         const float *beta, float *y);
    /* invstd[c] = 1/sqrt(var[c] + eps) */
    void (*bn_invstd)(tg_ctx *ctx, const float *var, int64_t C, float eps, float *invstd);
    /* dgamma += sum(dy*xhat), dbeta += sum(dy), dx (acc? +=: =) (training? full formula :
     * dy*gamma*invstd). Any output pointer may be NULL. */
    void (*bn_bwd)(tg_ctx *ctx, const float *x, const float *dy, int64_t N, int64_t C, int64_t P,
                   const float *gamma, const float *mean, const float *invstd, int training,
                   float *dx, float *dgamma, float *dbeta, int acc);
    /* Whole convolution passes without a column matrix (NULL: the op layer uses im2col + gemm).
     * A pass may answer TG_ERR_UNSUPPORTED for sizes it does not handle (the op falls back).
     * conv_fwd:      y [N,Co,Ho,Wo] (acc? +=: =) conv(x [N,C,H,W], w [Co,C,kh,kw]) + bias
     * conv_bwd_data: dx [N,C,H,W] (acc? +=: =) data gradient from dy [N,Co,Ho,Wo], same w
     * conv_wgrad:    dw [Co,C,kh,kw] (acc? +=: =) weight gradient from x and dy */
    tg_status (*conv_fwd)(tg_ctx *ctx, const float *x, int N, int C, int H, int W, const float *w,
                          int Co, int kh, int kw, int s, int p, int Ho, int Wo, const float *bias,
                          float *y, int acc);
    tg_status (*conv_bwd_data)(tg_ctx *ctx, const float *dy, int N, int Co, int Ho, int Wo,
                               const float *w, int C, int kh, int kw, int s, int p, int H, int W,
                               float *dx, int acc);
    tg_status (*conv_wgrad)(tg_ctx *ctx, const float *x, int N, int C, int H, int W,
                            const float *dy, int Co, int Ho, int Wo, int kh, int kw, int s, int p,
                            float *dw, int acc);
    /* BatchNorm fused with a following (leaky) ReLU: z = act(bn(x)), act(y) = y > 0 ? y : slope*y
     * (slope >= 0, ReLU is 0), one pass over x after the statistics. training: mean/invstd are
     * computed (and the running buffers moved when given) as bn_fwd_train does; otherwise they
     * are inputs. The BN output itself is never stored. NULL: the op layer runs the two ops. */
    void (*bn_act_fwd)(tg_ctx *ctx, const float *x, int64_t N, int64_t C, int64_t P,
                       const float *gamma, const float *beta, float eps, float momentum,
                       float *running_mean, float *running_var, int training, float *mean,
                       float *invstd, float slope, float *z);
    /* backward through both: dy = dz * act'(y) with y = the BN output recomputed from x, mean,
     * invstd, gamma and beta (bit for bit the forward's y, so z is not read), then bn_bwd */
    void (*bn_act_bwd)(tg_ctx *ctx, const float *x, const float *beta, const float *dz, int64_t N,
                       int64_t C, int64_t P, const float *gamma, const float *mean,
                       const float *invstd, int training, float slope, float *dx, float *dgamma,
                       float *dbeta, int acc);
    /* out[0] = mean bce */
    /* pooling (lib/pool.c): planes of H x W -> planes of Ho x Wo, windows kh x kw, strides sh sw,
     * padding ph pw; max saves each output's argmax (offset in its plane) in idx, avg counts the
     * padding (count_include_pad). Backward adds into dx, gathering per input: deterministic. */
    void (*pool_fwd)(tg_ctx *ctx, int is_max, const float *x, int64_t planes, int H, int W, int kh,
                     int kw, int sh, int sw, int ph, int pw, int Ho, int Wo, float *y, int32_t *idx);
    void (*pool_bwd)(tg_ctx *ctx, int is_max, const float *dy, const int32_t *idx, int64_t planes,
                     int H, int W, int kh, int kw, int sh, int sw, int ph, int pw, int Ho, int Wo,
                     float *dx);
    /* softmax over C of x [N][C][P] (lib/softmax.c); is_log: log-softmax. Backward adds into dx
     * from the output y. */
    void (*softmax_fwd)(tg_ctx *ctx, int is_log, const float *x, int64_t N, int64_t C, int64_t P,
                        float *y);
    void (*softmax_bwd)(tg_ctx *ctx, int is_log, const float *y, const float *dy, int64_t N,
                        int64_t C, int64_t P, float *dx);
    /* cross-entropy of x [N][C][P] against labels [N][P] with label smoothing e: the loss of each
     * (n, p) into rows; backward adds scale * dl[0] * (softmax - target) into dx */
    void (*xent_fwd)(tg_ctx *ctx, const float *x, const int32_t *labels, int64_t N, int64_t C,
                     int64_t P, float e, float *rows);
    void (*xent_bwd)(tg_ctx *ctx, const float *x, const int32_t *labels, int64_t N, int64_t C,
                     int64_t P, float e, const float *dl, float scale, float *dx);
    /* dropout's mask: element i is 1/(1-p) or 0 (tg_dropout_mask1), Philox at offset + i */
    void (*dropout_mask)(tg_ctx *ctx, float *mask, int64_t n, uint64_t seed, uint32_t stream,
                         uint64_t offset, float p);
    /* channel blocks (lib/channel.c): big has Ca channels, small Cb; to_big: big[n, off + c, p]
     * (acc? +=: =) small[n, c, p], else the other way */
    void (*chan_block)(tg_ctx *ctx, float *big, int64_t Ca, int64_t off, float *small, int64_t Cb,
                       int64_t N, int64_t P, int to_big, int acc);
    /* per-channel broadcast: y (acc? +=: =) x op b[c] (b[n, c] when per_sample); op 0 add, 1 mul */
    void (*chan_bcast)(tg_ctx *ctx, int op, const float *x, const float *b, int64_t N, int64_t C,
                       int64_t P, int per_sample, float *y, int acc);
    /* db[c] (db[n, c]) (acc? +=: =) sum over the rest of dy (times x when x is not NULL) */
    void (*chan_reduce)(tg_ctx *ctx, const float *dy, const float *x, int64_t N, int64_t C,
                        int64_t P, int per_sample, float *db, int acc);
    /* upsampling by 2 of planes H x W (nearest, or bilinear with align_corners=False); backward
     * gathers per input and adds into dx */
    void (*up2_fwd)(tg_ctx *ctx, int bilinear, const float *x, int64_t planes, int H, int W, float *y);
    void (*up2_bwd)(tg_ctx *ctx, int bilinear, const float *dy, int64_t planes, int H, int W,
                    float *dx);
    /* embedding: y[i] = table[idx[i]] (rows of D); backward adds dy's rows into dtable in i order */
    void (*embed_fwd)(tg_ctx *ctx, const float *table, int64_t D, const int32_t *idx, int64_t n,
                      float *y);
    void (*embed_bwd)(tg_ctx *ctx, const float *dy, const int32_t *idx, int64_t n, int64_t D,
                      float *dtable);
    /* DiffAugment (lib/augment.c; the math in tg_math.h): p holds N x TG_AUG_NPARAM parameters,
     * mean N floats of scratch. Forward writes y; backward adds into dx. */
    void (*augment_fwd)(tg_ctx *ctx, const float *x, int64_t N, int64_t C, int64_t H, int64_t W,
                        const float *p, float *mean, float *y);
    void (*augment_bwd)(tg_ctx *ctx, const float *dy, int64_t N, int64_t C, int64_t H, int64_t W,
                        const float *p, float *mean, float *dx);
    void (*bce_fwd)(tg_ctx *ctx, const float *x, const float *t, int64_t n, float *out);
    /* dx += dl[0]/n * (sigmoid(x)-t); dt += dl[0]/n * (-x); either may be NULL */
    void (*bce_bwd)(tg_ctx *ctx, const float *x, const float *t, const float *dl, int64_t n,
                    float *dx, float *dt);
    tg_status (*adam)(tg_ctx *ctx, const tg_adam_item *items, int count, const tg_adam_hyper *h);
    tg_status (*sgd)(tg_ctx *ctx, const tg_sgd_item *items, int count, float lr, float momentum);
    void (*rng_uniform)(tg_ctx *ctx, float *x, int64_t n, uint64_t seed, uint32_t stream,
                        uint64_t offset, float lo, float hi);
    void (*rng_normal)(tg_ctx *ctx, float *x, int64_t n, uint64_t seed, uint32_t stream,
                       uint64_t offset, float mean, float std);
    /* first error the backend met since the last call (asynchronous launches), then cleared */
    tg_status (*check)(tg_ctx *ctx, const char *what);
};

TG_INTERNAL extern const struct tg_backend_ops tg_cpu_backend;
/* The first required slot a backend table leaves NULL (counting from `init`), or -1 (lib/ctx.c).
 * Optional: conv_fwd, conv_bwd_data, conv_wgrad, bn_act_fwd, bn_act_bwd. */
TG_INTERNAL int tg_backend_missing_slot(const struct tg_backend_ops *be);
#ifdef TG_WITH_CUDA
TG_INTERNAL extern const struct tg_backend_ops tg_cuda_backend;
#endif

/* ---- context ------------------------------------------------------------------------------ */
struct tg_ctx {
    tg_device device;
    const struct tg_backend_ops *be;
    void *be_state;        /* backend's own (CUDA stream, cuBLAS handle, ...) */
    tg_arena data;         /* op-result values and gradients (backend memory) */
    tg_arena meta;         /* tensor headers of op results (host memory) */
    tg_node *nodes;
    size_t n_nodes, cap_nodes;
    float *ws;             /* workspace for im2col etc. (backend memory) */
    size_t ws_bytes;
    bool grad_enabled;
    bool tf32;
    tg_status bw_status;   /* first failure inside the running backward pass */
    uint64_t seed, rng_offset;
    uint32_t rng_stream;
    char desc[384];        /* tg_ctx_describe; the CUDA backend fills it at init */
    /* called by the next backward pass for each leaf whose gradient that pass has finished,
     * as soon as it is final (lib/dist.c overlaps gradient reduction with it); one pass only */
    void (*grad_hook)(void *user, tg_tensor *leaf);
    void *grad_hook_user;
    /* leaf tensors alive on this context; tg_ctx_free with some alive only marks it closing,
     * and the last tg_tensor_free then frees it (so freeing in the wrong order cannot crash) */
    int64_t live_leaves;
    bool closing;
};

/* ---- op helpers (lib/tensor.c, lib/tape.c) ------------------------------------------------ */
/* A leaf tensor owned by a module or optimizer (tg_tensor_free refuses it; they free it with
 * tg_tensor_release). fn names the caller in messages. */
TG_INTERNAL tg_tensor *tg_tensor_owned(tg_ctx *ctx, int ndim, const int64_t *shape, const char *fn);
/* One more reference to a leaf (an optimizer, a state, a gradient averager holding it), and one
 * less: the leaf is freed with its last reference, whatever order its holders are freed in.
 * Both ignore NULL and op results. */
TG_INTERNAL void tg_tensor_retain(tg_tensor *t);
TG_INTERNAL void tg_tensor_release(tg_tensor *t);
/* Frees what tg_ctx_free left for its last leaf (lib/ctx.c). */
TG_INTERNAL void tg_ctx_destroy(tg_ctx *ctx);
/* Validates a shape (1..TG_MAX_DIMS dims, each >= 1, numel <= TG_MAX_NUMEL) into *numel. */
TG_INTERNAL bool tg_shape_ok(int ndim, const int64_t *shape, int64_t *numel, const char *func);
/* An op result on the tape (values uninitialised). */
TG_INTERNAL tg_tensor *tg_result(tg_ctx *ctx, int ndim, const int64_t *shape, const char *func);
/* A tape-owned header over x's data with another shape (same numel): no copy. */
TG_INTERNAL tg_tensor *tg_view(tg_ctx *ctx, tg_tensor *x, int ndim, const int64_t *shape,
                               const char *fn);
/* An activation computed in place over x's data, for x that nothing else reads (the output of a
 * layer inside a sequential): the result is a view of x and its backward reads only the output.
 * Valid for tanh, sigmoid and (leaky) ReLU with slope >= 0 (their derivative is a function of
 * the output); lib/activation.c. */
TG_INTERNAL tg_tensor *tg_activation_inplace(tg_ctx *ctx, tg_tensor *x, int op, float a);
/* Validate an op input: non-NULL, belongs to ctx. NULL input keeps the earlier message. */
TG_INTERNAL bool tg_check_in(tg_ctx *ctx, const tg_tensor *t, const char *func, const char *what);
/* tg_check_in for an image batch x that must be [N,C,H,W] */
TG_INTERNAL bool tg_check_nchw(tg_ctx *ctx, const tg_tensor *x, const char *func);
/* Whether an op whose inputs are `in` records a node, and marks out->requires_grad. */
TG_INTERNAL bool tg_needs_grad(tg_ctx *ctx, tg_tensor *const *in, int n);
/* BatchNorm followed by act(y) = y > 0 ? y : slope*y (slope >= 0; 0 is ReLU), as one op when the
 * backend fuses them (lib/batchnorm.c); the sequential container uses it for BN + activation. */
TG_INTERNAL tg_tensor *tg_batch_norm_act(tg_ctx *ctx, tg_tensor *x, tg_tensor *gamma,
                                         tg_tensor *beta, tg_tensor *running_mean,
                                         tg_tensor *running_var, bool training, float momentum,
                                         float eps, float slope);
/* Appends a node (NULL on allocation failure, message set). */
TG_INTERNAL tg_node *tg_record(tg_ctx *ctx, tg_backward_fn fn, tg_tensor *out, tg_tensor *const *in,
                               int n_in, const char *func);
/* The gradient buffer of t to accumulate into, zeroed on first use; NULL when t needs none. */
TG_INTERNAL float *tg_grad_of(tg_ctx *ctx, tg_tensor *t);
/* Like tg_grad_of, but a gradient that holds nothing yet is not zeroed: *acc is then 0 and the
 * caller must write every element (otherwise *acc is 1: add into it). NULL when t needs none. */
TG_INTERNAL float *tg_grad_write(tg_ctx *ctx, tg_tensor *t, int *acc);
/* Workspace of at least bytes (grows; contents not kept across calls). NULL + message and a
 * recorded backward failure when it cannot grow. */
TG_INTERNAL float *tg_workspace(tg_ctx *ctx, size_t bytes);
/* tg_tensor_check_finite with the message attributed to fn and naming t as what */
TG_INTERNAL tg_status tg_check_finite_named(const tg_tensor *t, const char *fn, const char *what);
/* Advances the RNG and returns the offset to draw from. */
TG_INTERNAL uint64_t tg_rng_take(tg_ctx *ctx, int64_t n);

/* ---- DiffAugment (lib/augment.c) ---------------------------------------------------------
 * The op with given per-sample parameters (host memory, N x TG_AUG_NPARAM): what
 * tg_diff_augment runs after drawing them, and what the tests call with known ones. */
TG_INTERNAL tg_tensor *tg_diff_augment_with(tg_ctx *ctx, tg_tensor *x, const float *params);

/* ---- metrics (lib/metrics.c) ---------------------------------------------------------------
 * tg_swd's Philox streams: neighbourhood positions (set 0 uses POS, set 1 POS + 1; counter
 * ((image * 16 + level) * per_image + j), words 0 and 1 modulo the span give y and x) and
 * directions (tg_rng_normal1 at index ((level * repeats + repeat) * dirs + d) * dim + k). */
#define TG_SWD_STREAM_POS 0x53574450u
#define TG_SWD_STREAM_DIR 0x53574444u

/* ---- BLAS loader (lib/cpu/blas.c) --------------------------------------------------------- */
typedef void (*tg_sgemm_fn)(int order, int ta, int tb, int M, int N, int K, float alpha,
                            const float *A, int lda, const float *B, int ldb, float beta,
                            float *C, int ldc);
TG_INTERNAL tg_sgemm_fn tg_blas_sgemm(void);

/* ---- files (lib/file.c) -------------------------------------------------------------------- */
/* path opened for reading when it is a regular file; NULL + message (named fn) and *st
 * otherwise: a NULL or empty path, a missing file, a directory, a FIFO or a device (never waits
 * for a FIFO's writer). */
#include <stdio.h>
TG_INTERNAL FILE *tg_open_regular(const char *path, const char *fn, tg_status *st);

/* ---- safetensors files (lib/safetensors.c), shared by checkpoints and datasets ------------- */
typedef struct {
    char *name;
    char dtype[16];
    int ndim;
    int64_t shape[8];
    const uint8_t *data; /* into the file buffer */
    uint64_t nbytes;
} tg_st_tensor;
typedef struct {
    uint8_t *buf;
    size_t size;
    tg_st_tensor *t;
    int n;
    int *by_name;        /* t's indices sorted by name (tg_st_find) */
    char **mk, **mv;
    int nmeta;
} tg_st_file;
/* Reads a whole safetensors file (xz-compressed or not, by content) and checks its header and
 * every byte range: sizes against tg_limits, element counts without overflow, unique names,
 * disjoint byte ranges. Messages are attributed to fn. */
TG_INTERNAL tg_status tg_st_read(const char *path, tg_st_file *f, const char *fn);
TG_INTERNAL void tg_st_release(tg_st_file *f);
TG_INTERNAL const tg_st_tensor *tg_st_find(const tg_st_file *f, const char *name);
TG_INTERNAL const char *tg_st_meta(const tg_st_file *f, const char *key);
typedef struct {
    const char *name;
    const char *dtype;       /* "F32", "U8", ... */
    int ndim;
    int64_t shape[8];
    const void *host;        /* data in host memory, or */
    const tg_tensor *t;      /* a float tensor on any device */
} tg_st_entry;
/* Sets "fn: path: <message>" and returns code (lib/safetensors.c; lib/state.c uses it too). */
TG_INTERNAL tg_status tg_st_fail(tg_status code, const char *fn, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Writes atomically (temp file, fsync, rename); xz-compressed when path ends in ".xz". */
TG_INTERNAL tg_status tg_st_write(const char *path, const tg_st_entry *e, int n, char *const *mk,
                                  char *const *mv, int nmeta, const char *fn);

/* ---- modules and optimizers shared with io ------------------------------------------------ */
TG_INTERNAL int tg_optim_state(tg_optim *opt, char names[][64], tg_tensor **out, int max,
                               int64_t **steps);
TG_INTERNAL int tg_optim_count(const tg_optim *opt);
/* references to an optimizer (a state that registered it): freed with the last */
TG_INTERNAL void tg_optim_retain(tg_optim *opt);
TG_INTERNAL void tg_optim_release(tg_optim *opt);

#ifdef __cplusplus
}
#endif
#endif /* TG_INTERNAL_H */
